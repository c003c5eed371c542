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

EMULATIONS = ("hubspot", "stripe", "customerio", "amplitude", "facebook", "zendesk", "webhook_inbox")


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
        if request.method == "DELETE":
            ctx.faults.clear()
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
                             "webhooks_delivered": ctx.webhooks.delivered})

    async def flush(request: Request) -> Response:
        ok = await asyncio.to_thread(ctx.webhooks.flush)
        return JSONResponse({"flushed": ok}, status_code=200 if ok else 504)

    routes = [
        Route("/_admin/health", health),
        Route("/_admin/faults", faults, methods=["GET", "POST", "DELETE"]),
        Route("/_admin/seed/{system}/{collection}", seed, methods=["POST"]),
        Route("/_admin/reset", reset, methods=["POST"]),
        Route("/_admin/stats", stats),
        Route("/_admin/webhooks/flush", flush, methods=["POST"]),
    ] + [Mount(e.prefix, routes=e.routes) for e in emulations.values()]

    app = Starlette(routes=routes)

    async def inject_faults_and_limits(request: Request, call_next):
        path = request.url.path
        emulation = next((e for p, e in by_prefix.items() if path.startswith(p + "/") or path == p), None)
        if emulation is None:
            return await call_next(request)
        bucket = buckets.get(emulation.prefix)
        if bucket is not None:
            wait = bucket.try_acquire()
            if wait > 0:
                return emulation.rate_limit_response(wait)
        rule = ctx.faults.take(path)
        if rule is not None:
            if rule.kind == "rate_limit":
                return emulation.rate_limit_response(rule.retry_after)
            if rule.kind == "error":
                return emulation.error_response(rule.status)
            if rule.kind == "slow":
                await asyncio.sleep(rule.delay)
        return await call_next(request)

    # Starlette 1.x has no @app.middleware decorator; register the same function explicitly.
    app.add_middleware(BaseHTTPMiddleware, dispatch=inject_faults_and_limits)
    return app


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
