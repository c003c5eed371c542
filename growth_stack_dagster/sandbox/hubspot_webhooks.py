"""HubSpot's webhooks, as the sandbox sends them when calls and deals change.

A HubSpot app subscribed to `object.creation` of calls (objectTypeId `0-48`) and to
`deal.propertyChange` of `dealstage` receives, for each change, a JSON array of events such as

    [{"eventId": 7, "subscriptionId": 101, "portalId": 20000000, "appId": 5000000,
      "occurredAt": 1764806400000, "subscriptionType": "deal.propertyChange", "attemptNumber": 0,
      "objectId": 123, "propertyName": "dealstage", "propertyValue": "closedwon", "changeSource": "CRM"}]

signed with the app's client secret (`X-HubSpot-Signature-v3`: base64 HMAC-SHA256 of
method + URI + body + `X-HubSpot-Request-Timestamp`, the timestamp in milliseconds).
The CRM emulation calls `record_saved` after every create and update made through the API
(seeding does not call it: seeded history is not a live change).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

from growth_stack_dagster import config

PORTAL_ID = 20000000
APP_ID = 5000000
SUBSCRIPTIONS = {"call.creation": 101, "deal.propertyChange.dealstage": 102}


def signature_v3(secret: str, method: str, uri: str, body: bytes, timestamp_ms: int | str) -> str:
    """`X-HubSpot-Signature-v3`: base64 of HMAC-SHA256(client secret, method + URI + body + timestamp)."""
    signed = f"{method}{uri}".encode() + body + str(timestamp_ms).encode()
    return base64.b64encode(hmac.new(secret.encode(), signed, hashlib.sha256).digest()).decode()


def change_events(object_type: str, record: dict[str, Any], old: dict[str, Any] | None,
                  occurred_at: int) -> list[dict[str, Any]]:
    """The webhook events (without eventId) one saved record stands for: a new call, or a deal
    whose stage was set or changed."""
    base = {"portalId": PORTAL_ID, "appId": APP_ID, "occurredAt": occurred_at, "attemptNumber": 0,
            "objectId": int(record["id"]) if str(record["id"]).isdigit() else record["id"], "changeSource": "CRM"}
    if object_type == "calls" and old is None:
        return [{**base, "subscriptionId": SUBSCRIPTIONS["call.creation"], "subscriptionType": "object.creation",
                 "objectTypeId": "0-48", "changeFlag": "CREATED"}]
    if object_type == "deals":
        stage = record["properties"].get("dealstage")
        before = (old or {}).get("properties", {}).get("dealstage")
        if stage and stage != before:
            return [{**base, "subscriptionId": SUBSCRIPTIONS["deal.propertyChange.dealstage"],
                     "subscriptionType": "deal.propertyChange", "propertyName": "dealstage",
                     "propertyValue": stage}]
    return []


def record_saved(ctx: Any, object_type: str, record: dict[str, Any], old: dict[str, Any] | None) -> None:
    """Send the webhook for a saved call or deal, if it stands for one and delivery is on."""
    sender = ctx.webhooks
    if not sender.base_url or object_type not in ("calls", "deals"):
        return
    events = change_events(object_type, record, old, int(time.time() * 1000))
    if not events:
        return
    for event in events:
        event["eventId"] = ctx.store.next_id("hubspot_webhook_event")
    body = json.dumps(events, separators=(",", ":")).encode()
    timestamp = str(int(time.time() * 1000))
    uri = f"{sender.base_url}/hubspot"
    secret = config.hubspot_client_secret().split(",")[0].strip()
    sender.send("hubspot", body, {
        "Content-Type": "application/json",
        "X-HubSpot-Request-Timestamp": timestamp,
        "X-HubSpot-Signature-v3": signature_v3(secret, "POST", uri, body, timestamp),
    })
