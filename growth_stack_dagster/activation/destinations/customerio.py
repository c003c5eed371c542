"""Customer.io people through the Track API v2 `batch` endpoint (https://track.customer.io/api/v2/batch).

Each record is one `identify` (or `delete`) operation with exactly one identifier (`id` or `email`),
HTTP Basic `site_id:api_key`. The Track API's published fair-use rate is 100 requests per second; a
request carries at most 500 KB and each operation at most 32 KB. Per-record problems come back as
`errors[].batch_index`; an attribute set to null removes it from the person.
"""

from __future__ import annotations

import os
from typing import Any

import orjson
import requests

from growth_stack_dagster.activation.destinations import _http
from growth_stack_dagster.activation.destinations.base import (
    BatchRejected, FieldSpec, ObjectSpec, Record, RecordResult, SyncSpec,
)

MAX_BATCH_BYTES = 500 * 1024
MAX_OPERATION_BYTES = 32 * 1024
FAIR_USE_RATE = (100, 1.0)  # "a fair-use rate limit of 100 requests per second" (Track API, v1 and v2)


class CustomerIO:
    """The Customer.io Track API as a sync destination (object `people`)."""

    name = "customerio"
    objects = {
        "people": ObjectSpec(
            name="people",
            # no mirror: an identify cannot tell a new person from an existing one, so the sync could not
            # know which people it created
            modes=frozenset({"upsert", "update"}),
            match_fields=("id", "email"),
            batch_size=500,
            rate_limit=FAIR_USE_RATE,
            fields=None,  # any attribute name
            idempotent=True,
        ),
    }

    def __init__(self, base_url: str, credential: str, session: requests.Session):
        self.base_url = base_url.rstrip("/")
        self.session = session
        # `site_id:api_key`, or the API key alone with the site id in its own variable
        site_id, sep, api_key = credential.partition(":")
        if not sep:
            site_id, api_key = os.environ.get("DESTINATIONS__CUSTOMERIO__SITE_ID", "sandbox"), credential
        self.session.auth = (site_id, api_key)

    def describe_fields(self, object_name: str) -> dict[str, FieldSpec] | None:
        return None

    def prepare(self, sync: SyncSpec) -> None:
        """Nothing to create: Customer.io takes any attribute name."""

    def preview(self, sync: SyncSpec, records: list[Record]) -> list[dict[str, Any]]:
        """The request body `send` would post for these records (one, below Customer.io's 500 KB)."""
        return [{"batch": [self.operation(sync, r) for r in records]}]

    def operation(self, sync: SyncSpec, record: Record) -> dict[str, Any]:
        """One v2 batch operation for a record: one identifier, and its attributes (null clears)."""
        identifier = record.payload.get(sync.match_field) or record.key
        op: dict[str, Any] = {"type": "person", "identifiers": {sync.match_field: str(identifier)}}
        if record.operation in ("delete", "remove"):
            op["action"] = "delete"
            return op
        op["action"] = "identify"
        # matched on `id`, the id is the identifier itself, not an attribute to set
        attributes = {k: v for k, v in record.payload.items() if not (sync.match_field == "id" and k == "id")}
        if record.operation == "update" or sync.mode == "update":
            attributes["_update"] = True  # never creates a person
        op["attributes"] = attributes
        return op

    def send(self, sync: SyncSpec, records: list[Record]) -> list[RecordResult]:
        """Identify (or delete) one batch of people; one result per record."""
        results: dict[str, RecordResult] = {}
        chunk: list[tuple[Record, bytes]] = []
        size = 0
        for record in records:
            encoded = orjson.dumps(self.operation(sync, record))
            if len(encoded) > MAX_OPERATION_BYTES:
                results[record.key] = RecordResult(record.key, "rejected",
                                                   message=f"the person's attributes are {len(encoded)} bytes; "
                                                   f"Customer.io takes at most {MAX_OPERATION_BYTES} per person")
                continue
            if chunk and size + len(encoded) + 1 > MAX_BATCH_BYTES - 64:
                results.update(self._post(chunk))
                chunk, size = [], 0
            chunk.append((record, encoded))
            size += len(encoded) + 1
        if chunk:
            results.update(self._post(chunk))
        return [results[r.key] for r in records]

    def _post(self, chunk: list[tuple[Record, bytes]]) -> dict[str, RecordResult]:
        body = b'{"batch":[' + b",".join(e for _, e in chunk) + b"]}"
        response = _http.request(self.session, "POST", f"{self.base_url}/api/v2/batch", "Customer.io",
                                 data=body, headers={"Content-Type": "application/json"},
                                 credential_hint="DESTINATIONS__CUSTOMERIO__ACCESS_TOKEN (site_id:api_key)")
        try:
            answer = response.json() if response.content.strip() else {}
        except ValueError:
            answer = {}
        errors = answer.get("errors") if isinstance(answer, dict) else None
        if response.status_code >= 400:
            indexed = [e for e in errors or [] if isinstance(e, dict) and "batch_index" in e]
            if not indexed:
                raise BatchRejected(f"Customer.io refused the batch (HTTP {response.status_code}): "
                                    f"{_http.snippet(response)}")
            errors = indexed
        by_index: dict[int, str] = {}
        for error in errors or []:
            if isinstance(error, dict) and isinstance(error.get("batch_index"), int):
                field = f" ({error['field']})" if error.get("field") else ""
                by_index[error["batch_index"]] = _http.redact(
                    f"{error.get('reason', 'invalid')}{field}: {error.get('message', '')}")
        return {record.key: (RecordResult(record.key, "rejected", message=by_index[i]) if i in by_index
                             else RecordResult(record.key, "accepted"))
                for i, (record, _) in enumerate(chunk)}
