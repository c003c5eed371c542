"""The collector's HTTP app: Segment/RudderStack tracking API, signed webhooks, health.

Paths: `/v1/{track,identify,page,screen,group,alias,batch}` (server SDKs), `/v1/{t,i,p,s,g,a,b}`
(analytics.js), `/beacon/v1/batch?writeKey=` (RudderStack JS beacon), `/v1/webhook/<source>`,
`GET /health`, and the settings the browser SDKs load first (`GET /v1/projects/<writeKey>/settings`,
`GET /sourceConfig/`, see sdk_settings.py). The write key comes from HTTP Basic, the `writeKey` query parameter, or the body.

Status codes follow the SDKs' retry contract (segment/analytics/consumer.py,
rudderstack/analytics/consumer.py): 200 only once every line of the request is fsynced; 4xx
(400, 401, 413, 415) for what a retry cannot fix; 503 with `Retry-After` when the collector
cannot accept now (disk full, write error, overload, shutting down), which both SDKs retry.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import time
import uuid
from collections.abc import Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs

import orjson
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from growth_stack_dagster import config
from growth_stack_dagster.collector import sdk_settings, signatures
from growth_stack_dagster.collector.validate import (
    MAX_REQUEST_BYTES, MESSAGE_TYPES, Rejected, build_lines, check_content_type, decode_body,
    iso_utc, parse_json, too_large, write_key_from_basic,
)
from growth_stack_dagster.collector.writer import EventWriter, Unavailable
from growth_stack_dagster.eventfiles import check_source_name

log = logging.getLogger("growth_stack.collector")

MAX_WEBHOOK_BYTES = 1024 * 1024
_OK = b'{"success":true}'
_JSON = "application/json"
# analytics.js (analytics-next) posts to one-letter paths under its apiHost (`<host>/v1`).
_SHORT_PATHS = {"t": "track", "i": "identify", "p": "page", "s": "screen", "g": "group", "a": "alias", "b": "batch"}


@dataclass(frozen=True)
class CollectorSettings:
    """Everything the app reads from the environment, read once at startup."""

    events_dir: Path
    write_keys: dict[str, str]  # write key -> source
    stripe_secrets: list[str]
    customerio_keys: list[str]
    standard_secrets: list[str]
    tolerance: int = signatures.DEFAULT_TOLERANCE_SECONDS
    max_file_bytes: int = 64 << 20
    max_file_age: float = 5.0
    min_free_bytes: int = 100 << 20
    hubspot_secrets: tuple[str, ...] = ()
    hubspot_webhook_url: str | None = None  # the public URL HubSpot posts to, when behind a proxy

    @classmethod
    def from_env(cls) -> CollectorSettings:
        """Read config (write keys, webhook secrets, paths) and collector tuning variables."""
        standard = signatures.split_secrets(config.standard_webhook_secret())
        for secret in standard:
            signatures.standard_webhook_key(secret)  # fail at startup, not on the first webhook
        write_keys = config.write_keys()
        for source in write_keys.values():  # a source names a folder: refuse a bad one at startup
            try:
                check_source_name(source)
            except ValueError as exc:
                raise ValueError(f"GROWTH_STACK_WRITE_KEYS: {exc} Rename that source.") from None
        return cls(
            events_dir=config.events_dir(),
            write_keys=write_keys,
            stripe_secrets=signatures.split_secrets(config.stripe_webhook_secret()),
            customerio_keys=signatures.split_secrets(config.customerio_webhook_signing_key()),
            standard_secrets=standard,
            max_file_bytes=int(float(os.environ.get("GROWTH_STACK_COLLECTOR_FILE_MB", "64")) * (1 << 20)),
            max_file_age=float(os.environ.get("GROWTH_STACK_COLLECTOR_FILE_SECONDS", "5")),
            min_free_bytes=int(float(os.environ.get("GROWTH_STACK_COLLECTOR_MIN_FREE_MB", "100")) * (1 << 20)),
            hubspot_secrets=tuple(signatures.split_secrets(config.hubspot_client_secret())),
            hubspot_webhook_url=os.environ.get("GROWTH_STACK_HUBSPOT_WEBHOOK_URL") or None,
        )


def _error(exc: Rejected) -> Response:
    return Response(exc.body(), status_code=exc.status, media_type=_JSON)


def _unavailable_body(exc: Unavailable) -> bytes:
    return orjson.dumps({"success": False, "code": "unavailable", "message": exc.reason + "; retry later."})


def _unavailable(exc: Unavailable) -> Response:
    return Response(_unavailable_body(exc), status_code=503, media_type=_JSON,
                    headers={"Retry-After": str(exc.retry_after)})


async def _read_body(request: Request, limit: int) -> bytes:
    """The raw body, refusing (413) as soon as it exceeds `limit` bytes."""
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > limit:
        raise too_large(int(length), limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large(size, limit)
        chunks.append(chunk)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def build_app(settings: CollectorSettings) -> Callable:
    """The ASGI app; its lifespan starts the event writer and closes every open file at shutdown.

    Tracking calls take a lean ASGI path; everything else goes through Starlette.
    """
    writer = EventWriter(settings.events_dir, max_bytes=settings.max_file_bytes,
                         max_age=settings.max_file_age, min_free_bytes=settings.min_free_bytes)
    write_keys = settings.write_keys
    event_sources = set(write_keys.values())

    # Basic-auth header value -> source, so the hot path decodes each distinct header once.
    auth_cache: dict[bytes, str] = {}

    def source_from_header(auth: bytes) -> str:
        source = auth_cache.get(auth)
        if source is None:
            key = write_key_from_basic(auth.decode("latin-1"))
            source = write_keys.get(key) if key else None
            if source is None:
                raise Rejected(401, "unauthorized", "the write key in the Authorization header is not valid.")
            if len(auth_cache) < 1024:
                auth_cache[auth] = source
        return source

    async def tracking(kind: str, scope: dict, receive: Callable, send: Callable) -> None:
        """POST /v1/<kind>: a lean ASGI handler (the hot path; no per-request framework objects)."""
        content_type = content_encoding = auth = origin = None
        length = -1
        for name, value in scope["headers"]:
            if name == b"content-type":
                content_type = value
            elif name == b"content-length":
                length = int(value) if value.isdigit() else -1
            elif name == b"authorization":
                auth = value
            elif name == b"content-encoding":
                content_encoding = value
            elif name == b"origin":
                origin = value
        status, body, extra = 200, _OK, ()
        try:
            check_content_type(content_type.decode("latin-1") if content_type is not None else None)
            source = source_from_header(auth) if auth else None
            if source is None and scope["query_string"]:  # the RudderStack JS beacon puts it in the URL
                key = parse_qs(scope["query_string"].decode("latin-1")).get("writeKey", [None])[0]
                if key is not None:
                    source = write_keys.get(key)
                    if source is None:
                        raise Rejected(401, "unauthorized", "the writeKey in the URL is not valid.")
            if length > MAX_REQUEST_BYTES:
                raise too_large(length)
            message = await receive()
            raw = message.get("body", b"")
            if message.get("more_body"):
                chunks, size = [raw], len(raw)
                while message.get("more_body"):
                    message = await receive()
                    chunk = message.get("body", b"")
                    size += len(chunk)
                    if size > MAX_REQUEST_BYTES:
                        raise too_large(size)
                    chunks.append(chunk)
                raw = b"".join(chunks)
            if message["type"] == "http.disconnect":
                return
            if len(raw) > MAX_REQUEST_BYTES:
                raise too_large(len(raw))
            payload = parse_json(decode_body(
                raw, content_encoding.decode("latin-1") if content_encoding is not None else None))
            if source is None:
                key = payload.get("writeKey") if type(payload) is dict else None
                if not key:
                    raise Rejected(401, "unauthorized",
                                   "no write key: send it as the HTTP Basic user name or as writeKey.")
                source = write_keys.get(key) if type(key) is str else None
                if source is None:
                    raise Rejected(401, "unauthorized", "the writeKey is not valid.")
            received = _now()
            lines = build_lines(kind, payload, received)
            await writer.append(source, received.date().isoformat(), b"".join(lines))
        except Rejected as exc:
            status, body = exc.status, exc.body()
        except Unavailable as exc:
            status, body = 503, _unavailable_body(exc)
            extra = ((b"retry-after", str(exc.retry_after).encode()),)
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *extra]
        if origin is not None:  # CORS for browsers: any origin, no credentials (write keys are not cookies)
            headers.append((b"access-control-allow-origin", b"*"))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    def verify_webhook(source: str, body: bytes, request: Request) -> str | None:
        """Check the source's signature; return the sender's message id if it names one."""
        headers = request.headers
        now = time.time()
        if source == "stripe":
            signatures.verify_stripe(body, headers.get("stripe-signature"), settings.stripe_secrets,
                                     now, settings.tolerance)
            return None
        if source == "customerio":
            signatures.verify_customerio(body, headers.get("x-cio-timestamp"), headers.get("x-cio-signature"),
                                         settings.customerio_keys, now, settings.tolerance)
            return None
        if source == "hubspot":
            uri = settings.hubspot_webhook_url or str(request.url)
            if settings.hubspot_webhook_url and request.url.query:
                uri += "?" + request.url.query
            signatures.verify_hubspot_v3(body, request.method, uri, headers.get("x-hubspot-signature-v3"),
                                         headers.get("x-hubspot-request-timestamp"), settings.hubspot_secrets,
                                         now, settings.tolerance)
            return None
        signatures.verify_standard_webhook(body, headers, settings.standard_secrets, now, settings.tolerance)
        return headers.get("webhook-id")

    async def webhook(request: Request) -> Response:
        source = request.path_params["source"]
        try:
            try:
                check_source_name(source)
            except ValueError as exc:
                raise Rejected(404, "unknown_source", str(exc)) from None
            if source in event_sources:
                raise Rejected(404, "unknown_source",
                               f"{source!r} is an event source (a write key's); webhooks need another name.")
            body = await _read_body(request, MAX_WEBHOOK_BYTES)
            try:
                message_id = verify_webhook(source, body, request)
            except signatures.SignatureError as exc:
                raise Rejected(401, "invalid_signature", f"webhook signature rejected: {exc}.") from None
            try:
                text = body.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise Rejected(400, "invalid_encoding", f"the body is not valid UTF-8 (byte {exc.start}).") from None
            received = _now()
            line = orjson.dumps({
                "type": "webhook",
                "messageId": message_id or _provider_event_id(body) or str(uuid.uuid4()),
                "receivedAt": iso_utc(received),
                "body": text,
            })
            await writer.append(source, received.date().isoformat(), line + b"\n")
        except Rejected as exc:
            return _error(exc)
        except Unavailable as exc:
            return _unavailable(exc)
        return Response(_OK, media_type=_JSON)

    async def health(request: Request) -> Response:
        return Response(orjson.dumps({"ok": True, "pid": os.getpid()}), media_type=_JSON)

    async def segment_settings(request: Request) -> Response:
        """GET /v1/projects/<writeKey>/settings: analytics.js's CDN settings, sending to this collector."""
        key = request.path_params["write_key"]
        if key not in write_keys:
            return _error(Rejected(404, "unknown_write_key", "no source has this write key."))
        body = sdk_settings.segment_settings(key, f"{request.url.netloc}/v1", request.url.scheme)
        return Response(orjson.dumps(body), media_type=_JSON)

    async def rudderstack_source_config(request: Request) -> Response:
        """GET /sourceConfig/?writeKey=: RudderStack's JavaScript SDK configuration, no destinations."""
        auth = request.headers.get("authorization")
        key = write_key_from_basic(auth) if auth else request.query_params.get("writeKey")
        if key not in write_keys:
            return _error(Rejected(401, "unauthorized", "send a valid write key as writeKey or HTTP Basic user."))
        return Response(orjson.dumps(sdk_settings.rudderstack_source_config(key, write_keys[key])), media_type=_JSON)

    async def wrong_method(request: Request) -> Response:
        return _error(Rejected(405, "method_not_allowed", f"{request.url.path} accepts POST only."))

    routes = [Route("/health", health, methods=["GET"]),
              Route("/v1/webhook/{source}", webhook, methods=["POST"])]
    # What the browser SDKs load before sending (their CDN / config backend), so they need nothing else.
    routes += [Route("/v1/projects/{write_key}/settings", segment_settings, methods=["GET"]),
               Route("/sourceConfig", rudderstack_source_config, methods=["GET"]),
               Route("/sourceConfig/", rudderstack_source_config, methods=["GET"])]
    tracking_paths = {f"/v1/{kind}": kind for kind in (*MESSAGE_TYPES, "batch")}
    tracking_paths.update({f"/v1/{short}": kind for short, kind in _SHORT_PATHS.items()})
    tracking_paths["/beacon/v1/batch"] = "batch"  # RudderStack JS SDK's sendBeacon delivery
    routes += [Route(path, wrong_method, methods=["GET", "PUT", "PATCH", "DELETE"]) for path in tracking_paths]

    @asynccontextmanager
    async def lifespan(app: Starlette):
        await writer.start()
        try:
            yield
        finally:
            await writer.close()

    middleware = [Middleware(CORSMiddleware, allow_origins=["*"], allow_credentials=False,
                             allow_methods=["GET", "POST", "OPTIONS"], allow_headers=["*"], max_age=86400)]
    framework = Starlette(routes=routes, middleware=middleware, lifespan=lifespan)

    async def app(scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            kind = tracking_paths.get(scope["path"])
            if kind is not None:
                await tracking(kind, scope, receive, send)
                return
        await framework(scope, receive, send)  # health, webhooks, CORS preflight, lifespan, 404s

    return app


def _provider_event_id(body: bytes) -> str | None:
    """Stripe's `id` (evt_...) or Customer.io's `event_id`, so a redelivery keeps its messageId."""
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if isinstance(parsed, dict):
        for key in ("id", "event_id"):
            value = parsed.get(key)
            if isinstance(value, str) and value:
                return value
    return None
