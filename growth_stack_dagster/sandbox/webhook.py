"""A Standard Webhooks receiver, mounted at `/webhook`: stands in for a customer's or a team's own
webhook endpoint, so that reverse-ETL `webhook` syncs (`/webhook/<sync name>`) and the router's sales
route (`/webhook/sales`) can be tried and tested.

`POST /webhook/<endpoint>` verifies the Standard Webhooks signature (`webhook-id`, `webhook-timestamp`,
`webhook-signature`, five minutes of tolerance) with the stack's secret `GROWTH_STACK_WEBHOOK_SECRET`,
or the sales team's `GROWTH_STACK_SALES_WEBHOOK_SECRET` when that is set (each may list several,
comma-separated, during a rotation); 401 for a bad signature, 400 for a body that is not JSON. Like a
careful receiver it treats `webhook-id` as an idempotency key: a message id it has already accepted is
answered 200 again (`"duplicate": true`), counted in the message's `attempts`, and changes nothing else.

A body that is a Growth Stack sync batch (`{"type", "timestamp", "data": {"records": [{"key",
"operation", "fields"}]}}`) also stores its records by key; a `reject` fault refuses the records whose
key contains its `match`, answered as `{"rejected": [{"key", "message"}]}`. Read back (not part of any
real API): `GET /webhook/_sandbox/<endpoint>/messages` (`{"data": [{"id", "endpoint", "received_at",
"attempts", "body", "rejected"}]}`) and `GET /webhook/_sandbox/<endpoint>/records`.
"""

from __future__ import annotations

import asyncio
import math
import os
import time
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from growth_stack_dagster import config
from growth_stack_dagster.collector import signatures
from growth_stack_dagster.sandbox.core import Emulation, SandboxContext

SYSTEM = "webhook"
BATCH_SHAPE = 'a sync batch must be {"data": {"records": [{"key": ..., "fields": {...}}, ...]}}'


def receiver_secrets() -> list[str]:
    """The secrets the receiver accepts: the stack's, and the sales team's when it is configured."""
    return signatures.split_secrets(config.standard_webhook_secret()) + signatures.split_secrets(
        os.environ.get("GROWTH_STACK_SALES_WEBHOOK_SECRET", ""))


def rate_limit_response(retry_after: float) -> Response:
    return JSONResponse({"error": "too many requests"}, status_code=429,
                        headers={"Retry-After": str(max(1, math.ceil(retry_after)))})


def error_response(status: int) -> Response:
    return JSONResponse({"error": "the receiver failed; try again later"}, status_code=status)


class WebhookReceiver:
    def __init__(self, ctx: SandboxContext):
        self.ctx = ctx
        self.store = ctx.store

    def receive(self, endpoint: str, message: Any, msg_id: str, path: str,
                method: str) -> tuple[int, dict[str, Any]]:
        """Store one verified message once (and the records of a sync batch); returns (status, answer)."""
        key = f"{endpoint}:{msg_id}"
        now = int(time.time())
        existing = self.store.get(SYSTEM, "messages", key)
        if existing is not None:
            existing["attempts"] = existing.get("attempts", 1) + 1
            self.store.put(SYSTEM, "messages", key, existing, updated=now)
            return 200, {"received": msg_id, "duplicate": True, "attempts": existing["attempts"]}
        data = message.get("data") if isinstance(message, dict) else None
        records = data.get("records") if isinstance(data, dict) else None
        if records is not None and not (isinstance(records, list)
                                        and all(isinstance(r, dict) and "key" in r for r in records)):
            return 400, {"error": BATCH_SHAPE}
        rejected, stored = [], []
        for record in records or []:
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
                                                 "attempts": 1, "body": message,
                                                 "rejected": [r["key"] for r in rejected]},
                       created=now, updated=now)
        return 200, {"received": msg_id, "attempts": 1, "rejected": rejected}

    def listing(self, endpoint: str, collection: str) -> list[dict[str, Any]]:
        """What `endpoint` received (collection `messages` or `records`), in the order it first arrived."""
        rows = self.store.query("SELECT data FROM objects WHERE system=? AND collection=? "
                                "AND id >= ? AND id < ? ORDER BY seq", (SYSTEM, collection, endpoint + ":",
                                                                        endpoint + ";"))
        return [orjson.loads(d) for (d,) in rows]


def build(ctx: SandboxContext) -> Emulation:
    """The webhook receiver for the sandbox app."""
    receiver = WebhookReceiver(ctx)

    async def receive(request: Request) -> Response:
        body = await request.body()
        try:
            signatures.verify_standard_webhook(body, request.headers, receiver_secrets(), time.time())
        except signatures.SignatureError as exc:
            return JSONResponse({"error": f"signature check failed: {exc}; sign with the stack's "
                                          "GROWTH_STACK_WEBHOOK_SECRET (or GROWTH_STACK_SALES_WEBHOOK_SECRET)"},
                                status_code=401)
        try:
            message = orjson.loads(body)
        except orjson.JSONDecodeError:
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
