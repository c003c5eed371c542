"""A webhook inbox, mounted at `/webhook-inbox`: stands in for a team's own webhook receiver
(e.g. the sales team's), so routes that post signed webhooks can be tried and tested.

`POST /webhook-inbox/{name}` verifies the Standard Webhooks signature (`webhook-id`,
`webhook-timestamp`, `webhook-signature`, five minutes of tolerance) with the secret of
`GROWTH_STACK_SALES_WEBHOOK_SECRET` (default the sandbox's) and stores the delivery by its
`webhook-id`, as receivers are told to: a redelivery of the same id is acknowledged and counted in
`attempts`, not stored twice. 401 for a bad signature. `GET /webhook-inbox/{name}` lists deliveries.
"""

from __future__ import annotations

import asyncio
import os
import time

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from growth_stack_dagster import config
from growth_stack_dagster.collector import signatures
from growth_stack_dagster.sandbox.core import Emulation, SandboxContext

SYSTEM = "webhook_inbox"


def inbox_secrets() -> list[str]:
    """The secrets the inbox accepts (comma-separated during a rotation)."""
    return signatures.split_secrets(os.environ.get("GROWTH_STACK_SALES_WEBHOOK_SECRET", config.DEFAULT_SALES_WEBHOOK_SECRET))


def build(ctx: SandboxContext) -> Emulation:
    """The inbox emulation for the sandbox app."""
    store = ctx.store

    async def receive(request: Request) -> Response:
        name = request.path_params["name"]
        body = await request.body()
        try:
            signatures.verify_standard_webhook(body, request.headers, inbox_secrets(), time.time())
        except signatures.SignatureError as exc:
            return JSONResponse({"error": f"signature rejected: {exc}"}, status_code=401)
        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError:
            return JSONResponse({"error": "the body is not JSON"}, status_code=400)
        msg_id = request.headers["webhook-id"]

        def save() -> dict:
            key = f"{name}:{msg_id}"
            existing = store.get(SYSTEM, "deliveries", key)
            if existing is not None:
                existing["attempts"] += 1
                store.put(SYSTEM, "deliveries", key, existing)
                return existing
            record = {"inbox": name, "webhook_id": msg_id, "received_at": time.time(), "attempts": 1,
                      "payload": payload}
            store.put(SYSTEM, "deliveries", key, record)
            return record

        record = await asyncio.to_thread(save)
        return JSONResponse({"received": True, "attempts": record["attempts"]})

    async def listing(request: Request) -> Response:
        name = request.path_params["name"]
        rows = await asyncio.to_thread(
            lambda: [d for d in store.scan(SYSTEM, "deliveries") if d.get("inbox") == name])
        return JSONResponse({"deliveries": rows})

    def error_response(status: int) -> Response:
        return JSONResponse({"error": "injected failure"}, status_code=status)

    def rate_limit_response(retry_after: float) -> Response:
        return JSONResponse({"error": "too many requests"}, status_code=429,
                            headers={"Retry-After": str(max(1, round(retry_after)))})

    routes = [Route("/{name}", receive, methods=["POST"]), Route("/{name}", listing, methods=["GET"])]
    return Emulation(prefix="/webhook-inbox", routes=routes, rate_limit_response=rate_limit_response,
                     error_response=error_response)
