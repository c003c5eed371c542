"""Stripe API v1 emulation, mounted at `/stripe`: customers, products, prices, coupons,
invoice items, invoices (finalize, pay, void, lines), charges, payment intents and events,
with Stripe's list pagination, `created` filters, `expand[]`, idempotency keys, error bodies,
and signed webhooks (`Stripe-Signature: t=...,v1=...`) for every event created through the API.

Requests arrive form-encoded with bracket notation (see `stripe_forms`); the official `stripe`
Python library works unchanged with `api_base = <sandbox>/stripe`.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import re
import secrets
import string
import threading
import time
from collections.abc import Callable
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from growth_stack_dagster import config
from growth_stack_dagster.sandbox import stripe_forms as forms
from growth_stack_dagster.sandbox.core import Emulation, SandboxContext, Store
from growth_stack_dagster.sandbox.stripe_forms import ParamError

log = logging.getLogger("growth_stack.sandbox.stripe")

SYSTEM = "stripe"
PREFIX = "/stripe"
# The version the installed official client pins; requests may name another in `Stripe-Version`.
API_VERSION = "2026-10-28.endive"
# Stripe's published test-mode limit: 25 read and 25 write operations per second.
RATE, BURST = 25.0, 25.0
IDEMPOTENCY_TTL = 24 * 3600
DOCS = "https://stripe.com/docs/error-codes/"

# collection -> (object name, id prefix, id length)
KINDS: dict[str, tuple[str, str, int]] = {
    "customers": ("customer", "cus", 14),
    "products": ("product", "prod", 14),
    "prices": ("price", "price", 24),
    "coupons": ("coupon", "", 8),
    "invoiceitems": ("invoiceitem", "ii", 24),
    "invoices": ("invoice", "in", 24),
    "charges": ("charge", "ch", 24),
    "payment_intents": ("payment_intent", "pi", 24),
    "events": ("event", "evt", 24),
    "discounts": ("discount", "di", 24),
}
NAME_TO_COLLECTION = {name: coll for coll, (name, _, _) in KINDS.items()}
PREFIX_TO_COLLECTION = {p: coll for coll, (_, p, _) in KINDS.items() if p}
SEEDABLE = ("customers", "products", "prices", "coupons", "invoices", "charges",
            "invoiceitems", "payment_intents", "discounts")
LIST_PARAMS = {"limit", "starting_after", "ending_before", "created", "expand"}
_ALNUM = string.ascii_letters + string.digits
# Partial expression indexes so that per-customer listings stay indexed at seeded scale. Each one
# re-parses the whole object JSON on every insert, so only the selective filters get one.
INDEXES = {
    ("invoices", "customer"), ("charges", "customer"), ("invoiceitems", "customer"),
    ("payment_intents", "customer"), ("events", "type"), ("prices", "product"),
}


class StripeError(Exception):
    """An error answered in Stripe's shape: `{"error": {"type", "code", "message", "param", ...}}`.

    `saved` says whether an idempotency key records it (Stripe does not record requests that
    failed parameter validation, so they can be corrected and retried with the same key).
    """

    def __init__(self, status: int, message: str, *, type: str = "invalid_request_error",
                 code: str | None = None, param: str | None = None, saved: bool = True,
                 headers: dict[str, str] | None = None, extra: dict[str, Any] | None = None):
        super().__init__(message)
        self.status, self.message, self.type = status, message, type
        self.code, self.param, self.saved = code, param, saved
        self.headers = headers or {}
        self.extra = extra or {}

    def body(self, request_id: str | None = None) -> dict[str, Any]:
        err: dict[str, Any] = {}
        if self.code:
            err["code"] = self.code
            err["doc_url"] = DOCS + self.code.replace("_", "-")
        err.update(self.extra)
        err["message"] = self.message
        if self.param:
            err["param"] = self.param
        if request_id:
            err["request_log_url"] = f"https://dashboard.stripe.com/test/logs/{request_id}"
        err["type"] = self.type
        return {"error": err}


def invalid(message: str, param: str | None = None, code: str | None = None, saved: bool = False) -> StripeError:
    return StripeError(400, message, code=code, param=param, saved=saved)


def missing(collection: str, obj_id: str, param: str = "id") -> StripeError:
    name = KINDS[collection][0]
    return StripeError(404, f"No such {name}: '{obj_id}'", code="resource_missing", param=param)


def new_id(collection: str) -> str:
    _, prefix, length = KINDS[collection]
    body = "".join(secrets.choice(_ALNUM) for _ in range(length))
    return f"{prefix}_{body}" if prefix else body.upper()


def mask_key(key: str) -> str:
    """Stripe's masked key in auth errors: type prefix and last four kept, the rest starred."""
    m = re.match(r"^((?:sk|rk|pk)_(?:test|live)_)(.*)$", key)
    head, rest = (m.group(1), m.group(2)) if m else ("", key)
    if len(rest) <= 4:
        return head + "*" * len(rest)
    return head + "*" * (len(rest) - 4) + rest[-4:]


def sign_payload(payload: bytes, secret: str, timestamp: int) -> str:
    """The `Stripe-Signature` header value: `t=<ts>,v1=<hex HMAC-SHA256(secret, "<ts>.<payload>")>`."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def check_params(params: dict[str, Any], allowed: set[str], required: tuple[str, ...] = ()) -> None:
    """Stripe rejects unknown top-level parameters and names the first missing required one."""
    for key in params:
        if key not in allowed:
            raise invalid(f"Received unknown parameter: {key}", key, "parameter_unknown")
    for key in required:
        if params.get(key) in (None, ""):
            raise invalid(f"Missing required param: {key}.", key, "parameter_missing")


def metadata_update(current: dict[str, str] | None, value: Any) -> dict[str, str]:
    """Stripe's metadata semantics: keys merge, an empty value unsets a key, `metadata=` clears all."""
    if value == "":
        return {}
    updates = forms.as_dict(value, "metadata")
    out = dict(current or {})
    for k, v in updates.items():
        if isinstance(v, (dict, list)):
            raise invalid(f"Invalid metadata value for key {k}", f"metadata[{k}]")
        if v == "":
            out.pop(k, None)
        else:
            out[k] = str(v)
    if len(out) > 50:
        raise invalid("Invalid metadata: metadata can contain at most 50 keys.", "metadata")
    return out


def nullable(value: Any) -> Any:
    """Stripe unsets an optional field sent as an empty string."""
    return None if value == "" else value


class _Req:
    """What a handler needs to know about the current request."""

    def __init__(self, method: str, path: str, params: dict[str, Any], request_id: str,
                 idempotency_key: str | None, api_version: str):
        self.method, self.path, self.params = method, path, params
        self.request_id, self.idempotency_key, self.api_version = request_id, idempotency_key, api_version
        self.now = int(time.time())
        # Computed before handlers consume parameters: Stripe compares a key's parameters as sent.
        self.fingerprint = hashlib.sha256(
            orjson.dumps([method, path, params], option=orjson.OPT_SORT_KEYS)).hexdigest()


class StripeEmulation:
    """State and handlers; one instance per sandbox process."""

    def __init__(self, ctx: SandboxContext):
        self.ctx = ctx
        self.store: Store = ctx.store
        # During a rotation the collector accepts a comma-separated list; a sender signs with one.
        self.secret = config.stripe_webhook_secret().split(",")[0].strip()
        # Handlers run one at a time: Stripe's object writes are atomic per request.
        self.lock = threading.RLock()
        self._ensure_indexes()
        self.routes = self._route_table()

    # ------------------------------------------------------------------ storage helpers
    def _ensure_indexes(self) -> None:
        for collection, field in sorted(INDEXES):
            # DDL through the Store's raw statement path: the Store owns the one connection.
            self.store.query(
                f"CREATE INDEX IF NOT EXISTS stripe_{collection}_{field} ON objects "
                f"(json_extract(data, '$.{field}'), created) "
                f"WHERE system = 'stripe' AND collection = '{collection}'"
            )

    def get(self, collection: str, obj_id: str) -> dict[str, Any] | None:
        return self.store.get(SYSTEM, collection, obj_id)

    def need(self, collection: str, obj_id: Any, param: str = "id") -> dict[str, Any]:
        obj = self.get(collection, str(obj_id)) if isinstance(obj_id, str) and obj_id else None
        if obj is None:
            raise missing(collection, str(obj_id), param)
        return obj

    def put(self, collection: str, obj: dict[str, Any], created: int | None = None) -> dict[str, Any]:
        now = int(time.time())
        return self.store.put(SYSTEM, collection, obj["id"], obj, created=created, updated=now)

    # ------------------------------------------------------------------ events and webhooks
    def emit(self, req: _Req, type_: str, obj: dict[str, Any],
             previous: dict[str, Any] | None = None) -> dict[str, Any]:
        """Record a Stripe event and deliver it, signed, to the webhook endpoint."""
        data: dict[str, Any] = {"object": obj}
        if previous:
            data["previous_attributes"] = previous
        event = {
            "id": new_id("events"), "object": "event", "api_version": req.api_version,
            "created": req.now, "data": data, "livemode": False,
            "pending_webhooks": 1 if self.ctx.webhooks.base_url else 0,
            "request": {"id": req.request_id, "idempotency_key": req.idempotency_key},
            "type": type_,
        }
        self.put("events", event, created=req.now)
        payload = json.dumps(event, indent=2).encode()
        self.ctx.webhooks.send("stripe", payload, {
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
            "Stripe-Signature": sign_payload(payload, self.secret, int(time.time())),
        })
        return event

    # ------------------------------------------------------------------ listing
    def created_filter(self, value: Any) -> tuple[list[str], list[Any]]:
        if isinstance(value, dict):
            ops = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}
            conds, params = [], []
            for k, v in value.items():
                if k not in ops:
                    raise invalid(f"Received unknown parameter: created[{k}]", f"created[{k}]", "parameter_unknown")
                conds.append(f"created {ops[k]} ?")
                params.append(forms.as_int(v, f"created[{k}]"))
            return conds, params
        return ["created = ?"], [forms.as_int(value, "created")]

    def list_objects(self, req: _Req, collection: str, url: str, allowed: set[str],
                     equals: dict[str, str] | None = None, extra_sql: tuple[list[str], list[Any]] | None = None,
                     transform: Callable[[dict[str, Any]], dict[str, Any]] | None = None) -> dict[str, Any]:
        """Stripe's cursor list, newest first: `limit`, `starting_after`, `ending_before`, `created`,
        plus equality filters on top-level fields (`equals` maps parameter -> field)."""
        p = req.params
        check_params(p, LIST_PARAMS | allowed)
        limit = forms.as_int(p.get("limit", 10), "limit")
        if limit < 1:
            raise invalid("This value must be greater than or equal to 1.", "limit")
        if limit > 100:
            raise invalid("This value must be less than or equal to 100.", "limit")
        conds = ["system = 'stripe'", f"collection = '{collection}'"]
        args: list[Any] = []
        index = ""
        if p.get("created") not in (None, ""):
            c, a = self.created_filter(p["created"])
            conds += c
            args += a
        for param, field in (equals or {}).items():
            if p.get(param) not in (None, ""):
                conds.append(f"json_extract(data, '$.{field}') = ?")
                args.append(forms.as_str(p[param], param))
                if not index and (collection, field) in INDEXES:
                    # Without statistics SQLite prefers the created index and scans every object.
                    index = f" INDEXED BY stripe_{collection}_{field}"
        if extra_sql:
            conds += extra_sql[0]
            args += extra_sql[1]
        after, before = p.get("starting_after"), p.get("ending_before")
        if after not in (None, "") and before not in (None, ""):
            raise invalid("You may only specify one of these parameters: ending_before, starting_after.",
                          "ending_before")
        descending = True
        for cursor, param in ((after, "starting_after"), (before, "ending_before")):
            if cursor in (None, ""):
                continue
            row = self.store.query(
                f"SELECT created, seq FROM objects WHERE system = 'stripe' AND collection = '{collection}' AND id = ?",
                (forms.as_str(cursor, param),))
            if not row:
                raise missing(collection, str(cursor), param)
            if param == "starting_after":
                conds.append("(created, seq) < (?, ?)")
            else:
                conds.append("(created, seq) > (?, ?)")
                descending = False
            args += [row[0][0], row[0][1]]
        order = "created DESC, seq DESC" if descending else "created ASC, seq ASC"
        rows = self.store.query(
            f"SELECT data FROM objects{index} WHERE {' AND '.join(conds)} ORDER BY {order} LIMIT ?",
            (*args, limit + 1))
        has_more = len(rows) > limit
        data = [orjson.loads(r[0]) for r in rows[:limit]]
        if not descending:
            data.reverse()
        if transform:
            data = [transform(o) for o in data]
        return {"object": "list", "data": data, "has_more": has_more, "url": url}

    # ------------------------------------------------------------------ expansion
    def expand(self, obj: Any, paths: list[str], is_list: bool) -> Any:
        for path in paths:
            parts = path.split(".")
            if is_list and parts[0] != "data":
                raise invalid(f"This property cannot be expanded ({parts[0]}). You may want to try "
                              f"expanding 'data.{path}' instead.", "expand")
            if len(parts) > 4:
                raise invalid(f"You cannot expand more than 4 levels of a property. Property: {path}", "expand")
            self._expand_path(obj, parts, path)
        return obj

    def _lookup(self, value: str) -> dict[str, Any] | None:
        prefix = value.split("_", 1)[0]
        collection = PREFIX_TO_COLLECTION.get(prefix)
        found = self.get(collection, value) if collection else None
        if found is None and collection == "customers":
            found = self.get("deleted_customers", value)
        return found

    def _expand_path(self, node: Any, parts: list[str], full: str) -> None:
        if isinstance(node, list):
            for item in node:
                self._expand_path(item, parts, full)
            return
        if not isinstance(node, dict):
            return
        head, rest = parts[0], parts[1:]
        if head not in node:
            raise invalid(f"This property cannot be expanded ({head}).", "expand")
        value = node[head]
        if not rest:
            node[head] = self._expand_value(value, head)
            return
        if isinstance(value, str):
            value = node[head] = self._expand_value(value, head)
        self._expand_path(value, rest, full)

    def _expand_value(self, value: Any, name: str) -> Any:
        if isinstance(value, list):
            return [self._expand_value(v, name) for v in value]
        if isinstance(value, str):
            found = self._lookup(value)
            if found is None:
                if value.split("_", 1)[0] in PREFIX_TO_COLLECTION:
                    return value  # dangling reference (e.g. a seeded id never created): left as id
                raise invalid(f"This property cannot be expanded ({name}).", "expand")
            return found
        if value is None or isinstance(value, dict):
            return value
        raise invalid(f"This property cannot be expanded ({name}).", "expand")

    # ------------------------------------------------------------------ routing
    def _route_table(self) -> list[tuple[re.Pattern[str], dict[str, Callable[..., Any]]]]:
        r = []

        def add(pattern: str, **methods: Callable[..., Any]) -> None:
            r.append((re.compile("^" + pattern.replace("{id}", "(?P<id>[^/]+)") + "$"), methods))

        add("/v1/customers", GET=self.list_customers, POST=self.create_customer)
        add("/v1/customers/{id}", GET=self.retrieve_customer, POST=self.update_customer, DELETE=self.delete_customer)
        add("/v1/products", GET=self.list_products, POST=self.create_product)
        add("/v1/products/{id}", GET=self.retrieve_product, POST=self.update_product, DELETE=self.delete_product)
        add("/v1/prices", GET=self.list_prices, POST=self.create_price)
        add("/v1/prices/{id}", GET=self.retrieve_price, POST=self.update_price)
        add("/v1/coupons", GET=self.list_coupons, POST=self.create_coupon)
        add("/v1/coupons/{id}", GET=self.retrieve_coupon, POST=self.update_coupon, DELETE=self.delete_coupon)
        add("/v1/invoiceitems", GET=self.list_invoiceitems, POST=self.create_invoiceitem)
        add("/v1/invoiceitems/{id}", GET=self.retrieve_invoiceitem, DELETE=self.delete_invoiceitem)
        add("/v1/invoices", GET=self.list_invoices, POST=self.create_invoice)
        add("/v1/invoices/{id}", GET=self.retrieve_invoice, POST=self.update_invoice, DELETE=self.delete_invoice)
        add("/v1/invoices/{id}/lines", GET=self.list_invoice_lines)
        add("/v1/invoices/{id}/add_lines", POST=self.add_invoice_lines)
        add("/v1/invoices/{id}/finalize", POST=self.finalize_invoice)
        add("/v1/invoices/{id}/pay", POST=self.pay_invoice)
        add("/v1/invoices/{id}/void", POST=self.void_invoice)
        add("/v1/charges", GET=self.list_charges)
        add("/v1/charges/{id}", GET=self.retrieve_charge)
        add("/v1/payment_intents", GET=self.list_payment_intents)
        add("/v1/payment_intents/{id}", GET=self.retrieve_payment_intent)
        add("/v1/events", GET=self.list_events)
        add("/v1/events/{id}", GET=self.retrieve_event)
        return r

    def _authenticate(self, request: Request) -> None:
        auth = request.headers.get("authorization", "")
        scheme, _, value = auth.partition(" ")
        key = None
        if scheme.lower() == "bearer" and value.strip():
            key = value.strip()
        elif scheme.lower() == "basic" and value.strip():
            try:
                key = base64.b64decode(value.strip()).decode().partition(":")[0]
            except (ValueError, UnicodeDecodeError):
                key = None
        headers = {"WWW-Authenticate": 'Basic realm="Stripe"'}
        if not key:
            raise StripeError(
                401, "You did not provide an API key. You need to provide your API key in the Authorization "
                "header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY'). See "
                "https://stripe.com/docs/api#authentication for details, or we can help at "
                "https://support.stripe.com/.", headers=headers)
        if not hmac.compare_digest(key.encode(), self.ctx.token.encode()):
            raise StripeError(401, f"Invalid API Key provided: {mask_key(key)}", headers=headers)

    async def dispatch(self, request: Request) -> Response:
        """Every request under `/stripe`: auth, parameter decoding, idempotency, handler, expansion."""
        request_id = "req_" + "".join(secrets.choice(_ALNUM) for _ in range(14))
        version = request.headers.get("stripe-version") or API_VERSION
        idem = request.headers.get("idempotency-key")
        base_headers = {"Request-Id": request_id, "Stripe-Version": version}
        if idem and request.method == "POST":
            base_headers["Idempotency-Key"] = idem
        path = "/" + request.path_params.get("path", "")
        method = request.method
        try:
            self._authenticate(request)
            handler, path_args = self._match(method, path)
            body = await request.body() if method == "POST" else b""
            try:
                params = forms.decode(request.url.query, body)
            except ParamError as exc:
                raise invalid(exc.message, exc.param) from None
            req = _Req(method, path, params, request_id, idem if method == "POST" else None, version)
            status, result, extra_headers = await asyncio.to_thread(self._run, req, handler, path_args)
        except StripeError as exc:
            return self._json(exc.status, exc.body(request_id), {**base_headers, **exc.headers})
        except Exception:  # a bug here must still answer in Stripe's shape, and be logged
            log.exception("stripe emulation failed on %s %s", method, path)
            err = StripeError(500, "An unknown error occurred", type="api_error")
            return self._json(500, err.body(request_id), base_headers)
        return self._json(status, result, {**base_headers, **extra_headers})

    def _match(self, method: str, path: str) -> tuple[Callable[..., Any], dict[str, str]]:
        for pattern, methods in self.routes:
            m = pattern.match(path)
            if m and method in methods:
                return methods[method], m.groupdict()
        raise StripeError(404, f"Unrecognized request URL ({method}: {path}). Please see https://stripe.com/docs "
                          "or we can help at https://support.stripe.com/.")

    def _run(self, req: _Req, handler: Callable[..., Any],
             path_args: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        with self.lock:
            if req.idempotency_key:
                replay = self._idempotent_replay(req)
                if replay is not None:
                    return replay
            try:
                expand = forms.as_list(req.params.pop("expand", []), "expand") if "expand" in req.params else []
                result = handler(req, **path_args)
                if expand:
                    result = self.expand(result, [str(e) for e in expand], result.get("object") == "list")
                status, body = 200, result
            except ParamError as exc:
                raise invalid(exc.message, exc.param) from None
            except StripeError as exc:
                if req.idempotency_key and exc.saved:
                    self._remember(req, exc.status, exc.body(req.request_id))
                raise
            if req.idempotency_key:
                self._remember(req, status, body)
            return status, body, {}

    # Stripe keeps a key's first result for 24 hours and replays it for the same parameters.
    def _idempotent_replay(self, req: _Req) -> tuple[int, Any, dict[str, str]] | None:
        rec = self.get("idempotency_keys", req.idempotency_key)  # type: ignore[arg-type]
        if rec is None or req.now - rec["created"] > IDEMPOTENCY_TTL:
            return None
        if rec["fingerprint"] != req.fingerprint:
            raise StripeError(
                400, "Keys for idempotent requests can only be used with the same parameters they were first "
                f"used with. Try using a key other than '{req.idempotency_key}' if you meant to execute a "
                "different request.", type="idempotency_error", saved=False)
        if rec["status"] >= 400:
            body = rec["body"]["error"]
            raise StripeError(rec["status"], body.get("message", ""), type=body.get("type", "api_error"),
                              code=body.get("code"), param=body.get("param"), saved=False,
                              headers={"Idempotent-Replayed": "true", "Original-Request": rec["request_id"]},
                              extra={k: v for k, v in body.items()
                                     if k not in ("code", "doc_url", "message", "param", "type", "request_log_url")})
        return rec["status"], rec["body"], {"Idempotent-Replayed": "true", "Original-Request": rec["request_id"]}

    def _remember(self, req: _Req, status: int, body: Any) -> None:
        self.store.put(SYSTEM, "idempotency_keys", req.idempotency_key or "", {
            "id": req.idempotency_key, "fingerprint": req.fingerprint, "status": status, "body": body,
            "request_id": req.request_id, "created": req.now}, created=req.now)

    @staticmethod
    def _json(status: int, body: Any, headers: dict[str, str]) -> Response:
        return Response(orjson.dumps(body), status_code=status, media_type="application/json", headers=headers)

    # ------------------------------------------------------------------ rate limit / 5xx bodies
    @staticmethod
    def rate_limit_response(retry_after: float) -> Response:
        """Stripe's 429: `rate_limit` in an invalid_request_error; no Retry-After, no Stripe-Should-Retry
        (the official clients do not retry it)."""
        err = StripeError(429, "Request rate limit exceeded. Learn more about rate limits here "
                          "https://stripe.com/docs/rate-limits.", code="rate_limit")
        request_id = "req_" + "".join(secrets.choice(_ALNUM) for _ in range(14))
        return StripeEmulation._json(429, err.body(request_id), {
            "Request-Id": request_id, "Stripe-Rate-Limited-Reason": "global-rate"})

    @staticmethod
    def error_response(status: int) -> Response:
        """Stripe's api_error for a server-side failure; official clients retry 5xx."""
        err = StripeError(status, "An unknown error occurred", type="api_error")
        request_id = "req_" + "".join(secrets.choice(_ALNUM) for _ in range(14))
        return StripeEmulation._json(status, err.body(request_id), {"Request-Id": request_id})

    # ------------------------------------------------------------------ customers
    CUSTOMER_FIELDS = {"address", "balance", "description", "email", "invoice_prefix", "invoice_settings",
                       "metadata", "name", "next_invoice_sequence", "phone", "preferred_locales", "shipping",
                       "tax_exempt", "payment_method", "source", "test_clock", "tax", "tax_id_data",
                       "cash_balance", "validate", "business_name", "individual_name", "coupon",
                       "promotion_code", "default_source"}

    def _apply_customer_params(self, req: _Req, cus: dict[str, Any]) -> None:
        p = req.params
        for key in ("description", "email", "name", "phone", "address", "shipping", "business_name",
                    "individual_name", "default_source"):
            if key in p:
                cus[key] = nullable(p[key])
        if "balance" in p:
            cus["balance"] = forms.as_int(p["balance"], "balance")
        if "next_invoice_sequence" in p:
            cus["next_invoice_sequence"] = forms.as_int(p["next_invoice_sequence"], "next_invoice_sequence")
        if "invoice_prefix" in p:
            prefix = forms.as_str(p["invoice_prefix"], "invoice_prefix").upper()
            if not re.fullmatch(r"[A-Z0-9]{3,12}", prefix):
                raise invalid("Invoice prefix must be 3-12 uppercase letters or numbers.", "invoice_prefix")
            cus["invoice_prefix"] = prefix
        if "invoice_settings" in p:
            settings = forms.as_dict(p["invoice_settings"], "invoice_settings")
            cus["invoice_settings"] = {**cus["invoice_settings"], **{k: nullable(v) for k, v in settings.items()}}
        if "preferred_locales" in p:
            cus["preferred_locales"] = forms.as_list(p["preferred_locales"], "preferred_locales")
        if "tax_exempt" in p:
            if p["tax_exempt"] not in ("none", "exempt", "reverse", ""):
                raise invalid("Invalid tax_exempt: must be one of none, exempt, or reverse", "tax_exempt")
            cus["tax_exempt"] = p["tax_exempt"] or "none"
        if "metadata" in p:
            cus["metadata"] = metadata_update(cus.get("metadata"), p["metadata"])
        if "coupon" in p:  # the customer-level coupon of API versions before 2025-03-31
            if p["coupon"] == "":
                cus["discount"] = None
            else:
                cus["discount"] = self._new_discount(req, forms.as_str(p["coupon"], "coupon"), "coupon",
                                                     customer=cus["id"])

    def create_customer(self, req: _Req) -> dict[str, Any]:
        check_params(req.params, self.CUSTOMER_FIELDS | {"expand"})
        cus = {
            "id": new_id("customers"), "object": "customer", "address": None, "balance": 0,
            "created": req.now, "currency": None, "default_source": None, "delinquent": False,
            "description": None, "discount": None, "email": None,
            "invoice_prefix": "".join(secrets.choice(string.ascii_uppercase + string.digits) for _ in range(8)),
            "invoice_settings": {"custom_fields": None, "default_payment_method": None, "footer": None,
                                 "rendering_options": None},
            "livemode": False, "metadata": {}, "name": None, "next_invoice_sequence": 1, "phone": None,
            "preferred_locales": [], "shipping": None, "tax_exempt": "none", "test_clock": None,
        }
        self._apply_customer_params(req, cus)
        self.put("customers", cus, created=req.now)
        self.emit(req, "customer.created", cus)
        if cus["discount"]:
            self.emit(req, "customer.discount.created", cus["discount"])
        return cus

    def retrieve_customer(self, req: _Req, id: str) -> dict[str, Any]:
        check_params(req.params, {"expand"})
        cus = self.get("customers", id)
        if cus is None:
            gone = self.get("deleted_customers", id)
            if gone is None:
                raise missing("customers", id)
            return gone
        return cus

    def update_customer(self, req: _Req, id: str) -> dict[str, Any]:
        check_params(req.params, self.CUSTOMER_FIELDS | {"expand"})
        cus = self.need("customers", id)
        before = json.loads(json.dumps(cus))
        self._apply_customer_params(req, cus)
        previous = {k: before.get(k) for k in cus if before.get(k) != cus.get(k)}
        self.put("customers", cus)
        if previous:
            self.emit(req, "customer.updated", cus, previous)
        if "discount" in previous:
            if before.get("discount"):
                self.emit(req, "customer.discount.deleted", before["discount"])
            if cus.get("discount"):
                self.emit(req, "customer.discount.created", cus["discount"])
        return cus

    def delete_customer(self, req: _Req, id: str) -> dict[str, Any]:
        check_params(req.params, set())
        cus = self.need("customers", id)
        stub = {"id": cus["id"], "object": "customer", "deleted": True}
        self.store.delete(SYSTEM, "customers", id)
        self.store.put(SYSTEM, "deleted_customers", id, stub, created=cus.get("created"), updated=req.now)
        self.emit(req, "customer.deleted", cus)
        return stub

    def list_customers(self, req: _Req) -> dict[str, Any]:
        return self.list_objects(req, "customers", "/v1/customers", {"email", "test_clock"}, {"email": "email"})

    # ------------------------------------------------------------------ products
    PRODUCT_FIELDS = {"active", "default_price_data", "description", "id", "images", "marketing_features",
                      "metadata", "name", "package_dimensions", "shippable", "statement_descriptor",
                      "tax_code", "tax_details", "type", "unit_label", "url", "expand"}

    def _apply_product_params(self, req: _Req, prod: dict[str, Any]) -> None:
        p = req.params
        for key in ("name", "description", "statement_descriptor", "tax_code", "unit_label", "url",
                    "package_dimensions"):
            if key in p:
                prod[key] = nullable(p[key])
        for key in ("active", "shippable"):
            if key in p:
                prod[key] = forms.as_bool(p[key], key) if p[key] != "" else None
        if "images" in p:
            prod["images"] = forms.as_list(p["images"], "images")
        if "marketing_features" in p:
            prod["marketing_features"] = forms.as_list(p["marketing_features"], "marketing_features")
        if "metadata" in p:
            prod["metadata"] = metadata_update(prod.get("metadata"), p["metadata"])
        prod["updated"] = req.now

    def create_product(self, req: _Req) -> dict[str, Any]:
        p = req.params
        check_params(p, self.PRODUCT_FIELDS, ("name",))
        prod_id = forms.as_str(p["id"], "id") if p.get("id") else new_id("products")
        if self.get("products", prod_id) is not None:
            raise StripeError(400, "Product already exists.", code="resource_already_exists", param="id")
        prod = {
            "id": prod_id, "object": "product", "active": True, "created": req.now, "default_price": None,
            "description": None, "images": [], "livemode": False, "marketing_features": [], "metadata": {},
            "name": None, "package_dimensions": None, "shippable": None, "statement_descriptor": None,
            "tax_code": None, "type": p.get("type", "service"), "unit_label": None, "updated": req.now, "url": None,
        }
        self._apply_product_params(req, prod)
        self.put("products", prod, created=req.now)
        self.emit(req, "product.created", prod)
        if "default_price_data" in p:
            data = forms.as_dict(p["default_price_data"], "default_price_data")
            price = self._build_price(req, {**data, "product": prod_id}, "default_price_data")
            self.put("prices", price, created=req.now)
            self.emit(req, "price.created", price)
            prod["default_price"] = price["id"]
            self.put("products", prod)
        return prod

    def retrieve_product(self, req: _Req, id: str) -> dict[str, Any]:
        check_params(req.params, {"expand"})
        return self.need("products", id)

    def update_product(self, req: _Req, id: str) -> dict[str, Any]:
        p = req.params
        check_params(p, (self.PRODUCT_FIELDS - {"id", "default_price_data", "type"}) | {"default_price"})
        prod = self.need("products", id)
        before = dict(prod)
        self._apply_product_params(req, prod)
        if "default_price" in p:
            if p["default_price"]:
                price = self.need("prices", p["default_price"], "default_price")
                if price["product"] != id:
                    raise invalid("The default price must belong to this product.", "default_price")
            prod["default_price"] = nullable(p["default_price"])
        previous = {k: before.get(k) for k in prod if k != "updated" and before.get(k) != prod.get(k)}
        self.put("products", prod)
        self.emit(req, "product.updated", prod, previous)
        return prod

    def delete_product(self, req: _Req, id: str) -> dict[str, Any]:
        check_params(req.params, set())
        prod = self.need("products", id)
        has_prices = self.store.query(
            "SELECT 1 FROM objects INDEXED BY stripe_prices_product WHERE system = 'stripe' "
            "AND collection = 'prices' AND json_extract(data, '$.product') = ? LIMIT 1", (id,))
        if has_prices:
            raise invalid("This product cannot be deleted because it has one or more user-created prices.",
                          saved=True)
        self.store.delete(SYSTEM, "products", id)
        self.emit(req, "product.deleted", prod)
        return {"id": id, "object": "product", "deleted": True}

    def list_products(self, req: _Req) -> dict[str, Any]:
        p = req.params
        extra: tuple[list[str], list[Any]] = ([], [])
        if p.get("active") not in (None, ""):
            extra[0].append("json_extract(data, '$.active') = ?")
            extra[1].append(1 if forms.as_bool(p["active"], "active") else 0)
        if p.get("ids") not in (None, ""):
            ids = [forms.as_str(i, "ids") for i in forms.as_list(p["ids"], "ids")]
            extra[0].append(f"id IN ({','.join('?' * len(ids))})")
            extra[1].extend(ids)
        return self.list_objects(req, "products", "/v1/products", {"active", "ids", "shippable", "type", "url"},
                                 {"type": "type", "url": "url"}, extra)

    # ------------------------------------------------------------------ prices
    PRICE_FIELDS = {"active", "billing_scheme", "currency", "currency_options", "custom_unit_amount", "expand",
                    "lookup_key", "metadata", "nickname", "product", "product_data", "recurring", "tax_behavior",
                    "tiers", "tiers_mode", "transfer_lookup_key", "transform_quantity", "unit_amount",
                    "unit_amount_decimal"}

    def _build_price(self, req: _Req, p: dict[str, Any], where: str = "") -> dict[str, Any]:
        pre = f"{where}[" if where else ""
        post = "]" if where else ""
        if not p.get("currency"):
            raise invalid(f"Missing required param: {pre}currency{post}.", f"{pre}currency{post}", "parameter_missing")
        product = p.get("product")
        if not product and "product_data" in p:
            pdata = forms.as_dict(p["product_data"], "product_data")
            if not pdata.get("name"):
                raise invalid("Missing required param: product_data[name].", "product_data[name]", "parameter_missing")
            sub = _Req(req.method, req.path, {k: v for k, v in pdata.items()}, req.request_id,
                       req.idempotency_key, req.api_version)
            product = self.create_product(sub)["id"]
        if not product:
            raise invalid(f"Missing required param: {pre}product{post}.", f"{pre}product{post}", "parameter_missing")
        self.need("products", product, f"{pre}product{post}")
        if "unit_amount" in p and p["unit_amount"] != "":
            unit = forms.as_int(p["unit_amount"], f"{pre}unit_amount{post}")
            decimal = str(unit)
        elif p.get("unit_amount_decimal") not in (None, ""):
            decimal = forms.as_str(p["unit_amount_decimal"], f"{pre}unit_amount_decimal{post}")
            value = forms.as_float(decimal, f"{pre}unit_amount_decimal{post}")
            unit = int(value) if value == int(value) else None
        elif p.get("custom_unit_amount"):
            unit, decimal = None, None
        else:
            raise invalid(f"Missing required param: {pre}unit_amount{post}.", f"{pre}unit_amount{post}",
                          "parameter_missing")
        if unit is not None and unit < 0:
            raise invalid("This value must be greater than or equal to 0.", f"{pre}unit_amount{post}")
        recurring = None
        if p.get("recurring"):
            r = forms.as_dict(p["recurring"], "recurring")
            if r.get("interval") not in ("day", "week", "month", "year"):
                raise invalid("Invalid recurring[interval]: must be one of day, week, month, or year",
                              "recurring[interval]")
            recurring = {"interval": r["interval"],
                         "interval_count": forms.as_int(r.get("interval_count", 1), "recurring[interval_count]"),
                         "meter": r.get("meter"), "trial_period_days": None,
                         "usage_type": r.get("usage_type", "licensed")}
        return {
            "id": new_id("prices"), "object": "price",
            "active": forms.as_bool(p["active"], "active") if p.get("active") not in (None, "") else True,
            "billing_scheme": p.get("billing_scheme", "per_unit"), "created": req.now,
            "currency": forms.as_str(p["currency"], "currency").lower(),
            "custom_unit_amount": p.get("custom_unit_amount"),
            "livemode": False, "lookup_key": nullable(p.get("lookup_key")),
            "metadata": metadata_update({}, p.get("metadata", {})), "nickname": nullable(p.get("nickname")),
            "product": product, "recurring": recurring, "tax_behavior": p.get("tax_behavior", "unspecified"),
            "tiers_mode": p.get("tiers_mode"), "transform_quantity": p.get("transform_quantity"),
            "type": "recurring" if recurring else "one_time", "unit_amount": unit, "unit_amount_decimal": decimal,
        }

    def create_price(self, req: _Req) -> dict[str, Any]:
        check_params(req.params, self.PRICE_FIELDS, ("currency",))
        price = self._build_price(req, req.params)
        if price["lookup_key"] and self.store.query(
                "SELECT 1 FROM objects WHERE system = 'stripe' AND collection = 'prices' "
                "AND json_extract(data, '$.lookup_key') = ? LIMIT 1", (price["lookup_key"],)):
            if req.params.get("transfer_lookup_key") not in ("true", True):
                raise invalid(f"A price (`{price['lookup_key']}`) already uses that lookup key.", "lookup_key")
        self.put("prices", price, created=req.now)
        self.emit(req, "price.created", price)
        return price

    def retrieve_price(self, req: _Req, id: str) -> dict[str, Any]:
        check_params(req.params, {"expand"})
        return self.need("prices", id)

    def update_price(self, req: _Req, id: str) -> dict[str, Any]:
        p = req.params
        check_params(p, {"active", "currency_options", "expand", "lookup_key", "metadata", "nickname",
                         "tax_behavior", "transfer_lookup_key"})
        price = self.need("prices", id)
        before = dict(price)
        if "active" in p:
            price["active"] = forms.as_bool(p["active"], "active")
        for key in ("lookup_key", "nickname", "tax_behavior"):
            if key in p:
                price[key] = nullable(p[key])
        if "metadata" in p:
            price["metadata"] = metadata_update(price.get("metadata"), p["metadata"])
        previous = {k: before.get(k) for k in price if before.get(k) != price.get(k)}
        self.put("prices", price)
        self.emit(req, "price.updated", price, previous)
        return price

    def list_prices(self, req: _Req) -> dict[str, Any]:
        p = req.params
        extra: tuple[list[str], list[Any]] = ([], [])
        if p.get("active") not in (None, ""):
            extra[0].append("json_extract(data, '$.active') = ?")
            extra[1].append(1 if forms.as_bool(p["active"], "active") else 0)
        if p.get("lookup_keys") not in (None, ""):
            keys = [forms.as_str(k, "lookup_keys") for k in forms.as_list(p["lookup_keys"], "lookup_keys")]
            extra[0].append(f"json_extract(data, '$.lookup_key') IN ({','.join('?' * len(keys))})")
            extra[1].extend(keys)
        return self.list_objects(req, "prices", "/v1/prices",
                                 {"active", "currency", "lookup_keys", "product", "recurring", "type"},
                                 {"product": "product", "currency": "currency", "type": "type"}, extra)

    # ------------------------------------------------------------------ coupons and discounts
    COUPON_FIELDS = {"amount_off", "applies_to", "currency", "currency_options", "duration", "duration_in_months",
                     "expand", "id", "max_redemptions", "metadata", "name", "percent_off", "redeem_by"}

    def create_coupon(self, req: _Req) -> dict[str, Any]:
        p = req.params
        check_params(p, self.COUPON_FIELDS)
        coupon_id = forms.as_str(p["id"], "id") if p.get("id") else new_id("coupons")
        if self.get("coupons", coupon_id) is not None:
            raise StripeError(400, "Coupon already exists.", code="resource_already_exists", param="id")
        has_pct = p.get("percent_off") not in (None, "")
        has_amt = p.get("amount_off") not in (None, "")
        if has_pct == has_amt:
            raise invalid("You must pass exactly one of percent_off or amount_off.",
                          "amount_off" if has_amt else "percent_off",
                          None if has_amt else "parameter_missing")
        percent = amount = currency = None
        if has_pct:
            percent = forms.as_float(p["percent_off"], "percent_off")
            if not 0 < percent <= 100:
                raise invalid("Invalid percent_off: must be greater than 0 and at most 100.", "percent_off")
        else:
            amount = forms.as_int(p["amount_off"], "amount_off")
            if amount < 1:
                raise invalid("Invalid amount_off: must be a positive integer.", "amount_off")
            if not p.get("currency"):
                raise invalid("Missing required param: currency.", "currency", "parameter_missing")
            currency = forms.as_str(p["currency"], "currency").lower()
        duration = p.get("duration", "once")
        if duration not in ("once", "repeating", "forever"):
            raise invalid("Invalid duration: must be one of forever, once, or repeating", "duration")
        months = None
        if duration == "repeating":
            if p.get("duration_in_months") in (None, ""):
                raise invalid("Missing required param: duration_in_months.", "duration_in_months", "parameter_missing")
            months = forms.as_int(p["duration_in_months"], "duration_in_months")
        coupon = {
            "id": coupon_id, "object": "coupon", "amount_off": amount,
            "applies_to": p.get("applies_to"), "created": req.now, "currency": currency,
            "duration": duration, "duration_in_months": months, "livemode": False,
            "max_redemptions": (forms.as_int(p["max_redemptions"], "max_redemptions")
                                if p.get("max_redemptions") else None),
            "metadata": metadata_update({}, p.get("metadata", {})), "name": nullable(p.get("name")),
            "percent_off": (int(percent) if percent is not None and percent == int(percent) else percent),
            "redeem_by": forms.as_int(p["redeem_by"], "redeem_by") if p.get("redeem_by") else None,
            "times_redeemed": 0, "valid": True,
        }
        self.put("coupons", coupon, created=req.now)
        self.emit(req, "coupon.created", coupon)
        return coupon

    def retrieve_coupon(self, req: _Req, id: str) -> dict[str, Any]:
        check_params(req.params, {"expand"})
        return self.need("coupons", id)

    def update_coupon(self, req: _Req, id: str) -> dict[str, Any]:
        p = req.params
        check_params(p, {"currency_options", "expand", "metadata", "name"})
        coupon = self.need("coupons", id)
        before = dict(coupon)
        if "name" in p:
            coupon["name"] = nullable(p["name"])
        if "metadata" in p:
            coupon["metadata"] = metadata_update(coupon.get("metadata"), p["metadata"])
        self.put("coupons", coupon)
        self.emit(req, "coupon.updated", coupon, {k: before.get(k) for k in coupon if before.get(k) != coupon.get(k)})
        return coupon

    def delete_coupon(self, req: _Req, id: str) -> dict[str, Any]:
        check_params(req.params, set())
        coupon = self.need("coupons", id)
        self.store.delete(SYSTEM, "coupons", id)
        self.emit(req, "coupon.deleted", coupon)
        return {"id": id, "object": "coupon", "deleted": True}

    def list_coupons(self, req: _Req) -> dict[str, Any]:
        return self.list_objects(req, "coupons", "/v1/coupons", set())

    def _redeem(self, req: _Req, coupon_id: str, param: str) -> dict[str, Any]:
        coupon = self.need("coupons", coupon_id, param)
        exhausted = coupon["max_redemptions"] is not None and coupon["times_redeemed"] >= coupon["max_redemptions"]
        expired = coupon["redeem_by"] is not None and coupon["redeem_by"] < req.now
        if exhausted or expired or not coupon.get("valid", True):
            raise StripeError(400, f"Coupon expired: {coupon_id}", code="coupon_expired", param=param)
        coupon["times_redeemed"] += 1
        if coupon["max_redemptions"] is not None and coupon["times_redeemed"] >= coupon["max_redemptions"]:
            coupon["valid"] = False
        self.put("coupons", coupon)
        return coupon

    def _new_discount(self, req: _Req, coupon_id: str, param: str, *, customer: str | None = None,
                      invoice: str | None = None, invoice_item: str | None = None) -> dict[str, Any]:
        coupon = self._redeem(req, coupon_id, param)
        end = None
        if coupon["duration"] == "repeating":
            end = req.now + int(coupon["duration_in_months"]) * 30 * 86400
        discount = {
            "id": new_id("discounts"), "object": "discount", "checkout_session": None, "coupon": coupon,
            "customer": customer, "end": end, "invoice": invoice, "invoice_item": invoice_item,
            "promotion_code": None, "source": {"coupon": coupon["id"], "type": "coupon"}, "start": req.now,
            "subscription": None, "subscription_item": None,
        }
        self.put("discounts", discount, created=req.now)
        return discount

    def _discounts_param(self, req: _Req, value: Any, param: str, **owner: str | None) -> list[str]:
        """`discounts[i][coupon|discount]` -> discount ids (new discounts for coupons)."""
        if value == "":
            return []
        out = []
        for i, entry in enumerate(forms.as_list(value, param)):
            entry = forms.as_dict(entry, f"{param}[{i}]")
            unknown = set(entry) - {"coupon", "discount", "promotion_code"}
            if unknown:
                name = sorted(unknown)[0]
                raise invalid(f"Received unknown parameter: {param}[{i}][{name}]", f"{param}[{i}][{name}]",
                              "parameter_unknown")
            if entry.get("coupon"):
                out.append(self._new_discount(req, entry["coupon"], f"{param}[{i}][coupon]", **owner)["id"])
            elif entry.get("discount"):
                self.need("discounts", entry["discount"], f"{param}[{i}][discount]")
                out.append(entry["discount"])
            elif entry.get("promotion_code"):
                raise invalid(f"No such promotion code: '{entry['promotion_code']}'",
                              f"{param}[{i}][promotion_code]", "resource_missing", saved=True)
        return out

    # ------------------------------------------------------------------ invoice items
    ITEM_FIELDS = {"amount", "currency", "customer", "customer_account", "description", "discountable",
                   "discounts", "expand", "invoice", "metadata", "period", "price_data", "pricing", "quantity",
                   "quantity_decimal", "subscription", "tax_behavior", "tax_code", "tax_rates",
                   "unit_amount_decimal", "price", "unit_amount"}

    def _build_item(self, req: _Req, p: dict[str, Any], customer: dict[str, Any], where: str = "") -> dict[str, Any]:
        """An invoice item from `pricing[price]` (or legacy `price`), `price_data`, or `amount`."""
        def name(k: str) -> str:
            return f"{where}[{k}]" if where else k

        quantity = forms.as_int(p.get("quantity", 1), name("quantity"))
        if quantity < 0:
            raise invalid("This value must be greater than or equal to 0.", name("quantity"))
        price_id = None
        if p.get("pricing"):
            pricing = forms.as_dict(p["pricing"], name("pricing"))
            price_id = pricing.get("price")
        price_id = price_id or p.get("price")
        price = None
        if price_id:
            param = ("price" if price_id == p.get("price")
                     else f"{where}[pricing][price]" if where else "pricing[price]")
            price = self.need("prices", price_id, param)
            if not price["active"]:
                raise invalid(f"The price specified is inactive: {price_id}.", name("pricing"))
            unit = price["unit_amount"] or 0
            currency = price["currency"]
            product = price["product"]
        elif p.get("price_data"):
            pd = forms.as_dict(p["price_data"], name("price_data"))
            for req_key in ("currency", "product"):
                if not pd.get(req_key):
                    raise invalid(f"Missing required param: {name('price_data')}[{req_key}].",
                                  f"{name('price_data')}[{req_key}]", "parameter_missing")
            self.need("products", pd["product"], f"{name('price_data')}[product]")
            unit = forms.as_int(pd.get("unit_amount", 0), f"{name('price_data')}[unit_amount]")
            price = {"id": new_id("prices"), "object": "price", "active": False, "billing_scheme": "per_unit",
                     "created": req.now, "currency": pd["currency"].lower(), "custom_unit_amount": None,
                     "livemode": False, "lookup_key": None, "metadata": {}, "nickname": None,
                     "product": pd["product"], "recurring": None, "tax_behavior": "unspecified",
                     "tiers_mode": None, "transform_quantity": None, "type": "one_time",
                     "unit_amount": unit, "unit_amount_decimal": str(unit)}
            self.put("prices", price, created=req.now)
            currency, product, price_id = price["currency"], pd["product"], price["id"]
        elif p.get("amount") not in (None, ""):
            total = forms.as_int(p["amount"], name("amount"))
            if not p.get("currency") and not customer.get("currency"):
                raise invalid(f"Missing required param: {name('currency')}.", name("currency"), "parameter_missing")
            currency = (p.get("currency") or customer["currency"]).lower()
            unit, quantity, product = total, 1, None
        elif p.get("unit_amount") not in (None, "") or p.get("unit_amount_decimal") not in (None, ""):
            raw = p.get("unit_amount") if p.get("unit_amount") not in (None, "") else p["unit_amount_decimal"]
            unit = int(forms.as_float(raw, name("unit_amount_decimal")))
            if not p.get("currency"):
                raise invalid(f"Missing required param: {name('currency')}.", name("currency"), "parameter_missing")
            currency, product = p["currency"].lower(), None
        else:
            raise invalid(f"Missing required param: {name('amount')}.", name("amount"), "parameter_missing")
        period = forms.as_dict(p.get("period", {}), name("period"))
        start = forms.as_int(period.get("start", req.now), f"{name('period')}[start]")
        end = forms.as_int(period.get("end", start), f"{name('period')}[end]")
        return {
            "id": new_id("invoiceitems"), "object": "invoiceitem", "amount": unit * quantity,
            "currency": currency, "customer": customer["id"], "date": req.now,
            "description": nullable(p.get("description")) or (self._product_name(product) if product else None),
            "discountable": forms.as_bool(p.get("discountable", "true"), name("discountable")),
            "discounts": [], "invoice": None, "livemode": False,
            "metadata": metadata_update({}, p.get("metadata", {})), "net_amount": unit * quantity,
            "parent": None, "period": {"end": end, "start": start},
            "price": price,  # the pre-2025-03-31 field, kept so older readers find it
            "pricing": ({"price_details": {"price": price_id, "product": product}, "type": "price_details",
                         "unit_amount_decimal": str(unit)} if price_id else None),
            "proration": False, "quantity": quantity, "tax_rates": [], "test_clock": None,
            "unit_amount": unit, "unit_amount_decimal": str(unit),
        }

    def _product_name(self, product_id: str) -> str | None:
        prod = self.get("products", product_id)
        return prod["name"] if prod else None

    def create_invoiceitem(self, req: _Req) -> dict[str, Any]:
        p = req.params
        check_params(p, self.ITEM_FIELDS, ("customer",))
        customer = self.need("customers", p["customer"], "customer")
        item = self._build_item(req, p, customer)
        invoice = None
        if p.get("invoice"):
            invoice = self.need("invoices", p["invoice"], "invoice")
            self._require_draft(invoice, "invoice")
            if invoice["customer"] != customer["id"]:
                raise invalid("The invoice item's customer must match the invoice's customer.", "invoice")
            if item["currency"] != invoice["currency"]:
                raise invalid(f"The invoice item's currency ({item['currency']}) must match the invoice's "
                              f"currency ({invoice['currency']}).", "currency")
            item["invoice"] = invoice["id"]
        if "discounts" in p:
            item["discounts"] = self._discounts_param(req, p["discounts"], "discounts", customer=customer["id"],
                                                      invoice_item=item["id"])
        self.put("invoiceitems", item, created=req.now)
        self.emit(req, "invoiceitem.created", item)
        if invoice is not None:
            self._attach_items(req, invoice, [item])
        return item

    def retrieve_invoiceitem(self, req: _Req, id: str) -> dict[str, Any]:
        check_params(req.params, {"expand"})
        return self.need("invoiceitems", id)

    def delete_invoiceitem(self, req: _Req, id: str) -> dict[str, Any]:
        check_params(req.params, set())
        item = self.need("invoiceitems", id)
        if item.get("invoice"):
            invoice = self.need("invoices", item["invoice"])
            if invoice["status"] != "draft":
                raise invalid("You can only delete invoice items that are pending or on a draft invoice.",
                              saved=True)
            invoice["lines"]["data"] = [l for l in invoice["lines"]["data"] if self._line_item_id(l) != id]
            self._recompute(invoice)
            self.put("invoices", invoice)
        self.store.delete(SYSTEM, "invoiceitems", id)
        self.emit(req, "invoiceitem.deleted", item)
        return {"id": id, "object": "invoiceitem", "deleted": True}

    def list_invoiceitems(self, req: _Req) -> dict[str, Any]:
        p = req.params
        extra: tuple[list[str], list[Any]] = ([], [])
        if p.get("pending") not in (None, ""):
            pending = forms.as_bool(p["pending"], "pending")
            extra[0].append("json_extract(data, '$.invoice') IS NULL" if pending
                            else "json_extract(data, '$.invoice') IS NOT NULL")
        return self.list_objects(req, "invoiceitems", "/v1/invoiceitems",
                                 {"customer", "customer_account", "invoice", "pending"},
                                 {"customer": "customer", "invoice": "invoice"}, extra)

    @staticmethod
    def _line_item_id(line: dict[str, Any]) -> str | None:
        parent = line.get("parent") or {}
        return (parent.get("invoice_item_details") or {}).get("invoice_item") or line.get("invoice_item")

    # ------------------------------------------------------------------ invoices
    INVOICE_FIELDS = {"account_tax_ids", "application_fee_amount", "auto_advance", "automatic_tax",
                      "automatically_finalizes_at", "collection_method", "currency", "custom_fields", "customer",
                      "customer_account", "days_until_due", "default_payment_method", "default_source",
                      "default_tax_rates", "description", "discounts", "due_date", "effective_at", "expand",
                      "footer", "from_invoice", "issuer", "metadata", "number", "on_behalf_of", "payment_settings",
                      "pending_invoice_items_behavior", "rendering", "shipping_cost", "shipping_details",
                      "statement_descriptor", "subscription", "transfer_data"}

    @staticmethod
    def _require_draft(invoice: dict[str, Any], param: str | None = None) -> None:
        if invoice["status"] != "draft":
            raise StripeError(400, f"You can only modify draft invoices. This invoice is {invoice['status']}.",
                              code="invoice_not_editable", param=param)

    def create_invoice(self, req: _Req) -> dict[str, Any]:
        p = req.params
        check_params(p, self.INVOICE_FIELDS, ("customer",))
        customer = self.need("customers", p["customer"], "customer")
        behavior = p.get("pending_invoice_items_behavior", "exclude")
        if behavior not in ("exclude", "include"):
            raise invalid("Invalid pending_invoice_items_behavior: must be one of exclude or include",
                          "pending_invoice_items_behavior")
        method = p.get("collection_method", "charge_automatically")
        if method not in ("charge_automatically", "send_invoice"):
            raise invalid("Invalid collection_method: must be one of charge_automatically or send_invoice",
                          "collection_method")
        inv_id = new_id("invoices")
        due_date = None
        if method == "send_invoice":
            if p.get("due_date"):
                due_date = forms.as_int(p["due_date"], "due_date")
            elif p.get("days_until_due"):
                due_date = req.now + forms.as_int(p["days_until_due"], "days_until_due") * 86400
            else:
                raise invalid("Missing required param: days_until_due.", "days_until_due", "parameter_missing")
        invoice = {
            "id": inv_id, "object": "invoice", "account_country": "US", "account_name": "Growth Stack Sandbox",
            "account_tax_ids": None, "amount_due": 0, "amount_overpaid": 0, "amount_paid": 0,
            "amount_remaining": 0, "amount_shipping": 0, "application": None, "attempt_count": 0,
            "attempted": False,
            "auto_advance": forms.as_bool(p["auto_advance"], "auto_advance") if "auto_advance" in p else False,
            "automatic_tax": {"disabled_reason": None, "enabled": False, "liability": None, "provider": None,
                              "status": None},
            "automatically_finalizes_at": None, "billing_reason": "manual", "collection_method": method,
            "created": req.now,
            "currency": (p.get("currency") or customer.get("currency") or "usd").lower(),
            "custom_fields": None, "customer": customer["id"], "customer_address": customer.get("address"),
            "customer_email": customer.get("email"), "customer_name": customer.get("name"),
            "customer_phone": customer.get("phone"), "customer_shipping": customer.get("shipping"),
            "customer_tax_exempt": customer.get("tax_exempt", "none"), "customer_tax_ids": [],
            "default_payment_method": None, "default_source": None, "default_tax_rates": [],
            "description": nullable(p.get("description")), "discounts": [], "due_date": due_date,
            "effective_at": None, "ending_balance": None, "footer": nullable(p.get("footer")),
            "from_invoice": None, "hosted_invoice_url": None, "invoice_pdf": None,
            "issuer": {"type": "self"}, "last_finalization_error": None, "latest_revision": None,
            "lines": {"object": "list", "data": [], "has_more": False, "total_count": 0,
                      "url": f"/v1/invoices/{inv_id}/lines"},
            "livemode": False, "metadata": metadata_update({}, p.get("metadata", {})),
            "next_payment_attempt": None, "number": nullable(p.get("number")), "on_behalf_of": None,
            "parent": None, "payment_settings": {"default_mandate": None, "payment_method_options": None,
                                                 "payment_method_types": None},
            "period_end": req.now, "period_start": req.now, "post_payment_credit_notes_amount": 0,
            "pre_payment_credit_notes_amount": 0, "receipt_number": None, "rendering": None,
            "shipping_cost": None, "shipping_details": None, "starting_balance": customer.get("balance", 0),
            "statement_descriptor": nullable(p.get("statement_descriptor")), "status": "draft",
            "status_transitions": {"finalized_at": None, "marked_uncollectible_at": None, "paid_at": None,
                                   "voided_at": None},
            "subtotal": 0, "subtotal_excluding_tax": 0, "test_clock": None, "total": 0,
            "total_discount_amounts": [], "total_excluding_tax": 0, "total_pretax_credit_amounts": [],
            "total_taxes": [], "webhooks_delivered_at": None,
        }
        pending: list[dict[str, Any]] = []
        if behavior == "include":
            rows = self.store.query(
                "SELECT data FROM objects INDEXED BY stripe_invoiceitems_customer "
                "WHERE system = 'stripe' AND collection = 'invoiceitems' "
                "AND json_extract(data, '$.customer') = ? AND json_extract(data, '$.invoice') IS NULL "
                "ORDER BY created, seq", (customer["id"],))
            pending = [orjson.loads(r[0]) for r in rows]
            for item in pending:
                if item["currency"] != invoice["currency"]:
                    raise invalid(f"The pending invoice item {item['id']} is in {item['currency']}, not the "
                                  f"invoice's currency ({invoice['currency']}).", "currency")
        if "discounts" in p:
            invoice["discounts"] = self._discounts_param(req, p["discounts"], "discounts", invoice=inv_id)
        elif self._customer_discount_active(customer, req.now):
            discount = customer["discount"]
            if self.get("discounts", discount["id"]) is None:
                self.put("discounts", discount, created=discount.get("start") or req.now)
            invoice["discounts"] = [discount["id"]]
        self.put("invoices", invoice, created=req.now)
        self.emit(req, "invoice.created", self.present_invoice(invoice))
        if pending:
            self._attach_items(req, invoice, pending)
        return self.present_invoice(invoice)

    @staticmethod
    def _customer_discount_active(customer: dict[str, Any], now: int) -> bool:
        d = customer.get("discount")
        return isinstance(d, dict) and bool(d.get("id")) and (d.get("end") is None or d["end"] > now)

    def _line_for(self, invoice: dict[str, Any], item: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": "il_" + "".join(secrets.choice(_ALNUM) for _ in range(24)), "object": "line_item",
            "amount": item["amount"], "currency": item["currency"], "description": item["description"],
            "discount_amounts": [], "discountable": item["discountable"], "discounts": list(item["discounts"]),
            "invoice": invoice["id"], "livemode": False, "metadata": dict(item["metadata"]),
            "parent": {"invoice_item_details": {"invoice_item": item["id"], "proration": False,
                                                "proration_details": {"credited_items": None},
                                                "subscription": None},
                       "subscription_item_details": None, "type": "invoice_item_details"},
            "period": dict(item["period"]), "pretax_credit_amounts": [],
            "price": item.get("price"),  # pre-2025-03-31 field, kept for older readers
            "pricing": item.get("pricing"), "quantity": item["quantity"], "subtotal": item["amount"],
            "taxes": [],
        }

    def _attach_items(self, req: _Req, invoice: dict[str, Any], items: list[dict[str, Any]]) -> None:
        for item in items:
            if item["currency"] != invoice["currency"]:
                raise invalid(f"The invoice item's currency ({item['currency']}) must match the invoice's "
                              f"currency ({invoice['currency']}).", "currency")
            item["invoice"] = invoice["id"]
            self.put("invoiceitems", item)
            invoice["lines"]["data"].append(self._line_for(invoice, item))
        self._recompute(invoice)
        self.put("invoices", invoice)

    @staticmethod
    def _discount_amount(coupon: dict[str, Any], base: int, currency: str) -> int:
        """What one coupon takes off `base` (half-up rounding for percentages)."""
        if base <= 0:
            return 0
        if coupon.get("percent_off") is not None:
            value = Decimal(base) * Decimal(str(coupon["percent_off"])) / 100
            return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))
        if (coupon.get("currency") or "").lower() != currency:
            return 0
        return min(int(coupon.get("amount_off") or 0), base)

    def _discount_coupon(self, discount: dict[str, Any]) -> dict[str, Any] | None:
        """A discount's coupon, whether embedded (`coupon`) or referenced (`source.coupon`)."""
        coupon = discount.get("coupon") or (discount.get("source") or {}).get("coupon")
        if isinstance(coupon, str):
            coupon = self.get("coupons", coupon)
        return coupon if isinstance(coupon, dict) else None

    def _recompute(self, invoice: dict[str, Any]) -> None:
        """Subtotal, line-level then invoice-level discounts (allocated over discountable lines),
        `total_discount_amounts`, total and amount due."""
        currency = invoice["currency"]
        lines = invoice["lines"]["data"]
        coupons: dict[str, dict[str, Any] | None] = {}

        def coupon_of(did: str) -> dict[str, Any] | None:
            if did not in coupons:
                discount = self.get("discounts", did)
                coupons[did] = self._discount_coupon(discount) if discount else None
            return coupons[did]

        totals: dict[str, int] = {}
        remaining: dict[str, int] = {}
        for line in lines:
            line["discount_amounts"] = []
            rest = line["amount"] if line.get("discountable", True) else 0
            for did in line.get("discounts") or []:
                coupon = coupon_of(did)
                if coupon is None:
                    continue
                amount = self._discount_amount(coupon, rest, currency)
                rest -= amount
                line["discount_amounts"].append({"amount": amount, "discount": did})
                totals[did] = totals.get(did, 0) + amount
            remaining[line["id"]] = rest
        by_id = {line["id"]: line for line in lines}
        for did in invoice.get("discounts") or []:
            coupon = coupon_of(did)
            if coupon is None:
                continue
            base = sum(remaining.values())
            amount = self._discount_amount(coupon, base, currency)
            totals[did] = totals.get(did, 0) + amount
            # Allocated in proportion to each line's remaining amount; the last line takes the rounding.
            ids = [lid for lid in remaining if remaining[lid] > 0]
            left = amount
            for n, lid in enumerate(ids):
                share = left if n == len(ids) - 1 else amount * remaining[lid] // base
                share = min(share, remaining[lid], left)
                left -= share
                remaining[lid] -= share
                by_id[lid]["discount_amounts"].append({"amount": share, "discount": did})
        subtotal = sum(line["amount"] for line in lines)
        total = subtotal - sum(totals.values())
        invoice.update({
            "subtotal": subtotal, "subtotal_excluding_tax": subtotal, "total": total,
            "total_excluding_tax": total,
            "total_discount_amounts": [{"amount": a, "discount": d} for d, a in totals.items()],
            "amount_due": max(total, 0), "amount_remaining": max(total, 0) - invoice.get("amount_paid", 0),
        })
        invoice["lines"]["total_count"] = len(lines)

    def present_invoice(self, invoice: dict[str, Any], line_limit: int = 10) -> dict[str, Any]:
        """The invoice as the API shows it: its first `line_limit` lines embedded, `has_more` for the rest."""
        out = dict(invoice)
        lines = dict(invoice.get("lines") or {"object": "list", "data": [], "has_more": False,
                                               "url": f"/v1/invoices/{invoice['id']}/lines"})
        data = lines.get("data") or []
        lines.setdefault("total_count", len(data))
        lines["has_more"] = len(data) > line_limit or bool(lines.get("has_more"))
        lines["data"] = data[:line_limit]
        lines.setdefault("url", f"/v1/invoices/{invoice['id']}/lines")
        out["lines"] = lines
        return out

    def retrieve_invoice(self, req: _Req, id: str) -> dict[str, Any]:
        check_params(req.params, {"expand"})
        return self.present_invoice(self.need("invoices", id))

    def update_invoice(self, req: _Req, id: str) -> dict[str, Any]:
        p = req.params
        check_params(p, self.INVOICE_FIELDS - {"customer", "currency", "pending_invoice_items_behavior",
                                              "subscription", "from_invoice", "customer_account"})
        invoice = self.need("invoices", id)
        before = json.loads(json.dumps(invoice))
        editable_after_finalize = {"metadata", "description", "footer", "auto_advance", "expand",
                                   "custom_fields", "rendering"}
        if invoice["status"] != "draft" and set(p) - editable_after_finalize:
            self._require_draft(invoice, sorted(set(p) - editable_after_finalize)[0])
        for key in ("description", "footer", "statement_descriptor", "number"):
            if key in p:
                invoice[key] = nullable(p[key])
        if "auto_advance" in p:
            invoice["auto_advance"] = forms.as_bool(p["auto_advance"], "auto_advance")
        if "due_date" in p:
            invoice["due_date"] = forms.as_int(p["due_date"], "due_date") if p["due_date"] != "" else None
        if "metadata" in p:
            invoice["metadata"] = metadata_update(invoice.get("metadata"), p["metadata"])
        if "discounts" in p:
            invoice["discounts"] = self._discounts_param(req, p["discounts"], "discounts", invoice=id)
            self._recompute(invoice)
        previous = {k: before.get(k) for k in invoice if k != "lines" and before.get(k) != invoice.get(k)}
        self.put("invoices", invoice)
        shown = self.present_invoice(invoice)
        if previous:
            self.emit(req, "invoice.updated", shown, previous)
        return shown

    def delete_invoice(self, req: _Req, id: str) -> dict[str, Any]:
        check_params(req.params, set())
        invoice = self.need("invoices", id)
        if invoice["status"] != "draft":
            raise invalid("You can only delete draft invoices.", saved=True)
        for line in invoice["lines"]["data"]:
            item_id = self._line_item_id(line)
            item = self.get("invoiceitems", item_id) if item_id else None
            if item:
                self.store.delete(SYSTEM, "invoiceitems", item["id"])
        self.store.delete(SYSTEM, "invoices", id)
        self.emit(req, "invoice.deleted", self.present_invoice(invoice))
        return {"id": id, "object": "invoice", "deleted": True}

    def list_invoices(self, req: _Req) -> dict[str, Any]:
        p = req.params
        if p.get("status") not in (None, "") and p["status"] not in ("draft", "open", "paid", "uncollectible", "void"):
            raise invalid("Invalid status: must be one of draft, open, paid, uncollectible, or void", "status")
        return self.list_objects(req, "invoices", "/v1/invoices",
                                 {"collection_method", "customer", "customer_account", "due_date", "status",
                                  "subscription"},
                                 {"customer": "customer", "status": "status", "collection_method": "collection_method",
                                  "subscription": "subscription"},
                                 transform=self.present_invoice)

    def list_invoice_lines(self, req: _Req, id: str) -> dict[str, Any]:
        p = req.params
        check_params(p, {"limit", "starting_after", "ending_before", "expand"})
        invoice = self.need("invoices", id)
        lines = (invoice.get("lines") or {}).get("data") or []
        limit = forms.as_int(p.get("limit", 10), "limit")
        if not 1 <= limit <= 100:
            raise invalid("This value must be greater than or equal to 1." if limit < 1
                          else "This value must be less than or equal to 100.", "limit")
        ids = [l["id"] for l in lines]
        url = f"/v1/invoices/{id}/lines"
        if p.get("starting_after"):
            if p["starting_after"] not in ids:
                raise StripeError(404, f"No such line item: '{p['starting_after']}'", code="resource_missing",
                                  param="starting_after")
            start = ids.index(p["starting_after"]) + 1
            page = lines[start:start + limit]
            has_more = start + limit < len(lines)
        elif p.get("ending_before"):
            if p["ending_before"] not in ids:
                raise StripeError(404, f"No such line item: '{p['ending_before']}'", code="resource_missing",
                                  param="ending_before")
            end = ids.index(p["ending_before"])
            page = lines[max(0, end - limit):end]
            has_more = end - limit > 0
        else:
            page, has_more = lines[:limit], len(lines) > limit
        return {"object": "list", "data": page, "has_more": has_more, "url": url}

    def add_invoice_lines(self, req: _Req, id: str) -> dict[str, Any]:
        p = req.params
        check_params(p, {"expand", "invoice_metadata", "lines"}, ("lines",))
        invoice = self.need("invoices", id)
        self._require_draft(invoice)
        customer = self.need("customers", invoice["customer"], "customer")
        items = []
        for i, line in enumerate(forms.as_list(p["lines"], "lines")):
            line = forms.as_dict(line, f"lines[{i}]")
            if line.get("invoice_item"):
                item = self.need("invoiceitems", line["invoice_item"], f"lines[{i}][invoice_item]")
                if item.get("invoice"):
                    raise invalid("This invoice item is already attached to an invoice.", f"lines[{i}][invoice_item]")
            else:
                item = self._build_item(req, {"currency": invoice["currency"], **line}, customer, f"lines[{i}]")
                if line.get("discounts"):
                    item["discounts"] = self._discounts_param(req, line["discounts"], f"lines[{i}][discounts]",
                                                              customer=customer["id"], invoice_item=item["id"])
                self.put("invoiceitems", item, created=req.now)
                self.emit(req, "invoiceitem.created", item)
            items.append(item)
        if "invoice_metadata" in p:
            invoice["metadata"] = metadata_update(invoice.get("metadata"), p["invoice_metadata"])
        self._attach_items(req, invoice, items)
        shown = self.present_invoice(invoice)
        self.emit(req, "invoice.updated", shown)
        return shown

    def _finalize(self, req: _Req, invoice: dict[str, Any]) -> None:
        customer = self.get("customers", invoice["customer"])
        self._recompute(invoice)
        if customer is not None:
            seq = customer.get("next_invoice_sequence") or 1
            prefix = customer.get("invoice_prefix") or customer["id"].split("_")[-1][-8:].upper()
            if not invoice.get("number"):
                invoice["number"] = f"{prefix}-{seq:04d}"
            customer["next_invoice_sequence"] = seq + 1
            discount = customer.get("discount")
            coupon = self._discount_coupon(discount) if isinstance(discount, dict) else None
            # A `once` customer coupon is used up by the first invoice it discounts.
            if discount and coupon and discount["id"] in invoice["discounts"] and coupon["duration"] == "once":
                customer["discount"] = None
                self.put("customers", customer)
                self.emit(req, "customer.discount.deleted", discount)
            else:
                self.put("customers", customer)
        invoice["status"] = "open"
        invoice["status_transitions"]["finalized_at"] = req.now
        invoice["effective_at"] = req.now
        invoice["hosted_invoice_url"] = f"https://invoice.stripe.com/i/acct_sandbox/test_{invoice['id']}"
        invoice["invoice_pdf"] = f"https://pay.stripe.com/invoice/acct_sandbox/test_{invoice['id']}/pdf"
        invoice["ending_balance"] = invoice.get("starting_balance", 0)
        self.put("invoices", invoice)
        self.emit(req, "invoice.finalized", self.present_invoice(invoice))
        if invoice["total"] <= 0:
            self._mark_paid(req, invoice, None)

    def finalize_invoice(self, req: _Req, id: str) -> dict[str, Any]:
        check_params(req.params, {"auto_advance", "expand"})
        invoice = self.need("invoices", id)
        if invoice["status"] != "draft":
            raise StripeError(400, "This invoice is already finalized, you can't re-finalize a non-draft invoice.",
                              code="invoice_not_editable")
        if "auto_advance" in req.params:
            invoice["auto_advance"] = forms.as_bool(req.params["auto_advance"], "auto_advance")
        self._finalize(req, invoice)
        return self.present_invoice(invoice)

    def _mark_paid(self, req: _Req, invoice: dict[str, Any], intent: dict[str, Any] | None) -> None:
        invoice["status"] = "paid"
        invoice["amount_paid"] = invoice["amount_due"]
        invoice["amount_remaining"] = 0
        invoice["status_transitions"]["paid_at"] = req.now
        if intent is not None:
            invoice["attempted"] = True
            invoice["attempt_count"] = invoice.get("attempt_count", 0) + 1
            invoice["payments"] = {"object": "list", "has_more": False,
                                   "url": f"/v1/invoice_payments?invoice={invoice['id']}", "data": [{
                                       "id": "inpay_" + "".join(secrets.choice(_ALNUM) for _ in range(24)),
                                       "object": "invoice_payment", "amount_paid": intent["amount"],
                                       "amount_requested": intent["amount"], "created": req.now,
                                       "currency": invoice["currency"], "invoice": invoice["id"],
                                       "is_default": True, "livemode": False,
                                       "payment": {"payment_intent": intent["id"], "type": "payment_intent"},
                                       "status": "paid", "status_transitions": {"canceled_at": None,
                                                                                "paid_at": req.now}}]}
        self.put("invoices", invoice)
        shown = self.present_invoice(invoice)
        self.emit(req, "invoice.paid", shown)
        self.emit(req, "invoice.payment_succeeded", shown)

    def _charge(self, req: _Req, invoice: dict[str, Any], intent_id: str, succeeded: bool) -> dict[str, Any]:
        customer = self.get("customers", invoice["customer"]) or {}
        amount = invoice["amount_due"]
        return {
            "id": new_id("charges"), "object": "charge", "amount": amount,
            "amount_captured": amount if succeeded else 0, "amount_refunded": 0, "application": None,
            "application_fee": None, "application_fee_amount": None, "balance_transaction":
                ("txn_" + "".join(secrets.choice(_ALNUM) for _ in range(24))) if succeeded else None,
            "billing_details": {"address": customer.get("address"), "email": customer.get("email"),
                                "name": customer.get("name"), "phone": customer.get("phone")},
            "calculated_statement_descriptor": "GROWTH STACK", "captured": succeeded, "created": req.now,
            "currency": invoice["currency"], "customer": invoice["customer"],
            "description": f"Payment for Invoice {invoice.get('number') or invoice['id']}",
            "disputed": False, "failure_balance_transaction": None,
            "failure_code": None if succeeded else "card_declined",
            "failure_message": None if succeeded else "Your card was declined.",
            "fraud_details": {}, "invoice": invoice["id"],  # pre-2025-03-31 field, kept for joins
            "livemode": False, "metadata": {}, "on_behalf_of": None,
            "outcome": {"network_status": "approved_by_network" if succeeded else "declined_by_network",
                        "reason": None if succeeded else "generic_decline", "risk_level": "normal",
                        "seller_message": ("Payment complete." if succeeded else
                                           "The bank did not return any further details with this decline."),
                        "type": "authorized" if succeeded else "issuer_declined"},
            "paid": succeeded, "payment_intent": intent_id, "payment_method": "pm_card_visa",
            "payment_method_details": {"card": {"brand": "visa", "country": "US", "exp_month": 12,
                                                "exp_year": 2034, "funding": "credit", "last4": "4242"},
                                       "type": "card"},
            "receipt_email": customer.get("email"), "receipt_number": None,
            "receipt_url": None, "refunded": False, "review": None, "shipping": None, "source_transfer": None,
            "statement_descriptor": None, "statement_descriptor_suffix": None,
            "status": "succeeded" if succeeded else "failed", "transfer_data": None, "transfer_group": None,
        }

    def pay_invoice(self, req: _Req, id: str) -> dict[str, Any]:
        p = req.params
        check_params(p, {"expand", "forgive", "mandate", "off_session", "paid_out_of_band", "payment_method", "source"})
        invoice = self.need("invoices", id)
        if invoice["status"] == "draft":
            self._finalize(req, invoice)
            invoice = self.need("invoices", id)
        if invoice["status"] == "paid":
            raise StripeError(400, "Invoice is already paid.")
        if invoice["status"] != "open":
            raise StripeError(400, f"You can only pay an invoice that is open. This invoice is {invoice['status']}.")
        if p.get("paid_out_of_band") not in (None, "") and forms.as_bool(p["paid_out_of_band"], "paid_out_of_band"):
            self._mark_paid(req, invoice, None)
            return self.present_invoice(invoice)
        intent_id = new_id("payment_intents")
        customer = self.get("customers", invoice["customer"]) or {}
        declined = self.ctx.faults.rejects(PREFIX + req.path, f"{invoice['id']} {invoice['customer']} "
                                                              f"{customer.get('email') or ''}")
        charge = self._charge(req, invoice, intent_id, not declined)
        intent = {
            "id": intent_id, "object": "payment_intent", "amount": invoice["amount_due"],
            "amount_capturable": 0, "amount_received": 0 if declined else invoice["amount_due"],
            "application": None, "canceled_at": None, "capture_method": "automatic",
            "client_secret": f"{intent_id}_secret_" + "".join(secrets.choice(_ALNUM) for _ in range(24)),
            "confirmation_method": "automatic", "created": req.now, "currency": invoice["currency"],
            "customer": invoice["customer"], "description": charge["description"],
            "last_payment_error": None, "latest_charge": charge["id"], "livemode": False, "metadata": {},
            "payment_method": "pm_card_visa", "payment_method_types": ["card"],
            "status": "requires_payment_method" if declined else "succeeded",
        }
        if declined:
            error_extra = {"charge": charge["id"], "decline_code": "generic_decline"}
            intent["last_payment_error"] = {"code": "card_declined", "decline_code": "generic_decline",
                                            "message": "Your card was declined.", "type": "card_error"}
            invoice["attempted"] = True
            invoice["attempt_count"] = invoice.get("attempt_count", 0) + 1
            self.put("payment_intents", intent, created=req.now)
            self.put("charges", charge, created=req.now)
            self.put("invoices", invoice)
            self.emit(req, "payment_intent.created", intent)
            self.emit(req, "charge.failed", charge)
            self.emit(req, "payment_intent.payment_failed", intent)
            self.emit(req, "invoice.payment_failed", self.present_invoice(invoice))
            raise StripeError(402, "Your card was declined.", type="card_error", code="card_declined",
                              extra=error_extra)
        self.put("payment_intents", intent, created=req.now)
        self.put("charges", charge, created=req.now)
        self.emit(req, "payment_intent.created", intent)
        self.emit(req, "charge.succeeded", charge)
        self.emit(req, "payment_intent.succeeded", intent)
        self._mark_paid(req, invoice, intent)
        return self.present_invoice(invoice)

    def void_invoice(self, req: _Req, id: str) -> dict[str, Any]:
        check_params(req.params, {"expand"})
        invoice = self.need("invoices", id)
        if invoice["status"] != "open":
            raise StripeError(400, f"You can only void an open invoice. This invoice is {invoice['status']}.")
        invoice["status"] = "void"
        invoice["status_transitions"]["voided_at"] = req.now
        invoice["amount_remaining"] = 0
        self.put("invoices", invoice)
        shown = self.present_invoice(invoice)
        self.emit(req, "invoice.voided", shown)
        return shown

    # ------------------------------------------------------------------ charges, payment intents, events
    def retrieve_charge(self, req: _Req, id: str) -> dict[str, Any]:
        check_params(req.params, {"expand"})
        return self.need("charges", id)

    def list_charges(self, req: _Req) -> dict[str, Any]:
        return self.list_objects(req, "charges", "/v1/charges", {"customer", "payment_intent", "transfer_group"},
                                 {"customer": "customer", "payment_intent": "payment_intent",
                                  "transfer_group": "transfer_group"})

    def retrieve_payment_intent(self, req: _Req, id: str) -> dict[str, Any]:
        check_params(req.params, {"expand", "client_secret"})
        return self.need("payment_intents", id)

    def list_payment_intents(self, req: _Req) -> dict[str, Any]:
        return self.list_objects(req, "payment_intents", "/v1/payment_intents", {"customer", "customer_account"},
                                 {"customer": "customer"})

    def retrieve_event(self, req: _Req, id: str) -> dict[str, Any]:
        check_params(req.params, {"expand"})
        return self.need("events", id)

    def list_events(self, req: _Req) -> dict[str, Any]:
        p = req.params
        extra: tuple[list[str], list[Any]] = ([], [])
        if p.get("type") not in (None, "") and p.get("types") not in (None, ""):
            raise invalid("You may only specify one of these parameters: type, types.", "types")
        if p.get("type") not in (None, ""):
            t = forms.as_str(p["type"], "type")
            if "*" in t:  # Stripe allows one wildcard, e.g. `invoice.*`
                extra[0].append("json_extract(data, '$.type') GLOB ?")
                extra[1].append(t)
            else:
                extra[0].append("json_extract(data, '$.type') = ?")
                extra[1].append(t)
        if p.get("types") not in (None, ""):
            types = [forms.as_str(t, "types") for t in forms.as_list(p["types"], "types")]
            if len(types) > 20:
                raise invalid("You may pass at most 20 types.", "types")
            extra[0].append(f"json_extract(data, '$.type') IN ({','.join('?' * len(types))})")
            extra[1].extend(types)
        if p.get("delivery_success") not in (None, ""):
            forms.as_bool(p["delivery_success"], "delivery_success")
        return self.list_objects(req, "events", "/v1/events", {"type", "types", "delivery_success"}, None, extra)

    # ------------------------------------------------------------------ seeding
    def seed(self, collection: str, objects: list[dict[str, Any]]) -> int:
        """Store history in Stripe's own JSON shapes (no events, no webhooks); ids replace."""
        if collection not in SEEDABLE:
            raise ValueError(f"stripe has no seedable collection {collection!r}; one of {list(SEEDABLE)}")
        name = KINDS[collection][0]
        now = int(time.time())
        rows = []
        for obj in objects:
            if not isinstance(obj, dict) or not obj.get("id"):
                raise ValueError(f"every seeded stripe {name} needs an \"id\"; got {str(obj)[:200]}")
            obj.setdefault("object", name)
            obj.setdefault("livemode", False)
            created = obj.get("created")
            if not isinstance(created, int):
                created = now
                obj["created"] = now
            if collection == "invoices":
                lines = obj.get("lines")
                if not isinstance(lines, dict):
                    obj["lines"] = lines = {"object": "list", "data": lines or [], "has_more": False}
                lines.setdefault("url", f"/v1/invoices/{obj['id']}/lines")
                lines.setdefault("object", "list")
                lines.setdefault("has_more", False)
            rows.append((str(obj["id"]), obj, created, created))
        with self.lock:
            if collection == "customers":
                # A seeded customer is alive again even if it was deleted before.
                for obj_id, *_ in rows:
                    self.store.delete(SYSTEM, "deleted_customers", obj_id)
            return self.store.put_many(SYSTEM, collection, rows)


def build(ctx: SandboxContext) -> Emulation:
    """The Stripe emulation for the sandbox app."""
    emulation = StripeEmulation(ctx)
    methods = ["GET", "POST", "DELETE", "PUT", "PATCH"]
    return Emulation(
        prefix=PREFIX,
        routes=[Route("/{path:path}", emulation.dispatch, methods=methods)],
        rate_limit_response=emulation.rate_limit_response,
        error_response=emulation.error_response,
        rate=RATE,
        burst=BURST,
        seed=emulation.seed,
    )
