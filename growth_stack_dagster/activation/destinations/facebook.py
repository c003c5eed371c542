"""A Facebook (Meta) custom audience through the Marketing API: `POST /{audience_id}/users` adds members,
`DELETE /{audience_id}/users` removes them, `payload={"schema": "EMAIL_SHA256", "data": [...]}` with at most
10,000 SHA-256 hashes per request, and `session={"session_id", "batch_seq", "last_batch_flag",
"estimated_num_total"}` tying the requests of one upload together. The audience (a customer-file custom
audience in the ad account) is looked up by name and created when missing. The access token travels in
the `Authorization` header, never in a URL.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
from typing import Any

import requests

from growth_stack_dagster.activation.destinations import _http
from growth_stack_dagster.activation.destinations.base import (
    BatchRejected, DestinationUnavailable, FieldSpec, ObjectSpec, Record, RecordResult, SyncSpec,
)

MAX_USERS_PER_REQUEST = 10_000
DEFAULT_API_VERSION = "v21.0"
DEFAULT_AUDIENCE_NAME = "High value customers"
SCHEMA = "EMAIL_SHA256"
SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
# Graph error codes that mean "throttled, come back later" (API, app, user, ads_management, custom audience)
THROTTLE_CODES = {4, 17, 32, 613, 80003, 80004}
AUTH_CODES = {102, 104, 190}


def normalize_email(email: str) -> str:
    """Meta's normalisation of an email before hashing: surrounding whitespace trimmed, lower-cased."""
    return email.strip().lower()


def hash_email(email: str) -> str:
    """The EMAIL_SHA256 value Meta matches on: lower-case hex SHA-256 of the normalised email.
    A value that already is such a hash (64 hex digits) is returned as it is, lower-cased."""
    value = email.strip().lower()
    if SHA256_HEX.match(value):
        return value
    return hashlib.sha256(normalize_email(email).encode("utf-8")).hexdigest()


class FacebookAudience:
    """A Meta custom audience as a sync destination (object `audience`, mode `membership`)."""

    name = "facebook"
    objects = {
        "audience": ObjectSpec(
            name="audience",
            modes=frozenset({"membership"}),
            match_fields=(SCHEMA,),
            batch_size=MAX_USERS_PER_REQUEST,
            # ads_management standard tier: 9,000 points per 300 s per ad account, a write costing 3
            rate_limit=(3000, 300.0),
            fields={SCHEMA: FieldSpec(SCHEMA, "string", "Email (SHA-256)")},
            idempotent=False,  # additions are counted by Meta: an accepted batch is never sent twice
        ),
    }

    def __init__(self, base_url: str, credential: str, session: requests.Session):
        self.base_url = base_url.rstrip("/")
        self.session = session
        self.session.headers["Authorization"] = f"Bearer {credential}"
        self.audience_ids: dict[str, str] = {}
        self._sessions: dict[tuple[str, str], dict[str, Any]] = {}

    # ---- configuration
    def _graph(self, sync: SyncSpec) -> str:
        version = sync.options.get("api_version") or os.environ.get(
            "DESTINATIONS__FACEBOOK__API_VERSION", DEFAULT_API_VERSION)
        return f"{self.base_url}/{version}"

    @staticmethod
    def ad_account(sync: SyncSpec) -> str:
        """The ad account id (without `act_`) from the sync's options or `DESTINATIONS__FACEBOOK__AD_ACCOUNT_ID`."""
        account = str(sync.options.get("ad_account_id") or os.environ.get("DESTINATIONS__FACEBOOK__AD_ACCOUNT_ID")
                      or "1000")
        return account.removeprefix("act_")

    def describe_fields(self, object_name: str) -> dict[str, FieldSpec] | None:
        return dict(self.objects[object_name].fields or {})

    # ---- the audience
    def prepare(self, sync: SyncSpec) -> None:
        """Find the audience named in the sync (option `audience_name`) in the ad account, or create it."""
        self.audience_id(sync)

    def audience_id(self, sync: SyncSpec) -> str:
        """The audience's id: the option `audience_id`, else the account's audience of that name (created if missing)."""
        if sync.options.get("audience_id"):
            return str(sync.options["audience_id"])
        name = str(sync.options.get("audience_name") or DEFAULT_AUDIENCE_NAME)
        if name in self.audience_ids:
            return self.audience_ids[name]
        graph = self._graph(sync)
        url: str | None = f"{graph}/act_{self.ad_account(sync)}/customaudiences"
        params: dict[str, Any] | None = {"fields": "id,name", "limit": 500}
        while url:
            answer = self._call("GET", url, params=params)
            for audience in answer.get("data", []):
                if audience.get("name") == name:
                    self.audience_ids[name] = str(audience["id"])
                    return self.audience_ids[name]
            url, params = (answer.get("paging") or {}).get("next"), None
        created = self._call("POST", f"{graph}/act_{self.ad_account(sync)}/customaudiences", data={
            "name": name, "subtype": "CUSTOM", "customer_file_source": "USER_PROVIDED_ONLY",
            "description": str(sync.options.get("audience_description") or f"Synced by Growth Stack ({sync.name})"),
        })
        self.audience_ids[name] = str(created["id"])
        return self.audience_ids[name]

    # ---- sessions
    def open_session(self, sync: SyncSpec, operation: str, total: int) -> None:
        """Start one upload session for `total` records of `operation` (add or remove): the following
        `send` calls number their requests `batch_seq` 1, 2, ... and the one that reaches `total` carries
        `last_batch_flag`. Without a session, each request is a session of its own."""
        self._sessions[(sync.name, _kind(operation))] = {
            "session_id": secrets.randbits(62), "batch_seq": 0, "sent": 0, "total": max(total, 0)}

    def _session_for(self, sync: SyncSpec, operation: str, n: int) -> dict[str, Any]:
        state = self._sessions.get((sync.name, _kind(operation)))
        if state is None:
            return {"session_id": secrets.randbits(62), "batch_seq": 1, "last_batch_flag": True,
                    "estimated_num_total": n}
        state["batch_seq"] += 1
        state["sent"] += n
        last = state["sent"] >= state["total"]
        if last:
            del self._sessions[(sync.name, _kind(operation))]
        return {"session_id": state["session_id"], "batch_seq": state["batch_seq"], "last_batch_flag": last,
                "estimated_num_total": max(state["total"], state["sent"])}

    # ---- sending
    def preview(self, sync: SyncSpec, records: list[Record]) -> list[dict[str, Any]]:
        """The request `send` would make for these records (method, edge and payload; no session yet)."""
        if not records:
            return []
        method = "DELETE" if _kind(records[0].operation) == "remove" else "POST"
        hashes = [hash_email(str(r.payload.get(SCHEMA) or r.payload.get("email_sha256") or r.key)) for r in records]
        return [{"method": method, "edge": "{audience_id}/users",
                 "payload": {"schema": SCHEMA, "data": hashes[i:i + MAX_USERS_PER_REQUEST]}}
                for i in range(0, len(hashes), MAX_USERS_PER_REQUEST)]

    def send(self, sync: SyncSpec, records: list[Record]) -> list[RecordResult]:
        """Add (or remove) one batch of at most 10,000 members; one result per record."""
        if not records:
            return []
        operation = records[0].operation
        method = "DELETE" if _kind(operation) == "remove" else "POST"
        hashes: list[str] = []
        for record in records:
            value = record.payload.get(SCHEMA) or record.payload.get("email_sha256") or record.key
            hashes.append(hash_email(str(value)))
        results: list[RecordResult] = []
        for start in range(0, len(records), MAX_USERS_PER_REQUEST):
            part = records[start:start + MAX_USERS_PER_REQUEST]
            results += self._post(sync, method, operation, part, hashes[start:start + MAX_USERS_PER_REQUEST])
        return results

    def _post(self, sync: SyncSpec, method: str, operation: str, records: list[Record],
              hashes: list[str]) -> list[RecordResult]:
        audience = self.audience_id(sync)
        session = self._session_for(sync, operation, len(records))
        answer = self._call(method, f"{self._graph(sync)}/{audience}/users", data={
            "payload": json.dumps({"schema": SCHEMA, "data": hashes}, separators=(",", ":")),
            "session": json.dumps(session, separators=(",", ":")),
        })
        samples = answer.get("invalid_entry_samples") or {}
        invalid = int(answer.get("num_invalid_entries") or 0)
        sampled = {h: reason for h, reason in samples.items()}
        if invalid > sum(1 for h in hashes if h in sampled):
            # Meta names at most 10 invalid entries: let the engine split the batch to find the others
            raise BatchRejected(f"Meta found {invalid} invalid entries in the batch but named only {len(sampled)}")
        return [RecordResult(r.key, "rejected", message=f"Meta refused the entry: {sampled[h]}") if h in sampled
                else RecordResult(r.key, "accepted") for r, h in zip(records, hashes, strict=True)]

    def _call(self, method: str, url: str, **kwargs) -> dict[str, Any]:
        response = _http.request(self.session, method, url, "Facebook", **kwargs)
        try:
            answer = response.json()
        except ValueError:
            answer = {}
        if response.status_code < 400 and "error" not in answer:
            return answer
        error = answer.get("error") if isinstance(answer.get("error"), dict) else {}
        code = error.get("code")
        message = str(error.get("message") or _http.snippet(response))
        if code in THROTTLE_CODES or error.get("is_transient"):
            raise DestinationUnavailable(f"Facebook throttled the ad account (code {code}): {message}; "
                                         "the unsent members stay pending for the next run.")
        if code in AUTH_CODES:
            raise DestinationUnavailable(f"Facebook refused the access token (code {code}); set "
                                         "DESTINATIONS__FACEBOOK__ACCESS_TOKEN to a valid token and run again.")
        raise BatchRejected(f"Facebook refused the request (HTTP {response.status_code}, code {code}): {message}")


def _kind(operation: str) -> str:
    return "remove" if operation in ("remove", "delete") else "add"
