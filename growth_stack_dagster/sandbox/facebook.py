"""Facebook Marketing API emulation, mounted at `/facebook` (the Graph API host's root).

Serves any Graph version (`/facebook/v21.0/...`):
- `GET act_<id>` and `GET act_<id>/campaigns` (fields, limit, cursor paging), `GET <campaign_id>`;
- `GET act_<id>/insights` and `GET <campaign_id>/insights` (level, time_range or date_preset,
  time_increment, fields, cursor paging) computed from seeded per-campaign daily rows, and the async
  form (`POST .../insights` -> `report_run_id`, `GET <report_run_id>`, `GET <report_run_id>/insights`);
- customer-file custom audiences: `POST|GET act_<id>/customaudiences`, `GET|POST|DELETE <audience_id>`,
  `POST|DELETE <audience_id>/users` with `payload={"schema", "data"}` of SHA-256 hashes (at most
  10,000 per request) and an optional upload `session={"session_id", "batch_seq", "last_batch_flag",
  "estimated_num_total"}` (a session takes no batch after its last), `GET <audience_id>/sessions`.
  Member hashes are kept so `approximate_count_*` reads back exact counts, and tests read the members
  themselves at `GET /facebook/_sandbox/customaudiences/<audience_id>/users` (not a real path).

Auth is the `access_token` parameter (query or form) or an `Authorization: Bearer` (or `OAuth`)
header, equal to the sandbox token. Errors use the Graph error object (`{"error": {"message", "type", "code", "fbtrace_id"}}`), and
throttling answers like the Business Use Case limit for ads_management (code 80004, HTTP 400, with the
`x-business-use-case-usage` header).
"""

from __future__ import annotations

import asyncio
import base64
import calendar
import collections
import datetime as dt
import email.parser
import email.policy
import json
import math
import re
import secrets
import threading
import time
from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qsl, urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from growth_stack_dagster.sandbox.core import Emulation, SandboxContext

SYSTEM = "facebook"
DEFAULT_ACCOUNT_ID = "1000"
GRAPH_VERSION = re.compile(r"^v\d+\.\d+$")
MAX_USERS_PER_REQUEST = 10_000
# Business Use Case limit for ads_management, standard access: 9,000 points per 300 s per ad
# account, a read costing 1 point; modelled as a bucket refilling 30 per second up to 9,000.
BUC_WINDOW_SECONDS = 300
BUC_MAX_SCORE = 9000
DEFAULT_PAGE_LIMIT = 25
MAX_PAGE_LIMIT = 5000
SHA256_HEX = re.compile(r"^[0-9a-fA-F]{64}$")

# Schemas whose values are SHA-256 hashes of normalised PII; the others are sent in clear.
HASHED_KEYS = {
    "EMAIL", "EMAIL_SHA256", "PHONE", "PHONE_SHA256", "GEN", "DOBY", "DOBM", "DOBD", "LN", "FN",
    "FI", "CT", "ST", "ZIP", "COUNTRY",
}
CLEAR_KEYS = {"EXTERN_ID", "MADID", "MOBILE_ADVERTISER_ID", "APPUID", "UID", "PAGEUID", "LOOKALIKE_VALUE"}

CAMPAIGN_FIELDS = frozenset("""
account_id adbatch adlabels advantage_state_info bid_constraints bid_strategy boosted_object_id
brand_lift_studies budget_rebalance_flag budget_remaining budget_schedule_specs buying_type
campaign_group_active_time can_create_brand_lift_study can_use_spend_cap configured_status created_time
daily_budget effective_status execution_options frequency_control_specs has_secondary_skadnetwork_reporting id
is_adset_budget_sharing_enabled is_budget_schedule_enabled is_direct_send_campaign is_message_campaign
is_meta_moment_maker_enabled is_pca_unified is_reels_trending_ads_enabled is_skadnetwork_attribution
issues_info iterative_split_test_configs last_budget_toggling_time lifetime_budget name objective pacing_type
primary_attribution promoted_object recommendations smart_promotion_type source_campaign source_campaign_id
source_recommendation_type special_ad_categories special_ad_category special_ad_category_country spend_cap
start_time status stop_time topline_id updated_time
""".split())  # noqa: SIM905 (the field list reads best as text)
AUDIENCE_FIELDS = frozenset("""
account_id allowed_domains approximate_count approximate_count_lower_bound approximate_count_upper_bound
associated_audience_id audience_labels claim_objective content_type countries creation_params
customer_file_source data_source data_source_types datafile_custom_audience_uploading_status dataset_id
delete_time delivery_status description enable_fetch_or_create event_source_group event_sources
excluded_custom_audiences exclusions external_event_source facebook_page_id fields_violating_integrity_policy
household_audience id included_custom_audiences inclusionOperator inclusions is_eligible_for_sac_campaigns
is_household is_snapshot is_value_based list_of_accounts lookalike_audience_ids lookalike_spec
marketing_message_channels messenger_marketing_messages_page name operation_status opt_out_link
origin_audience_id owner_business page_deletion_marked_delete_time parent_audience_id partner_reference_key
permission_for_actions pixel_id prefill product_set_id regulated_audience_spec retention_days
rev_share_policy_id rule rule_aggregation rule_v2 seed_audience sharing_status subscription_info subtype
time_content_updated time_created time_updated usage_restriction use_for_products use_in_campaigns
video_group_ids whats_app_business_phone_number_id
""".split())  # noqa: SIM905 (the field list reads best as text)
ACCOUNT_FIELDS = frozenset((
    "id", "account_id", "name", "account_status", "currency", "timezone_name", "timezone_offset_hours_utc",
    "amount_spent", "business_name", "created_time"
))
REPORT_RUN_FIELDS = frozenset((
    "id", "account_id", "async_percent_completion", "async_report_url", "async_status", "date_start", "date_stop",
    "emails", "error_code", "error_message", "error_subcode", "error_user_msg", "error_user_title",
    "friendly_name", "is_async_export", "is_bookmarked", "is_running", "schedule_id", "time_completed", "time_ref",
))
REPORT_PAGING = ("limit", "after", "before")
INSIGHT_SUMS = ("spend", "impressions", "clicks", "reach", "unique_clicks", "inline_link_clicks")
INSIGHT_LEVELS = ("account", "campaign")
DATE_PRESETS = ("today", "yesterday", "this_month", "last_month", "last_3d", "last_7d", "last_14d",
                "last_28d", "last_30d", "last_90d", "maximum")


class GraphError(Exception):
    """A Graph API error object, raised by handlers and rendered by `_graph_error`."""

    def __init__(self, message: str, code: int = 100, *, status: int = 400, type_: str = "OAuthException",
                 subcode: int | None = None, transient: bool | None = None):
        super().__init__(message)
        self.message, self.code, self.status, self.type = message, code, status, type_
        self.subcode, self.transient = subcode, transient


def fbtrace_id() -> str:
    """A trace id shaped like Facebook's (11 url-safe base64 characters)."""
    return base64.urlsafe_b64encode(secrets.token_bytes(8)).decode().rstrip("=")


def error_body(message: str, code: int, type_: str = "OAuthException", subcode: int | None = None,
               transient: bool | None = None) -> dict[str, Any]:
    err: dict[str, Any] = {"message": message, "type": type_, "code": code}
    if subcode is not None:
        err["error_subcode"] = subcode
    if transient is not None:
        err["is_transient"] = transient
    err["fbtrace_id"] = fbtrace_id()
    return {"error": err}


def _graph_error(exc: GraphError, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(error_body(exc.message, exc.code, exc.type, exc.subcode, exc.transient),
                        status_code=exc.status, headers=headers)


def nonexistent_object(node: str, method: str) -> GraphError:
    return GraphError(
        f"Unsupported {method.lower()} request. Object with ID '{node}' does not exist, cannot be loaded due "
        "to missing permissions, or does not support this operation. Please read the Graph API "
        "documentation at https://developers.facebook.com/docs/graph-api",
        100, type_="GraphMethodException", subcode=33,
    )


# --------------------------------------------------------------------------- pure helpers
def parse_fb_time(value: str) -> int:
    """Epoch seconds of a Graph timestamp (`2026-01-01T00:00:00+0000`, also ISO-8601 with `Z`)."""
    parsed = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    return int((parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)).timestamp())


def day_epoch(day: dt.date) -> int:
    return calendar.timegm(day.timetuple())


def parse_day(value: Any, name: str) -> dt.date:
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise GraphError(f"(#100) {name} must be a date in YYYY-MM-DD format, not {value!r}") from None


def encode_cursor(value: int | str) -> str:
    return base64.urlsafe_b64encode(str(value).encode()).decode().rstrip("=")


def decode_cursor(cursor: str, name: str = "after") -> int:
    try:
        return int(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode())
    except (ValueError, UnicodeDecodeError):
        raise GraphError(f"(#100) The '{name}' cursor {cursor!r} is not a cursor returned by this API") from None


def parse_fields(value: Any, known: frozenset[str], node_type: str) -> list[str] | None:
    """The requested field names (modifiers such as `.limit(5)` or `{...}` stripped), or None.

    Graph takes `fields` comma-separated or as a JSON list (what the SDK sends in POST bodies).
    """
    if isinstance(value, str) and value.strip().startswith("["):
        value = _loads(value, "fields")
    if isinstance(value, list):
        value = ",".join(str(v) for v in value)
    if value is None or not str(value).strip():
        return None
    names, depth, current = [], 0, ""
    for ch in str(value):  # split on top-level commas only: `insights{spend,clicks}` is one field
        if ch in "{(":
            depth += 1
        elif ch in "})":
            depth -= 1
        if ch == "," and depth == 0:
            names.append(current)
            current = ""
        else:
            current += ch
    names.append(current)
    out = []
    for raw in names:
        name = re.split(r"[.{(]", raw.strip(), maxsplit=1)[0]
        if not name:
            continue
        if known and name not in known:
            raise GraphError(f"(#100) Tried accessing nonexisting field ({name}) on node type ({node_type})")
        out.append(name)
    return out


def select_fields(obj: dict[str, Any], fields: list[str] | None) -> dict[str, Any]:
    """The object limited to `fields` (always with `id`); Graph returns only `id` when none are asked."""
    if not fields:
        return {"id": obj["id"]}
    out = {f: obj[f] for f in fields if f in obj}
    out["id"] = obj["id"]
    return out


def resolve_time_range(params: dict[str, Any], today: dt.date) -> tuple[dt.date, dt.date]:
    """(since, until) from `time_range` JSON, else `date_preset` (default last_30d), inclusive."""
    raw = params.get("time_range")
    if raw not in (None, ""):
        spec = raw if isinstance(raw, dict) else _loads(raw, "time_range")
        if not isinstance(spec, dict) or "since" not in spec or "until" not in spec:
            raise GraphError('(#100) time_range must be a JSON object {"since": "YYYY-MM-DD", "until": "YYYY-MM-DD"}')
        since, until = parse_day(spec["since"], "time_range.since"), parse_day(spec["until"], "time_range.until")
        if since > until:
            raise GraphError(f"(#100) time_range.since ({since}) must not be after time_range.until ({until})")
        return since, until
    preset = str(params.get("date_preset") or "last_30d")
    if preset not in DATE_PRESETS:
        raise GraphError(f"(#100) date_preset must be one of {', '.join(DATE_PRESETS)}, not {preset!r}")
    if preset == "today":
        return today, today
    if preset == "yesterday":
        return today - dt.timedelta(days=1), today - dt.timedelta(days=1)
    if preset == "this_month":
        return today.replace(day=1), today
    if preset == "last_month":
        end = today.replace(day=1) - dt.timedelta(days=1)
        return end.replace(day=1), end
    if preset == "maximum":
        return dt.date(2000, 1, 1), today
    days = int(preset[len("last_"):-1])
    return today - dt.timedelta(days=days), today - dt.timedelta(days=1)


def bucket_of(day: dt.date, since: dt.date, until: dt.date, increment: str) -> tuple[dt.date, dt.date]:
    """The reporting bucket [start, stop] that `day` falls in for a `time_increment`."""
    if increment == "all_days":
        return since, until
    if increment == "monthly":
        start = max(day.replace(day=1), since)
        last = day.replace(day=calendar.monthrange(day.year, day.month)[1])
        return start, min(last, until)
    n = int(increment)
    start = since + dt.timedelta(days=((day - since).days // n) * n)
    return start, min(start + dt.timedelta(days=n - 1), until)


def _number(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _fmt_money(value: float) -> str:
    return f"{value:.2f}"


def _fmt_ratio(value: float) -> str:
    return f"{value:.6f}".rstrip("0").rstrip(".") or "0"


def aggregate_insight_rows(rows: list[dict[str, Any]], fields: list[str], level: str,
                           start: dt.date, stop: dt.date) -> dict[str, Any]:
    """One insights row for a bucket: summed counters, derived ratios, the bucket's dates."""
    sums: dict[str, float] = {}
    for key in INSIGHT_SUMS:
        values = [_number(r.get(key)) for r in rows if r.get(key) is not None]
        if values:
            sums[key] = sum(v for v in values if v is not None)
    first = rows[0]
    out: dict[str, Any] = {}
    for field in fields:
        if field in ("date_start", "date_stop"):
            continue
        if field == "account_id":
            out[field] = str(first.get("account_id", DEFAULT_ACCOUNT_ID))
        elif field == "account_name":
            out[field] = first.get("account_name", "Sandbox Ad Account")
        elif field == "account_currency":
            out[field] = first.get("account_currency", "USD")
        elif field in ("campaign_id", "campaign_name") and level == "account":
            continue
        elif field in sums:
            if len(rows) == 1 and isinstance(first.get(field), str):
                out[field] = first[field]  # a single seeded row keeps its exact string
            elif field == "spend":
                out[field] = _fmt_money(sums[field])
            else:
                out[field] = str(int(round(sums[field])))
        elif field == "ctr" and sums.get("impressions"):
            out[field] = _fmt_ratio(sums.get("clicks", 0) / sums["impressions"] * 100)
        elif field == "cpc" and sums.get("clicks"):
            out[field] = _fmt_ratio(sums.get("spend", 0) / sums["clicks"])
        elif field == "cpm" and sums.get("impressions"):
            out[field] = _fmt_ratio(sums.get("spend", 0) / sums["impressions"] * 1000)
        elif field == "frequency" and sums.get("reach"):
            out[field] = _fmt_ratio(sums.get("impressions", 0) / sums["reach"])
        elif field in first:
            out[field] = first[field]
        # any other metric has no data in the sandbox; Graph omits metrics without data
    out["date_start"] = start.isoformat()
    out["date_stop"] = stop.isoformat()
    return out


def validate_user_payload(payload: Any) -> tuple[list[str], list[list[Any]]]:
    """(schema keys, rows) of a custom-audience `payload`, or GraphError saying what is wrong."""
    if not isinstance(payload, dict):
        raise GraphError('(#100) payload must be a JSON object {"schema": ..., "data": [...]}')
    schema = payload.get("schema")
    if isinstance(schema, str):
        keys, single = [schema], True
    elif isinstance(schema, list) and schema and all(isinstance(k, str) for k in schema):
        keys, single = list(schema), False
    else:
        raise GraphError("(#100) payload.schema must be a schema name such as \"EMAIL_SHA256\" or a list of them")
    unknown = [k for k in keys if k not in HASHED_KEYS | CLEAR_KEYS]
    if unknown:
        raise GraphError(f"(#100) payload.schema has unsupported keys {unknown}; "
                         f"use {sorted(HASHED_KEYS | CLEAR_KEYS)}")
    data = payload.get("data")
    if not isinstance(data, list) or not data:
        raise GraphError("(#100) payload.data must be a non-empty list of users")
    if len(data) > MAX_USERS_PER_REQUEST:
        raise GraphError(
            f"(#100) payload.data has {len(data)} users; a request can add or remove at most "
            f"{MAX_USERS_PER_REQUEST} users. Send the list in batches of {MAX_USERS_PER_REQUEST} or fewer",
            100, subcode=1870053,
        )
    rows = []
    for entry in data:
        if single or (len(keys) == 1 and not isinstance(entry, list)):
            rows.append([entry])
        else:
            rows.append(entry if isinstance(entry, list) else [entry])
    return keys, rows


def member_key(keys: list[str], row: list[Any]) -> tuple[str | None, str]:
    """(key identifying the member, '') or (None, reason the entry is invalid)."""
    if len(row) != len(keys):
        return None, f"expected {len(keys)} values for schema {keys}, got {len(row)}"
    parts = []
    for key, value in zip(keys, row, strict=True):
        if not isinstance(value, str) or not value.strip():
            return None, f"{key} value is empty or not a string"
        if key in HASHED_KEYS:
            if not SHA256_HEX.match(value):
                return None, (f"{key} value is not a SHA-256 hash: normalise it (trim, lower-case) and send its "
                              "64-character hex SHA-256 digest")
            parts.append(value.lower())
        else:
            parts.append(value)
    return "|".join(parts), ""


def parse_session(session: Any) -> dict[str, Any]:
    """A custom-audience upload `session` ({session_id, batch_seq, last_batch_flag, estimated_num_total}),
    or a one-batch session of its own when the request has none."""
    if session is None:
        return {"session_id": secrets.randbits(62), "batch_seq": 1, "last_batch_flag": True}
    if not isinstance(session, dict):
        raise GraphError('(#100) session must be a JSON object {"session_id", "batch_seq", "last_batch_flag"}')
    out: dict[str, Any] = {}
    for name in ("session_id", "batch_seq"):
        value = session.get(name)
        try:
            out[name] = int(value)
        except (TypeError, ValueError):
            raise GraphError(f"(#100) session.{name} must be a positive integer, not {value!r}") from None
        if out[name] < 1:
            raise GraphError(f"(#100) session.{name} must be a positive integer, not {value!r}")
    flag = session.get("last_batch_flag", False)
    if not isinstance(flag, bool):
        raise GraphError(f"(#100) session.last_batch_flag must be true or false, not {flag!r}")
    out["last_batch_flag"] = flag
    total = session.get("estimated_num_total")
    if total is not None:
        if isinstance(total, bool) or not isinstance(total, int) or total < 0:
            raise GraphError(f"(#100) session.estimated_num_total must be a whole number, not {total!r}")
        out["estimated_num_total"] = total
    return out


def _loads(raw: Any, name: str) -> Any:
    if not isinstance(raw, (str, bytes)):
        return raw
    try:
        return json.loads(raw)
    except ValueError:
        raise GraphError(f"(#100) {name} must be valid JSON") from None


def _limit(params: dict[str, Any]) -> int:
    raw = params.get("limit", DEFAULT_PAGE_LIMIT)
    try:
        limit = int(raw)
    except (TypeError, ValueError):
        raise GraphError(f"(#100) limit must be an integer, not {raw!r}") from None
    if limit < 1:
        raise GraphError("(#100) limit must be a positive integer")
    return min(limit, MAX_PAGE_LIMIT)


# --------------------------------------------------------------------------- usage header
class _Usage:
    """Calls in the last 300 s, reported as Facebook's `x-business-use-case-usage` percentages."""

    def __init__(self, scale: float):
        self.capacity = BUC_MAX_SCORE * (scale if scale > 0 else 1)
        self._calls: collections.deque[float] = collections.deque()
        self._lock = threading.Lock()

    def record(self) -> int:
        now = time.monotonic()
        with self._lock:
            self._calls.append(now)
            while self._calls and self._calls[0] < now - BUC_WINDOW_SECONDS:
                self._calls.popleft()
            return len(self._calls)

    def header(self, account_id: str, calls: int, regain_minutes: int = 0) -> str:
        pct = min(100, int(calls * 100 / self.capacity)) if regain_minutes == 0 else 100
        return json.dumps({account_id: [{
            "type": "ads_management", "call_count": pct, "total_cputime": max(0, pct // 4),
            "total_time": max(0, pct // 3), "estimated_time_to_regain_access": regain_minutes,
            "ads_api_access_tier": "standard_access",
        }]}, separators=(",", ":"))


# --------------------------------------------------------------------------- request parsing
async def _request_params(request: Request) -> dict[str, Any]:
    """Query parameters merged with a form, multipart or JSON body (the Graph API accepts all)."""
    params: dict[str, Any] = dict(request.query_params)
    body = await request.body()
    if not body:
        return params
    ctype = request.headers.get("content-type", "")
    if "application/json" in ctype:
        obj = _loads(body, "the JSON request body")
        if not isinstance(obj, dict):
            raise GraphError("(#100) the JSON request body must be an object of parameters")
        params.update(obj)
    elif "multipart/form-data" in ctype:
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            b"Content-Type: " + ctype.encode() + b"\r\n\r\n" + body)
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            if name:
                params[name] = part.get_payload(decode=True).decode("utf-8", "replace")
    else:
        params.update(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
    return params


def graph_header_token(request: Request) -> str | None:
    """The token of an `Authorization` header as the Graph API takes it: `Bearer <token>` or
    `OAuth <token>` (keeps the token out of URLs, and so out of access logs)."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() in ("bearer", "oauth") and token.strip() else None


# --------------------------------------------------------------------------- the emulation
class FacebookEmulation:
    def __init__(self, ctx: SandboxContext):
        self.ctx = ctx
        self.store = ctx.store
        self.usage = _Usage(ctx.rate_limit_scale)
        self._session_lock = threading.Lock()  # the batches of one upload session update it one at a time

    # ---- plumbing
    async def dispatch(self, request: Request) -> Response:
        version, path = request.path_params["version"], request.path_params["path"].strip("/")
        calls = self.usage.record()
        headers = {"x-business-use-case-usage": self.usage.header(DEFAULT_ACCOUNT_ID, calls),
                   "facebook-api-version": version}
        if path.endswith("/insights"):  # the insights-specific throttle header
            pct = min(100, int(calls * 100 / self.usage.capacity))
            headers["x-fb-ads-insights-throttle"] = json.dumps(
                {"app_id_util_pct": pct, "acc_id_util_pct": pct, "ads_api_access_tier": "standard_access"})
        try:
            if not GRAPH_VERSION.match(version):
                raise GraphError(f"Unknown path components: /{version}/{path}", 2500)
            params = await _request_params(request)
            self._authenticate(request, params)
            method = request.method
            override = str(params.get("method", "")).upper()
            if method == "POST" and override in ("DELETE", "GET"):
                method = override  # the Graph API lets POST carry `method=delete`
            body = await asyncio.to_thread(self.route, method, path.split("/"), params, request)
        except GraphError as exc:
            return _graph_error(exc, headers)
        return JSONResponse(body, headers=headers)

    def _authenticate(self, request: Request, params: dict[str, Any]) -> None:
        token = params.get("access_token") or graph_header_token(request)
        if not token:
            raise GraphError("An access token is required to request this resource.", 104)
        if token != self.ctx.token:
            raise GraphError("Invalid OAuth access token - Cannot parse access token", 190)

    def route(self, method: str, parts: list[str], params: dict[str, Any], request: Request) -> Any:
        node = parts[0]
        edge = parts[1] if len(parts) > 1 else None
        if len(parts) > 2 or not node:
            raise GraphError(f"Unknown path components: /{'/'.join(parts)}", 2500)
        if node.startswith("act_"):
            account_id = node[4:]
            if not self._account_exists(account_id):
                raise nonexistent_object(node, method)
            handlers = {
                (None, "GET"): lambda: self.get_account(account_id, params),
                ("campaigns", "GET"): lambda: self.list_campaigns(account_id, params, request),
                ("insights", "GET"): lambda: self.insights(account_id, None, params, request),
                ("insights", "POST"): lambda: self.start_report(account_id, None, params, request),
                ("customaudiences", "GET"): lambda: self.list_audiences(account_id, params, request),
                ("customaudiences", "POST"): lambda: self.create_audience(account_id, params),
            }
        else:
            campaign = self.store.get(SYSTEM, "campaigns", node)
            audience = None if campaign else self.store.get(SYSTEM, "customaudiences", node)
            report = None if campaign or audience else self.store.get(SYSTEM, "report_runs", node)
            if campaign is None and audience is None and report is None:
                raise nonexistent_object(node, method)
            if campaign is not None:
                account = str(campaign.get("account_id", DEFAULT_ACCOUNT_ID))
                handlers = {
                    (None, "GET"): lambda: select_fields(
                        campaign_view(campaign), parse_fields(params.get("fields"), CAMPAIGN_FIELDS, "Campaign")),
                    ("insights", "GET"): lambda: self.insights(account, node, params, request),
                    ("insights", "POST"): lambda: self.start_report(account, node, params, request),
                }
            elif report is not None:
                handlers = {
                    (None, "GET"): lambda: report_view(report, params),
                    ("insights", "GET"): lambda: self.insights(
                        report["account_id"], report.get("campaign_id"),
                        {**report["params"], **{k: v for k, v in params.items() if k in REPORT_PAGING}}, request),
                }
            else:
                handlers = {
                    (None, "GET"): lambda: self.get_audience(audience, params),
                    (None, "POST"): lambda: self.update_audience(audience, params),
                    (None, "DELETE"): lambda: self.delete_audience(audience),
                    ("users", "POST"): lambda: self.change_users(audience, params, request, add=True),
                    ("users", "DELETE"): lambda: self.change_users(audience, params, request, add=False),
                    ("sessions", "GET"): lambda: self.list_sessions(audience),
                }
        handler = handlers.get((edge, method))
        if handler is None:
            if edge is not None and not any(e == edge for e, _ in handlers):
                raise GraphError(f"(#100) Tried accessing nonexisting field ({edge}) on node type "
                                 f"({'AdAccount' if node.startswith('act_') else 'Node'})")
            raise nonexistent_object(node if edge is None else f"{node}/{edge}", method)
        return handler()

    def _account_exists(self, account_id: str) -> bool:
        if account_id == DEFAULT_ACCOUNT_ID:
            return True
        rows = self.store.query(
            "SELECT 1 FROM objects WHERE system=? AND collection IN ('campaigns','customaudiences') "
            "AND json_extract(data, '$.account_id') = ? LIMIT 1", (SYSTEM, account_id))
        return bool(rows)

    def _page(self, request: Request, params: dict[str, Any], data: list[Any], first: int | None,
              last: int | None, has_more: bool) -> dict[str, Any]:
        out: dict[str, Any] = {"data": data}
        if not data:
            return out
        paging: dict[str, Any] = {"cursors": {"before": encode_cursor(first), "after": encode_cursor(last)}}
        query = {k: v for k, v in request.query_params.items() if k not in ("after", "before")}
        base = str(request.url).split("?", 1)[0]
        if has_more:
            paging["next"] = base + "?" + urlencode({**query, "after": encode_cursor(last)})
        if params.get("after") or params.get("before"):
            paging["previous"] = base + "?" + urlencode({**query, "before": encode_cursor(first)})
        out["paging"] = paging
        return out

    def _keyset_page(self, collection: str, account_id: str, params: dict[str, Any], request: Request,
                     extra_where: str = "", extra_params: Iterable[Any] = (),
                     ) -> tuple[list, int | None, int | None, bool]:
        limit = _limit(params)
        where = "json_extract(data, '$.account_id') = ?" + (f" AND ({extra_where})" if extra_where else "")
        wparams = [account_id, *extra_params]
        if params.get("before"):
            before = decode_cursor(str(params["before"]), "before")
            rows = self.store.query(
                f"SELECT seq, data FROM objects WHERE system=? AND collection=? AND seq < ? AND {where} "
                "ORDER BY seq DESC LIMIT ?", (SYSTEM, collection, before, *wparams, limit))
            rows = list(reversed(rows))
            has_more = True
        else:
            after = decode_cursor(str(params["after"])) if params.get("after") else 0
            rows = self.store.query(
                f"SELECT seq, data FROM objects WHERE system=? AND collection=? AND seq > ? AND {where} "
                "ORDER BY seq LIMIT ?", (SYSTEM, collection, after, *wparams, limit + 1))
            has_more = len(rows) > limit
            rows = rows[:limit]
        objs = [json.loads(d) for _, d in rows]
        return objs, (rows[0][0] if rows else None), (rows[-1][0] if rows else None), has_more

    # ---- account and campaigns
    def get_account(self, account_id: str, params: dict[str, Any]) -> dict[str, Any]:
        account = {"id": f"act_{account_id}", "account_id": account_id, "name": "Sandbox Ad Account",
                   "account_status": 1, "currency": "USD", "timezone_name": "Etc/UTC",
                   "timezone_offset_hours_utc": 0, "business_name": "Growth Stack example company"}
        return select_fields(account, parse_fields(params.get("fields"), ACCOUNT_FIELDS, "AdAccount"))

    def list_campaigns(self, account_id: str, params: dict[str, Any], request: Request) -> dict[str, Any]:
        fields = parse_fields(params.get("fields"), CAMPAIGN_FIELDS, "Campaign")
        where, wparams = "", []
        statuses = params.get("effective_status")
        if statuses not in (None, ""):
            statuses = _loads(statuses, "effective_status")
            if not isinstance(statuses, list) or not all(isinstance(s, str) for s in statuses):
                raise GraphError('(#100) effective_status must be a JSON list such as ["ACTIVE","PAUSED"]')
            where = ("coalesce(json_extract(data, '$.effective_status'), json_extract(data, '$.status')) IN ("
                     + ",".join("?" * len(statuses)) + ")") if statuses else "0"
            wparams = statuses
        objs, first, last, has_more = self._keyset_page("campaigns", account_id, params, request, where, wparams)
        page = self._page(request, params, [select_fields(campaign_view(o), fields) for o in objs],
                          first, last, has_more)
        if str(params.get("summary", "")).lower() in ("true", "1", "total_count", "[\"total_count\"]"):
            total = self.store.query(
                "SELECT count(*) FROM objects WHERE system=? AND collection='campaigns' "
                "AND json_extract(data, '$.account_id') = ?" + (f" AND ({where})" if where else ""),
                (SYSTEM, account_id, *wparams))[0][0]
            page["summary"] = {"total_count": total}
        return page

    # ---- insights
    def insights(self, account_id: str, campaign_id: str | None, params: dict[str, Any],
                 request: Request) -> dict[str, Any]:
        level = str(params.get("level") or ("campaign" if campaign_id else "account"))
        if level not in ("account", "campaign", "adset", "ad"):
            raise GraphError(f"(#100) level must be one of ad, adset, campaign, account, not {level!r}")
        if level not in INSIGHT_LEVELS:
            raise GraphError(f"(#100) level={level} is not available in the sandbox: its insights are seeded "
                             "per campaign and day, so ask for level=campaign or level=account")
        increment = str(params.get("time_increment") or "all_days")
        if increment not in ("all_days", "monthly") and not (increment.isdigit() and 1 <= int(increment) <= 90):
            raise GraphError(f"(#100) time_increment must be an integer from 1 to 90, 'monthly' or 'all_days', "
                             f"not {increment!r}")
        since, until = resolve_time_range(params, dt.datetime.now(dt.UTC).date())
        raw_fields = params.get("fields")
        fields = parse_fields(raw_fields, frozenset(), "AdsInsights") or ["impressions", "spend"]
        for field in fields:
            if not re.match(r"^[a-z0-9_]+$", field):
                raise GraphError(f"(#100) {field!r} is not a valid insights field")
        where = ["json_extract(data, '$.account_id') = ?", "created >= ?", "created <= ?"]
        wparams: list[Any] = [account_id, day_epoch(since), day_epoch(until)]
        if campaign_id:
            where.append("json_extract(data, '$.campaign_id') = ?")
            wparams.append(campaign_id)
        campaign_filter = campaign_ids_filter(params.get("filtering"))
        if campaign_filter is not None:
            where.append("json_extract(data, '$.campaign_id') IN (" + ",".join("?" * len(campaign_filter)) + ")"
                         if campaign_filter else "0")
            wparams.extend(campaign_filter)
        limit = _limit(params)
        if params.get("before"):  # insights cursors are row offsets: step one page back
            offset = max(0, decode_cursor(str(params["before"]), "before") - limit)
        else:
            offset = decode_cursor(str(params["after"])) if params.get("after") else 0
        sql_where = " AND ".join(where)
        if increment == "1" and level == "campaign":
            # one stored row per campaign and day: page in SQL, parsing only the rows served
            rows = self.store.query(
                f"SELECT data FROM objects WHERE system=? AND collection='insights' AND {sql_where} "
                "ORDER BY created, seq LIMIT ? OFFSET ?", (SYSTEM, *wparams, limit + 1, offset))
            objs = [json.loads(d) for (d,) in rows]
            results = [aggregate_insight_rows([o], fields, level, parse_day(o["date_start"], "date_start"),
                                              parse_day(o.get("date_stop", o["date_start"]), "date_stop"))
                       for o in objs[:limit]]
            has_more = len(objs) > limit
        else:
            rows = self.store.query(
                f"SELECT data FROM objects WHERE system=? AND collection='insights' AND {sql_where} "
                "ORDER BY created, seq", (SYSTEM, *wparams))
            groups: dict[tuple, list[dict[str, Any]]] = {}
            for (d,) in rows:
                obj = json.loads(d)
                start, stop = bucket_of(parse_day(obj["date_start"], "date_start"), since, until, increment)
                key = (start, stop, obj.get("campaign_id") if level == "campaign" else None)
                groups.setdefault(key, []).append(obj)
            ordered = sorted(groups.items(), key=lambda kv: (kv[0][0], kv[0][2] or ""))
            results = [aggregate_insight_rows(objs, fields, level, start, stop)
                       for (start, stop, _), objs in ordered[offset:offset + limit]]
            has_more = len(ordered) > offset + limit
        return self._page(request, params, results, offset, offset + len(results), has_more) if results else {
            "data": []}

    def start_report(self, account_id: str, campaign_id: str | None, params: dict[str, Any],
                     request: Request) -> dict[str, Any]:
        """An async insights job (`POST .../insights`): completed at once, its rows served by the report run."""
        kept = {k: v for k, v in params.items() if k not in ("access_token", "method", *REPORT_PAGING)}
        self.insights(account_id, campaign_id, {**kept, "limit": 1}, request)  # refuse bad parameters now
        since, until = resolve_time_range(kept, dt.datetime.now(dt.UTC).date())
        now = int(time.time())
        report_id = str(self.store.next_id("facebook_report_run", start=6_100_000_000_001))
        report = {
            "id": report_id, "account_id": account_id, "campaign_id": campaign_id, "params": kept,
            "time_ref": now, "time_completed": now, "async_status": "Job Completed",
            "async_percent_completion": 100, "date_start": since.isoformat(), "date_stop": until.isoformat(),
            "emails": [], "friendly_name": "", "is_bookmarked": False, "is_running": False, "schedule_id": "0",
            "error_code": 0,
        }
        self.store.put(SYSTEM, "report_runs", report_id, report, created=now, updated=now)
        return {"report_run_id": report_id}

    # ---- custom audiences
    def create_audience(self, account_id: str, params: dict[str, Any]) -> dict[str, Any]:
        name = str(params.get("name") or "").strip()
        if not name:
            raise GraphError("(#100) The parameter name is required")
        subtype = str(params.get("subtype") or "CUSTOM")
        if subtype != "CUSTOM":
            raise GraphError(f"(#100) subtype={subtype} is not available in the sandbox; only customer-file "
                             "audiences (subtype=CUSTOM) are emulated")
        source = str(params.get("customer_file_source") or "USER_PROVIDED_ONLY")
        if source not in ("USER_PROVIDED_ONLY", "PARTNER_PROVIDED_ONLY", "BOTH_USER_AND_PARTNER_PROVIDED"):
            raise GraphError("(#100) customer_file_source must be USER_PROVIDED_ONLY, PARTNER_PROVIDED_ONLY "
                             "or BOTH_USER_AND_PARTNER_PROVIDED")
        now = int(time.time())
        audience_id = str(self.store.next_id("facebook_custom_audience", start=23850000000000001))
        audience = {
            "id": audience_id, "account_id": account_id, "name": name,
            "description": str(params.get("description") or ""), "subtype": "CUSTOM",
            "customer_file_source": source, "time_created": now, "time_updated": now,
            "time_content_updated": now, "retention_days": 0, "is_value_based": False,
            "data_source": {"type": "FILE_IMPORTED", "sub_type": "HASHES_OR_USER_IDS", "creation_params": "[]"},
            "operation_status": {"code": 200, "description": "Normal"},
            "delivery_status": {"code": 200, "description": "This audience is ready for use."},
            "permission_for_actions": {"can_edit": True, "can_see_insight": "True", "can_share": "True",
                                       "subtype_supports_lookalike": True, "supports_recipient_lookalike": False},
        }
        self.store.put(SYSTEM, "customaudiences", audience_id, audience, created=now, updated=now)
        return {"id": audience_id}

    def _member_count(self, audience_id: str) -> int:
        lo, hi = audience_id + ":", audience_id + ";"  # ';' sorts right after ':': an index range scan
        return self.store.query(
            "SELECT count(*) FROM objects WHERE system=? AND collection='custom_audience_users' "
            "AND id >= ? AND id < ? AND json_extract(data, '$.member') = 1", (SYSTEM, lo, hi))[0][0]

    def _audience_view(self, audience: dict[str, Any]) -> dict[str, Any]:
        count = self._member_count(audience["id"])
        return {**audience, "approximate_count": count, "approximate_count_lower_bound": count,
                "approximate_count_upper_bound": count}

    def get_audience(self, audience: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
        fields = parse_fields(params.get("fields"), AUDIENCE_FIELDS, "CustomAudience")
        counted = fields and any(f.startswith("approximate") for f in fields)
        return select_fields(self._audience_view(audience) if counted else audience, fields)

    def list_audiences(self, account_id: str, params: dict[str, Any], request: Request) -> dict[str, Any]:
        fields = parse_fields(params.get("fields"), AUDIENCE_FIELDS, "CustomAudience")
        objs, first, last, has_more = self._keyset_page("customaudiences", account_id, params, request)
        counted = fields and any(f.startswith("approximate") for f in fields)
        data = [select_fields(self._audience_view(o) if counted else o, fields) for o in objs]
        return self._page(request, params, data, first, last, has_more)

    def update_audience(self, audience: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
        changed = {k: str(params[k]) for k in ("name", "description") if params.get(k) not in (None, "")}
        if not changed:
            raise GraphError("(#100) Nothing to update: send name or description")
        now = int(time.time())
        audience = {**audience, **changed, "time_updated": now}
        self.store.put(SYSTEM, "customaudiences", audience["id"], audience, updated=now)
        return {"success": True}

    def delete_audience(self, audience: dict[str, Any]) -> dict[str, Any]:
        self.store.delete(SYSTEM, "customaudiences", audience["id"])
        return {"success": True}

    def change_users(self, audience: dict[str, Any], params: dict[str, Any], request: Request,
                     add: bool) -> dict[str, Any]:
        if params.get("payload") in (None, ""):
            raise GraphError("(#100) The parameter payload is required")
        keys, rows = validate_user_payload(_loads(params["payload"], "payload"))
        session = parse_session(_loads(params.get("session"), "session") if params.get("session") else None)
        audience_id = audience["id"]
        with self._session_lock:
            state = self._open_session(audience_id, session, add)
            now = int(time.time())
            invalid: dict[str, str] = {}
            n_invalid = 0
            members: dict[str, dict[str, Any]] = {}
            for row in rows:
                key, reason = member_key(keys, row)
                if key is not None and self.ctx.faults.rejects(request.url.path, key, request.method):
                    key, reason = None, "rejected by the sandbox's fault injection"
                if key is None:
                    n_invalid += 1
                    if len(invalid) < 10:
                        sample = row[0] if len(row) == 1 and isinstance(row[0], str) else json.dumps(row)
                        invalid[sample[:200]] = reason
                    continue
                members[key] = {"member": 1 if add else 0, "schema": keys, "at": now}
            self.store.put_many(SYSTEM, "custom_audience_users",
                                ((f"{audience_id}:{k}", v, now, now) for k, v in members.items()))
            self.store.count_writes(SYSTEM, "custom_audience_users", (f"{audience_id}:{k}" for k in members))
            self.store.put(SYSTEM, "customaudiences", audience_id,
                           {**audience, "time_updated": now, "time_content_updated": now}, updated=now)
            state["batch_seqs"].append(session["batch_seq"])
            state["num_received"] += len(rows)
            state["num_invalid_entries"] += n_invalid
            state["num_matched"] += len(members)
            if session["last_batch_flag"]:
                state.update(stage="completed", progress=100, end_time=now)
            elif session.get("estimated_num_total"):
                state["progress"] = min(99, int(state["num_received"] * 100 / session["estimated_num_total"]))
            self.store.put(SYSTEM, "custom_audience_sessions", f"{audience_id}:{session['session_id']}", state,
                           updated=now)
        return {"audience_id": audience_id, "session_id": str(session["session_id"]), "num_received": len(rows),
                "num_invalid_entries": n_invalid, "invalid_entry_samples": invalid}

    def _open_session(self, audience_id: str, session: dict[str, Any], add: bool) -> dict[str, Any]:
        """The stored upload session this batch belongs to (started by its first batch)."""
        key = f"{audience_id}:{session['session_id']}"
        state = self.store.get(SYSTEM, "custom_audience_sessions", key)
        if state is None:
            return {"session_id": str(session["session_id"]), "audience_id": audience_id,
                    "operation": "add" if add else "remove", "start_time": int(time.time()), "end_time": 0,
                    "stage": "in_progress", "progress": 0, "num_received": 0, "num_invalid_entries": 0,
                    "num_matched": 0, "batch_seqs": [], "estimated_num_total": session.get("estimated_num_total")}
        if state["stage"] == "completed":
            raise GraphError(f"(#100) Upload session {session['session_id']} already received its last batch "
                             "(last_batch_flag); start a new session_id to add or remove more users")
        if state["operation"] != ("add" if add else "remove"):
            raise GraphError(f"(#100) Upload session {session['session_id']} {state['operation']}s users; "
                             "use a new session_id to " + ("add" if add else "remove") + " users")
        return state

    def list_sessions(self, audience: dict[str, Any]) -> dict[str, Any]:
        """`GET /{audience_id}/sessions`: the audience's upload sessions, newest first."""
        lo, hi = audience["id"] + ":", audience["id"] + ";"
        rows = self.store.query("SELECT data FROM objects WHERE system=? AND collection='custom_audience_sessions' "
                                "AND id >= ? AND id < ? ORDER BY seq DESC", (SYSTEM, lo, hi))
        fields = ("session_id", "start_time", "end_time", "num_received", "num_invalid_entries", "num_matched",
                  "progress", "stage", "batch_seqs")
        return {"data": [{k: json.loads(d).get(k) for k in fields} for (d,) in rows]}

    def members(self, audience_id: str) -> list[dict[str, Any]]:
        """Every current member of an audience (for tests: the real API never lists members)."""
        lo, hi = audience_id + ":", audience_id + ";"
        rows = self.store.query(
            "SELECT id, data FROM objects WHERE system=? AND collection='custom_audience_users' "
            "AND id >= ? AND id < ? AND json_extract(data, '$.member') = 1 ORDER BY id", (SYSTEM, lo, hi))
        return [{"key": i.split(":", 1)[1], "schema": json.loads(d)["schema"]} for i, d in rows]

    # ---- seeding
    def seed(self, collection: str, objects: list[dict[str, Any]]) -> int:
        """Store seeded campaigns or insights rows (contract: /work/shared seeding table)."""
        if collection == "campaigns":
            rows = []
            for obj in objects:
                created = parse_fb_time(obj["created_time"]) if obj.get("created_time") else int(time.time())
                updated = parse_fb_time(obj["updated_time"]) if obj.get("updated_time") else created
                obj = {"account_id": DEFAULT_ACCOUNT_ID, **obj, "id": str(obj["id"])}
                rows.append((obj["id"], obj, created, updated))
            return self.store.put_many(SYSTEM, "campaigns", rows)
        if collection == "insights":
            rows = []
            for obj in objects:
                start = parse_day(obj["date_start"], "date_start")
                obj = {"account_id": DEFAULT_ACCOUNT_ID, "date_stop": obj["date_start"], **obj}
                row_id = str(obj.get("id") or f"{obj['campaign_id']}:{obj['date_start']}")
                obj.pop("id", None)  # insights rows have no id in the real API
                rows.append((row_id, obj, day_epoch(start), day_epoch(start)))
            return self.store.put_many(SYSTEM, "insights", rows)
        if collection == "customaudiences":
            rows = []
            for obj in objects:
                created = int(obj.get("time_created") or time.time())
                obj = {"account_id": DEFAULT_ACCOUNT_ID, "subtype": "CUSTOM", **obj, "id": str(obj["id"])}
                rows.append((obj["id"], obj, created, int(obj.get("time_updated") or created)))
            return self.store.put_many(SYSTEM, "customaudiences", rows)
        raise ValueError(f"facebook seeds campaigns, insights or customaudiences, not {collection!r}")


def report_view(report: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """An AdReportRun as Graph shows it (every field unless `fields` narrows it)."""
    view = {k: v for k, v in report.items() if k not in ("params", "campaign_id")}
    fields = parse_fields(params.get("fields"), REPORT_RUN_FIELDS, "AdReportRun")
    return select_fields(view, fields) if fields else view


def campaign_view(campaign: dict[str, Any]) -> dict[str, Any]:
    """A stored campaign with the fields Graph derives (`effective_status`, `configured_status`)."""
    status = campaign.get("status")
    extra = {"effective_status": status, "configured_status": status} if status else {}
    return {**extra, **campaign}


def campaign_ids_filter(raw: Any) -> list[str] | None:
    """Campaign ids from a `filtering` spec on `campaign.id` (IN or EQUAL), or None when absent."""
    if raw in (None, ""):
        return None
    spec = _loads(raw, "filtering")
    if not isinstance(spec, list):
        raise GraphError('(#100) filtering must be a JSON list of {"field","operator","value"} objects')
    ids: list[str] | None = None
    for rule in spec:
        if not isinstance(rule, dict) or rule.get("field") not in ("campaign.id",):
            raise GraphError("(#100) the sandbox filters insights on field campaign.id only")
        op, value = str(rule.get("operator", "")).upper(), rule.get("value")
        values = [str(v) for v in value] if op == "IN" and isinstance(value, list) else (
            [str(value)] if op == "EQUAL" else None)
        if values is None:
            raise GraphError("(#100) campaign.id filtering takes operator IN with a list, or EQUAL with a value")
        ids = values if ids is None else [i for i in ids if i in values]
    return ids


def rate_limit_response(retry_after: float) -> Response:
    """Facebook's ads_management throttling error: HTTP 400, code 80004, usage header at 100%."""
    minutes = math.ceil(retry_after / 60)
    usage = json.dumps({DEFAULT_ACCOUNT_ID: [{
        "type": "ads_management", "call_count": 100, "total_cputime": 25, "total_time": 33,
        "estimated_time_to_regain_access": minutes, "ads_api_access_tier": "standard_access",
    }]}, separators=(",", ":"))
    body = error_body(
        "There have been too many calls to this ad-account. Wait a bit and try again. For more info, please "
        "refer to https://developers.facebook.com/docs/graph-api/overview/rate-limiting#ads-management.",
        80004, subcode=2446079, transient=True)
    return JSONResponse(body, status_code=400, headers={"x-business-use-case-usage": usage})


def error_response(status: int) -> Response:
    """A Graph server error: code 2 (unexpected, transient) or 1 (unknown), with an fbtrace_id."""
    if status == 503:
        body = error_body("Service temporarily unavailable", 2, transient=True)
    elif status >= 500:
        body = error_body("An unexpected error has occurred. Please retry your request later.", 2, transient=True)
    else:
        body = error_body("An unknown error has occurred.", 1, transient=False)
    return JSONResponse(body, status_code=status)


def build(ctx: SandboxContext) -> Emulation:
    """The Facebook Marketing API emulation for the sandbox app."""
    emu = FacebookEmulation(ctx)

    async def members(request: Request) -> Response:
        # not a real path: the real API never lists an audience's members; tests read them back here
        audience_id = request.path_params["audience_id"]
        if emu.store.get(SYSTEM, "customaudiences", audience_id) is None:
            return JSONResponse({"error": f"no custom audience {audience_id}"}, status_code=404)
        return JSONResponse({"data": await asyncio.to_thread(emu.members, audience_id)})

    return Emulation(
        prefix="/facebook",
        routes=[Route("/_sandbox/customaudiences/{audience_id}/users", members, methods=["GET"]),
                Route("/{version}/{path:path}", emu.dispatch, methods=["GET", "POST", "DELETE"])],
        rate_limit_response=rate_limit_response,
        error_response=error_response,
        rate=BUC_MAX_SCORE / BUC_WINDOW_SECONDS,
        burst=BUC_MAX_SCORE,
        seed=emu.seed,
    )
