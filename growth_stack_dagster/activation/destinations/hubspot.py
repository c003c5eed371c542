"""HubSpot CRM as a sync destination: contacts and companies through the CRM v3 batch endpoints.

- upsert: `POST /crm/v3/objects/{object}/batch/upsert` with `idProperty` (email for contacts, a property
  with unique values for companies), 100 inputs per request; records whose HubSpot id the sync already
  knows (returned on create, or a `destination_id_column` of the model) go through `batch/update` by id.
- update / clear: `batch/update` by `idProperty`; insert / mirror create: `batch/create`;
  delete (mirror, only records this sync created): `batch/archive` by id; archive: `batch/read` by
  `idProperty` for the ids, then `batch/archive`.
- custom properties declared with `create:` are made on the first sync (`POST /crm/v3/properties/{object}`).
HubSpot's answers become per-record results: a 207's `errors` name their inputs in `context`; a 400 for the
whole batch (an invalid value anywhere fails every input) raises BatchRejected so the engine isolates it.
"""

from __future__ import annotations

from typing import Any

import requests

from growth_stack_dagster.activation.destinations.base import (
    BatchRejected, DestinationUnavailable, FieldSpec, ObjectSpec, Record, RecordResult, SyncSpec,
)
from growth_stack_dagster.lib.tool_requests import hubspot_property

# HubSpot's published limits: 100 inputs per batch request; private apps on Professional and Enterprise
# get 190 requests per rolling 10 seconds (100 on Free and Starter: declare `rate_limit` to lower it).
BATCH_MAX = 100
RATE_LIMIT = (190, 10.0)
_MODES = frozenset({"upsert", "update", "insert", "mirror", "archive"})


def _fields(names_types: dict[str, str]) -> dict[str, FieldSpec]:
    return {name: FieldSpec(name=name, type=ftype) for name, ftype in names_types.items()}


CONTACT_FIELDS = _fields({
    "email": "string", "firstname": "string", "lastname": "string", "phone": "string", "mobilephone": "string",
    "company": "string", "jobtitle": "string", "website": "string", "address": "string", "city": "string",
    "state": "string", "zip": "string", "country": "string", "lifecyclestage": "enumeration",
    "hs_lead_status": "enumeration", "hubspot_owner_id": "enumeration", "date_of_birth": "date",
})
COMPANY_FIELDS = _fields({
    "name": "string", "domain": "string", "website": "string", "phone": "string", "industry": "string",
    "city": "string", "state": "string", "country": "string", "numberofemployees": "number",
    "annualrevenue": "number", "description": "string", "lifecyclestage": "enumeration",
    "hubspot_owner_id": "enumeration",
})
# A declared field type -> HubSpot property (type, fieldType).
PROPERTY_TYPES = {"string": ("string", "text"), "number": ("number", "number"), "bool": ("bool", "booleancheckbox"),
                  "date": ("date", "date"), "datetime": ("datetime", "date"), "enumeration": ("enumeration", "select"),
                  "json": ("string", "textarea")}
GROUPS = {"contacts": "contactinformation", "companies": "companyinformation"}


def property_value(value: Any) -> str:
    """A value as HubSpot stores it: strings; booleans as `true`/`false`; null as "" (clears the property)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


class HubSpot:
    """The HubSpot CRM destination (`Destination` protocol)."""

    name = "hubspot"
    # Batches in flight at once (the rate limiter still paces requests): hides each request's latency.
    max_concurrency = 4
    objects = {
        "contacts": ObjectSpec(name="contacts", modes=_MODES, match_fields=("email", "hs_object_id"),
                               batch_size=BATCH_MAX, rate_limit=RATE_LIMIT, fields=CONTACT_FIELDS, idempotent=True),
        "companies": ObjectSpec(name="companies", modes=_MODES, match_fields=("hs_object_id",),
                                batch_size=BATCH_MAX, rate_limit=RATE_LIMIT, fields=COMPANY_FIELDS, idempotent=True),
    }

    def __init__(self, base_url: str, credential: str, session: requests.Session):
        self.base_url = base_url.rstrip("/")
        self.session = session
        self._auth = {"Authorization": f"Bearer {credential}", "Content-Type": "application/json"}

    # ------------------------------------------------------------------ HTTP
    def _request(self, method: str, path: str, body: Any = None) -> requests.Response:
        response = self.session.request(method, f"{self.base_url}{path}", json=body, headers=self._auth)
        if response.status_code in (401, 403):
            raise DestinationUnavailable(
                f"HubSpot refused the access token ({response.status_code}): set DESTINATIONS__HUBSPOT__ACCESS_TOKEN "
                "to a private app token with the CRM object and schema write scopes.")
        if response.status_code >= 500 or response.status_code == 429:
            raise DestinationUnavailable(f"HubSpot answered {response.status_code} after retries.")
        return response

    @staticmethod
    def _message(response: requests.Response) -> str:
        try:
            body = response.json()
        except ValueError:
            return f"HTTP {response.status_code}"
        return f"{body.get('category', 'ERROR')}: {str(body.get('message', ''))[:300]}"

    # ------------------------------------------------------------------ protocol
    def describe_fields(self, object_name: str) -> dict[str, FieldSpec]:
        """Every property of the object as HubSpot lists it now."""
        response = self._request("GET", f"/crm/v3/properties/{object_name}")
        if response.status_code != 200:
            raise DestinationUnavailable(f"Could not list HubSpot {object_name} properties: {self._message(response)}")
        out = {}
        for prop in response.json().get("results", []):
            options = tuple(o.get("value", "") for o in prop.get("options", []))
            out[prop["name"]] = FieldSpec(name=prop["name"], type=prop.get("type", "string"),
                                          label=prop.get("label", ""), options=options,
                                          custom=not prop.get("hubspotDefined", False),
                                          unique=bool(prop.get("hasUniqueValue")))
        return out

    def prepare(self, sync: SyncSpec) -> None:
        """Create the sync's declared custom properties that HubSpot lacks, with their types."""
        if not sync.custom_fields:
            return
        existing = self.describe_fields(sync.object)
        for field in sync.custom_fields:
            if field.name in existing:
                continue
            ptype, field_type = PROPERTY_TYPES[field.type]
            body = hubspot_property(field.name, field.label or field.name, ptype, field_type, GROUPS[sync.object],
                                    f"Written by the Growth Stack sync {sync.name}.", field.unique, field.options)
            response = self._request("POST", f"/crm/v3/properties/{sync.object}", body)
            if response.status_code not in (200, 201, 409):
                raise DestinationUnavailable(f"Could not create the HubSpot {sync.object} property {field.name!r}: "
                                             f"{self._message(response)}. Fix the declaration in {sync.source_file}.")

    def requests_for(self, sync: SyncSpec, records: list[Record]) -> list[tuple[str, str, dict[str, Any], list[Record]]]:
        """The (method, path, body, records) requests that send one batch, exactly as posted."""
        base = f"/crm/v3/objects/{sync.object}/batch"
        op = records[0].operation
        props = lambda r: {k: property_value(v) for k, v in r.payload.items()}  # noqa: E731
        match_value = lambda r: str(r.payload.get(sync.match_field) or r.key)  # noqa: E731
        if op in ("upsert", "update", "clear"):
            # A HubSpot id the model knows (destination_id_column) wins: the record exists, update it by id.
            use_id = bool(sync.destination_id_column)
            by_id = [r for r in records if use_id and r.destination_id]
            by_match = [r for r in records if not (use_id and r.destination_id)]
            out = []
            if by_id:
                out.append(("POST", f"{base}/update", {"inputs": [{"id": r.destination_id, "properties": props(r)}
                                                                  for r in by_id]}, by_id))
            if by_match:
                action = "upsert" if op == "upsert" else "update"
                out.append(("POST", f"{base}/{action}", {"inputs": [
                    {"id": match_value(r), "idProperty": sync.match_field, "properties": props(r)}
                    for r in by_match]}, by_match))
            return out
        if op == "create":
            return [("POST", f"{base}/create", {"inputs": [{"properties": props(r)} for r in records]}, records)]
        if op == "delete":
            return [("POST", f"{base}/archive", {"inputs": [{"id": r.destination_id} for r in records
                                                            if r.destination_id]}, records)]
        if op == "archive":
            return [("POST", f"{base}/read", {"idProperty": sync.match_field, "properties": [sync.match_field],
                                              "inputs": [{"id": match_value(r)} for r in records]}, records)]
        raise ValueError(f"HubSpot {sync.object} cannot do the operation {op!r}.")

    def preview(self, sync: SyncSpec, records: list[Record]) -> list[dict[str, Any]]:
        """The requests `send` would make for these records (dry run), without the credential."""
        return [{"method": m, "path": p, "body": b} for m, p, b, _ in self.requests_for(sync, records)]

    def send(self, sync: SyncSpec, records: list[Record]) -> list[RecordResult]:
        """Send one batch; one RecordResult per record."""
        results: list[RecordResult] = []
        for method, path, body, batch in self.requests_for(sync, records):
            results += self._send_one(sync, method, path, body, batch)
        return results

    def _send_one(self, sync: SyncSpec, method: str, path: str, body: dict[str, Any],
                  batch: list[Record]) -> list[RecordResult]:
        op = batch[0].operation
        if op == "delete":
            missing = [RecordResult(r.key, "rejected", message="no HubSpot id known for this record")
                       for r in batch if not r.destination_id]
            if not body["inputs"]:
                return missing
            response = self._request(method, path, body)
            if response.status_code == 204:
                return missing + [RecordResult(r.key, "accepted", r.destination_id) for r in batch if r.destination_id]
            raise BatchRejected(self._message(response))
        response = self._request(method, path, body)
        if response.status_code == 400 or response.status_code == 409:
            raise BatchRejected(self._message(response))
        if response.status_code not in (200, 201, 207):
            raise BatchRejected(self._message(response))
        payload = response.json()
        if op == "archive":
            return self._archive_found(sync, batch, payload)
        return self._map_results(sync, batch, payload)

    def _keys_by_identity(self, sync: SyncSpec, batch: list[Record]) -> dict[str, Record]:
        index: dict[str, Record] = {}
        for r in batch:
            for value in (r.destination_id, r.payload.get(sync.match_field), r.key):
                if value is not None:
                    index.setdefault(str(value).strip().lower(), r)
        return index

    def _map_results(self, sync: SyncSpec, batch: list[Record], payload: dict[str, Any]) -> list[RecordResult]:
        index = self._keys_by_identity(sync, batch)
        out: dict[str, RecordResult] = {}
        for item in payload.get("results", []):
            properties = item.get("properties") or {}
            record = None
            for value in (item.get("id"), properties.get(sync.match_field)):
                if value is not None and str(value).strip().lower() in index:
                    record = index[str(value).strip().lower()]
                    break
            if record is not None:
                out[record.key] = RecordResult(record.key, "accepted", destination_id=str(item.get("id")))
        for error in payload.get("errors", []):
            message = f"{error.get('category', 'ERROR')}: {str(error.get('message', ''))[:300]}"
            for values in (error.get("context") or {}).values():
                for value in values or []:
                    record = index.get(str(value).strip().lower())
                    if record is not None and record.key not in out:
                        out[record.key] = RecordResult(record.key, "rejected", message=message)
        if len(batch) == 1 and batch[0].key not in out and payload.get("errors"):
            error = payload["errors"][0]
            out[batch[0].key] = RecordResult(batch[0].key, "rejected",
                                             message=f"{error.get('category')}: {str(error.get('message'))[:300]}")
        return [out[r.key] for r in batch if r.key in out]

    def _archive_found(self, sync: SyncSpec, batch: list[Record], payload: dict[str, Any]) -> list[RecordResult]:
        index = self._keys_by_identity(sync, batch)
        found: dict[str, str] = {}
        for item in payload.get("results", []):
            value = (item.get("properties") or {}).get(sync.match_field)
            if value is not None and str(value).strip().lower() in index:
                found[index[str(value).strip().lower()].key] = str(item["id"])
        out = [RecordResult(r.key, "accepted", message="not in HubSpot") for r in batch if r.key not in found]
        if found:
            response = self._request("POST", f"/crm/v3/objects/{sync.object}/batch/archive",
                                     {"inputs": [{"id": i} for i in found.values()]})
            if response.status_code != 204:
                raise BatchRejected(self._message(response))
            out += [RecordResult(k, "accepted", destination_id=i) for k, i in found.items()]
        return out

