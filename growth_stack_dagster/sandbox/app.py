"""Assembles the SaaS sandbox: every emulation under its prefix, plus the `/_admin` paths
(health, faults, seeding, reset, stats) that are not part of any real API."""

from __future__ import annotations

import asyncio
import importlib
import orjson
import logging
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route

from growth_stack_dagster.sandbox.core import (
    Emulation, Faults, SandboxContext, Store, TokenBucket, WebhookSender,
)

log = logging.getLogger("growth_stack.sandbox")

EMULATIONS = ("hubspot", "stripe", "customerio", "amplitude", "facebook", "zendesk", "webhook")


def load_emulations(ctx: SandboxContext) -> dict[str, Emulation]:
    out = {}
    for name in EMULATIONS:
        module_name = f"growth_stack_dagster.sandbox.{name}"
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            log.error("sandbox emulation %s is not installed; %s/ is not served", name, name)
            continue
        out[name] = module.build(ctx)
    return out


def build_app(ctx: SandboxContext) -> Starlette:
    emulations = load_emulations(ctx)
    buckets = {
        e.prefix: TokenBucket(e.rate * ctx.rate_limit_scale, (e.burst or e.rate) * ctx.rate_limit_scale)
        for e in emulations.values() if e.rate and ctx.rate_limit_scale > 0
    }
    by_prefix = {e.prefix: e for e in emulations.values()}

    async def health(request: Request) -> Response:
        return JSONResponse({"ok": True, "emulations": sorted(by_prefix)})

    async def faults(request: Request) -> Response:
        if request.method == "GET":
            return JSONResponse(ctx.faults.list())
        if request.method == "DELETE":  # ?id=N removes that rule only
            rule_id = request.query_params.get("id")
            if rule_id is not None and not rule_id.isdigit():
                return JSONResponse({"error": f"id must be a rule's number, not {rule_id!r}"}, status_code=400)
            ctx.faults.clear(int(rule_id) if rule_id is not None else None)
            return JSONResponse({"cleared": True})
        try:
            rule = ctx.faults.add(await request.json())
        except (ValueError, TypeError) as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse({"id": rule.id}, status_code=201)

    async def seed(request: Request) -> Response:
        system, collection = request.path_params["system"], request.path_params["collection"]
        if system not in emulations:
            return JSONResponse({"error": f"unknown system {system!r}; one of {list(emulations)}"}, 404)
        raw = await request.body()
        try:
            objects: list[dict[str, Any]] = (
                orjson.loads(raw) if raw.lstrip().startswith(b"[")
                else [orjson.loads(line) for line in raw.splitlines() if line.strip()]
            )
        except orjson.JSONDecodeError as exc:
            return JSONResponse({"error": f"seed body is neither a JSON array nor NDJSON: {exc}"}, 400)
        emulation = emulations[system]
        try:
            if emulation.seed is not None:
                n = await asyncio.to_thread(emulation.seed, collection, objects)
            else:
                n = await asyncio.to_thread(_default_seed, ctx.store, system, collection, objects)
        except (ValueError, KeyError, TypeError) as exc:
            return JSONResponse({"error": f"cannot seed {system}/{collection}: {exc}"}, 400)
        return JSONResponse({"seeded": n})

    async def reset(request: Request) -> Response:
        ctx.store.reset()
        ctx.faults.clear()
        return JSONResponse({"reset": True})

    async def stats(request: Request) -> Response:
        return JSONResponse({"objects": ctx.store.stats(), "webhooks_pending": ctx.webhooks.pending(),
                             "webhooks_delivered": ctx.webhooks.delivered, "writes": ctx.store.write_totals()})

    async def writes(request: Request) -> Response:
        q = request.query_params
        if bool(q.get("system")) != bool(q.get("collection")):
            return JSONResponse({"error": "give both system and collection (e.g. ?system=zendesk&collection=users), "
                                          "or neither for every record"}, 400)
        counts = await asyncio.to_thread(ctx.store.write_counts, q.get("system"), q.get("collection"))
        return JSONResponse({"writes": counts})

    async def flush(request: Request) -> Response:
        ok = await asyncio.to_thread(ctx.webhooks.flush)
        return JSONResponse({"flushed": ok}, status_code=200 if ok else 504)

    routes = [
        Route("/_admin/health", health),
        Route("/_admin/faults", faults, methods=["GET", "POST", "DELETE"]),
        Route("/_admin/seed/{system}/{collection}", seed, methods=["POST"]),
        Route("/_admin/reset", reset, methods=["POST"]),
        Route("/_admin/stats", stats),
        Route("/_admin/writes", writes),
        Route("/_admin/webhooks/flush", flush, methods=["POST"]),
    ] + [Mount(e.prefix, routes=e.routes) for e in emulations.values()]

    app = Starlette(routes=routes)

    async def inject_faults_and_limits(request: Request, call_next):
        path = request.url.path
        emulation = next((e for p, e in by_prefix.items() if path.startswith(p + "/") or path == p), None)
        if emulation is None:
            return await call_next(request)
        # `<prefix>/_sandbox/...` helpers (read-back for tests, the simulator's email helper) are no real
        # API: the published rate limit does not apply to them
        bucket = None if path.startswith(emulation.prefix + "/_sandbox/") else buckets.get(emulation.prefix)
        if bucket is not None:
            wait = bucket.try_acquire()
            if wait > 0:
                return emulation.rate_limit_response(wait)
        rule = ctx.faults.take(path, method=request.method)
        if rule is not None:
            if rule.kind == "rate_limit":
                return emulation.rate_limit_response(rule.retry_after)
            if rule.kind == "error":
                return emulation.error_response(rule.status)
            if rule.kind == "drop":
                return DroppedConnection()
            if rule.kind == "slow":
                await request.body()  # read before the wait: the write lands even if the client gives up
                await asyncio.sleep(rule.delay)
            if rule.kind in ("apply_then_error", "apply_then_drop"):
                applied = await call_next(request)
                async for _ in applied.body_iterator:  # let the emulation finish its write
                    pass
                if rule.kind == "apply_then_drop":
                    return DroppedConnection()
                return emulation.error_response(rule.status)
        return await call_next(request)

    # Starlette 1.x has no @app.middleware decorator; register the same function explicitly.
    app.add_middleware(BaseHTTPMiddleware, dispatch=inject_faults_and_limits)
    return app


class DroppedConnection(Response):
    """A connection that breaks after the status line: the client never reads an answer.

    The headers promise a body that never comes; uvicorn then closes the socket, as a proxy or a
    crashed server would, and an HTTP client raises a connection error instead of returning a response.
    """

    def __init__(self) -> None:
        super().__init__(status_code=200)

    async def __call__(self, scope, receive, send) -> None:
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", b"64")]})
        await send({"type": "http.response.body", "body": b"{", "more_body": True})


def _default_seed(store: Store, system: str, collection: str, objects: list[dict[str, Any]]) -> int:
    """Store API-shaped objects by `id`; `created`/`updated` (epoch seconds) when present."""
    rows = []
    for obj in objects:
        created = obj.get("created") if isinstance(obj.get("created"), int) else None
        updated = obj.get("updated") if isinstance(obj.get("updated"), int) else None
        rows.append((str(obj["id"]), obj, created or 0, updated or created or 0))
    return store.put_many(system, collection, rows)


def make_context(state_dir: Path, token: str, webhook_url: str | None, rate_limit_scale: float) -> SandboxContext:
    store = Store(Path(state_dir) / "sandbox.sqlite3")
    return SandboxContext(store=store, token=token, faults=Faults(),
                          webhooks=WebhookSender(webhook_url, store), rate_limit_scale=rate_limit_scale)
