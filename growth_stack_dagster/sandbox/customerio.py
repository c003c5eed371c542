"""Customer.io emulation, mounted at `/customerio`.

- Track API (real base https://track.customer.io): v1 `PUT/DELETE /api/v1/customers/{identifier}`,
  `POST /api/v1/customers/{identifier}/events`, anonymous `POST /api/v1/events`, v2 `POST /api/v2/entity`
  and `POST /api/v2/batch`. HTTP Basic `site_id:api_key`; any non-empty site id, api key `ctx.token`.
- App API read-back (real base https://api.customer.io): `GET /v1/customers/{identifier}/attributes`
  and `GET /v1/customers/{identifier}/activities`, bearer `ctx.token`.
- Reporting webhooks: `POST /_sandbox/messages` (not a real path) makes the sandbox send the
  delivered/opened/clicked webhooks Customer.io would send for one email, signed like Customer.io:
  `X-CIO-Signature` = hex HMAC-SHA256 of `v0:<X-CIO-Timestamp>:<body>` with the signing key.

Limits are the documented ones: ids, attribute names 150 bytes, attribute values 1000 bytes,
300 attributes per call, event names 100 bytes, event data 100000 bytes, v2 `/entity` and each
`/batch` entry 32 KB, a whole `/batch` 500 KB.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import json
import os
import threading
import time
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from growth_stack_dagster import config
from growth_stack_dagster.sandbox.core import Emulation, SandboxContext, TokenBucket, bearer_token

SYSTEM = "customerio"
TRACK_RATE = 100  # the Track API's published fair-use limit: 100 requests per second (v1 and v2)
APP_API_RATE = 10  # App API: "over the 10-per-second limit" answers 429
MAX_ID_BYTES = 150
MAX_ATTRIBUTE_NAME_BYTES = 150
MAX_ATTRIBUTE_VALUE_BYTES = 1000
MAX_ATTRIBUTES = 300
MAX_EVENT_NAME_BYTES = 100
MAX_EVENT_DATA_BYTES = 100_000
MAX_ENTITY_BYTES = 32 * 1024
MAX_BATCH_BYTES = 500 * 1024
REPORTING_METRICS = ("sent", "delivered", "opened", "clicked")
_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


# --------------------------------------------------------------------------- pure helpers
class TrackError(Exception):
    """One problem with a Track request: a sentence, and the field it concerns."""

    def __init__(self, message: str, field: str = "", reason: str = "invalid"):
        super().__init__(message)
        self.message, self.field, self.reason = message, field, reason


def ulid(epoch_ms: int, entropy: bytes) -> str:
    """A ULID (26 Crockford base-32 characters: 48-bit time, 80 bits of `entropy`)."""
    value = (epoch_ms & ((1 << 48) - 1)) << 80 | int.from_bytes(entropy[:10].rjust(10, b"\0"), "big")
    return "".join(_CROCKFORD[(value >> shift) & 31] for shift in range(125, -1, -5))


def cio_id_for(identifier: str) -> str:
    """A stable Customer.io-style `cio_id` (12 hex digits) for a person identifier."""
    return hashlib.sha1(f"cio:{identifier}".encode()).hexdigest()[:12]


def delivery_id_for(customer_id: str, campaign_id: int, action_id: int, timestamp: int) -> str:
    """A deterministic `delivery_id` in Customer.io's base64 style for one message."""
    digest = hashlib.sha256(f"{customer_id}|{campaign_id}|{action_id}|{timestamp}".encode()).digest()
    return base64.urlsafe_b64encode(digest[:18]).decode()


def sign_reporting_webhook(body: bytes, timestamp: int | str, signing_key: str) -> str:
    """Customer.io's reporting-webhook signature: hex HMAC-SHA256 of `v0:<timestamp>:<body>`."""
    return hmac.new(signing_key.encode(), b"v0:" + str(timestamp).encode() + b":" + body,
                    hashlib.sha256).hexdigest()


def reporting_webhook_payload(
    metric: str, *, customer_id: str, email: str, delivery_id: str, campaign_id: int,
    action_id: int, subject: str, timestamp: int, href: str | None = None, link_id: int | None = None,
    event_id: str | None = None, journey_id: str | None = None,
) -> dict[str, Any]:
    """One Customer.io reporting-webhook body (`object_type: email`) for a campaign email.

    metric: `sent`, `delivered`, `opened` or `clicked` (clicked needs `href`). `event_id` defaults
    to a ULID derived from the delivery and metric, so the same inputs give the same payload.
    """
    if metric not in REPORTING_METRICS:
        raise ValueError(f"metric must be one of {REPORTING_METRICS}, not {metric!r}")
    if metric == "clicked" and not href:
        raise ValueError("a clicked webhook needs the href of the link that was clicked")
    entropy = hashlib.sha256(f"{delivery_id}|{metric}|{timestamp}".encode()).digest()
    data: dict[str, Any] = {
        "action_id": action_id,
        "campaign_id": campaign_id,
        "customer_id": customer_id,
        "delivery_id": delivery_id,
        "identifiers": {"id": customer_id, "email": email, "cio_id": cio_id_for(customer_id)},
        "journey_id": journey_id or ulid(timestamp * 1000, hashlib.sha256(delivery_id.encode()).digest()),
        "recipient": email,
        "subject": subject,
    }
    if metric == "opened":
        data.update({"proxied": False, "prefetched": False})
    if metric == "clicked":
        data.update({"href": href, "link_id": link_id if link_id is not None else 1, "machine": False})
    return {
        "data": data,
        "event_id": event_id or ulid(timestamp * 1000, entropy),
        "metric": metric,
        "object_type": "email",
        "timestamp": timestamp,
    }


def _size(value: Any) -> int:
    return len(value.encode() if isinstance(value, str) else json.dumps(value, separators=(",", ":")).encode())


def validate_identifier(identifier: Any, field: str = "identifier") -> str:
    if not isinstance(identifier, (str, int)) or isinstance(identifier, bool) or str(identifier).strip() == "":
        raise TrackError(f"{field} must be a non-empty string", field)
    identifier = str(identifier)
    if len(identifier.encode()) > MAX_ID_BYTES:
        raise TrackError(f"{field} is longer than {MAX_ID_BYTES} bytes", field)
    return identifier


def validate_attributes(attributes: Any) -> dict[str, Any]:
    """Check a person's attributes against the Track API limits; returns them."""
    if not isinstance(attributes, dict):
        raise TrackError("attributes must be a JSON object", "attributes")
    if len(attributes) > MAX_ATTRIBUTES:
        raise TrackError(f"too many attributes: {len(attributes)} (at most {MAX_ATTRIBUTES} per call)",
                         "attributes")
    for name, value in attributes.items():
        if len(name.encode()) > MAX_ATTRIBUTE_NAME_BYTES or name == "":
            raise TrackError(f"attribute name {name[:40]!r} must be 1 to {MAX_ATTRIBUTE_NAME_BYTES} bytes",
                             name[:150])
        if value is not None and _size(value) > MAX_ATTRIBUTE_VALUE_BYTES:
            raise TrackError(f"attribute {name!r} value is longer than {MAX_ATTRIBUTE_VALUE_BYTES} bytes", name)
    created_at = attributes.get("created_at")
    if created_at is not None:
        if isinstance(created_at, str) and created_at.isdigit():
            attributes["created_at"] = int(created_at)
        elif isinstance(created_at, bool) or not isinstance(created_at, int):
            raise TrackError("created_at must be a unix timestamp (integer seconds)", "created_at")
    return attributes


def validate_event(name: Any, data: Any, timestamp: Any,
                   event_type: Any = "event") -> tuple[str, dict, int | None, str]:
    """Check one event (name, data, timestamp, type); returns them normalised."""
    if not isinstance(name, str) or not name.strip():
        raise TrackError("event name is required", "name")
    name = name.strip()  # Customer.io trims event names
    if len(name.encode()) > MAX_EVENT_NAME_BYTES:
        raise TrackError(f"event name is longer than {MAX_EVENT_NAME_BYTES} bytes", "name")
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise TrackError("event data must be a JSON object", "data")
    if _size(data) > MAX_EVENT_DATA_BYTES:
        raise TrackError(f"event data is larger than {MAX_EVENT_DATA_BYTES} bytes", "data")
    if timestamp is not None and (isinstance(timestamp, bool) or not isinstance(timestamp, int)):
        raise TrackError("timestamp must be a unix timestamp (integer seconds)", "timestamp")
    event_type = event_type or "event"
    if event_type not in ("event", "page", "screen"):
        raise TrackError("type must be one of event, page, screen", "type")
    return name, data, timestamp, event_type


# --------------------------------------------------------------------------- state
class CustomerioState:
    """People (`customers`, flat attribute objects as the seed contract has them) and their
    `activities`, kept in the sandbox Store."""

    def __init__(self, ctx: SandboxContext):
        self.ctx = ctx
        self._lock = threading.RLock()

    # ----- people
    def find(self, identifier: str, id_type: str = "id") -> tuple[str, dict[str, Any]] | None:
        """(store key, person) for an identifier: an id, an email, or `cio_<cio_id>`."""
        store = self.ctx.store
        if id_type == "cio_id" or identifier.startswith("cio_"):
            wanted = identifier[4:] if identifier.startswith("cio_") else identifier
            rows = store.query("SELECT id, data FROM objects WHERE system=? AND collection='customers' "
                               "AND json_extract(data, '$.cio_id') = ?", (SYSTEM, wanted))
        elif id_type == "email" or (id_type == "id" and "@" in identifier
                                    and store.get(SYSTEM, "customers", identifier) is None):
            rows = store.query("SELECT id, data FROM objects WHERE system=? AND collection='customers' "
                               "AND lower(trim(json_extract(data, '$.email'))) = ?",
                               (SYSTEM, identifier.strip().lower()))
        else:
            person = store.get(SYSTEM, "customers", identifier)
            return (identifier, person) if person is not None else None
        return (rows[0][0], json.loads(rows[0][1])) if rows else None

    def identify(self, identifier: str, attributes: dict[str, Any], update_only: bool = False,
                 ts: int | None = None) -> None:
        """Add or update a person; records an `attribute_change` activity per changed attribute."""
        now = int(time.time())
        with self._lock:
            found = self.find(identifier)
            if found is None:
                if update_only or identifier.startswith("cio_"):
                    return  # Customer.io drops updates for unknown cio_ids and for _update: true
                key = attributes.get("id") if "@" in identifier and attributes.get("id") else identifier
                person: dict[str, Any] = {"id": key, "cio_id": cio_id_for(str(key))}
                if "@" in identifier:
                    person.setdefault("email", identifier)
                created = attributes.get("created_at") if isinstance(attributes.get("created_at"), int) else now
            else:
                key, person = found
                created = None
            changes = {}
            for name, value in attributes.items():
                if name in ("_update", "_timestamp", "cio_id"):
                    continue
                if value is None or value == "":  # an empty value removes the attribute
                    if name in person and name != "id":
                        changes[name] = (person.pop(name), None)
                    continue
                if name == "id":
                    continue  # the store key is the identifier; ids change only through cio_id references
                if person.get(name) != value:
                    changes[name] = (person.get(name), value)
                    person[name] = value
            self.ctx.store.put(SYSTEM, "customers", str(key), person, created=created, updated=now)
            self.ctx.store.count_writes(SYSTEM, "customers", [str(key)])
            for name, (old, new) in changes.items():
                self._activity(str(key), person, "attribute_change", name, ts or now,
                               {"attribute": name, "old_value": old, "new_value": new})

    def delete(self, identifier: str) -> None:
        with self._lock:
            found = self.find(identifier)
            if found is not None:
                self.ctx.store.delete(SYSTEM, "customers", found[0])
                self.ctx.store.count_writes(SYSTEM, "customers", [found[0]])

    def track(self, identifier: str, name: str, data: dict, timestamp: int | None, event_type: str,
              event_id: str | None = None) -> None:
        """A person's event; creates the person as Customer.io does when the id is unknown."""
        with self._lock:
            found = self.find(identifier)
            if found is None:
                self.identify(identifier, {})
                found = self.find(identifier)
                if found is None:
                    return  # an unknown cio_id: Customer.io drops the event
            key, person = found
            self._activity(key, person, event_type, name, timestamp or int(time.time()), data, event_id)

    def track_anonymous(self, anonymous_id: str | None, name: str, data: dict, timestamp: int | None,
                        event_type: str, event_id: str | None = None) -> None:
        activity_type = {"event": "anonymous_event", "page": "anonymous_page", "screen": "anonymous_screen"}
        ts = timestamp or int(time.time())
        aid = event_id or ulid(int(time.time() * 1000), os.urandom(10))
        self.ctx.store.put(SYSTEM, "activities", aid, {
            "id": aid, "customer_id": None, "customer_identifiers": None, "anonymous_id": anonymous_id,
            "type": activity_type[event_type], "name": name, "timestamp": ts, "data": data,
            "delivery_id": None, "delivery_type": None,
        }, created=ts, updated=ts)

    def _activity(self, key: str, person: dict[str, Any], activity_type: str, name: str, ts: int,
                  data: dict[str, Any], activity_id: str | None = None, delivery_id: str | None = None) -> None:
        aid = activity_id or ulid(int(time.time() * 1000), os.urandom(10))
        self.ctx.store.put(SYSTEM, "activities", aid, {
            "id": aid, "customer_id": key,
            "customer_identifiers": {"id": key, "email": person.get("email"), "cio_id": person.get("cio_id")},
            "type": activity_type, "name": name, "timestamp": ts, "data": data,
            "delivery_id": delivery_id, "delivery_type": "email" if delivery_id else None,
        }, created=ts, updated=ts)

    # ----- v2
    def apply_entity(self, op: Any, reject: Any = None) -> None:
        """Apply one v2 entity operation (a person identify/delete/event/page/screen). `reject(identifier)`
        is the fault injection's per-record rejection (True: refuse this operation)."""
        if not isinstance(op, dict):
            raise TrackError("each operation must be a JSON object", "")
        if op.get("type") != "person":
            raise TrackError(f"type {op.get('type')!r} is not supported by the sandbox; it emulates "
                             "person operations (identify, delete, event, page, screen)", "type")
        identifiers = op.get("identifiers")
        if not isinstance(identifiers, dict) or len(identifiers) != 1:
            raise TrackError("identifiers must hold exactly one of id, email or cio_id", "identifiers")
        (kind, value), = identifiers.items()
        if kind not in ("id", "email", "cio_id"):
            raise TrackError(f"unknown identifier {kind!r}; use id, email or cio_id", "identifiers")
        value = validate_identifier(value, f"identifiers.{kind}")
        identifier = f"cio_{value}" if kind == "cio_id" else value
        if reject is not None and reject(value):
            raise TrackError(f"identifiers.{kind} {value!r} was rejected by the sandbox's fault injection",
                             f"identifiers.{kind}")
        action = op.get("action")
        if action == "identify":
            attributes = validate_attributes(dict(op.get("attributes") or {}))
            if kind == "email":
                attributes.setdefault("email", value)
            update_only = bool(attributes.pop("_update", False))
            self.identify(identifier, attributes, update_only=update_only, ts=op.get("timestamp"))
        elif action == "delete":
            self.delete(identifier)
        elif action in ("event", "page", "screen"):
            name, data, ts, etype = validate_event(op.get("name"), op.get("attributes"), op.get("timestamp"),
                                                   action)
            self.track(identifier, name, data, ts, etype, op.get("id"))
        else:
            raise TrackError(f"action {action!r} is not supported by the sandbox; use identify, delete, "
                             "event, page or screen", "action")

    # ----- App API
    def attributes_view(self, identifier: str, id_type: str) -> dict[str, Any] | None:
        found = self.find(identifier, id_type)
        if found is None:
            return None
        key, person = found
        row = self.ctx.store.query("SELECT created, updated FROM objects WHERE system=? AND "
                                   "collection='customers' AND id=?", (SYSTEM, key))
        created, updated = row[0] if row else (0, 0)
        # The App API returns attribute values as strings.
        attrs = {k: v if isinstance(v, str) else json.dumps(v) if isinstance(v, (dict, list, bool)) else str(v)
                 for k, v in person.items() if v is not None}
        return {"customer": {
            "id": key,
            "identifiers": {"id": key, "email": person.get("email"), "cio_id": person.get("cio_id")},
            "attributes": attrs,
            "timestamps": {k: (created if k in ("id", "cio_id", "created_at") else updated) for k in attrs},
            "unsubscribed": bool(person.get("unsubscribed") in (True, "true", 1, "1")),
            "devices": [],
        }}

    def activities_view(self, identifier: str, id_type: str, activity_type: str | None, name: str | None,
                        limit: int, start: str | None) -> dict[str, Any] | None:
        found = self.find(identifier, id_type)
        if found is None:
            return None
        where = ["system=?", "collection='activities'", "json_extract(data, '$.customer_id') = ?"]
        params: list[Any] = [SYSTEM, found[0]]
        if activity_type:
            where.append("json_extract(data, '$.type') = ?")
            params.append(activity_type)
        if name:
            where.append("json_extract(data, '$.name') = ?")
            params.append(name)
        if start:
            where.append("seq < ?")
            params.append(int(start))
        rows = self.ctx.store.query(f"SELECT seq, data FROM objects WHERE {' AND '.join(where)} "
                                    "ORDER BY seq DESC LIMIT ?", (*params, limit + 1))
        page = rows[:limit]
        return {"activities": [json.loads(d) for _, d in page],
                "next": str(page[-1][0]) if len(rows) > limit else ""}

    # ----- reporting webhooks
    def send_messages(self, spec: Any) -> list[dict[str, Any]]:
        """Build, record and send the reporting webhooks of one email (see module doc)."""
        if not isinstance(spec, dict):
            raise TrackError("body must be a JSON object", "")
        customer_id = validate_identifier(spec.get("customer_id"), "customer_id")
        email = spec.get("email")
        if not isinstance(email, str) or "@" not in email:
            raise TrackError("email must be the recipient's email address", "email")
        events = spec.get("events") or ["delivered"]
        if not isinstance(events, list) or any(e not in REPORTING_METRICS for e in events):
            raise TrackError(f"events must be a list drawn from {list(REPORTING_METRICS)}", "events")
        campaign_id = spec.get("campaign_id", 1)
        action_id = spec.get("action_id", 1)
        for field, value in (("campaign_id", campaign_id), ("action_id", action_id)):
            if isinstance(value, bool) or not isinstance(value, int):
                raise TrackError(f"{field} must be an integer", field)
        timestamp = spec.get("timestamp", int(time.time()))
        if isinstance(timestamp, bool) or not isinstance(timestamp, int):
            raise TrackError("timestamp must be a unix timestamp (integer seconds)", "timestamp")
        subject = str(spec.get("subject") or "")
        href = spec.get("href") or "https://example.com/"
        delivery_id = delivery_id_for(customer_id, campaign_id, action_id, timestamp)
        signing_key = config.customerio_webhook_signing_key().split(",")[0].strip()
        payloads = []
        for step, metric in enumerate(events):
            ts = timestamp + 60 * step  # each later metric happens a minute after the previous one
            payload = reporting_webhook_payload(
                metric, customer_id=customer_id, email=email, delivery_id=delivery_id,
                campaign_id=campaign_id, action_id=action_id, subject=subject, timestamp=ts,
                href=href if metric == "clicked" else None)
            payloads.append(payload)
            found = self.find(customer_id)
            if found is not None:
                self._activity(found[0], found[1], f"{metric}_email", subject, ts,
                               {k: v for k, v in payload["data"].items() if k in ("campaign_id", "href", "subject")},
                               payload["event_id"], delivery_id)
            body = json.dumps(payload, separators=(",", ":")).encode()
            sent_at = str(int(time.time()))
            self.ctx.webhooks.send(SYSTEM, body, {
                "Content-Type": "application/json",
                "X-CIO-Timestamp": sent_at,
                "X-CIO-Signature": sign_reporting_webhook(body, sent_at, signing_key),
            })
        return payloads

    # ----- seeding
    def seed(self, collection: str, objects: list[dict[str, Any]]) -> int:
        """Store seeded people (`{"id", "email", ...attributes, "created_at": epoch}`); no activities."""
        if collection != "customers":
            raise ValueError(f"customerio seeds only 'customers', not {collection!r}")
        rows = []
        for obj in objects:
            if "id" not in obj:
                raise ValueError(f"a seeded Customer.io customer needs an 'id': {str(obj)[:100]}")
            person = dict(obj)
            person["id"] = str(person["id"])
            person.setdefault("cio_id", cio_id_for(person["id"]))
            created = int(person.get("created_at") or 0)
            updated = int(person.get("updated_at") or created)
            rows.append((person["id"], person, created, updated))
        return self.ctx.store.put_many(SYSTEM, "customers", rows)


# --------------------------------------------------------------------------- HTTP
def _meta_error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"meta": {"error": message}}, status_code=status, headers=headers)


def _meta_errors(messages: list[str]) -> JSONResponse:
    return JSONResponse({"meta": {"errors": messages}}, status_code=400)


def rate_limit_response(retry_after: float) -> Response:
    return _meta_error(429, "Too many requests. Slow down and retry.",
                       {"Retry-After": str(max(1, round(retry_after)))})


def error_response(status: int) -> Response:
    return _meta_error(status, "Internal Server Error" if status == 500 else "Service Unavailable")


def _track_authorized(request: Request, token: str) -> bool:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        site_id, sep, api_key = base64.b64decode(value.strip()).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return False
    return bool(sep and site_id and hmac.compare_digest(api_key, token))


async def _read_body(request: Request, limit: int | None = None, allow_form: bool = False) -> tuple[Any, bytes]:
    """The request's JSON (or, for the v1 API, form-encoded) body; TrackError when it is neither."""
    raw = await request.body()
    if limit is not None and len(raw) > limit:
        raise TrackError(f"request body is {len(raw)} bytes; the limit is {limit // 1024}kb",
                         "", reason="request_too_large")
    if not raw.strip():
        return {}, raw
    if allow_form and request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        form: dict[str, Any] = {}
        for key, value in parse_qsl(raw.decode("utf-8", "replace")):
            outer, bracket, inner = key.partition("[")
            if bracket and inner.endswith("]"):  # the v1 form style `data[price]=23`
                form.setdefault(outer, {})[inner[:-1]] = value
            else:
                form[key] = value
        return form, raw
    try:
        return json.loads(raw), raw
    except ValueError:
        raise TrackError("request body is not valid JSON", "", reason="invalid_json")


def build(ctx: SandboxContext) -> Emulation:
    """The Customer.io emulation for the sandbox app."""
    state = CustomerioState(ctx)
    app_scale = ctx.rate_limit_scale
    app_bucket = TokenBucket(APP_API_RATE * app_scale, APP_API_RATE * app_scale) if app_scale > 0 else None

    def track_endpoint(handler):
        async def endpoint(request: Request) -> Response:
            if not _track_authorized(request, ctx.token):
                return _meta_error(401, "Unauthorized request")
            try:
                return await handler(request)
            except TrackError as exc:
                return _meta_errors([exc.message])
        return endpoint

    def app_endpoint(handler):
        async def endpoint(request: Request) -> Response:
            if bearer_token(request) != ctx.token:
                return _meta_error(401, "Unauthorized request")
            if app_bucket is not None and (wait := app_bucket.try_acquire()) > 0:
                return rate_limit_response(wait)
            return await handler(request)
        return endpoint

    async def put_customer(request: Request) -> Response:
        identifier = validate_identifier(request.path_params["identifier"])
        body, _ = await _read_body(request, allow_form=True)
        if not isinstance(body, dict):
            raise TrackError("request body must be a JSON object of attributes", "")
        attributes = validate_attributes(dict(body))
        update_only = attributes.pop("_update", False) in (True, "true")
        ts = attributes.pop("_timestamp", None)
        if ts is not None and (isinstance(ts, bool) or not isinstance(ts, int)):
            raise TrackError("_timestamp must be a unix timestamp (integer seconds)", "_timestamp")
        await asyncio.to_thread(state.identify, identifier, attributes, update_only, ts)
        return JSONResponse({})

    async def delete_customer(request: Request) -> Response:
        identifier = validate_identifier(request.path_params["identifier"])
        await asyncio.to_thread(state.delete, identifier)
        return JSONResponse({})

    async def customer_event(request: Request) -> Response:
        identifier = validate_identifier(request.path_params["identifier"])
        body, _ = await _read_body(request, allow_form=True)
        if not isinstance(body, dict):
            raise TrackError("request body must be a JSON object", "")
        name, data, ts, etype = validate_event(body.get("name"), body.get("data"), body.get("timestamp"),
                                               body.get("type"))
        await asyncio.to_thread(state.track, identifier, name, data, ts, etype, body.get("id"))
        return JSONResponse({})

    async def anonymous_event(request: Request) -> Response:
        body, _ = await _read_body(request, allow_form=True)
        if not isinstance(body, dict):
            raise TrackError("request body must be a JSON object", "")
        name, data, ts, etype = validate_event(body.get("name"), body.get("data"), body.get("timestamp"),
                                               body.get("type"))
        anonymous_id = body.get("anonymous_id")
        if anonymous_id is not None and not isinstance(anonymous_id, str):
            raise TrackError("anonymous_id must be a string", "anonymous_id")
        await asyncio.to_thread(state.track_anonymous, anonymous_id, name, data, ts, etype, body.get("id"))
        return JSONResponse({})

    def v2_error(exc: TrackError, index: int | None = None) -> dict[str, Any]:
        err = {"reason": exc.reason, "field": exc.field, "message": exc.message}
        if index is not None:
            err = {"batch_index": index, **err}
        return err

    async def entity(request: Request) -> Response:
        if not _track_authorized(request, ctx.token):
            return _meta_error(401, "Unauthorized request")
        try:
            body, _ = await _read_body(request, MAX_ENTITY_BYTES)
            await asyncio.to_thread(state.apply_entity, body)
        except TrackError as exc:
            return JSONResponse({"errors": [v2_error(exc)]}, status_code=400)
        return JSONResponse({})

    async def batch(request: Request) -> Response:
        if not _track_authorized(request, ctx.token):
            return _meta_error(401, "Unauthorized request")
        try:
            body, _ = await _read_body(request, MAX_BATCH_BYTES)
            ops = body.get("batch") if isinstance(body, dict) else None
            if not isinstance(ops, list):
                raise TrackError("body must be an object with a 'batch' array", "batch")
        except TrackError as exc:
            return JSONResponse({"errors": [v2_error(exc)]}, status_code=400)

        def reject(identifier: str) -> bool:
            return ctx.faults.rejects(request.url.path, identifier, request.method)

        def apply_all() -> list[dict[str, Any]]:
            errors = []
            for i, op in enumerate(ops):
                try:
                    if _size(op) > MAX_ENTITY_BYTES:
                        raise TrackError(f"operation is {_size(op)} bytes; each batch entry must be 32kb or "
                                         "smaller", "", reason="request_too_large")
                    state.apply_entity(op, reject)
                except TrackError as exc:
                    errors.append(v2_error(exc, index=i))
            return errors

        errors = await asyncio.to_thread(apply_all)
        return JSONResponse({"errors": errors}, status_code=207) if errors else JSONResponse({})

    async def customer_attributes(request: Request) -> Response:
        id_type = request.query_params.get("id_type", "id")
        view = await asyncio.to_thread(state.attributes_view, request.path_params["identifier"], id_type)
        if view is None:
            return _meta_error(404, "Customer not found")
        return JSONResponse(view)

    async def customer_activities(request: Request) -> Response:
        q = request.query_params
        try:
            limit = int(q.get("limit", "10"))
            if not 1 <= limit <= 100:
                raise ValueError
        except ValueError:
            return _meta_error(400, "limit must be an integer from 1 to 100")
        start = q.get("start")
        if start is not None and not start.isdigit():
            return _meta_error(400, "start must be the 'next' cursor of a previous page")
        view = await asyncio.to_thread(state.activities_view, request.path_params["identifier"],
                                       q.get("id_type", "id"), q.get("type"), q.get("name"), limit, start)
        if view is None:
            return _meta_error(404, "Customer not found")
        return JSONResponse(view)

    async def sandbox_messages(request: Request) -> Response:
        try:
            body, _ = await _read_body(request)
            payloads = await asyncio.to_thread(state.send_messages, body)
        except TrackError as exc:
            return JSONResponse({"error": exc.message, "field": exc.field}, status_code=400)
        return JSONResponse({"delivery_id": payloads[0]["data"]["delivery_id"] if payloads else None,
                             "webhooks": payloads}, status_code=202)

    routes = [
        Route("/api/v1/customers/{identifier}", track_endpoint(put_customer), methods=["PUT"]),
        Route("/api/v1/customers/{identifier}", track_endpoint(delete_customer), methods=["DELETE"]),
        Route("/api/v1/customers/{identifier}/events", track_endpoint(customer_event), methods=["POST"]),
        Route("/api/v1/events", track_endpoint(anonymous_event), methods=["POST"]),
        Route("/api/v2/entity", entity, methods=["POST"]),
        Route("/api/v2/batch", batch, methods=["POST"]),
        Route("/v1/customers/{identifier}/attributes", app_endpoint(customer_attributes), methods=["GET"]),
        Route("/v1/customers/{identifier}/activities", app_endpoint(customer_activities), methods=["GET"]),
        Route("/_sandbox/messages", sandbox_messages, methods=["POST"]),
    ]
    return Emulation(prefix="/customerio", routes=routes, rate_limit_response=rate_limit_response,
                     error_response=error_response, rate=TRACK_RATE, burst=TRACK_RATE, seed=state.seed)
