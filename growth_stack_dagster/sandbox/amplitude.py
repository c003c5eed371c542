"""Amplitude emulation: HTTP V2 and Batch event upload, the Identify API, the User Profile API
and the Export API, mounted at `/amplitude`.

Real hosts: api2.amplitude.com (`/2/httpapi`, `/batch`, `/identify`), profile-api.amplitude.com
(`/v1/userprofile`), amplitude.com (`/api/2/export`). Bodies, limits and status codes follow
Amplitude's developer docs and what the official `amplitude-analytics` SDK parses: every JSON
answer of the ingestion endpoints carries `code`, the SDK treats a 400 whose `error` starts with
"Invalid API key:" as a bad key, and retries the events a 400/429 does not name.

The sandbox uses one credential, `ctx.token`, as both the project API key and the secret key.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import copy
import datetime as dt
import email.parser
import email.policy
import gzip
import io
import json
import threading
import time
import uuid
import zipfile
from collections import defaultdict, deque
from typing import Any
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from growth_stack_dagster.sandbox.core import Emulation, SandboxContext

SYSTEM = "amplitude"
PROJECT_ID = 100000  # the `app` field of exported events
HTTP_V2_MAX_BYTES = 1_000_000  # "Keep request sizes under 1 MB"
HTTP_V2_MAX_EVENTS = 2000  # "with fewer than 2000 events per request"
BATCH_MAX_BYTES = 20_000_000  # Batch API: "must not exceed 20MB"
HTTP_V2_EPS = 30  # events per second per user or device before 429
BATCH_EPS = 1000
EPS_WINDOW_SECONDS = 10  # Amplitude measures the rate "as an average over a recent time window"
DEDUP_SECONDS = 7 * 24 * 3600
DEFAULT_MIN_ID_LENGTH = 5
MAX_STRING_LENGTH = 1024
# Amplitude rejects these ids outright (docs: "Invalid IDs").
INVALID_IDS = frozenset({
    "anonymous", "nil", "none", "null", "n/a", "na", "undefined", "unknown", '""',
    "00000000-0000-0000-0000-000000000000", "{}", "lmy47d", "0", "-1",
})
USER_PROPERTY_OPS = ("$set", "$setOnce", "$add", "$append", "$prepend", "$unset",
                     "$preInsert", "$postInsert", "$remove", "$clearAll")
# Event keys copied into the exported event under the export's own names.
_EXPORT_FIELD_NAMES = {
    "platform": "platform", "os_name": "os_name", "os_version": "os_version",
    "device_brand": "device_brand", "device_manufacturer": "device_manufacturer",
    "device_model": "device_model", "carrier": "device_carrier", "country": "country",
    "region": "region", "city": "city", "dma": "dma", "language": "language",
    "ip": "ip_address", "location_lat": "location_lat", "location_lng": "location_lng",
    "app_version": "version_name", "library": "library", "event_id": "event_id",
    "session_id": "session_id", "price": "price", "quantity": "quantity", "revenue": "revenue",
    "productId": "product_id", "revenueType": "revenue_type", "partner_id": "partner_id",
}


# --------------------------------------------------------------------------- pure helpers
class AmplitudeError(Exception):
    """A request Amplitude refuses; `body` is the JSON it answers with."""

    def __init__(self, status: int, body: dict[str, Any]):
        super().__init__(body.get("error", ""))
        self.status, self.body = status, body


def format_export_time(epoch_ms: int) -> str:
    """Amplitude export timestamps: UTC `YYYY-MM-DD HH:MM:SS.ffffff`."""
    return dt.datetime.fromtimestamp(epoch_ms / 1000, dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")


def parse_export_hour(value: str | None, name: str) -> dt.datetime:
    """Parse an Export API `start`/`end` parameter (`YYYYMMDDTHH`, UTC)."""
    if not value:
        raise AmplitudeError(400, {"error": f"Missing required parameter: {name}"})
    try:
        return dt.datetime.strptime(value, "%Y%m%dT%H").replace(tzinfo=dt.timezone.utc)
    except ValueError:
        raise AmplitudeError(400, {"error": f"Invalid {name} {value!r}: expected YYYYMMDDTHH, e.g. 20220201T05"})


def validate_upload(payload: Any, token: str) -> tuple[list[dict[str, Any]], int]:
    """Check an HTTP V2 / Batch upload body the way Amplitude does.

    Returns (events, min_id_length); raises AmplitudeError with the real 400 body.
    Request-level problems come first (api_key, events), then per-event problems, each
    reported as a map from field name to event indexes so clients can drop exactly those.
    """
    if not isinstance(payload, dict):
        raise AmplitudeError(400, {"code": 400, "error": "Invalid JSON request body"})
    api_key = payload.get("api_key")
    if not api_key:
        raise AmplitudeError(400, {"code": 400, "error": "Request missing required field",
                                   "missing_field": "api_key"})
    if api_key != token:
        raise AmplitudeError(400, {"code": 400, "error": f"Invalid API key: {api_key}"})
    events = payload.get("events")
    if events is None or events == []:
        raise AmplitudeError(400, {"code": 400, "error": "Request missing required field",
                                   "missing_field": "events"})
    if not isinstance(events, list):
        raise AmplitudeError(400, {"code": 400, "error": "Invalid event JSON"})
    events = list(events)
    options = payload.get("options") or {}
    if not isinstance(options, dict):
        raise AmplitudeError(400, {"code": 400, "error": "Invalid field values on some events",
                                   "events_with_invalid_fields": {}, "invalid_field": "options"})
    min_id_length = options.get("min_id_length", DEFAULT_MIN_ID_LENGTH)
    if isinstance(min_id_length, bool) or not isinstance(min_id_length, int) or min_id_length < 1:
        raise AmplitudeError(400, {"code": 400, "error": "Invalid field values on some events",
                                   "invalid_field": "options.min_id_length"})

    missing: dict[str, list[int]] = defaultdict(list)
    invalid: dict[str, list[int]] = defaultdict(list)
    short_ids: dict[str, list[int]] = defaultdict(list)
    for i, event in enumerate(events):
        if not isinstance(event, dict):
            raise AmplitudeError(400, {"code": 400, "error": "Invalid event JSON"})
        event_type = event.get("event_type")
        if event_type is None or event_type == "":
            missing["event_type"].append(i)
        elif not isinstance(event_type, str) or len(event_type) > MAX_STRING_LENGTH:
            invalid["event_type"].append(i)
        usable_ids, short_fields, bad_id = 0, [], False
        for field in ("user_id", "device_id"):
            value = event.get(field)
            if value is None or value == "":
                continue
            if (not isinstance(value, str) or len(value) > MAX_STRING_LENGTH
                    or value.strip().lower() in INVALID_IDS):
                invalid[field].append(i)
                bad_id = True
            elif len(value) < min_id_length:
                short_fields.append(field)
            else:
                usable_ids += 1
        if usable_ids and short_fields:
            # Amplitude drops an id that is too short and keeps the event by its other id.
            events[i] = event = {k: v for k, v in event.items() if k not in short_fields}
        elif not usable_ids and not bad_id:
            if short_fields:
                for field in short_fields:
                    short_ids[field].append(i)
            else:
                missing["user_id"].append(i)
                missing["device_id"].append(i)
        time_ms = event.get("time")
        if time_ms is not None and (isinstance(time_ms, bool) or not isinstance(time_ms, int) or time_ms < 0):
            invalid["time"].append(i)
        for field in ("event_properties", "user_properties", "groups", "group_properties"):
            if field in event and event[field] is not None and not isinstance(event[field], dict):
                invalid[field].append(i)
        for field in ("insert_id",):
            if field in event and event[field] is not None and not isinstance(event[field], str):
                invalid[field].append(i)
        for field in ("session_id", "event_id"):
            value = event.get(field)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                invalid[field].append(i)
    if missing or invalid or short_ids:
        body: dict[str, Any] = {"code": 400}
        if short_ids and not (missing or invalid):
            body["error"] = "Invalid id length for user_id or device_id"
        elif missing and not invalid:
            body["error"] = "Request missing required field"
        else:
            body["error"] = "Invalid field values on some events"
        if missing:
            body["events_with_missing_fields"] = dict(missing)
        if invalid:
            body["events_with_invalid_fields"] = dict(invalid)
        if short_ids:
            body["events_with_invalid_id_lengths"] = dict(short_ids)
        raise AmplitudeError(400, body)
    return events, min_id_length


def apply_user_properties(props: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """Apply an event's `user_properties` (plain values or `$set`-style operations) to a
    user's properties; returns the new dict (the input is not modified)."""
    out = copy.deepcopy(props)
    ops = {k: v for k, v in update.items() if k in USER_PROPERTY_OPS}
    plain = {k: v for k, v in update.items() if k not in USER_PROPERTY_OPS}
    if "$clearAll" in ops:
        out = {}
    for key, value in plain.items():  # a dict without operations means $set
        out[key] = value
    for key, value in (ops.get("$setOnce") or {}).items():
        out.setdefault(key, value)
    for key, value in (ops.get("$set") or {}).items():
        out[key] = value
    for key, value in (ops.get("$add") or {}).items():
        current = out.get(key, 0)
        try:
            out[key] = (current if isinstance(current, (int, float)) else float(current)) + value
        except (TypeError, ValueError):
            out[key] = value
    for op in ("$append", "$prepend", "$preInsert", "$postInsert", "$remove"):
        for key, value in (ops.get(op) or {}).items():
            items = value if isinstance(value, list) else [value]
            current = out.get(key)
            current = [] if current is None else (current if isinstance(current, list) else [current])
            if op == "$append":
                current = current + items
            elif op == "$prepend":
                current = items + current
            elif op == "$preInsert":
                current = [v for v in items if v not in current] + current
            elif op == "$postInsert":
                current = current + [v for v in items if v not in current]
            else:
                current = [v for v in current if v not in items]
            out[key] = current
    for key in (ops.get("$unset") or {}):
        out.pop(key, None)
    return out


def export_event(event: dict[str, Any], *, event_uuid: str, amplitude_id: int, upload_ms: int,
                 user_properties: dict[str, Any]) -> dict[str, Any]:
    """One uploaded event in the Export API's representation (one NDJSON line)."""
    event_ms = event.get("time") if isinstance(event.get("time"), int) else upload_ms
    out: dict[str, Any] = {
        "app": PROJECT_ID, "uuid": event_uuid, "amplitude_id": amplitude_id,
        "event_type": event["event_type"], "user_id": event.get("user_id"),
        "device_id": event.get("device_id"), "$insert_id": event.get("insert_id"),
        "event_time": format_export_time(event_ms), "client_event_time": format_export_time(event_ms),
        "client_upload_time": format_export_time(upload_ms),
        "server_upload_time": format_export_time(upload_ms),
        "server_received_time": format_export_time(upload_ms),
        "processed_time": format_export_time(upload_ms),
        "event_properties": event.get("event_properties") or {},
        "user_properties": user_properties, "groups": event.get("groups") or {},
        "group_properties": event.get("group_properties") or {}, "data": {},
        "paying": None, "start_version": None, "sample_rate": None,
        "amplitude_attribution_ids": None, "device_type": None, "device_family": None,
    }
    for src, dst in _EXPORT_FIELD_NAMES.items():
        out[dst] = event.get(src)
    return out


class EventRateLimiter:
    """Per user/device event counts over a sliding window, for Amplitude's per-id 429."""

    def __init__(self, eps: float, window: int = EPS_WINDOW_SECONDS):
        self.eps, self.window = eps, window
        self._counts: dict[str, deque[tuple[int, int]]] = {}
        self._lock = threading.Lock()

    def check(self, ids_per_event: list[list[str]]) -> tuple[dict[str, int], list[int]]:
        """Count this request's events; returns ({id: current eps} over the limit, throttled
        event indexes). When anything is throttled nothing is counted (the upload is refused)."""
        if self.eps <= 0:
            return {}, []
        now = int(time.monotonic())
        wanted: dict[str, int] = defaultdict(int)
        for ids in ids_per_event:
            for key in ids:
                wanted[key] += 1
        with self._lock:
            over: dict[str, int] = {}
            for key, n in wanted.items():
                q = self._counts.get(key)
                past = 0
                if q:
                    while q and q[0][0] <= now - self.window:
                        q.popleft()
                    past = sum(c for _, c in q)
                if past + n > self.eps * self.window:
                    over[key] = int((past + n) / self.window)
            if over:
                throttled = [i for i, ids in enumerate(ids_per_event) if any(k in over for k in ids)]
                return over, throttled
            for key, n in wanted.items():
                q = self._counts.setdefault(key, deque())
                if q and q[-1][0] == now:
                    q[-1] = (now, q[-1][1] + n)
                else:
                    q.append((now, n))
            if len(self._counts) > 50_000:  # forget idle ids
                for key in [k for k, q in self._counts.items() if not q or q[-1][0] <= now - self.window]:
                    del self._counts[key]
        return {}, []


# --------------------------------------------------------------------------- state
class AmplitudeState:
    """Ingestion and read-back over the sandbox Store (collections `events`, `users`,
    `devices`, `insert_ids`)."""

    def __init__(self, ctx: SandboxContext):
        self.ctx = ctx
        self._lock = threading.Lock()
        scale = ctx.rate_limit_scale
        self.http_v2_limiter = EventRateLimiter(HTTP_V2_EPS * scale)
        self.batch_limiter = EventRateLimiter(BATCH_EPS * scale)

    # ----- users
    def _profile_key(self, user_id: str | None, device_id: str | None) -> str | None:
        store = self.ctx.store
        if user_id:
            return f"user:{user_id}"
        if device_id:
            mapped = store.get(SYSTEM, "devices", device_id)
            return mapped["profile"] if mapped else f"device:{device_id}"
        return None

    def _update_profile(self, user_id: str | None, device_id: str | None,
                        update: dict[str, Any] | None, library: str | None, at_ms: int,
                        extra: dict[str, Any] | None = None) -> tuple[int, dict[str, Any]]:
        """Create or update one user; returns (amplitude_id, user properties after the update)."""
        store = self.ctx.store
        key = self._profile_key(user_id, device_id)
        profile = store.get(SYSTEM, "users", key) if key else None
        if profile is None and user_id and device_id:
            # The first event that names the user of a known anonymous device takes over its profile.
            mapped = store.get(SYSTEM, "devices", device_id)
            if mapped and mapped["profile"].startswith("device:"):
                profile = store.get(SYSTEM, "users", mapped["profile"])
                if profile is not None:
                    store.delete(SYSTEM, "users", mapped["profile"])
        if profile is None:
            profile = {"amplitude_id": store.next_id("amplitude_id", start=1_000_000_000),
                       "user_id": user_id, "device_id": device_id, "amp_props": {}}
        if user_id:
            profile["user_id"] = user_id
        if device_id:
            profile["device_id"] = device_id
        props = profile["amp_props"]
        if update:
            props = apply_user_properties(props, update)
        day = dt.datetime.fromtimestamp(at_ms / 1000, dt.timezone.utc).strftime("%Y-%m-%d")
        props.setdefault("first_used", day)
        props["last_used"] = max(day, props.get("last_used", day))
        if library:
            props["library"] = library
        for field, value in (extra or {}).items():
            if value is not None:
                props[field] = value
        profile["amp_props"] = props
        store.put(SYSTEM, "users", key, profile)
        if device_id:
            store.put(SYSTEM, "devices", device_id, {"profile": key})
        return profile["amplitude_id"], props

    # ----- ingestion
    def upload(self, payload: Any, batch: bool, size: int) -> tuple[int, dict[str, Any]]:
        """Validate, throttle, deduplicate and store one upload of `size` bytes; returns (status, body)."""
        try:
            events, _min_len = validate_upload(payload, self.ctx.token)
        except AmplitudeError as exc:
            return exc.status, exc.body
        limiter = self.batch_limiter if batch else self.http_v2_limiter
        ids = [[key for key in (f"u:{e['user_id']}" if e.get("user_id") else None,
                                f"d:{e['device_id']}" if e.get("device_id") else None) if key]
               for e in events]
        over, throttled = limiter.check(ids)
        if over:
            return 429, {
                "code": 429, "error": "Too many requests for some devices and users",
                "eps_threshold": int(limiter.eps),
                "throttled_devices": {k[2:]: v for k, v in over.items() if k.startswith("d:")},
                "throttled_users": {k[2:]: v for k, v in over.items() if k.startswith("u:")},
                "throttled_events": throttled,
                "exceeded_daily_quota_devices": {}, "exceeded_daily_quota_users": {},
            }
        upload_ms = int(time.time() * 1000)
        with self._lock, self.ctx.store.transaction():  # one commit per upload, not per event
            self._ingest(events, upload_ms)
        return 200, {"code": 200, "events_ingested": len(events),
                     "payload_size_bytes": size,
                     "server_upload_time": upload_ms}

    def _ingest(self, events: list[dict[str, Any]], upload_ms: int) -> None:
        store = self.ctx.store
        now_s = upload_ms // 1000
        rows = []
        seen: set[str] = set()
        for event in events:
            insert_id = event.get("insert_id")
            if insert_id:
                # Amplitude ignores a repeated insert_id of the same device (else user) for 7 days.
                dedup_key = f"{event.get('device_id') or event.get('user_id')}|{insert_id}"
                earlier = store.get(SYSTEM, "insert_ids", dedup_key)
                if dedup_key in seen or (earlier and now_s - earlier["at"] < DEDUP_SECONDS):
                    continue
                seen.add(dedup_key)
                store.put(SYSTEM, "insert_ids", dedup_key, {"at": now_s}, created=now_s, updated=now_s)
            update = event.get("user_properties") if not event.get("$skip_user_properties_sync") else None
            at_ms = event["time"] if isinstance(event.get("time"), int) else upload_ms
            amplitude_id, props = self._update_profile(
                event.get("user_id"), event.get("device_id"), update, event.get("library"), at_ms)
            event_uuid = str(uuid.uuid4())
            rows.append((event_uuid, export_event(event, event_uuid=event_uuid, amplitude_id=amplitude_id,
                                                  upload_ms=upload_ms, user_properties=props),
                         now_s, now_s))
        if rows:
            store.put_many(SYSTEM, "events", rows)

    def identify(self, form: dict[str, str], reject: Any = None) -> tuple[int, str]:
        """The Identify API: update user properties without an event; returns (status, text).
        `reject(user_id)` is the fault injection's per-record rejection: Amplitude refuses the whole request."""
        api_key = form.get("api_key")
        if not api_key:
            return 400, "missing_api_key"
        if api_key != self.ctx.token:
            return 400, "invalid_api_key"
        raw = form.get("identification")
        if not raw:
            return 400, "missing_event"
        try:
            parsed = json.loads(raw)
        except ValueError:
            return 400, "missing_event"
        identifications = parsed if isinstance(parsed, list) else [parsed]
        for ident in identifications:
            if not isinstance(ident, dict):
                return 400, "missing_event"
            if not (ident.get("user_id") or ident.get("device_id")):
                return 400, "missing_event"
            if ident.get("user_properties") is not None and not isinstance(ident["user_properties"], dict):
                return 400, "invalid_user_properties"
            if reject is not None and reject(str(ident.get("user_id") or ident.get("device_id"))):
                return 400, "invalid_user_properties"
        now_ms = int(time.time() * 1000)
        with self._lock:
            for ident in identifications:
                extra = {k: ident.get(k) for k in ("platform", "os_name", "os_version", "device_brand",
                                                   "device_manufacturer", "device_model", "carrier",
                                                   "country", "region", "city", "dma", "language",
                                                   "paying", "start_version", "app_version")}
                self._update_profile(ident.get("user_id"), ident.get("device_id"),
                                     ident.get("user_properties"), None, now_ms, extra)
                key = self._profile_key(ident.get("user_id"), ident.get("device_id"))
                if key:
                    self.ctx.store.count_writes(SYSTEM, "users", [key])
        return 200, "success"

    # ----- read-back
    def user_profile(self, user_id: str | None, device_id: str | None, amp_props: bool) -> tuple[int, dict]:
        if not user_id and not device_id:
            return 400, {"error": "Either user_id or device_id is required"}
        key = self._profile_key(user_id, device_id)
        profile = self.ctx.store.get(SYSTEM, "users", key) if key else None
        if profile is None:
            return 200, {"error": "User id and device id not seen before"}
        return 200, {"userData": {
            "recommendations": None, "user_id": profile.get("user_id"), "device_id": profile.get("device_id"),
            "amp_props": profile["amp_props"] if amp_props else None, "cohort_ids": None,
        }}

    def user_search(self, user: str) -> dict[str, Any]:
        """Dashboard REST API `GET /api/2/usersearch?user=`: users whose user id, device id or
        Amplitude id is `user`."""
        matches = []
        for key in (f"user:{user}", self._profile_key(None, user)):
            profile = self.ctx.store.get(SYSTEM, "users", key) if key else None
            if profile is not None and all(m["amplitude_id"] != profile["amplitude_id"] for m in matches):
                matches.append({"user_id": profile.get("user_id"), "amplitude_id": profile["amplitude_id"],
                                "last_seen": profile["amp_props"].get("last_used"), "platform": None,
                                "os": None, "country": None})
        if not matches and user.isdigit():
            rows = self.ctx.store.query(
                "SELECT data FROM objects WHERE system=? AND collection='users' "
                "AND json_extract(data, '$.amplitude_id') = ?", (SYSTEM, int(user)))
            for (data,) in rows:
                profile = json.loads(data)
                matches.append({"user_id": profile.get("user_id"), "amplitude_id": profile["amplitude_id"],
                                "last_seen": profile["amp_props"].get("last_used"), "platform": None,
                                "os": None, "country": None})
        return {"matches": matches, "type": "match_user_or_device_id"}

    def user_activity(self, amplitude_id: int, offset: int, limit: int) -> tuple[int, dict[str, Any]]:
        """Dashboard REST API `GET /api/2/useractivity?user=<amplitude id>`: a user's events, newest first."""
        rows = self.ctx.store.query(
            "SELECT data FROM objects WHERE system=? AND collection='events' "
            "AND json_extract(data, '$.amplitude_id') = ? ORDER BY seq DESC LIMIT ? OFFSET ?",
            (SYSTEM, amplitude_id, limit, offset))
        events = [json.loads(d) for (d,) in rows]
        profile_rows = self.ctx.store.query(
            "SELECT data FROM objects WHERE system=? AND collection='users' "
            "AND json_extract(data, '$.amplitude_id') = ?", (SYSTEM, amplitude_id))
        if not profile_rows and not events:
            return 400, {"error": f"Amplitude id {amplitude_id} not found"}
        profile = json.loads(profile_rows[0][0]) if profile_rows else {}
        total = self.ctx.store.query(
            "SELECT count(*) FROM objects WHERE system=? AND collection='events' "
            "AND json_extract(data, '$.amplitude_id') = ?", (SYSTEM, amplitude_id))[0][0]
        return 200, {"userData": {"user_id": profile.get("user_id"), "device_ids": [profile.get("device_id")]
                                  if profile.get("device_id") else [], "amplitude_id": amplitude_id,
                                  "num_events": total, "properties": profile.get("amp_props", {})},
                     "events": events}

    def export_zip(self, start: dt.datetime, end: dt.datetime) -> bytes | None:
        """Events uploaded in hours start..end (inclusive) as Amplitude's export: a zip with one
        gzipped NDJSON file per hour; None when there is none."""
        lo = int(start.timestamp())
        hi = int((end + dt.timedelta(hours=1)).timestamp())
        by_hour: dict[str, list[bytes]] = defaultdict(list)
        after = 0
        while True:
            rows = self.ctx.store.page(SYSTEM, "events", after_seq=after, limit=5000,
                                       where="created >= ? AND created < ?", params=(lo, hi))
            if not rows:
                break
            for seq, event in rows:
                after = seq
                hour = event["server_upload_time"][:13]  # "YYYY-MM-DD HH"
                by_hour[hour].append(json.dumps(event, separators=(",", ":")).encode())
        if not by_hour:
            return None
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
            for hour, lines in sorted(by_hour.items()):
                day, hh = hour.split(" ")
                name = f"{PROJECT_ID}/{PROJECT_ID}_{day}_{int(hh)}#0.json.gz"
                zf.writestr(name, gzip.compress(b"\n".join(lines) + b"\n"))
        return buf.getvalue()


# --------------------------------------------------------------------------- HTTP
def parse_form(content_type: str, raw: bytes) -> dict[str, str]:
    """Fields of an `application/x-www-form-urlencoded` or `multipart/form-data` body."""
    if content_type.startswith("multipart/form-data"):
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + raw)
        fields = {}
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            if name:
                fields[name] = part.get_payload(decode=True).decode("utf-8", "replace")
        return fields
    return {k: v[-1] for k, v in parse_qs(raw.decode("utf-8", "replace")).items()}


def rate_limit_response(retry_after: float) -> Response:
    """Amplitude's 429 without per-event detail: the SDK then retries every event."""
    return JSONResponse({"code": 429, "error": "Too many requests for some devices and users",
                         "eps_threshold": HTTP_V2_EPS}, status_code=429)


def error_response(status: int) -> Response:
    messages = {502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout"}
    return JSONResponse({"code": status, "error": messages.get(status, "Internal Server Error")},
                        status_code=status)


def _basic_credentials(request: Request) -> tuple[str, str] | None:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic" or not value.strip():
        return None
    try:
        user, sep, password = base64.b64decode(value.strip()).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return (user, password) if sep else None


def build(ctx: SandboxContext) -> Emulation:
    """The Amplitude emulation for the sandbox app."""
    state = AmplitudeState(ctx)

    def upload_endpoint(batch: bool):
        limit = BATCH_MAX_BYTES if batch else HTTP_V2_MAX_BYTES

        async def endpoint(request: Request) -> Response:
            declared = request.headers.get("content-length")
            if declared and declared.isdigit() and int(declared) > limit:
                return JSONResponse({"code": 413, "error": "Payload too large"}, status_code=413)
            raw = await request.body()
            if len(raw) > limit:
                return JSONResponse({"code": 413, "error": "Payload too large"}, status_code=413)
            if not raw.strip():
                return JSONResponse({"code": 400, "error": "Missing request body"}, status_code=400)
            try:
                payload = json.loads(raw)
            except ValueError:
                return JSONResponse({"code": 400, "error": "Invalid JSON request body"}, status_code=400)
            if (not batch and isinstance(payload, dict) and isinstance(payload.get("events"), list)
                    and len(payload["events"]) > HTTP_V2_MAX_EVENTS):
                return JSONResponse({"code": 413, "error": "Payload too large"}, status_code=413)
            status, body = await asyncio.to_thread(state.upload, payload, batch, len(raw))
            return JSONResponse(body, status_code=status)

        return endpoint

    async def identify(request: Request) -> Response:
        form: dict[str, str] = {k: v[-1] for k, v in parse_qs(request.url.query).items()}
        if request.method == "POST":
            form.update(parse_form(request.headers.get("content-type", ""), await request.body()))
        def reject(user: str) -> bool:
            return ctx.faults.rejects(request.url.path, user, request.method)

        status, text = await asyncio.to_thread(state.identify, form, reject)
        return PlainTextResponse(text, status_code=status)

    async def user_profile(request: Request) -> Response:
        scheme, _, key = request.headers.get("authorization", "").partition(" ")
        if scheme != "Api-Key" or not key.strip():
            return PlainTextResponse("Missing Api-Key in Authorization header", status_code=401)
        if key.strip() != ctx.token:
            return PlainTextResponse("Invalid Api-Key", status_code=401)
        q = request.query_params
        status, body = await asyncio.to_thread(
            state.user_profile, q.get("user_id"), q.get("device_id"),
            q.get("get_amp_props", "false").lower() == "true")
        return JSONResponse(body, status_code=status)

    async def export(request: Request) -> Response:
        creds = _basic_credentials(request)
        if creds is None or creds != (ctx.token, ctx.token):
            return JSONResponse({"error": "Invalid API key or secret key"}, status_code=401,
                                headers={"WWW-Authenticate": 'Basic realm="Amplitude"'})
        try:
            start = parse_export_hour(request.query_params.get("start"), "start")
            end = parse_export_hour(request.query_params.get("end"), "end")
        except AmplitudeError as exc:
            return JSONResponse(exc.body, status_code=exc.status)
        if end < start:
            return JSONResponse({"error": "end must not be before start"}, status_code=400)
        if end - start > dt.timedelta(days=365):
            return JSONResponse({"error": "The max period you can query at once is 365 days"}, status_code=400)
        data = await asyncio.to_thread(state.export_zip, start, end)
        if data is None:
            return PlainTextResponse("Raw data files were not found.", status_code=404)
        return Response(data, media_type="application/zip", headers={
            "Content-Disposition": f'attachment; filename="{PROJECT_ID}_export.zip"'})

    def dashboard_authorized(request: Request) -> Response | None:
        if _basic_credentials(request) != (ctx.token, ctx.token):
            return JSONResponse({"error": "Invalid API key or secret key"}, status_code=401,
                                headers={"WWW-Authenticate": 'Basic realm="Amplitude"'})
        return None

    async def user_search(request: Request) -> Response:
        refused = dashboard_authorized(request)
        if refused is not None:
            return refused
        user = request.query_params.get("user")
        if not user:
            return JSONResponse({"error": "Missing required parameter: user"}, status_code=400)
        return JSONResponse(await asyncio.to_thread(state.user_search, user))

    async def user_activity(request: Request) -> Response:
        refused = dashboard_authorized(request)
        if refused is not None:
            return refused
        q = request.query_params
        try:
            amplitude_id = int(q.get("user", ""))
            offset, limit = int(q.get("offset", "0")), min(int(q.get("limit", "1000")), 1000)
        except ValueError:
            return JSONResponse({"error": "user must be an Amplitude id; offset and limit integers"}, status_code=400)
        status, body = await asyncio.to_thread(state.user_activity, amplitude_id, offset, limit)
        return JSONResponse(body, status_code=status)

    routes = [
        Route("/api/2/usersearch", user_search, methods=["GET"]),
        Route("/api/2/useractivity", user_activity, methods=["GET"]),
        Route("/2/httpapi", upload_endpoint(batch=False), methods=["POST"]),
        Route("/batch", upload_endpoint(batch=True), methods=["POST"]),
        Route("/identify", identify, methods=["GET", "POST"]),
        Route("/v1/userprofile", user_profile, methods=["GET"]),
        Route("/api/2/export", export, methods=["GET"]),
    ]
    return Emulation(prefix="/amplitude", routes=routes, rate_limit_response=rate_limit_response,
                     error_response=error_response, rate=100, burst=100)
