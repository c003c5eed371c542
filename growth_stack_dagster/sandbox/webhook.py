"""A webhook receiver, mounted at `/webhook`: the endpoint a `webhook` sync destination posts to in the
sandbox, the way a customer's own service would receive it.

`POST /webhook/<endpoint>` takes a Standard Webhooks message (`webhook-id`, `webhook-timestamp`,
`webhook-signature`, verified with `GROWTH_STACK_WEBHOOK_SECRET`, the stack's Standard Webhooks secret)
whose body is a Growth Stack sync batch (`{"type", "timestamp", "data": {"records": [{"key", "operation",
"fields"}]}}`). Like a careful receiver it treats `webhook-id` as an idempotency key: a message it has
already accepted is answered 200 again and changes nothing. A `reject` fault refuses the records whose key
contains its `match`, answered as `{"rejected": [{"key", "message"}]}`. Read back (not part of any real
API): `GET /webhook/_sandbox/<endpoint>/messages` and `GET /webhook/_sandbox/<endpoint>/records`.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from typing import Any

from standardwebhooks import Webhook, WebhookVerificationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from growth_stack_dagster import config
from growth_stack_dagster.sandbox.core import Emulation, SandboxContext

SYSTEM = "webhook"


def rate_limit_response(retry_after: float) -> Response:
    return JSONResponse({"error": "too many requests"}, status_code=429,
                        headers={"Retry-After": str(max(1, math.ceil(retry_after)))})


def error_response(status: int) -> Response:
    return JSONResponse({"error": "the receiver failed; try again later"}, status_code=status)


class WebhookReceiver:
    def __init__(self, ctx: SandboxContext):
        self.ctx = ctx
        self.store = ctx.store
        self.verifier = Webhook(config.standard_webhook_secret())

    def receive(self, endpoint: str, message: dict[str, Any], msg_id: str, path: str,
                method: str) -> tuple[int, dict[str, Any]]:
        """Store one verified message once; returns (status, answer)."""
        key = f"{endpoint}:{msg_id}"
        if self.store.get(SYSTEM, "messages", key) is not None:
            return 200, {"received": msg_id, "duplicate": True}
        data = message.get("data") if isinstance(message, dict) else None
        records = data.get("records") if isinstance(data, dict) else None
        if not isinstance(records, list) or not all(isinstance(r, dict) and "key" in r for r in records):
            return 400, {"error": 'the body must be {"data": {"records": [{"key": ..., "fields": {...}}, ...]}}'}
        now = int(time.time())
        rejected, stored = [], []
        for record in records:
            record_key = str(record["key"])
            if self.ctx.faults.rejects(path, record_key, method):
                rejected.append({"key": record_key, "message": "rejected by the sandbox's fault injection"})
                continue
            stored.append(record_key)
            self.store.put(SYSTEM, "records", f"{endpoint}:{record_key}", {
                "key": record_key, "operation": record.get("operation"), "fields": record.get("fields"),
                "message_id": msg_id}, updated=now)
        self.store.count_writes(SYSTEM, "records", (f"{endpoint}:{k}" for k in stored))
        self.store.put(SYSTEM, "messages", key, {"id": msg_id, "endpoint": endpoint, "received_at": now,
                                                 "body": message, "rejected": [r["key"] for r in rejected]},
                       created=now, updated=now)
        return 200, {"received": msg_id, "rejected": rejected}

    def listing(self, endpoint: str, collection: str) -> list[dict[str, Any]]:
        lo, hi = endpoint + ":", endpoint + ";"
        rows = self.store.query(f"SELECT data FROM objects WHERE system=? AND collection='{collection}' "
                                "AND id >= ? AND id < ? ORDER BY seq", (SYSTEM, lo, hi))
        return [json.loads(d) for (d,) in rows]


def build(ctx: SandboxContext) -> Emulation:
    """The webhook receiver for the sandbox app."""
    receiver = WebhookReceiver(ctx)

    async def receive(request: Request) -> Response:
        body = await request.body()
        try:
            receiver.verifier.verify(body, {k: v for k, v in request.headers.items()})
        except WebhookVerificationError as exc:
            return JSONResponse({"error": f"signature check failed: {exc}; sign with the stack's "
                                          "GROWTH_STACK_WEBHOOK_SECRET"}, status_code=401)
        try:
            message = json.loads(body)
        except ValueError:
            return JSONResponse({"error": "the body is not JSON"}, status_code=400)
        status, answer = await asyncio.to_thread(receiver.receive, request.path_params["endpoint"], message,
                                                 request.headers["webhook-id"], request.url.path, request.method)
        return JSONResponse(answer, status_code=status)

    async def messages(request: Request) -> Response:
        return JSONResponse({"data": await asyncio.to_thread(receiver.listing, request.path_params["endpoint"],
                                                             "messages")})

    async def records(request: Request) -> Response:
        return JSONResponse({"data": await asyncio.to_thread(receiver.listing, request.path_params["endpoint"],
                                                             "records")})

    routes = [
        Route("/_sandbox/{endpoint}/messages", messages, methods=["GET"]),
        Route("/_sandbox/{endpoint}/records", records, methods=["GET"]),
        Route("/{endpoint}", receive, methods=["POST"]),
    ]
    return Emulation(prefix="/webhook", routes=routes, rate_limit_response=rate_limit_response,
                     error_response=error_response)
