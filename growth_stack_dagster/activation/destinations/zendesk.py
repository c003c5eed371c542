"""Zendesk Support users through `POST /api/v2/users/create_or_update_many` (at most 100 users a request).

Zendesk answers with a queued job; the job goes `queued`, `working`, then `completed` (or `failed`), and
`GET /api/v2/job_statuses/{id}` then holds one result per user (`Created`/`Updated` with the user's id, or
`Failed` with `index`, `error` and `details`). A user is matched by its Zendesk id, else `external_id`, else
email, so a customer whose email changed keeps their Zendesk user. Computed traits go into `user_fields`
(map a column to `user_fields.<key>`; the user field must exist in Zendesk's admin). Auth is HTTP Basic
`<agent email>/token:<api token>`.
"""

from __future__ import annotations

import os
from typing import Any

import requests
import tenacity

from growth_stack_dagster.activation.destinations import _http
from growth_stack_dagster.activation.destinations.base import (
    BatchRejected, DestinationUnavailable, FieldSpec, ObjectSpec, Record, RecordResult, SyncSpec,
)

MANY_MAX = 100
JOB_DONE = ("completed", "failed", "killed")
STANDARD_FIELDS = {
    "name": FieldSpec("name", "string", "Name"),
    "email": FieldSpec("email", "string", "Email"),
    "external_id": FieldSpec("external_id", "string", "External id"),
    "id": FieldSpec("id", "number", "Zendesk user id"),
    "phone": FieldSpec("phone", "string", "Phone"),
    "role": FieldSpec("role", "enumeration", "Role", options=("end-user", "agent", "admin")),
    "organization_id": FieldSpec("organization_id", "number", "Organization"),
    "tags": FieldSpec("tags", "json", "Tags"),
    "notes": FieldSpec("notes", "string", "Notes"),
    "details": FieldSpec("details", "string", "Details"),
    "locale": FieldSpec("locale", "string", "Locale"),
    "time_zone": FieldSpec("time_zone", "string", "Time zone"),
}


# a declaration's field type -> the Zendesk user field type created for it
USER_FIELD_TYPES = {"bool": "checkbox", "number": "decimal", "date": "date", "datetime": "text", "string": "text",
                    "enumeration": "text", "json": "textarea"}


# a Zendesk user field type -> the field type the mapping page checks columns against
ZENDESK_FIELD_TYPES = {"text": "string", "textarea": "string", "regexp": "string", "integer": "number",
                       "decimal": "number", "checkbox": "bool", "date": "date", "dropdown": "enumeration",
                       "lookup": "string"}


class UserFields(dict):
    """Zendesk's standard user fields, plus any `user_fields.<key>` (custom user fields defined in Zendesk)."""

    def __contains__(self, name: object) -> bool:
        return super().__contains__(name) or (isinstance(name, str) and name.startswith("user_fields.")
                                              and len(name) > len("user_fields."))


def user_body(sync: SyncSpec, record: Record) -> dict[str, Any]:
    """The user object for one record: standard fields at the top, `user_fields.x` nested; the known
    Zendesk id (from an earlier create) first, so Zendesk matches on it before external_id or email."""
    user: dict[str, Any] = {}
    custom: dict[str, Any] = {}
    for field, value in record.payload.items():
        if field.startswith("user_fields."):
            custom[field[len("user_fields."):]] = value
        elif field == "id":
            if value not in (None, ""):
                user["id"] = int(value)
        else:
            user[field] = value
    if record.destination_id and "id" not in user:
        user["id"] = int(record.destination_id)
    if custom:
        user["user_fields"] = custom
    return user


class Zendesk:
    """The Zendesk Support API as a sync destination (object `users`)."""

    name = "zendesk"
    # a bulk job takes seconds on Zendesk: the engine keeps this many batches (jobs) in flight at once,
    # well under Zendesk's queue of 30 jobs per account
    max_concurrency = 4
    objects = {
        "users": ObjectSpec(
            name="users",
            modes=frozenset({"upsert", "insert", "mirror"}),
            match_fields=("external_id", "email", "id"),
            batch_size=MANY_MAX,
            rate_limit=(200, 60.0),  # Support API, Team plan (the lowest): 200 requests a minute
            fields=UserFields(STANDARD_FIELDS),
            idempotent=True,
        ),
    }

    def __init__(self, base_url: str, credential: str, session: requests.Session):
        self.base_url = base_url.rstrip("/")
        self.session = session
        # `<agent email>/token:<api token>`, or the API token alone with the email in its own variable
        user, sep, token = credential.rpartition(":")
        if not sep or "/token" not in user:
            user = os.environ.get("DESTINATIONS__ZENDESK__EMAIL", "growth-stack@sandbox.example") + "/token"
            token = credential
        self.session.auth = (user, token)
        self.poll_wait = tenacity.wait_exponential(multiplier=0.2, min=0.2, max=5)
        self.poll_timeout = float(os.environ.get("DESTINATIONS__ZENDESK__JOB_TIMEOUT", "600"))

    def describe_fields(self, object_name: str) -> dict[str, FieldSpec] | None:
        """The standard user fields and, as `user_fields.<key>`, the custom user fields Zendesk lists now."""
        fields = UserFields(STANDARD_FIELDS)
        for field in self._user_fields():
            key = f"user_fields.{field['key']}"
            options = tuple(str(o.get("value", "")) for o in field.get("custom_field_options") or [])
            fields[key] = FieldSpec(name=key, type=ZENDESK_FIELD_TYPES.get(field.get("type"), "string"),
                                    label=field.get("title") or field["key"], options=options, custom=True)
        return fields

    def _user_fields(self) -> list[dict[str, Any]]:
        """Every custom user field of the account (`GET /api/v2/user_fields.json`, all pages)."""
        fields: list[dict[str, Any]] = []
        next_url: str | None = f"{self.base_url}/api/v2/user_fields.json"
        while next_url:
            response = _http.request(self.session, "GET", next_url, "Zendesk")
            if response.status_code >= 400:
                raise DestinationUnavailable(f"Zendesk could not list the user fields (HTTP {response.status_code}): "
                                             f"{_http.snippet(response)}")
            page = response.json()
            fields += page.get("user_fields", [])
            next_url = page.get("next_page")
        return fields

    def prepare(self, sync: SyncSpec) -> None:
        """Create the custom user fields the sync declares (`create:` on a `user_fields.<key>` mapping) and
        Zendesk lacks; fields that exist are left as they are. Idempotent."""
        wanted = [f for f in sync.custom_fields if f.name.startswith("user_fields.")]
        if not wanted:
            return
        url = f"{self.base_url}/api/v2/user_fields.json"
        existing = {f["key"] for f in self._user_fields()}
        for field in wanted:
            key = field.name[len("user_fields."):]
            if key in existing:
                continue
            body = {"user_field": {"type": USER_FIELD_TYPES.get(field.type, "text"), "key": key,
                                   "title": field.label or key, "description": f"Synced by Growth Stack ({sync.name})"}}
            response = _http.request(self.session, "POST", url, "Zendesk", json=body)
            if response.status_code >= 400:
                raise DestinationUnavailable(f"Zendesk refused to create the user field {key!r} (HTTP "
                                             f"{response.status_code}): {_http.snippet(response)}; create it in "
                                             "Zendesk's admin (People > User fields) or fix the declaration.")

    def preview(self, sync: SyncSpec, records: list[Record]) -> list[dict[str, Any]]:
        """The requests `send` would make for these records (method, path, body)."""
        out = []
        for i in range(0, len(records), MANY_MAX):
            part = records[i:i + MANY_MAX]
            if part[0].operation == "delete":
                out.append({"method": "DELETE", "path": "/api/v2/users/destroy_many.json",
                            "params": {"ids": ",".join(_user_id(r) or "?" for r in part)}})
            else:
                path = "create_many" if part[0].operation == "create" else "create_or_update_many"
                out.append({"method": "POST", "path": f"/api/v2/users/{path}.json",
                            "body": {"users": [user_body(sync, r) for r in part]}})
        return out

    def send(self, sync: SyncSpec, records: list[Record]) -> list[RecordResult]:
        """Create (`create`: only new users), create-or-update, or delete (`delete`: only by a known Zendesk
        id) one batch of at most 100 users, and follow the job to each user's result."""
        if records and records[0].operation == "delete":
            known = [r for r in records if _user_id(r)]
            results = {r.key: RecordResult(r.key, "rejected", message="no Zendesk user id is known for this record, "
                                           "so it cannot be deleted") for r in records if not _user_id(r)}
            for i in range(0, len(known), MANY_MAX):
                part = known[i:i + MANY_MAX]
                response = _http.request(self.session, "DELETE", f"{self.base_url}/api/v2/users/destroy_many.json",
                                         "Zendesk", params={"ids": ",".join(_user_id(r) for r in part)})
                results.update({r.key: r for r in self._follow_answer(response, part, [{"id": _user_id(r)}
                                                                                        for r in part])})
            return [results[r.key] for r in records]
        results_list: list[RecordResult] = []
        for request in self.preview(sync, records):
            part = records[len(results_list):len(results_list) + len(request["body"]["users"])]
            response = _http.request(self.session, "POST", f"{self.base_url}{request['path']}", "Zendesk",
                                     json=request["body"],
                                     credential_hint="DESTINATIONS__ZENDESK__ACCESS_TOKEN (<email>/token:<api token>)")
            results_list += self._follow_answer(response, part, request["body"]["users"])
        return results_list

    def _follow_answer(self, response: requests.Response, records: list[Record],
                       users: list[dict[str, Any]]) -> list[RecordResult]:
        if response.status_code >= 400:
            raise BatchRejected(f"Zendesk refused the batch (HTTP {response.status_code}): {_http.snippet(response)}")
        job = (response.json() or {}).get("job_status") or {}
        if not job.get("id"):
            raise BatchRejected(f"Zendesk answered without a job status: {_http.snippet(response)}")
        job = self.follow(job)
        if job.get("status") != "completed":
            reason = job.get("message") or job.get("status")
            return [RecordResult(r.key, "retry", message=f"the Zendesk job {job.get('status')}: {reason}")
                    for r in records]
        return match_results(records, users, job.get("results") or [])

    def follow(self, job: dict[str, Any]) -> dict[str, Any]:
        """Poll `job_statuses/{id}` (backing off up to 5 s) until the job is completed or failed."""
        url = f"{self.base_url}/api/v2/job_statuses/{job['id']}.json"

        def poll() -> dict[str, Any]:
            response = _http.request(self.session, "GET", url, "Zendesk")
            if response.status_code >= 400:
                raise DestinationUnavailable(f"Zendesk could not show job {job['id']} (HTTP {response.status_code}): "
                                             f"{_http.snippet(response)}; its users are sent again next run.")
            return response.json()["job_status"]

        retrying = tenacity.Retrying(retry=tenacity.retry_if_result(lambda j: j.get("status") not in JOB_DONE),
                                     wait=self.poll_wait, stop=tenacity.stop_after_delay(self.poll_timeout))
        try:
            return retrying(poll)
        except tenacity.RetryError:
            raise DestinationUnavailable(f"the Zendesk job {job['id']} did not finish within {self.poll_timeout:.0f} s; "
                                         "its users are sent again on the next run.") from None


def _user_id(record: Record) -> str | None:
    value = record.destination_id or record.payload.get("id")
    return str(value) if value not in (None, "") else None


def match_results(records: list[Record], users: list[dict[str, Any]], results: list[dict[str, Any]]) -> list[RecordResult]:
    """One RecordResult per record from a job's results: failures carry `index`; successes are in order
    and name the user's id (kept as the destination id), email or external_id."""
    out: dict[str, RecordResult] = {}
    failed_at = {r["index"]: r for r in results if isinstance(r, dict) and "index" in r}
    successes = [r for r in results if isinstance(r, dict) and "index" not in r]
    succ = iter(successes)
    for i, (record, user) in enumerate(zip(records, users, strict=True)):
        if i in failed_at:
            f = failed_at[i]
            out[record.key] = RecordResult(record.key, "rejected",
                                           message=_http.redact(f"{f.get('error', 'Failed')}: {f.get('details', '')}"))
            continue
        result = next(succ, None)
        if result is None:
            out[record.key] = RecordResult(record.key, "retry", message="the Zendesk job returned no result for it")
            continue
        out[record.key] = RecordResult(record.key, "accepted",
                                       destination_id=str(result["id"]) if result.get("id") is not None else None)
    return [out[r.key] for r in records]
