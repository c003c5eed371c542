"""Per-source transformations of webhook payloads into Segment-spec messages.

They run at load time (`loader.load_partition`), so fixing a transformation and backfilling the
days concerned re-derives the events from the immutable event files.

Contract of every transformation: `(body: dict, envelope: dict) -> list[dict]`
* returns the Segment messages the webhook stands for (`type`, `messageId`, `timestamp`, ...);
  an empty list means "skipped by rule" (each rule is documented on its function);
* raises `TransformError` (or any exception) when the payload cannot be understood: the loader
  then writes the raw webhook to `events._discards` with the error, so nothing is lost;
* `messageId` is derived from the webhook's own event id, so a webhook delivered twice (retries)
  or a day loaded twice yields the same message and is deduplicated.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any

import orjson

Message = dict[str, Any]
Transform = Callable[[dict, dict], list[Message]]


class TransformError(ValueError):
    """A webhook payload that its source's transformation cannot turn into events."""


LIBRARY = {"name": "growth-stack-webhooks", "version": "1"}

# Stripe amounts are in the currency's minor unit; these currencies have none (Stripe docs,
# "Zero-decimal currencies").
ZERO_DECIMAL_CURRENCIES = frozenset(
    "bif clp djf gnf jpy kmf krw mga pyg rwf ugx vnd vuv xaf xof xpf".split()
)
# Explicit skip rule for Stripe: `*.updated` events are snapshots of an object's new state, not
# something a customer did (the dlt Stripe source loads current state), and these object families
# are account plumbing with no customer on them.
STRIPE_SKIPPED_PREFIXES = ("balance.", "payout.", "file.", "reporting.", "radar.", "account.",
                           "application_fee.", "topup.", "transfer.", "issuing_", "treasury.")


def _iso(epoch_seconds: Any) -> str:
    if not isinstance(epoch_seconds, (int, float)) or isinstance(epoch_seconds, bool):
        raise TransformError(f"expected a UNIX timestamp in seconds, got {epoch_seconds!r}")
    return dt.datetime.fromtimestamp(epoch_seconds, dt.timezone.utc).isoformat(timespec="milliseconds").replace(
        "+00:00", "Z")


def _title(words: str) -> str:
    """'customer.subscription_created' -> 'Customer Subscription Created'."""
    return " ".join(w.capitalize() for w in re.split(r"[._\s]+", words) if w)


def _require(obj: Any, key: str, what: str) -> Any:
    if not isinstance(obj, dict) or obj.get(key) in (None, ""):
        raise TransformError(f"{what} has no {key!r}")
    return obj[key]


def _base(message_id: str, received_at: str | None, timestamp: str) -> Message:
    return {"type": "track", "messageId": message_id, "timestamp": timestamp, "originalTimestamp": timestamp,
            "receivedAt": received_at, "context": {"library": dict(LIBRARY)}}


# --------------------------------------------------------------------------- Customer.io

def customerio_to_segment(body: dict, envelope: dict) -> list[Message]:
    """A Customer.io reporting webhook -> one track for the person.

    `{object_type, metric}` names the event: email delivered/opened/clicked become `Email Delivered`,
    `Email Opened`, `Email Clicked` (any other pair becomes `<Object Type> <Metric>`, e.g.
    `Email Bounced`, `Push Delivered`; none is skipped). `userId` is the Customer.io customer id;
    the address goes to `context.traits.email` and `properties.email`. Properties: `campaign_id`,
    `action_id`, `broadcast_id`, `newsletter_id`, `subject`, `delivery_id`, and for clicks `link_url`
    and `link_id`. `messageId` is `customerio-<event_id>`.
    """
    event_id = _require(body, "event_id", "Customer.io webhook")
    metric = _require(body, "metric", "Customer.io webhook")
    data = body.get("data")
    if not isinstance(data, dict):
        raise TransformError("Customer.io webhook has no 'data' object")
    identifiers = data.get("identifiers") if isinstance(data.get("identifiers"), dict) else {}
    customer_id = data.get("customer_id") or identifiers.get("id")
    email = data.get("email_address") or identifiers.get("email") or data.get("recipient")
    if not customer_id and not email:
        raise TransformError("Customer.io webhook names no person (no customer_id, identifiers or recipient)")
    msg = _base(f"customerio-{event_id}", envelope.get("receivedAt"), _iso(_require(body, "timestamp",
                                                                                   "Customer.io webhook")))
    msg["event"] = f"{_title(str(body.get('object_type') or 'email'))} {_title(str(metric))}"
    if customer_id:
        msg["userId"] = str(customer_id)
    props: dict[str, Any] = {}
    for key in ("campaign_id", "action_id", "broadcast_id", "newsletter_id", "transactional_message_id",
                "subject", "delivery_id", "recipient"):
        if data.get(key) not in (None, ""):
            props[key] = data[key]
    if data.get("href") or data.get("link"):
        props["link_url"] = data.get("href") or data.get("link")
    if data.get("link_id") is not None:
        props["link_id"] = data["link_id"]
    if email:
        props["email"] = email
        msg["context"]["traits"] = {"email": email}
    if identifiers.get("cio_id"):
        props["cio_id"] = identifiers["cio_id"]
    msg["properties"] = props
    return [msg]


# --------------------------------------------------------------------------- Stripe

def _minor_to_major(amount: Any, currency: str) -> float | None:
    if amount is None:
        return None
    try:
        value = Decimal(str(amount))
    except InvalidOperation as exc:
        raise TransformError(f"amount {amount!r} is not a number") from exc
    return float(value if currency.lower() in ZERO_DECIMAL_CURRENCIES else value / 100)


def _id_of(value: Any) -> str | None:
    """An expandable Stripe field: either an id string or the expanded object."""
    if isinstance(value, dict):
        return value.get("id")
    return value if isinstance(value, str) else None


def _coupon_codes(invoice: dict) -> list[str]:
    """Coupon ids (or promotion codes) of expanded `discounts`, or of the legacy `discount`."""
    codes: list[str] = []
    found = list(invoice.get("discounts") or [])
    if isinstance(invoice.get("discount"), dict):
        found.append(invoice["discount"])
    for d in found:
        if not isinstance(d, dict):
            continue  # an unexpanded discount id carries no coupon; total_discount_amounts still counts it
        promo = d.get("promotion_code")
        coupon = (d.get("source") or {}).get("coupon") if isinstance(d.get("source"), dict) else None
        coupon = coupon or d.get("coupon")
        code = promo.get("code") if isinstance(promo, dict) else None
        code = code or (coupon.get("name") or coupon.get("id") if isinstance(coupon, dict) else coupon)
        if code and code not in codes:
            codes.append(code)
    return codes


def _line_product(line: dict, currency: str) -> dict:
    pricing = line.get("pricing") if isinstance(line.get("pricing"), dict) else {}
    details = pricing.get("price_details") if isinstance(pricing.get("price_details"), dict) else {}
    price = line.get("price") if isinstance(line.get("price"), dict) else {}  # API versions before 2025-03
    product = details.get("product") or price.get("product")
    product_id = _id_of(product)
    metadata = {}
    for source in (product if isinstance(product, dict) else {}, price, line):
        if isinstance(source.get("metadata"), dict):
            metadata.update(source["metadata"])
    quantity = line.get("quantity") or 1
    unit = pricing.get("unit_amount_decimal") or price.get("unit_amount_decimal") or price.get("unit_amount")
    if unit is None and line.get("amount") is not None:
        unit = Decimal(str(line["amount"])) / Decimal(quantity)
    item = {"product_id": product_id, "sku": metadata.get("sku") or price.get("lookup_key") or product_id,
            "name": (product.get("name") if isinstance(product, dict) else None) or line.get("description"),
            "price": _minor_to_major(unit, currency), "quantity": quantity,
            "price_id": _id_of(details.get("price")) or price.get("id")}
    return {k: v for k, v in item.items() if v is not None}


def stripe_invoice_paid(event: dict, envelope: dict) -> Message:
    """`invoice.paid` -> `Order Completed` (Segment e-commerce spec).

    order_id = invoice id; total = amount incl. tax after discounts; revenue = total excluding tax;
    subtotal = after discounts, before tax; tax; discount = sum of total_discount_amounts; coupon =
    comma-joined coupon codes of expanded discounts (webhooks carry ids only: `discount_ids`);
    currency upper-cased; products[] from the line items. userId is
    unknown, so `stripe_customer_id` and `email` go to properties and context.traits.
    """
    invoice = (event.get("data") or {}).get("object")
    if not isinstance(invoice, dict) or invoice.get("object") not in (None, "invoice"):
        raise TransformError("invoice.paid event has no invoice in data.object")
    invoice_id = _require(invoice, "id", "invoice")
    currency = str(_require(invoice, "currency", "invoice"))
    total = invoice.get("total", invoice.get("amount_paid"))
    if total is None:
        raise TransformError(f"invoice {invoice_id} has neither total nor amount_paid")
    excl_tax = invoice.get("total_excluding_tax")
    excl_tax = total if excl_tax is None else excl_tax
    discount = sum(int(d.get("amount") or 0) for d in invoice.get("total_discount_amounts") or []
                   if isinstance(d, dict))
    lines = invoice.get("lines") or {}
    line_items = lines.get("data") if isinstance(lines, dict) else lines
    if not isinstance(line_items, list):
        raise TransformError(f"invoice {invoice_id} lines are not a list")
    paid_at = (invoice.get("status_transitions") or {}).get("paid_at") or event.get("created")
    msg = _base(f"stripe-{_require(event, 'id', 'Stripe event')}", envelope.get("receivedAt"), _iso(paid_at))
    customer_id = _id_of(invoice.get("customer"))
    email = invoice.get("customer_email")
    props: dict[str, Any] = {
        "order_id": invoice_id,
        "invoice_number": invoice.get("number"),
        "total": _minor_to_major(total, currency),
        "revenue": _minor_to_major(excl_tax, currency),
        "subtotal": _minor_to_major(excl_tax, currency),
        "tax": _minor_to_major(int(total) - int(excl_tax), currency),
        "discount": _minor_to_major(discount, currency),
        "coupon": ",".join(_coupon_codes(invoice)) or None,
        # Webhooks carry discount ids unexpanded: kept so models can join Stripe's discounts table.
        "discount_ids": ",".join(filter(None, (_id_of(d) for d in invoice.get("discounts") or []))) or None,
        "currency": currency.upper(),
        "products": [_line_product(li, currency) for li in line_items if isinstance(li, dict)],
        "stripe_customer_id": customer_id,
        "email": email,
        "subscription_id": _id_of(invoice.get("subscription")),
    }
    msg["event"] = "Order Completed"
    msg["properties"] = {k: v for k, v in props.items() if v is not None}
    traits = {k: v for k, v in {"email": email, "stripe_customer_id": customer_id}.items() if v}
    if traits:
        msg["context"]["traits"] = traits
    return msg


def stripe_to_segment(body: dict, envelope: dict) -> list[Message]:
    """A Stripe event -> Segment tracks.

    * `invoice.paid` -> `Order Completed` (see `stripe_invoice_paid`);
    * `*.updated` events and account plumbing (`STRIPE_SKIPPED_PREFIXES`) -> skipped (empty list);
    * any other event -> a track named after the event type (`customer.created` ->
      `Customer Created`) whose properties are the object's top-level fields (its `id` as
      `<object>_id`), with `stripe_customer_id`/`email` when the object names a customer.
    `messageId` is `stripe-<event id>`.
    """
    event_type = _require(body, "type", "Stripe event")
    event_id = _require(body, "id", "Stripe event")
    if event_type == "invoice.paid":
        return [stripe_invoice_paid(body, envelope)]
    if event_type.endswith(".updated") or event_type.startswith(STRIPE_SKIPPED_PREFIXES):
        return []
    obj = (body.get("data") or {}).get("object")
    if not isinstance(obj, dict):
        raise TransformError(f"Stripe event {event_id} has no data.object")
    kind = str(obj.get("object") or event_type.split(".")[0])
    props = {k: v for k, v in obj.items() if k not in ("id", "object") and v is not None}
    props[f"{kind}_id"] = obj.get("id")
    customer_id = obj.get("id") if kind == "customer" else _id_of(obj.get("customer"))
    email = obj.get("email") if kind == "customer" else (obj.get("customer_email") or obj.get("receipt_email"))
    if customer_id:
        props["stripe_customer_id"] = customer_id
    msg = _base(f"stripe-{event_id}", envelope.get("receivedAt"), _iso(_require(body, "created", "Stripe event")))
    msg["event"] = _title(event_type)
    msg["properties"] = props
    traits = {k: v for k, v in {"email": email, "stripe_customer_id": customer_id}.items() if v}
    if traits:
        msg["context"]["traits"] = traits
    return [msg]


# --------------------------------------------------------------------------- generic

def generic_webhook_to_segment(body: dict, envelope: dict, *, source: str = "webhook") -> list[Message]:
    """A Standard Webhooks style payload `{type, timestamp, data}` -> one track.

    The event is named after `type` (`order.shipped` -> `Order Shipped`), properties are `data`
    (or the whole body when there is no `data`). messageId derives from the body's `id` when it has
    one, else from a SHA-256 of the body, so redelivery deduplicates. Never skipped.
    """
    event_type = body.get("type") or body.get("event") or body.get("event_type")
    if not isinstance(event_type, str) or not event_type:
        raise TransformError(f"{source} webhook has no 'type' (or 'event') naming what happened")
    ident = body.get("id") or body.get("event_id")
    if not isinstance(ident, (str, int)) or isinstance(ident, bool):
        ident = hashlib.sha256(envelope.get("body", "").encode()).hexdigest()[:32]
    ts = body.get("timestamp") or body.get("created_at")
    if isinstance(ts, (int, float)) and not isinstance(ts, bool):
        timestamp = _iso(ts)
    elif isinstance(ts, str) and ts:
        timestamp = ts
    else:
        timestamp = envelope.get("receivedAt")
    msg = _base(f"{source}-{ident}", envelope.get("receivedAt"), timestamp)
    msg["event"] = _title(event_type)
    data = body.get("data") if isinstance(body.get("data"), dict) else {
        k: v for k, v in body.items() if k not in ("type", "id", "timestamp")}
    msg["properties"] = data
    for key in ("userId", "user_id", "customer_id"):
        if isinstance(data.get(key), (str, int)) and not isinstance(data.get(key), bool):
            msg["userId"] = str(data[key])
            break
    if not msg.get("userId"):
        msg["anonymousId"] = f"{source}-webhook"
    return [msg]


# --------------------------------------------------------------------------- HubSpot

HUBSPOT_CALL_TYPE_ID = "0-48"


def _hubspot_ms(value: Any) -> str:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise TransformError(f"HubSpot occurredAt {value!r} is not epoch milliseconds")
    return _iso(value / 1000)


def hubspot_to_segment(body: Any, envelope: dict) -> list[Message]:
    """A HubSpot webhook request (a JSON array of events) -> one track per sales activity.

    * `object.creation` of a call (objectTypeId `0-48`, or `call.creation`) -> `Sales Call Logged`
      with `hubspot_call_id`;
    * `deal.propertyChange` of `dealstage` -> `Deal Stage Changed` with `hubspot_deal_id` and
      `deal_stage` (the new stage);
    * any other subscription -> skipped (the HubSpot source loads the CRM's current state).
    HubSpot names no person in these events: `anonymousId` is the CRM object (`hubspot-call-<id>`,
    `hubspot-deal-<id>`), and the journeys find the contacts through the CRM's associations.
    `messageId` is `hubspot-<eventId>`; `timestamp` is `occurredAt`.
    """
    events = body if isinstance(body, list) else [body]
    out: list[Message] = []
    for event in events:
        if not isinstance(event, dict):
            raise TransformError("a HubSpot webhook event is not a JSON object")
        kind = event.get("subscriptionType")
        is_call = (kind == "object.creation" and str(event.get("objectTypeId")) == HUBSPOT_CALL_TYPE_ID) or \
            kind == "call.creation"
        is_stage = kind == "deal.propertyChange" and event.get("propertyName") == "dealstage"
        if not (is_call or is_stage):
            continue
        event_id = _require(event, "eventId", "HubSpot webhook event")
        object_id = str(_require(event, "objectId", "HubSpot webhook event"))
        msg = _base(f"hubspot-{event_id}", envelope.get("receivedAt"), _hubspot_ms(event.get("occurredAt")))
        props: dict[str, Any] = {"portal_id": event.get("portalId"), "change_source": event.get("changeSource")}
        if is_call:
            msg["event"] = "Sales Call Logged"
            msg["anonymousId"] = f"hubspot-call-{object_id}"
            props["hubspot_call_id"] = object_id
        else:
            msg["event"] = "Deal Stage Changed"
            msg["anonymousId"] = f"hubspot-deal-{object_id}"
            props.update(hubspot_deal_id=object_id, deal_stage=event.get("propertyValue"))
        msg["properties"] = {k: v for k, v in props.items() if v is not None}
        out.append(msg)
    return out


TRANSFORMS: dict[str, Transform] = {
    "stripe": stripe_to_segment,
    "customerio": customerio_to_segment,
    "hubspot": hubspot_to_segment,
}


def transform_webhook(source: str, envelope: dict) -> list[Message]:
    """Parse the envelope's raw `body` and apply `source`'s transformation (generic if unknown)."""
    raw = envelope.get("body")
    if not isinstance(raw, str):
        raise TransformError("webhook envelope has no 'body' text")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise TransformError(f"webhook body is not JSON: {exc}") from exc
    if not isinstance(body, dict) and not (source == "hubspot" and isinstance(body, list)):
        raise TransformError("webhook body is not a JSON object")
    fn = TRANSFORMS.get(source)
    messages = fn(body, envelope) if fn else generic_webhook_to_segment(body, envelope, source=source)
    for m in messages:
        if not m.get("receivedAt"):
            raise TransformError("webhook envelope has no receivedAt")
    return messages
