"""Realistic payloads and helpers for the capture tests.

Webhook bodies follow the shapes documented by Customer.io (Reporting Webhooks API: `event_id`,
`metric`, `object_type`, `timestamp`, `data.{customer_id, identifiers, delivery_id, recipient,
subject, campaign_id, action_id, href, link_id}`) and Stripe (Event object wrapping an Invoice with
`lines.data[].pricing.price_details`, `total_discount_amounts`, expanded `discounts[].source.coupon`).
"""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path
from typing import Any

import orjson

from growth_stack_dagster import eventfiles

DAY1 = "2026-11-20"
DAY2 = "2026-11-21"


def stamp(msg: dict[str, Any], day: str, second: int = 0) -> dict[str, Any]:
    """What the collector adds: messageId (if absent), receivedAt, timestamp."""
    ts = (dt.datetime.fromisoformat(day).replace(tzinfo=dt.timezone.utc) + dt.timedelta(seconds=second))
    iso = ts.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    out = {"messageId": str(uuid.uuid4()), "receivedAt": iso, "timestamp": iso, "sentAt": iso,
           "originalTimestamp": iso, **msg}
    return out


def envelope(body: dict | str, day: str, second: int = 0) -> dict[str, Any]:
    """A webhook line as the collector writes it."""
    iso = (dt.datetime.fromisoformat(day).replace(tzinfo=dt.timezone.utc) + dt.timedelta(seconds=second)
           ).isoformat().replace("+00:00", "Z")
    raw = body if isinstance(body, str) else orjson.dumps(body).decode()
    return {"type": "webhook", "messageId": str(uuid.uuid4()), "receivedAt": iso, "body": raw}


def write(root: Path, source: str, day: str, messages: list[dict | bytes]) -> Path:
    """One closed event file; bytes items are written verbatim (to plant invalid lines)."""
    lines = [m if isinstance(m, bytes) else orjson.dumps(m) for m in messages]
    path = eventfiles.write_closed_file(root, source, day, lines)
    assert path is not None
    return path


WEB_CONTEXT = {
    "library": {"name": "analytics.js", "version": "next-1.72.0"},
    "page": {"path": "/products/tee", "referrer": "https://www.google.com/", "search": "?utm_source=google",
             "title": "Tee - Example Shop", "url": "https://shop.example.com/products/tee?utm_source=google"},
    "campaign": {"source": "google", "medium": "cpc", "name": "black_friday", "term": "tee", "content": "ad1"},
    "userAgent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7)", "ip": "203.0.113.9", "locale": "en-US",
}


def customerio_body(metric: str, event_id: str, **extra_data: Any) -> dict[str, Any]:
    data = {"action_id": 36, "campaign_id": 6, "customer_id": "user-42", "delivery_id": "RPILAgUBcRhIBqSfeiIwdIYJKxTY",
            "identifiers": {"cio_id": "d9c106000001", "email": "ada@example.com", "id": "user-42"},
            "recipient": "ada@example.com", "subject": "Your cart misses you", **extra_data}
    return {"data": data, "event_id": event_id, "metric": metric, "object_type": "email",
            "timestamp": 1763640000}


def stripe_invoice_paid(event_id: str = "evt_1QabcInvoicePaid") -> dict[str, Any]:
    return {
        "id": event_id, "object": "event", "api_version": "2025-03-31.basil", "created": 1763640100,
        "livemode": False, "pending_webhooks": 1, "request": {"id": None, "idempotency_key": None},
        "type": "invoice.paid",
        "data": {"object": {
            "id": "in_1QabcDEF", "object": "invoice", "number": "A1B2C3-0001", "currency": "usd",
            "customer": "cus_Rabc123", "customer_email": "buyer@example.com", "status": "paid",
            "subtotal": 5000, "total": 4950, "total_excluding_tax": 4500, "amount_paid": 4950,
            "total_discount_amounts": [{"amount": 500, "discount": "di_1QdiscA"}],
            "discounts": [{"id": "di_1QdiscA", "object": "discount",
                           "source": {"type": "coupon", "coupon": {"id": "BF10", "object": "coupon",
                                                                   "percent_off": 10, "name": None}}}],
            "status_transitions": {"paid_at": 1763640090, "finalized_at": 1763640000},
            "lines": {"object": "list", "has_more": False, "data": [
                {"id": "il_1", "object": "line_item", "amount": 3000, "currency": "usd", "description": "Tee",
                 "quantity": 2, "metadata": {"sku": "TEE-BLK-M"},
                 "pricing": {"type": "price_details", "unit_amount_decimal": "1500",
                             "price_details": {"price": "price_tee", "product": "prod_tee"}}},
                {"id": "il_2", "object": "line_item", "amount": 2000, "currency": "usd", "description": "Cap",
                 "quantity": 1, "metadata": {},
                 "pricing": {"type": "price_details", "unit_amount_decimal": "2000",
                             "price_details": {"price": "price_cap", "product": "prod_cap"}}}]}}},
    }
