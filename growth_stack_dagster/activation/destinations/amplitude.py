"""Amplitude user properties through the Identify API (https://api2.amplitude.com/identify).

A form POST with `api_key` and `identification`, a JSON list of `{"user_id", "user_properties":
{"$set": {...}, "$unset": {...}}}`: a cleared field is `$unset`, never set to null. Amplitude answers the
whole request (200 `success`, or 400 with a reason such as `invalid_api_key` or `missing_event`), so a
400 rejects the batch and the engine splits it to find the record at fault. Batches stay under 1 MB and
1,000 identifications; Amplitude throttles a user updated more than 1,800 times an hour, far above one
sync per hour.
"""

from __future__ import annotations

import json
from typing import Any

import requests

from growth_stack_dagster.activation.destinations import _http
from growth_stack_dagster.activation.destinations.base import (
    BatchRejected, DestinationUnavailable, FieldSpec, ObjectSpec, Record, RecordResult, SyncSpec,
)

MAX_REQUEST_BYTES = 1_000_000
DEFAULT_MIN_ID_LENGTH = 5


def identification(sync: SyncSpec, record: Record) -> dict[str, Any]:
    """The Identify API object for one record: `$set` for values, `$unset` for cleared fields."""
    id_field = sync.match_field if sync.match_field in ("user_id", "device_id") else "user_id"
    ident: dict[str, Any] = {id_field: str(record.payload.get(id_field) or record.key)}
    values = {k: v for k, v in record.payload.items() if k not in ("user_id", "device_id")}
    if record.operation in ("delete", "clear", "remove"):
        ident["user_properties"] = {"$unset": {k: "-" for k in values}}
        return ident
    props: dict[str, Any] = {}
    set_values = {k: v for k, v in values.items() if v is not None}
    unset = {k: "-" for k, v in values.items() if v is None}
    if set_values:
        props["$set"] = set_values
    if unset:
        props["$unset"] = unset
    ident["user_properties"] = props
    return ident


class Amplitude:
    """Amplitude's Identify API as a sync destination (object `user_properties`)."""

    name = "amplitude"
    objects = {
        "user_properties": ObjectSpec(
            name="user_properties",
            modes=frozenset({"upsert"}),  # Amplitude users are made by events, never by a sync
            match_fields=("user_id", "device_id"),
            batch_size=1000,
            rate_limit=(100, 1.0),
            fields=None,
            idempotent=True,
        ),
    }

    def __init__(self, base_url: str, credential: str, session: requests.Session):
        self.base_url = base_url.rstrip("/")
        self.api_key = credential
        self.session = session

    def describe_fields(self, object_name: str) -> dict[str, FieldSpec] | None:
        return None

    def prepare(self, sync: SyncSpec) -> None:
        """Nothing to create: Amplitude takes any user property name."""

    def preview(self, sync: SyncSpec, records: list[Record]) -> list[dict[str, Any]]:
        """The form `send` would post for these records (the API key left out)."""
        return [{"api_key": "<DESTINATIONS__AMPLITUDE__ACCESS_TOKEN>",
                 "identification": [identification(sync, r) for r in records]}]

    def send(self, sync: SyncSpec, records: list[Record]) -> list[RecordResult]:
        """Set (and unset) the user properties of one batch of users; one result per record."""
        min_len = int(sync.options.get("min_id_length", DEFAULT_MIN_ID_LENGTH))
        results: dict[str, RecordResult] = {}
        valid: list[tuple[Record, dict[str, Any]]] = []
        for record in records:
            ident = identification(sync, record)
            user = ident.get("user_id") or ident.get("device_id") or ""
            if len(user) < min_len:
                results[record.key] = RecordResult(record.key, "rejected", message=(
                    f"the id is shorter than Amplitude's minimum of {min_len} characters; lower the sync's "
                    "option min_id_length (and the model's var amplitude_min_id_length) to send it"))
            else:
                valid.append((record, ident))
        if valid:
            results.update({r.key: r for r in self._post([r for r, _ in valid], [i for _, i in valid])})
        return [results[r.key] for r in records]

    def _post(self, records: list[Record], idents: list[dict[str, Any]]) -> list[RecordResult]:
        encoded = json.dumps(idents, separators=(",", ":"))
        if len(encoded) > MAX_REQUEST_BYTES and len(records) > 1:
            half = len(records) // 2
            return self._post(records[:half], idents[:half]) + self._post(records[half:], idents[half:])
        response = _http.request(self.session, "POST", f"{self.base_url}/identify", "Amplitude",
                                 data={"api_key": self.api_key, "identification": encoded})
        if response.status_code == 400 and "api_key" in response.text:
            raise DestinationUnavailable("Amplitude refused the API key (invalid_api_key); set "
                                         "DESTINATIONS__AMPLITUDE__ACCESS_TOKEN to the project's API key "
                                         "and run the sync again.")
        if response.status_code >= 400:
            raise BatchRejected(f"Amplitude refused the identify request (HTTP {response.status_code}): "
                                f"{_http.snippet(response)}")
        return [RecordResult(r.key, "accepted") for r in records]
