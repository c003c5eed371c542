"""Any HTTP endpoint, as JSON batches signed with Standard Webhooks (https://www.standardwebhooks.com).

Each batch is one POST of `{"type": "growth_stack.sync.batch", "timestamp", "data": {"sync", "model",
"object", "operation", "records": [{"key", "operation", "fields", "destination_id"}]}}` with the headers
`webhook-id` (the message id, the receiver's idempotency key: the same records sent again carry the same
id), `webhook-timestamp` and `webhook-signature` (`v1,<base64 HMAC-SHA256>` of `id.timestamp.body`).
The URL is the sync's option `url`, else `DESTINATIONS__WEBHOOK__URL`, else the sandbox's receiver; the
secret (`whsec_...`) is `DESTINATIONS__WEBHOOK__SECRET`, else the stack's `GROWTH_STACK_WEBHOOK_SECRET`.
A 2xx accepts the batch; an answer `{"rejected": [{"key", "message"}]}` rejects those records only; any
other 4xx rejects the batch (the engine splits it to find the record at fault).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
from typing import Any

import orjson
import requests

from growth_stack_dagster.activation.destinations import _http
from growth_stack_dagster.activation.destinations.base import (
    BatchRejected, FieldSpec, ObjectSpec, Record, RecordResult, SyncSpec,
)
from growth_stack_dagster.lib.tool_requests import check_webhook_secret, signed_webhook_headers

EVENT_TYPE = "growth_stack.sync.batch"


def message_id(sync: SyncSpec, records: list[Record]) -> str:
    """A message id that depends only on the sync and the records' keys, operations and payloads, so a
    batch sent again after an unknown outcome carries the same id and the receiver can drop the repeat."""
    digest = hashlib.sha256(sync.name.encode())
    for record in sorted(records, key=lambda r: r.key):
        digest.update(orjson.dumps([record.key, record.operation, record.payload], option=orjson.OPT_SORT_KEYS))
    return "msg_" + digest.hexdigest()[:32]


def batch_body(sync: SyncSpec, records: list[Record], now: dt.datetime) -> dict[str, Any]:
    """The JSON document of one batch."""
    return {
        "type": EVENT_TYPE,
        "timestamp": now.isoformat().replace("+00:00", "Z"),
        "data": {
            "sync": sync.name, "model": sync.model, "object": sync.object,
            "operation": records[0].operation if records else None,
            "records": [{"key": r.key, "operation": r.operation, "fields": r.payload,
                         "destination_id": r.destination_id} for r in records],
        },
    }


def _secret(credential: str) -> str:
    configured = os.environ.get("DESTINATIONS__WEBHOOK__SECRET")
    if configured:
        return configured
    if credential.startswith("whsec_"):
        return credential
    from growth_stack_dagster import config

    return config.standard_webhook_secret()


class Webhook:
    """A Standard Webhooks endpoint as a sync destination (object `records`)."""

    name = "webhook"
    objects = {
        "records": ObjectSpec(
            name="records",
            modes=frozenset({"upsert", "insert", "mirror", "membership", "archive", "update"}),
            match_fields=("key",),
            batch_size=100,
            rate_limit=(10, 1.0),
            fields=None,
            idempotent=False,  # a receiver may count deliveries: an accepted batch is never sent twice
        ),
    }

    def __init__(self, base_url: str, credential: str, session: requests.Session):
        self.base_url = base_url.rstrip("/")
        self.session = session
        self.secret = check_webhook_secret(_secret(credential),
                                           "DESTINATIONS__WEBHOOK__SECRET (or GROWTH_STACK_WEBHOOK_SECRET)")

    def url(self, sync: SyncSpec) -> str:
        """Where this sync posts: option `url`, `DESTINATIONS__WEBHOOK__URL`, or `<base URL>/<sync name>`."""
        return str(sync.options.get("url") or os.environ.get("DESTINATIONS__WEBHOOK__URL")
                   or f"{self.base_url}/{sync.name}")

    def describe_fields(self, object_name: str) -> dict[str, FieldSpec] | None:
        return None

    def prepare(self, sync: SyncSpec) -> None:
        """Nothing to create."""

    def preview(self, sync: SyncSpec, records: list[Record]) -> list[dict[str, Any]]:
        """The body `send` would post for these records."""
        return [batch_body(sync, records, dt.datetime.now(dt.UTC))]

    def send(self, sync: SyncSpec, records: list[Record]) -> list[RecordResult]:
        """POST one signed batch; one result per record."""
        now = dt.datetime.now(dt.UTC).replace(microsecond=0)
        body = orjson.dumps(batch_body(sync, records, now))
        msg_id = message_id(sync, records)
        headers = signed_webhook_headers(body, self.secret, msg_id, int(now.timestamp()))
        response = _http.request(self.session, "POST", self.url(sync), "the webhook endpoint", data=body,
                                 headers=headers, credential_hint="DESTINATIONS__WEBHOOK__SECRET")
        try:
            answer = response.json() if response.content.strip() else {}
        except ValueError:
            answer = {}
        listed = answer.get("rejected") if isinstance(answer, dict) else None
        rejected = {str(r.get("key")): _http.redact(str(r.get("message") or "rejected by the receiver"))
                    for r in (listed if isinstance(listed, list) else []) if isinstance(r, dict)}
        if response.status_code >= 300 and not rejected:
            raise BatchRejected(f"the webhook endpoint refused the batch (HTTP {response.status_code}): "
                                f"{_http.snippet(response)}")
        return [RecordResult(r.key, "rejected", message=rejected[r.key]) if r.key in rejected
                else RecordResult(r.key, "accepted") for r in records]
