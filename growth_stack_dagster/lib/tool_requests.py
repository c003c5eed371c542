"""Requests that more than one part of the stack sends to the same tools, built in one place: the
headers of a Standard Webhooks message (the streaming router's sales webhook, webhook syncs, run
alerts) and the definition of a HubSpot property (the router's note dedup property, a sync's custom
properties). Each caller sends them with its own client and reads the answers its own way.

Plain functions over plain values with no heavy imports (no Dagster, dlt or DuckDB), so the router
and the collector's neighbours may import this module.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from growth_stack_dagster.collector.signatures import standard_webhook_key, standard_webhook_signature


def check_webhook_secret(secret: str, variable: str) -> str:
    """`secret` when it is a Standard Webhooks secret (`whsec_` followed by base64), else a ValueError
    naming `variable`, the setting to fix, so a bad secret is refused before anything is sent."""
    try:
        standard_webhook_key(secret)
    except ValueError:
        raise ValueError(f"{variable} is not a Standard Webhooks secret: set it to whsec_ followed by the "
                         "base64 key the receiver gave you.") from None
    return secret


def signed_webhook_headers(body: bytes, secret: str, msg_id: str, timestamp: int) -> dict[str, str]:
    """The headers of one Standard Webhooks message whose JSON body is `body`: `webhook-id` (the
    receiver's idempotency key), `webhook-timestamp` (Unix seconds) and `webhook-signature`
    (`v1,<base64 HMAC-SHA256 of id.timestamp.body>`)."""
    return {"Content-Type": "application/json", "webhook-id": msg_id, "webhook-timestamp": str(timestamp),
            "webhook-signature": standard_webhook_signature(body, secret, msg_id, timestamp)}


def hubspot_property(name: str, label: str, ptype: str, field_type: str, group: str, description: str,
                     unique: bool = False, options: Sequence[str] = ()) -> dict[str, Any]:
    """The body of `POST /crm/v3/properties/{object}` that creates one property. A `bool` property gets
    HubSpot's Yes/No options (`true`/`false`), an `enumeration` one the values of `options`."""
    body: dict[str, Any] = {"name": name, "label": label, "type": ptype, "fieldType": field_type,
                            "groupName": group, "hasUniqueValue": unique, "description": description}
    if ptype == "bool":
        body["options"] = [{"label": "Yes", "value": "true", "displayOrder": 0},
                           {"label": "No", "value": "false", "displayOrder": 1}]
    elif ptype == "enumeration":
        body["options"] = [{"label": o, "value": o, "displayOrder": i} for i, o in enumerate(options)]
    return body
