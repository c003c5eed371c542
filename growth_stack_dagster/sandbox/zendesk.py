"""Zendesk Support API emulation, mounted at `/zendesk` (a `https://<subdomain>.zendesk.com` root).

Serves under `/zendesk/api/v2/` (each path with or without `.json`):
- incremental cursor exports `incremental/tickets/cursor.json` and `incremental/users/cursor.json`
  (`start_time` or `cursor`, `per_page` up to 1000, `after_cursor`/`after_url`/`end_of_stream`) and the
  time-based `incremental/tickets.json` and `incremental/users.json` (`next_page`, `end_time`), with the
  real one-minute exclusion of recent changes and their own limit of 10 requests per minute;
- users: list (cursor `page[size]`/`page[after]` or offset `page`/`per_page`), show, search by email or
  external_id, `create_or_update`, `create_or_update_many`, `create_many` (an existing user fails) and
  `destroy_many?ids=` (each at most 100, answered with a job status), and `job_statuses/<id>` with
  per-user results; custom user fields: list and create `user_fields` (type, title, unique key);
- tickets: create, list, show, update (`updated_at` moves, so the next export returns the ticket again).

Auth is HTTP Basic `<email>/token:<api_token>` (or `Authorization: Bearer <token>`) with the sandbox
token; failures answer 401 `{"error": "Couldn't authenticate you"}`. Rate limits answer 429 with
`Retry-After`. Ids are integers; state lives in the sandbox Store.

Bulk jobs run on a background worker: `queued`, then `working` (progress moves), then `completed` with
per-user results or `failed`; `GROWTH_STACK_SANDBOX_ZENDESK_JOB_SECONDS` (default 0.3) is how long one job
takes. A fault of kind `job_failed` on the bulk path makes the next job fail without applying anything.

`GROWTH_STACK_SANDBOX_ZENDESK_EXPORT_DELAY` (seconds, default 60, read when the sandbox starts) sets the
exclusion window and the minimum age of `start_time`, so tests can see a change without waiting a minute;
at 0 an export that reaches the end resumes one second early, so a record changed in that second may come twice.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import datetime as dt
import functools
import json
import logging
import math
import os
import queue
import re
import secrets
import threading
import time
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from growth_stack_dagster.sandbox.core import Emulation, SandboxContext, TokenBucket

log = logging.getLogger("growth_stack.sandbox")

SYSTEM = "zendesk"
EXPORT_PAGE_MAX = 1000
LIST_PAGE_MAX = 100
MANY_MAX = 100
# Enterprise plan: 700 requests per minute for the account.
RATE_PER_MINUTE = 700
# Incremental export endpoints: 10 requests per minute (without the High Volume add-on).
EXPORT_RATE_PER_MINUTE = 10
DEFAULT_EXPORT_DELAY = 60
SEQ_END = 2**62  # a cursor seq past every row: "everything at this second was served"
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
ROLES = ("end-user", "agent", "admin")
USER_FIELD_TYPES = ("text", "textarea", "checkbox", "date", "integer", "decimal", "regexp", "dropdown", "lookup",
                    "multiselect")
USER_FIELD_KEY = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
TICKET_STATUSES = ("new", "open", "pending", "hold", "solved", "closed")
PRIORITIES = ("urgent", "high", "normal", "low")
TICKET_TYPES = ("problem", "incident", "question", "task")
USER_WRITABLE = ("name", "email", "external_id", "role", "phone", "tags", "user_fields", "organization_id",
                 "details", "notes", "locale", "time_zone", "verified", "alias", "suspended", "signature",
                 "default_group_id", "ticket_restriction", "only_private_comments", "moderator", "shared_phone_number")
TICKET_WRITABLE = ("subject", "status", "priority", "type", "tags", "assignee_id", "group_id", "organization_id",
                   "custom_fields", "external_id", "due_at", "requester_id", "submitter_id", "collaborator_ids",
                   "follower_ids", "email_cc_ids", "problem_id", "brand_id", "ticket_form_id", "custom_status_id")


class ZendeskError(Exception):
    """An error answered in Zendesk's `{"error", "description", "details"}` shape."""

    def __init__(self, status: int, error: str, description: str | None = None,
                 details: dict[str, Any] | None = None, headers: dict[str, str] | None = None):
        super().__init__(description or error)
        self.status, self.error, self.description, self.details, self.headers = (
            status, error, description, details, headers)

    def response(self) -> JSONResponse:
        body: dict[str, Any] = {"error": self.error}
        if self.description is not None:
            body["description"] = self.description
        if self.details is not None:
            body["details"] = self.details
        return JSONResponse(body, status_code=self.status, headers=self.headers)


def not_found() -> ZendeskError:
    return ZendeskError(404, "RecordNotFound", "Not found")


def invalid_record(field: str, description: str, code: str) -> ZendeskError:
    return ZendeskError(422, "RecordInvalid", "Record validation errors",
                        {field: [{"description": description, "error": code}]})


# --------------------------------------------------------------------------- pure helpers
def zd_time(epoch: int) -> str:
    """Zendesk's timestamp format (ISO-8601, UTC, `Z`)."""
    return dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@functools.lru_cache(maxsize=65536)
def parse_zd_time(value: str) -> int:
    """Epoch seconds of an ISO-8601 timestamp such as `2026-01-01T00:00:00Z`."""
    parsed = dt.datetime.fromisoformat(str(value).strip().replace("Z", "+00:00"))
    return int((parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)).timestamp())


def encode_export_cursor(updated: int, seq: int) -> str:
    """An opaque export cursor (base64, like Zendesk's) for the position (updated, seq)."""
    return base64.urlsafe_b64encode(f"{updated}.0||{seq}|".encode()).decode().rstrip("=")


def decode_export_cursor(cursor: str) -> tuple[int, int]:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        updated, _, rest = text.partition(".0||")
        return int(updated), int(rest.rstrip("|"))
    except (ValueError, UnicodeDecodeError, binascii.Error):
        raise ZendeskError(400, "InvalidPaginationParameter",
                           f"cursor {cursor!r} is not an after_cursor returned by this export") from None


def encode_list_cursor(seq: int) -> str:
    return base64.urlsafe_b64encode(f"seq:{seq}".encode()).decode().rstrip("=")


def decode_list_cursor(cursor: str) -> int:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        if not text.startswith("seq:"):
            raise ValueError(text)
        return int(text[4:])
    except (ValueError, UnicodeDecodeError, binascii.Error):
        raise ZendeskError(400, "InvalidPaginationParameter",
                           f"page cursor {cursor!r} is not a cursor returned by this list") from None


def email_key(email: str) -> str:
    """Zendesk treats emails case-insensitively and ignores surrounding spaces."""
    return "email:" + email.strip().lower()


def default_user(user_id: int, now: int, base_url: str) -> dict[str, Any]:
    """A Zendesk user with every standard field at its default."""
    return {
        "id": user_id, "url": f"{base_url}/api/v2/users/{user_id}.json", "name": None, "email": None,
        "created_at": zd_time(now), "updated_at": zd_time(now), "time_zone": "UTC", "iana_time_zone": "Etc/UTC",
        "phone": None, "shared_phone_number": None, "photo": None, "locale_id": 1, "locale": "en-US",
        "organization_id": None, "role": "end-user", "verified": False, "external_id": None, "tags": [],
        "alias": None, "active": True, "shared": False, "shared_agent": False, "last_login_at": None,
        "two_factor_auth_enabled": None, "signature": None, "details": None, "notes": None, "role_type": None,
        "custom_role_id": None, "moderator": False, "ticket_restriction": "requested",
        "only_private_comments": False, "restricted_agent": True, "suspended": False, "default_group_id": None,
        "report_csv": False, "user_fields": {},
    }


def default_ticket(ticket_id: int, now: int, base_url: str) -> dict[str, Any]:
    """A Zendesk ticket with every standard field at its default."""
    return {
        "url": f"{base_url}/api/v2/tickets/{ticket_id}.json", "id": ticket_id, "external_id": None,
        "via": {"channel": "api", "source": {"from": {}, "to": {}, "rel": None}},
        "created_at": zd_time(now), "updated_at": zd_time(now), "generated_timestamp": now,
        "type": None, "subject": None, "raw_subject": None, "description": None, "priority": None,
        "status": "new", "recipient": None, "requester_id": None, "submitter_id": None, "assignee_id": None,
        "organization_id": None, "group_id": None, "collaborator_ids": [], "follower_ids": [],
        "email_cc_ids": [], "forum_topic_id": None, "problem_id": None, "has_incidents": False,
        "is_public": True, "due_at": None, "tags": [], "custom_fields": [], "satisfaction_rating": None,
        "sharing_agreement_ids": [], "custom_status_id": None, "fields": [], "followup_ids": [],
        "ticket_form_id": None, "brand_id": None, "allow_channelback": False, "allow_attachments": True,
        "from_messaging_channel": False,
    }


def user_problem(fields: dict[str, Any], creating: bool) -> str | None:
    """Why a user's fields cannot be saved, as Zendesk words it, or None."""
    email = fields.get("email")
    if email is not None and (not isinstance(email, str) or not EMAIL_RE.match(email.strip())):
        return f"Email: {email} is not properly formatted"
    name = fields.get("name")
    if creating and (not isinstance(name, str) or not name.strip()):
        return "Name:  is too short (minimum is 1 character)"
    role = fields.get("role")
    if role is not None and role not in ROLES:
        return f"Role: {role} is not a valid role; use one of {', '.join(ROLES)}"
    tags = fields.get("tags")
    if tags is not None and (not isinstance(tags, list) or not all(isinstance(t, str) for t in tags)):
        return "Tags: must be a list of strings"
    return None


def _int_param(value: Any, name: str, default: int, maximum: int) -> int:
    if value in (None, ""):
        return default
    try:
        n = int(value)
    except (TypeError, ValueError):
        raise ZendeskError(400, "InvalidPaginationParameter", f"{name} must be an integer, not {value!r}") from None
    if n < 1:
        raise ZendeskError(400, "InvalidPaginationParameter", f"{name} must be at least 1")
    return min(n, maximum)


# --------------------------------------------------------------------------- the emulation
class ZendeskEmulation:
    def __init__(self, ctx: SandboxContext, export_delay: int, job_seconds: float = 0.3):
        self.ctx = ctx
        self.store = ctx.store
        self.export_delay = export_delay
        scale = ctx.rate_limit_scale
        self.export_bucket = (TokenBucket(EXPORT_RATE_PER_MINUTE / 60 * scale, EXPORT_RATE_PER_MINUTE * scale)
                              if scale > 0 else None)
        self._write_lock = threading.Lock()  # id allocation and find-or-create stay atomic
        self.job_seconds = job_seconds
        self.jobs: queue.Queue[str] = queue.Queue()
        # jobs left queued or working by a previous sandbox process run again
        for (job_id,) in self.store.query("SELECT id FROM objects WHERE system=? AND collection='job_inputs' "
                                          "ORDER BY seq", (SYSTEM,)):
            self.jobs.put(job_id)
        threading.Thread(target=self._run_jobs, name="zendesk-jobs", daemon=True).start()

    # ---- plumbing
    def handler(self, fn, *, export: bool = False):
        """Wrap a sync handler(request, body) with auth, JSON parsing, the export limit and errors."""
        async def endpoint(request: Request) -> Response:
            try:
                agent_email = self._authenticate(request)
                if export and self.export_bucket is not None:
                    wait = self.export_bucket.try_acquire()
                    if wait > 0:
                        raise ZendeskError(
                            429, "APIRateLimitExceeded",
                            "Number of allowed incremental export API requests per minute exceeded",
                            headers={"Retry-After": str(max(1, math.ceil(wait)))})
                body = None
                if request.method in ("POST", "PUT"):
                    raw = await request.body()
                    try:
                        body = json.loads(raw) if raw.strip() else {}
                    except ValueError as exc:
                        raise ZendeskError(400, "InvalidValue", f"The request body is not valid JSON: {exc}") from None
                    if not isinstance(body, dict):
                        raise ZendeskError(400, "InvalidValue", "The request body must be a JSON object")
                status, payload = await asyncio.to_thread(fn, request, body, agent_email)
            except ZendeskError as exc:
                return exc.response()
            if isinstance(payload, str):  # pre-serialised export page
                return Response(payload, status_code=status, media_type="application/json; charset=utf-8")
            return JSONResponse(payload, status_code=status)
        return endpoint

    def _authenticate(self, request: Request) -> str:
        """The agent email of valid credentials, else ZendeskError 401."""
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "basic":
            try:
                user, _, password = base64.b64decode(value.strip()).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                user, password = "", ""
            if user.endswith("/token") and len(user) > 6 and secrets.compare_digest(
                    password.encode(), self.ctx.token.encode()):
                return user[: -len("/token")]
        elif scheme.lower() == "bearer" and secrets.compare_digest(value.strip().encode(), self.ctx.token.encode()):
            return "oauth-agent@sandbox.example"
        raise ZendeskError(401, "Couldn't authenticate you",
                           headers={"WWW-Authenticate": 'Basic realm="Web Password"'})

    @staticmethod
    def base_url(request: Request) -> str:
        return str(request.url).split("/api/v2/", 1)[0]

    def _next_ids(self, collection: str, counter: str, n: int) -> list[int]:
        """n new integer ids from the Store counter, kept above any seeded id."""
        highest = self.store.query(
            "SELECT max(CAST(id AS INTEGER)) FROM objects WHERE system=? AND collection=?",
            (SYSTEM, collection))[0][0] or 0
        ids = []
        for _ in range(n):
            candidate = self.store.next_id(counter)
            highest = max(highest + 1, candidate)
            ids.append(highest)
        return ids

    # ---- incremental exports
    def export(self, collection: str, request: Request) -> tuple[int, str]:
        """One page of a cursor-based incremental export of `collection`, as a JSON string."""
        params = request.query_params
        now = int(time.time())
        bound = now - self.export_delay  # changes within the last minute are left for the next export
        per_page = _int_param(params.get("per_page"), "per_page", EXPORT_PAGE_MAX, EXPORT_PAGE_MAX)
        if params.get("cursor"):
            pos = decode_export_cursor(params["cursor"])
        elif params.get("start_time") not in (None, ""):
            pos = (self._start_time(params["start_time"], bound), -1)  # -1: rows stamped start_time count
        else:
            raise ZendeskError(400, "InvalidValue", "start_time or cursor is required")
        rows = self.store.query(
            "SELECT seq, updated, data FROM objects WHERE system=? AND collection=? "
            "AND (updated, seq) > (?, ?) AND updated <= ? ORDER BY updated, seq LIMIT ?",
            (SYSTEM, collection, pos[0], pos[1], bound, per_page + 1))
        end_of_stream = len(rows) <= per_page
        rows = rows[:per_page]
        if end_of_stream:
            # with no exclusion window a change can still land in the bound's own second: resume a second early
            after = encode_export_cursor(max(bound, pos[0]) - (0 if self.export_delay else 1), SEQ_END)
        else:
            after = encode_export_cursor(rows[-1][1], rows[-1][0])
        before = encode_export_cursor(rows[0][1], rows[0][0] - 1) if rows else None
        path = str(request.url).split("?", 1)[0]
        extra = {"per_page": params["per_page"]} if params.get("per_page") else {}
        page = {
            "after_url": f"{path}?{urlencode({'cursor': after, **extra})}",
            "after_cursor": after,
            "before_url": f"{path}?{urlencode({'cursor': before, **extra})}" if before else None,
            "before_cursor": before,
            "end_of_stream": end_of_stream,
        }
        # splice the stored JSON documents in as they are: no parse and re-dump per record
        meta = json.dumps(page)[1:-1]
        return 200, '{"' + collection + '":[' + ",".join(r[2] for r in rows) + "]," + meta + "}"

    def export_by_time(self, collection: str, request: Request) -> tuple[int, str]:
        """One page of a time-based incremental export (`start_time`, `next_page`, `end_time`).

        A page never splits one second: every record stamped with the page's last second is included, and
        `next_page` starts at the following second, so a burst of same-second changes cannot loop a client.
        """
        params = request.query_params
        bound = int(time.time()) - self.export_delay
        per_page = _int_param(params.get("per_page"), "per_page", EXPORT_PAGE_MAX, EXPORT_PAGE_MAX)
        start = self._start_time(params.get("start_time"), bound)
        rows = self.store.query(
            "SELECT seq, updated, data FROM objects WHERE system=? AND collection=? "
            "AND updated >= ? AND updated <= ? ORDER BY updated, seq LIMIT ?",
            (SYSTEM, collection, start, bound, per_page + 1))
        end_of_stream = len(rows) <= per_page
        if end_of_stream:
            end_time = max(bound, start)
        else:
            rows = rows[:per_page]
            end_time = rows[-1][1]
            rows += self.store.query(
                "SELECT seq, updated, data FROM objects WHERE system=? AND collection=? "
                "AND updated = ? AND seq > ? ORDER BY seq", (SYSTEM, collection, end_time, rows[-1][0]))
        path = str(request.url).split("?", 1)[0]
        extra = {"per_page": params["per_page"]} if params.get("per_page") else {}
        resume = end_time if end_of_stream and not self.export_delay else end_time + 1
        page = {"next_page": f"{path}?{urlencode({'start_time': resume, **extra})}", "count": len(rows),
                "end_of_stream": end_of_stream, "end_time": end_time}
        return 200, '{"' + collection + '":[' + ",".join(r[2] for r in rows) + "]," + json.dumps(page)[1:-1] + "}"

    def _start_time(self, raw: str | None, bound: int) -> int:
        """A validated `start_time`: an integer at least the exclusion window in the past."""
        if raw in (None, ""):
            raise ZendeskError(400, "InvalidValue", "start_time is required (Unix epoch seconds)")
        try:
            start = int(raw)
        except ValueError:
            raise ZendeskError(400, "InvalidValue",
                               f"start_time must be a Unix epoch time in seconds, not {raw!r}") from None
        if start > bound:
            minutes = max(1, self.export_delay // 60)
            raise ZendeskError(422, "InvalidValue", "Too recent start_time. Use a start_time older than "
                               f"{minutes} minute{'s' if minutes > 1 else ''}")
        return start

    # ---- list helpers
    def list_page(self, collection: str, request: Request) -> dict[str, Any]:
        """A list endpoint page: cursor pagination with `page[size]`, else offset `page`/`per_page`."""
        params = request.query_params
        base = str(request.url).split("?", 1)[0]
        if any(k.startswith("page[") for k in params):
            size = _int_param(params.get("page[size]"), "page[size]", LIST_PAGE_MAX, LIST_PAGE_MAX)
            if params.get("page[before]"):
                before = decode_list_cursor(params["page[before]"])
                rows = self.store.query(
                    "SELECT seq, data FROM objects WHERE system=? AND collection=? AND seq < ? "
                    "ORDER BY seq DESC LIMIT ?", (SYSTEM, collection, before, size + 1))
                has_more = len(rows) > size
                rows = list(reversed(rows[:size]))
            else:
                after = decode_list_cursor(params["page[after]"]) if params.get("page[after]") else 0
                rows = self.store.query(
                    "SELECT seq, data FROM objects WHERE system=? AND collection=? AND seq > ? "
                    "ORDER BY seq LIMIT ?", (SYSTEM, collection, after, size + 1))
                has_more = len(rows) > size
                rows = rows[:size]
            after_c = encode_list_cursor(rows[-1][0]) if rows else None
            before_c = encode_list_cursor(rows[0][0]) if rows else None
            return {
                collection: [json.loads(d) for _, d in rows],
                "meta": {"has_more": has_more, "after_cursor": after_c, "before_cursor": before_c},
                "links": {
                    "prev": f"{base}?{urlencode({'page[size]': size, 'page[before]': before_c})}" if before_c else None,
                    "next": f"{base}?{urlencode({'page[size]': size, 'page[after]': after_c})}" if after_c else None,
                },
            }
        per_page = _int_param(params.get("per_page"), "per_page", 100, LIST_PAGE_MAX)
        page = _int_param(params.get("page"), "page", 1, 10**9)
        rows = self.store.query(
            "SELECT data FROM objects WHERE system=? AND collection=? ORDER BY seq LIMIT ? OFFSET ?",
            (SYSTEM, collection, per_page, (page - 1) * per_page))
        count = self.store.count(SYSTEM, collection)
        more = page * per_page < count
        return {
            collection: [json.loads(d) for (d,) in rows],
            "next_page": f"{base}?{urlencode({'page': page + 1, 'per_page': per_page})}" if more else None,
            "previous_page": f"{base}?{urlencode({'page': page - 1, 'per_page': per_page})}" if page > 1 else None,
            "count": count,
        }

    # ---- users
    def _get(self, collection: str, obj_id: Any) -> dict[str, Any]:
        obj = self.store.get(SYSTEM, collection, str(obj_id))
        if obj is None:
            raise not_found()
        return obj

    def _find_user(self, key: str) -> dict[str, Any] | None:
        ref = self.store.get(SYSTEM, "user_keys", key)
        if ref is None:
            return None
        user = self.store.get(SYSTEM, "users", str(ref["user_id"]))
        if user is None:
            return None
        # the key must still describe the user (an email can have changed since)
        current = (email_key(user["email"]) if key.startswith("email:") and user.get("email")
                   else f"external_id:{user.get('external_id')}")
        return user if current == key else None

    def _save_user(self, user: dict[str, Any], now: int, created: int | None = None) -> None:
        self.store.put(SYSTEM, "users", str(user["id"]), user, created=created, updated=now)
        keys = []
        if user.get("email"):
            keys.append((email_key(user["email"]), {"user_id": user["id"]}, now, now))
        if user.get("external_id") not in (None, ""):
            keys.append((f"external_id:{user['external_id']}", {"user_id": user["id"]}, now, now))
        if keys:
            self.store.put_many(SYSTEM, "user_keys", keys)

    def upsert_user(self, fields: dict[str, Any], base_url: str, new_id: Any) -> tuple[str, dict[str, Any]]:
        """Create or update one user identified by id, external_id or email: ("Created"|"Updated", user).

        Raises ValueError with Zendesk's detail sentence when the record is invalid. Call under the write lock.
        """
        existing = None
        if fields.get("id") is not None:
            existing = self.store.get(SYSTEM, "users", str(fields["id"]))
            if existing is None:
                raise ValueError(f"Id: {fields['id']} does not match an existing user")
        if existing is None and fields.get("external_id") not in (None, ""):
            existing = self._find_user(f"external_id:{fields['external_id']}")
        if existing is None and isinstance(fields.get("email"), str):
            existing = self._find_user(email_key(fields["email"]))
        problem = user_problem(fields, creating=existing is None)
        if problem:
            raise ValueError(problem)
        now = int(time.time())
        changes = {k: fields[k] for k in USER_WRITABLE if k in fields}
        if isinstance(changes.get("email"), str):
            changes["email"] = changes["email"].strip().lower()
            owner = self._find_user(email_key(changes["email"]))
            if owner is not None and (existing is None or owner["id"] != existing["id"]):
                raise ValueError(f"Email: {changes['email']} is already being used by another user")
        if changes.get("external_id") is not None:
            changes["external_id"] = str(changes["external_id"])
        if existing is None:
            user = {**default_user(new_id(), now, base_url), **changes}
            self._save_user(user, now, created=now)
            return "Created", user
        updated = {**existing, **changes}
        if updated != existing:
            updated["updated_at"] = zd_time(now)
            self._save_user(updated, now)
        return "Updated", updated

    def create_or_update_many(self, request: Request, body: dict[str, Any], agent: str) -> tuple[int, Any]:
        """Queue a bulk job as Zendesk does: the answer is the queued job; the worker applies the users."""
        return self._queue_users(request, body, "create_or_update", "Bulk Create or Update Users")

    def create_many(self, request: Request, body: dict[str, Any], agent: str) -> tuple[int, Any]:
        """`users/create_many`: like create_or_update_many, but a user that already exists fails."""
        return self._queue_users(request, body, "create", "Bulk Create Users")

    def destroy_many(self, request: Request, body: Any, agent: str) -> tuple[int, Any]:
        """`DELETE users/destroy_many?ids=1,2` (or `external_ids=`): a job deleting at most 100 users."""
        params = request.query_params
        by, raw = ("ids", params.get("ids")) if params.get("ids") else ("external_ids", params.get("external_ids"))
        if not raw:
            raise ZendeskError(400, "InvalidValue", "ids or external_ids is required (comma-separated)")
        values = [v.strip() for v in raw.split(",") if v.strip()]
        users = [{"id": v} if by == "ids" else {"external_id": v} for v in values]
        return self._queue_users(request, {"users": users}, "destroy", "Bulk Delete Users")

    def _queue_users(self, request: Request, body: dict[str, Any], action: str, job_type: str) -> tuple[int, Any]:
        users = body.get("users")
        if not isinstance(users, list):
            raise ZendeskError(400, "InvalidValue", 'users is required: send {"users": [{...}, ...]}')
        if len(users) > MANY_MAX:
            raise ZendeskError(400, "TooManyValues",
                               f"users has {len(users)} values; at most {MANY_MAX} are accepted per request, "
                               f"so send them in batches of {MANY_MAX}")
        base_url = self.base_url(request)
        path, method = request.url.path, request.method
        # faults are decided now, in request order, so a test's rule fires on the request it targets
        rejected = [isinstance(u, dict) and bool(k := str(u.get("email") or u.get("external_id") or u.get("id") or ""))
                    and self.ctx.faults.rejects(path, k, method) for u in users]
        failed = self.ctx.faults.take(path, ("job_failed",), method) is not None
        job_id = secrets.token_hex(16)
        now = int(time.time())
        job = {"id": job_id, "url": f"{base_url}/api/v2/job_statuses/{job_id}.json", "total": len(users),
               "progress": None, "status": "queued", "job_type": job_type, "message": None, "results": None}
        self.store.put(SYSTEM, "job_statuses", job_id, job, created=now, updated=now)
        self.store.put(SYSTEM, "job_inputs", job_id, {"users": users, "base_url": base_url, "rejected": rejected,
                                                       "failed": failed, "action": action}, created=now, updated=now)
        self.jobs.put(job_id)
        return 200, {"job_status": job}

    def _run_jobs(self) -> None:
        """The background worker: each job waits in `queued`, then goes `working` (progress moves as users
        are applied), then `completed` with one result per user, or `failed`."""
        while True:
            job_id = self.jobs.get()
            try:
                self._run_job(job_id)
            except Exception:  # a broken job must not stop the worker; it stays visible as failed
                log.exception("zendesk job %s failed", job_id)
                job = self.store.get(SYSTEM, "job_statuses", job_id)
                if job is not None:
                    self.store.put(SYSTEM, "job_statuses", job_id,
                                   {**job, "status": "failed", "message": "Internal error in the sandbox job"})

    def _run_job(self, job_id: str) -> None:
        job = self.store.get(SYSTEM, "job_statuses", job_id)
        spec = self.store.get(SYSTEM, "job_inputs", job_id)
        if job is None or spec is None or job["status"] in ("completed", "failed"):
            return
        time.sleep(self.job_seconds / 3)
        users, total = spec["users"], len(spec["users"])
        job = {**job, "status": "working", "progress": 0}
        self.store.put(SYSTEM, "job_statuses", job_id, job)
        if spec.get("failed"):
            time.sleep(self.job_seconds / 3)
            self.store.put(SYSTEM, "job_statuses", job_id, {
                **job, "status": "failed", "message": "Failed: the job could not be processed "
                "(the sandbox's fault injection failed it); nothing was changed"})
            self.store.delete(SYSTEM, "job_inputs", job_id)
            return
        results: list[dict[str, Any]] = []
        half = max(1, (total + 1) // 2)
        for start in range(0, total, half):
            with self._write_lock:
                ids = iter(self._next_ids("users", "zendesk_user",
                                          sum(1 for u in users[start:start + half] if isinstance(u, dict))))
                for index in range(start, min(start + half, total)):
                    results.append(self._apply_user(index, users[index], spec["rejected"][index], spec["base_url"], ids,
                                                    spec.get("action", "create_or_update")))
            job = {**job, "progress": len(results)}
            self.store.put(SYSTEM, "job_statuses", job_id, job)
            if len(results) < total:
                time.sleep(self.job_seconds / 3)
        now = int(time.time())
        self.store.put(SYSTEM, "job_statuses", job_id, {
            **job, "status": "completed", "progress": total, "results": results,
            "message": f"Completed at {dt.datetime.fromtimestamp(now, dt.UTC):%Y-%m-%d %H:%M:%S +0000}"})
        self.store.delete(SYSTEM, "job_inputs", job_id)

    def _apply_user(self, index: int, fields: Any, rejected: bool, base_url: str, ids,
                    action: str = "create_or_update") -> dict[str, Any]:
        """One user of a bulk job: its result entry (`Created`/`Updated`/`Deleted` with the id, or `Failed`
        with `index`)."""
        if not isinstance(fields, dict):
            return {"index": index, "error": "UserCreateError", "details": "Each user must be a JSON object",
                    "status": "Failed"}
        key = str(fields.get("email") or fields.get("external_id") or fields.get("id") or "")
        if action == "destroy":
            return self._destroy_user(index, fields, rejected)
        error = "UserUpdateError" if self._exists(fields) else "UserCreateError"
        if action == "create" and error == "UserUpdateError":
            what = (f"Email: {fields['email']}" if isinstance(fields.get("email"), str)
                    and self._find_user(email_key(fields["email"])) else f"External: {fields.get('external_id')}")
            return {"index": index, "email": fields.get("email"), "error": "UserCreateError",
                    "details": f"{what} is already being used by another user", "status": "Failed"}
        if rejected:
            return {"index": index, "email": fields.get("email"), "error": error,
                    "details": f"Email: {key} was rejected by the sandbox's fault injection", "status": "Failed"}
        try:
            status, user = self.upsert_user(fields, base_url, lambda: next(ids))
        except ValueError as exc:
            return {"index": index, "email": fields.get("email"), "error": error, "details": str(exc),
                    "status": "Failed"}
        self.store.count_writes(SYSTEM, "users", [str(user["id"])])
        result = {"id": user["id"], "status": status, "action": "create" if status == "Created" else "update",
                  "success": True}
        if user.get("email"):
            result["email"] = user["email"]
        if user.get("external_id") is not None:
            result["external_id"] = user["external_id"]
        return result

    def _destroy_user(self, index: int, fields: dict[str, Any], rejected: bool) -> dict[str, Any]:
        user = (self.store.get(SYSTEM, "users", str(fields["id"])) if fields.get("id") is not None
                else self._find_user(f"external_id:{fields.get('external_id')}"))
        if user is None or rejected:
            reason = "rejected by the sandbox's fault injection" if rejected else "not found"
            return {"index": index, "error": "UserDeleteError", "status": "Failed",
                    "details": f"User {fields.get('id') or fields.get('external_id')}: {reason}"}
        self.store.delete(SYSTEM, "users", str(user["id"]))
        for key in ([email_key(user["email"])] if user.get("email") else []) + (
                [f"external_id:{user['external_id']}"] if user.get("external_id") else []):
            self.store.delete(SYSTEM, "user_keys", key)
        self.store.count_writes(SYSTEM, "users", [str(user["id"])])
        return {"id": user["id"], "action": "delete", "status": "Deleted", "success": True}

    def _exists(self, fields: dict[str, Any]) -> bool:
        if fields.get("id") is not None and self.store.get(SYSTEM, "users", str(fields["id"])):
            return True
        if fields.get("external_id") not in (None, "") and self._find_user(f"external_id:{fields['external_id']}"):
            return True
        return isinstance(fields.get("email"), str) and self._find_user(email_key(fields["email"])) is not None

    def create_or_update_user(self, request: Request, body: dict[str, Any], agent: str) -> tuple[int, Any]:
        fields = body.get("user")
        if not isinstance(fields, dict):
            raise ZendeskError(400, "InvalidValue", 'user is required: send {"user": {...}}')
        with self._write_lock:
            try:
                status, user = self.upsert_user(fields, self.base_url(request),
                                                lambda: self._next_ids("users", "zendesk_user", 1)[0])
            except ValueError as exc:
                field = str(exc).split(":", 1)[0].lower()
                raise invalid_record(field, str(exc), "InvalidValue") from None
        return (201 if status == "Created" else 200), {"user": user}

    def create_user(self, request: Request, body: dict[str, Any], agent: str) -> tuple[int, Any]:
        fields = body.get("user")
        if not isinstance(fields, dict):
            raise ZendeskError(400, "InvalidValue", 'user is required: send {"user": {...}}')
        with self._write_lock:
            if isinstance(fields.get("email"), str) and self._find_user(email_key(fields["email"])):
                raise invalid_record("email", f"Email: {fields['email']} is already being used by another user",
                                     "DuplicateValue")
            try:
                _, user = self.upsert_user({k: v for k, v in fields.items() if k != "id"}, self.base_url(request),
                                           lambda: self._next_ids("users", "zendesk_user", 1)[0])
            except ValueError as exc:
                raise invalid_record(str(exc).split(":", 1)[0].lower(), str(exc), "InvalidValue") from None
        return 201, {"user": user}

    def update_user(self, request: Request, body: dict[str, Any], agent: str) -> tuple[int, Any]:
        fields = body.get("user")
        if not isinstance(fields, dict):
            raise ZendeskError(400, "InvalidValue", 'user is required: send {"user": {...}}')
        user_id = request.path_params["id"]
        self._get("users", user_id)
        with self._write_lock:
            try:
                _, user = self.upsert_user({**fields, "id": user_id}, self.base_url(request), lambda: user_id)
            except ValueError as exc:
                raise invalid_record(str(exc).split(":", 1)[0].lower(), str(exc), "InvalidValue") from None
        return 200, {"user": user}

    def show_user(self, request: Request, body: Any, agent: str) -> tuple[int, Any]:
        return 200, {"user": self._get("users", request.path_params["id"])}

    def list_users(self, request: Request, body: Any, agent: str) -> tuple[int, Any]:
        return 200, self.list_page("users", request)

    def search_users(self, request: Request, body: Any, agent: str) -> tuple[int, Any]:
        params = request.query_params
        query, external_id = params.get("query", ""), params.get("external_id")
        found = None
        if external_id:
            found = self._find_user(f"external_id:{external_id}")
        elif query:
            term = query.split(":", 1)[1] if query.startswith("email:") else query
            if not EMAIL_RE.match(term.strip()):
                raise ZendeskError(400, "InvalidValue", "The sandbox searches users by email (query=email:<address>"
                                   " or query=<address>) or by external_id=<id>")
            found = self._find_user(email_key(term))
        else:
            raise ZendeskError(400, "InvalidValue", "query or external_id is required")
        users = [found] if found else []
        return 200, {"users": users, "next_page": None, "previous_page": None, "count": len(users)}

    def list_user_fields(self, request: Request, body: Any, agent: str) -> tuple[int, Any]:
        """`GET user_fields`: the account's custom user fields, in creation order."""
        fields = [json.loads(d) for (d,) in self.store.query(
            "SELECT data FROM objects WHERE system=? AND collection='user_fields' ORDER BY seq", (SYSTEM,))]
        return 200, {"user_fields": fields, "next_page": None, "previous_page": None, "count": len(fields)}

    def create_user_field(self, request: Request, body: dict[str, Any], agent: str) -> tuple[int, Any]:
        """`POST user_fields`: a custom user field (`type`, `title`, `key`); the key must be new."""
        spec = body.get("user_field")
        if not isinstance(spec, dict):
            raise ZendeskError(400, "InvalidValue", 'user_field is required: send {"user_field": {...}}')
        ftype, title, key = spec.get("type"), spec.get("title"), spec.get("key")
        if ftype not in USER_FIELD_TYPES:
            raise invalid_record("type", f"Type: {ftype} is not one of {', '.join(USER_FIELD_TYPES)}", "InvalidValue")
        if not isinstance(title, str) or not title.strip():
            raise invalid_record("title", "Title: cannot be blank", "BlankValue")
        if not isinstance(key, str) or not USER_FIELD_KEY.match(key):
            raise invalid_record("key", "Key: must be letters, digits and underscores, starting with a letter",
                                 "InvalidValue")
        now = int(time.time())
        with self._write_lock:
            if self.store.get(SYSTEM, "user_fields_by_key", key) is not None:
                raise invalid_record("key", f"Key: {key} has already been taken", "DuplicateValue")
            field_id = self._next_ids("user_fields", "zendesk_user_field", 1)[0]
            field = {"url": f"{self.base_url(request)}/api/v2/user_fields/{field_id}.json", "id": field_id,
                     "type": ftype, "key": key, "title": title, "raw_title": title,
                     "description": str(spec.get("description") or ""), "position": 0, "active": True,
                     "system": False, "created_at": zd_time(now), "updated_at": zd_time(now)}
            self.store.put(SYSTEM, "user_fields", str(field_id), field, created=now, updated=now)
            self.store.put(SYSTEM, "user_fields_by_key", key, {"id": field_id}, created=now, updated=now)
        return 201, {"user_field": field}

    def show_job_status(self, request: Request, body: Any, agent: str) -> tuple[int, Any]:
        return 200, {"job_status": self._get("job_statuses", request.path_params["id"])}

    # ---- tickets
    def _requester_id(self, spec: dict[str, Any], agent: str, base_url: str) -> int:
        if spec.get("requester_id") is not None:
            if self.store.get(SYSTEM, "users", str(spec["requester_id"])) is None:
                raise invalid_record("requester_id", f"Requester: {spec['requester_id']} does not exist",
                                     "InvalidValue")
            return int(spec["requester_id"])
        requester = spec.get("requester")
        fields = (dict(requester) if isinstance(requester, dict)
                  else {"email": agent, "name": agent.split("@", 1)[0], "role": "admin"})
        if not fields.get("name") and fields.get("email"):
            fields["name"] = str(fields["email"]).split("@", 1)[0]
        try:
            _, user = self.upsert_user(fields, base_url, lambda: self._next_ids("users", "zendesk_user", 1)[0])
        except ValueError as exc:
            raise invalid_record("requester", f"Requester: {exc}", "InvalidValue") from None
        return user["id"]

    @staticmethod
    def _check_ticket_fields(spec: dict[str, Any]) -> None:
        for field, allowed in (("status", TICKET_STATUSES), ("priority", PRIORITIES), ("type", TICKET_TYPES)):
            value = spec.get(field)
            if value is not None and value not in allowed:
                raise invalid_record(field, f"{field.capitalize()}: {value} is not one of {', '.join(allowed)}",
                                     "InvalidValue")
        if spec.get("tags") is not None and not (
                isinstance(spec["tags"], list) and all(isinstance(t, str) for t in spec["tags"])):
            raise invalid_record("tags", "Tags: must be a list of strings", "InvalidValue")

    def create_ticket(self, request: Request, body: dict[str, Any], agent: str) -> tuple[int, Any]:
        spec = body.get("ticket")
        if not isinstance(spec, dict):
            raise ZendeskError(400, "InvalidValue", 'ticket is required: send {"ticket": {...}}')
        comment = spec.get("comment") if isinstance(spec.get("comment"), dict) else {}
        description = comment.get("body") or comment.get("html_body") or spec.get("description")
        if not description:
            raise invalid_record("base", "Description: cannot be blank", "BlankValue")
        self._check_ticket_fields(spec)
        base_url = self.base_url(request)
        now = int(time.time())
        with self._write_lock:
            requester_id = self._requester_id(spec, agent, base_url)
            ticket_id = self._next_ids("tickets", "zendesk_ticket", 1)[0]
            ticket = default_ticket(ticket_id, now, base_url)
            ticket.update({k: spec[k] for k in TICKET_WRITABLE if k in spec})
            ticket.update({"description": description, "raw_subject": ticket.get("subject"),
                           "requester_id": requester_id, "submitter_id": spec.get("submitter_id") or requester_id,
                           "is_public": comment.get("public", True)})
            if "status" not in spec:
                ticket["status"] = "open" if ticket.get("assignee_id") else "new"
            self.store.put(SYSTEM, "tickets", str(ticket_id), ticket, created=now, updated=now)
        audit = {"id": self.store.next_id("zendesk_audit"), "ticket_id": ticket_id, "created_at": zd_time(now),
                 "author_id": ticket["submitter_id"], "metadata": {"system": {}, "custom": {}},
                 "events": [{"id": self.store.next_id("zendesk_event"), "type": "Comment", "author_id":
                             ticket["submitter_id"], "body": description, "public": ticket["is_public"]}],
                 "via": ticket["via"]}
        return 201, {"ticket": ticket, "audit": audit}

    def update_ticket(self, request: Request, body: dict[str, Any], agent: str) -> tuple[int, Any]:
        spec = body.get("ticket")
        if not isinstance(spec, dict):
            raise ZendeskError(400, "InvalidValue", 'ticket is required: send {"ticket": {...}}')
        self._check_ticket_fields(spec)
        ticket_id = request.path_params["id"]
        now = int(time.time())
        with self._write_lock:
            ticket = self._get("tickets", ticket_id)
            if ticket.get("status") == "closed":
                raise invalid_record("status", "Status: closed prevents ticket update", "ClosedPreventsUpdate")
            if spec.get("requester_id") is not None:
                self._requester_id({"requester_id": spec["requester_id"]}, agent, self.base_url(request))
            updated = {**ticket, **{k: spec[k] for k in TICKET_WRITABLE if k in spec}}
            tags = list(updated.get("tags") or [])
            tags += [t for t in spec.get("additional_tags") or [] if t not in tags]
            updated["tags"] = [t for t in tags if t not in (spec.get("remove_tags") or [])]
            if "subject" in spec:
                updated["raw_subject"] = spec["subject"]
            comment = spec.get("comment") if isinstance(spec.get("comment"), dict) else None
            if updated != ticket or comment:
                updated["updated_at"] = zd_time(now)
                updated["generated_timestamp"] = now
                self.store.put(SYSTEM, "tickets", str(ticket_id), updated, updated=now)
        events = [{"id": self.store.next_id("zendesk_event"), "type": "Change", "field_name": k,
                   "value": updated.get(k), "previous_value": ticket.get(k)}
                  for k in TICKET_WRITABLE if updated.get(k) != ticket.get(k)]
        if comment:
            events.append({"id": self.store.next_id("zendesk_event"), "type": "Comment",
                           "body": comment.get("body"), "public": comment.get("public", True)})
        audit = {"id": self.store.next_id("zendesk_audit"), "ticket_id": int(ticket_id), "created_at": zd_time(now),
                 "author_id": updated.get("submitter_id"), "metadata": {"system": {}, "custom": {}},
                 "events": events, "via": {"channel": "api", "source": {"from": {}, "to": {}, "rel": None}}}
        return 200, {"ticket": updated, "audit": audit}

    def show_ticket(self, request: Request, body: Any, agent: str) -> tuple[int, Any]:
        return 200, {"ticket": self._get("tickets", request.path_params["id"])}

    def list_tickets(self, request: Request, body: Any, agent: str) -> tuple[int, Any]:
        return 200, self.list_page("tickets", request)

    # ---- seeding
    def seed(self, collection: str, objects: list[dict[str, Any]]) -> int:
        """Store seeded users or tickets (Zendesk JSON with integer id, ISO-8601 created_at/updated_at).

        Objects are kept as given (they are already in the API's representation); tickets gain the
        `generated_timestamp` the incremental export reports, and users are indexed by email and external_id.
        """
        if collection not in ("users", "tickets"):
            raise ValueError(f"zendesk seeds users or tickets, not {collection!r}")
        now = int(time.time())
        rows, keys = [], []
        for obj in objects:
            obj_id = int(obj["id"])
            created = parse_zd_time(obj["created_at"]) if obj.get("created_at") else now
            updated = parse_zd_time(obj["updated_at"]) if obj.get("updated_at") else created
            obj["id"] = obj_id  # the app parsed these objects for this call: updating them in place is safe
            obj.setdefault("created_at", zd_time(created))
            obj.setdefault("updated_at", zd_time(updated))
            if collection == "tickets":
                obj["generated_timestamp"] = updated
            else:
                if obj.get("email"):
                    keys.append((email_key(obj["email"]), {"user_id": obj_id}, created, updated))
                if obj.get("external_id") not in (None, ""):
                    keys.append((f"external_id:{obj['external_id']}", {"user_id": obj_id}, created, updated))
            rows.append((str(obj_id), obj, created, updated))
        n = self.store.put_many(SYSTEM, collection, rows)
        if keys:
            self.store.put_many(SYSTEM, "user_keys", keys)
        return n


def rate_limit_response(retry_after: float) -> Response:
    """Zendesk's account rate limit: 429 with a whole-second `Retry-After`."""
    return JSONResponse({"error": "APIRateLimitExceeded",
                         "description": "Number of allowed API requests per minute exceeded"},
                        status_code=429, headers={"Retry-After": str(max(1, math.ceil(retry_after)))})


def error_response(status: int) -> Response:
    """A Zendesk server error body; 503 carries `Retry-After` as Zendesk's maintenance answers do."""
    if status == 503:
        return JSONResponse({"error": "ServiceUnavailable", "description": "Service temporarily unavailable"},
                            status_code=503, headers={"Retry-After": "1"})
    return JSONResponse({"error": "InternalServerError", "description": "Something went wrong on our end"},
                        status_code=status)


def build(ctx: SandboxContext) -> Emulation:
    """The Zendesk Support API emulation for the sandbox app."""
    raw = os.environ.get("GROWTH_STACK_SANDBOX_ZENDESK_EXPORT_DELAY", str(DEFAULT_EXPORT_DELAY))
    try:
        delay = max(0, int(raw))
    except ValueError:
        raise ValueError(f"GROWTH_STACK_SANDBOX_ZENDESK_EXPORT_DELAY must be a whole number of seconds, "
                         f"not {raw!r}; unset it for Zendesk's one minute") from None
    raw_job = os.environ.get("GROWTH_STACK_SANDBOX_ZENDESK_JOB_SECONDS", "0.3")
    try:
        job_seconds = max(0.0, float(raw_job))
    except ValueError:
        raise ValueError(f"GROWTH_STACK_SANDBOX_ZENDESK_JOB_SECONDS must be a number of seconds, not {raw_job!r}; "
                         "unset it for the default of 0.3") from None
    emu = ZendeskEmulation(ctx, delay, job_seconds)

    def both(path: str, fn, methods: list[str], export: bool = False) -> list[Route]:
        endpoint = emu.handler(fn, export=export)
        return [Route(f"/api/v2/{path}.json", endpoint, methods=methods),
                Route(f"/api/v2/{path}", endpoint, methods=methods)]

    routes = [
        *both("incremental/tickets/cursor", lambda r, b, a: emu.export("tickets", r), ["GET"], export=True),
        *both("incremental/users/cursor", lambda r, b, a: emu.export("users", r), ["GET"], export=True),
        *both("incremental/tickets", lambda r, b, a: emu.export_by_time("tickets", r), ["GET"], export=True),
        *both("incremental/users", lambda r, b, a: emu.export_by_time("users", r), ["GET"], export=True),
        *both("users/create_or_update_many", emu.create_or_update_many, ["POST"]),
        *both("users/create_many", emu.create_many, ["POST"]),
        *both("users/destroy_many", emu.destroy_many, ["DELETE"]),
        *both("users/create_or_update", emu.create_or_update_user, ["POST"]),
        *both("users/search", emu.search_users, ["GET"]),
        *both("users/{id:int}", emu.show_user, ["GET"]),
        *both("users/{id:int}", emu.update_user, ["PUT"]),
        *both("users", emu.list_users, ["GET"]),
        *both("users", emu.create_user, ["POST"]),
        *both("job_statuses/{id}", emu.show_job_status, ["GET"]),
        *both("user_fields", emu.list_user_fields, ["GET"]),
        *both("user_fields", emu.create_user_field, ["POST"]),
        *both("tickets/{id:int}", emu.show_ticket, ["GET"]),
        *both("tickets/{id:int}", emu.update_ticket, ["PUT"]),
        *both("tickets", emu.list_tickets, ["GET"]),
        *both("tickets", emu.create_ticket, ["POST"]),
    ]
    return Emulation(
        prefix="/zendesk",
        routes=routes,
        rate_limit_response=rate_limit_response,
        error_response=error_response,
        rate=RATE_PER_MINUTE / 60,
        burst=RATE_PER_MINUTE,
        seed=emu.seed,
    )
