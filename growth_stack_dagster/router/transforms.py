"""Route transformations: one plain function per route, from a captured message to what the
route's destination accepts.

Contract: `fn(message, source, context) -> dict | None`
* `message` is one event-file line (a Segment message, or a webhook envelope whose `body` is the
  raw text as received); `source` is the event source it was captured from;
* `context.email_for(message)` is the person's email when the stream named it (see `IdentityBook`);
* returns one destination item (its shape is documented per destination in `destinations.py`),
  or None to drop the message by rule (each rule is on its function);
* raises an exception when the message cannot be understood: the router dead-letters it with the
  reason at once (retrying cannot fix a message).
Every item carries a dedup key derived from the captured message, so a replay never double-counts.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any, Protocol

from growth_stack_dagster.capture.transforms import customerio_to_segment
from growth_stack_dagster.router.routes import webhook_body

EMAIL_METRICS = {"Email Delivered", "Email Opened", "Email Clicked"}
LIBRARY = "growth-stack-router/1"


class RouteContext(Protocol):
    """What a transformation may ask the router."""

    def email_for(self, message: dict[str, Any]) -> str | None: ...


def _epoch_ms(iso: str) -> int:
    return int(dt.datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() * 1000)


def customerio_email_to_amplitude(message: dict[str, Any], source: str, context: RouteContext) -> dict | None:
    """A Customer.io reporting webhook (email delivered/opened/clicked) -> one Amplitude HTTP V2 event.

    The event is the capture transformation's track (`Email Opened`, ...) on `user_id` = the
    Customer.io customer id, `insert_id` = its messageId (`customerio-<webhook event id>`), `time` =
    when it happened, `event_properties` = the track's properties. Dropped: other metrics (e.g.
    `sent`, bounces) and reports that name no customer id (Amplitude needs a user id).
    """
    body = webhook_body(message)
    if not isinstance(body, dict):
        raise ValueError("the Customer.io webhook body is not a JSON object")
    tracks = customerio_to_segment(body, message)
    track = tracks[0]
    if track["event"] not in EMAIL_METRICS or not track.get("userId"):
        return None
    return {
        "user_id": track["userId"],
        "event_type": track["event"],
        "time": _epoch_ms(track["timestamp"]),
        "insert_id": track["messageId"],
        "event_properties": track.get("properties") or {},
        "library": LIBRARY,
    }


def _quote_intent(message: dict[str, Any]) -> tuple[str, str]:
    """(kind, a sentence for a salesperson) of a quote request or pricing-page view."""
    props = message.get("properties") or {}
    if message.get("type") == "track":
        what = ", ".join(f"{k}: {props[k]}" for k in ("sku", "quantity", "company") if props.get(k) not in (None, ""))
        return "quote_requested", f"Requested a quote on the website ({what})." if what else "Requested a quote on the website."
    path = props.get("path") or (message.get("context") or {}).get("page", {}).get("path") or ""
    return "pricing_viewed", f"Viewed the pricing page {path}".rstrip() + "."


def quote_intent_to_hubspot_note(message: dict[str, Any], source: str, context: RouteContext) -> dict | None:
    """A web `Request a Quote` track or pricing-page view -> a HubSpot note on the contact.

    Item: `email` (the contact is found by it through HubSpot's search), `message_id` (the note's
    unique `growth_stack_message_id`, so a redelivery is refused as a duplicate), `timestamp`
    (when it happened, ms) and `body`. Dropped: messages of people the stream never named by email.
    """
    email = context.email_for(message)
    if not email:
        return None
    _, sentence = _quote_intent(message)
    return {"email": email, "message_id": message["messageId"],
            "timestamp": _epoch_ms(message.get("timestamp") or message["receivedAt"]), "body": sentence}


def quote_intent_to_sales_webhook(message: dict[str, Any], source: str, context: RouteContext) -> dict | None:
    """A web `Request a Quote` track or pricing-page view -> one Standard Webhooks message for sales.

    Item: `id` (the captured messageId, sent as `webhook-id`, the receiver's dedup key) and the
    payload `{type: lead.quote_requested | lead.pricing_viewed, timestamp, data: {email, user_id,
    summary, properties, page}}`. Dropped: messages of people the stream never named by email.
    """
    email = context.email_for(message)
    if not email:
        return None
    kind, sentence = _quote_intent(message)
    page = (message.get("context") or {}).get("page") or {}
    return {"id": message["messageId"], "payload": {
        "type": f"lead.{kind}",
        "timestamp": message.get("timestamp") or message["receivedAt"],
        "data": {"email": email, "user_id": message.get("userId"), "summary": sentence,
                 "properties": message.get("properties") or {}, "page_url": page.get("url")},
    }}


TRANSFORMS: dict[str, Callable[[dict[str, Any], str, RouteContext], dict | None]] = {
    "customerio_email_to_amplitude": customerio_email_to_amplitude,
    "quote_intent_to_hubspot_note": quote_intent_to_hubspot_note,
    "quote_intent_to_sales_webhook": quote_intent_to_sales_webhook,
}
