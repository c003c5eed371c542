"""HubSpot CRM emulation: objects v3 (contacts, companies, deals, calls) with batch and search,
properties, owners, and associations v3/v4, mounted at `/hubspot`.

Paths, bodies and error shapes follow HubSpot's public API reference and what the official
`hubspot-api-client` (v12) sends and deserialises. State lives in the sandbox `Store`:

- `<type>` / `archived_<type>`: records as {"id", "properties", "createdAt", "updatedAt",
  "archived", "archivedAt"?, "history"?: {property: [{"value", "timestamp", "sourceType"}]}};
  `seq` orders list pagination, `created`/`updated` (epoch seconds) index the date searches.
- the Store's lookup table `<type>:<property>`: values of unique properties (contacts' email, custom
  unique properties), normalised, to record ids (one indexed row per value: upserts look one up per record).
- `associations`: both directions, bucketed by the from-record: id `<from>:<to>:<bucket>`,
  data {from id: {to id: [association typeIds]}}.
  (Buckets keep 100,000 seeded records from costing 300,000 extra rows; a lookup is still one get.)
- `properties`: property definitions, id `<type>:<name>`; `owners`: owners as the API returns them.

Limits: HubSpot's rolling 10-second window for private apps (190 requests per 10 s, Professional),
counted as HubSpot counts it (a moving window: no burst of twice the limit after idle), and the search
endpoints' own 5 per second. `GET /hubspot/_sandbox/writes/{type}` (not a HubSpot API) gives tests the
number of writes each record received and the 429s the window answered. Not emulated: association labels (USER_DEFINED types), pipelines
API, merges, GDPR delete, imports/exports, lists, and the daily request quota.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import math
import re
import threading
import time
import uuid
import zlib
from collections.abc import Iterable
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse as _StarletteJSONResponse
from starlette.responses import Response
from starlette.routing import Route

from growth_stack_dagster.sandbox import hubspot_webhooks
from growth_stack_dagster.sandbox.core import (
    Emulation, SandboxContext, Store, TokenBucket, bearer_token,
)



class JSONResponse(_StarletteJSONResponse):
    """JSON response serialised with orjson (pages of 100 records are the hot path)."""

    def render(self, content: Any) -> bytes:
        """Serialise with orjson."""
        return orjson.dumps(content)


SYSTEM = "hubspot"
PORTAL_ID = 20000000
# Private apps on Professional: 190 requests per rolling 10 seconds (HubSpot's published limit).
WINDOW_REQUESTS = 190
WINDOW_SECONDS = 10
RATE_PER_SECOND = WINDOW_REQUESTS / WINDOW_SECONDS
BURST = float(WINDOW_REQUESTS)
# The CRM search endpoints have their own, lower limit: five requests per second per token.
SEARCH_RATE_PER_SECOND = 5.0
BATCH_MAX = 100
BATCH_WITH_HISTORY_MAX = 50
LIST_MAX = 100
LIST_WITH_HISTORY_MAX = 50
SEARCH_MAX = 200
SEARCH_CAP = 10_000
SEARCH_MAX_GROUPS, SEARCH_MAX_GROUP_FILTERS, SEARCH_MAX_FILTERS = 5, 10, 25
OWNERS_MAX = 500
ASSOC_PAGE_MAX = 500
BUCKETS = 4096

# canonical type -> (objectTypeId, singular)
OBJECT_TYPES = {
    "contacts": ("0-1", "contact"),
    "companies": ("0-2", "company"),
    "deals": ("0-3", "deal"),
    "calls": ("0-48", "call"),
    "notes": ("0-46", "note"),
}
_TYPE_ALIASES = {alias: name for name, (type_id, singular) in OBJECT_TYPES.items()
                 for alias in (name, type_id, singular)}

CREATED_PROP = {"contacts": "createdate", "companies": "createdate", "deals": "createdate", "calls": "hs_createdate",
                "notes": "hs_createdate"}
UPDATED_PROP = {"contacts": "lastmodifieddate", "companies": "hs_lastmodifieddate",
                "deals": "hs_lastmodifieddate", "calls": "hs_lastmodifieddate", "notes": "hs_lastmodifieddate"}
# Both spellings address the record's own timestamps in searches (ETL tools use either).
CREATED_ALIASES = {"createdate", "hs_createdate"}
UPDATED_ALIASES = {"lastmodifieddate", "hs_lastmodifieddate"}

DEFAULT_PROPERTIES = {
    "contacts": ["createdate", "email", "firstname", "hs_object_id", "lastmodifieddate", "lastname"],
    "companies": ["createdate", "domain", "hs_lastmodifieddate", "hs_object_id", "name"],
    "deals": ["amount", "closedate", "createdate", "dealname", "dealstage", "hs_lastmodifieddate",
              "hs_object_id", "pipeline"],
    "calls": ["hs_createdate", "hs_lastmodifieddate", "hs_object_id"],
    "notes": ["hs_createdate", "hs_lastmodifieddate", "hs_object_id"],
}
SEARCH_QUERY_PROPERTIES = {
    "contacts": ["email", "firstname", "lastname", "phone", "company"],
    "companies": ["name", "domain", "website", "phone"],
    "deals": ["dealname"],
    "calls": ["hs_call_title", "hs_call_body"],
    "notes": ["hs_note_body"],
}
READ_ONLY = {"hs_object_id", "lastmodifieddate", "hs_lastmodifieddate", "hs_createdate"}

# HUBSPOT_DEFINED association types: (from, to) -> default (unlabeled) typeId, and typeId -> inverse.
DEFAULT_ASSOCIATION = {
    ("contacts", "companies"): 279, ("companies", "contacts"): 280,
    ("deals", "contacts"): 3, ("contacts", "deals"): 4,
    ("deals", "companies"): 341, ("companies", "deals"): 342,
    ("contacts", "calls"): 193, ("calls", "contacts"): 194,
    ("companies", "calls"): 181, ("calls", "companies"): 182,
    ("deals", "calls"): 205, ("calls", "deals"): 206,
    ("contacts", "notes"): 201, ("notes", "contacts"): 202,
}
PRIMARY_ASSOCIATION = {("contacts", "companies"): 1, ("companies", "contacts"): 2,
                       ("deals", "companies"): 5, ("companies", "deals"): 6}
ASSOCIATION_PAIRS: dict[int, tuple[str, str]] = {
    **{t: pair for pair, t in DEFAULT_ASSOCIATION.items()},
    **{t: pair for pair, t in PRIMARY_ASSOCIATION.items()},
}
INVERSE_ASSOCIATION: dict[int, int] = {
    t: table[(b, a)] for table in (DEFAULT_ASSOCIATION, PRIMARY_ASSOCIATION) for (a, b), t in table.items()
}


def association_type_name(type_id: int) -> str:
    """The v3 association type name (`contact_to_company`, `..._unlabeled`) of a typeId."""
    a, b = ASSOCIATION_PAIRS[type_id]
    name = f"{OBJECT_TYPES[a][1]}_to_{OBJECT_TYPES[b][1]}"
    if (a, b) in PRIMARY_ASSOCIATION and DEFAULT_ASSOCIATION[(a, b)] == type_id:
        name += "_unlabeled"
    return name


ASSOCIATION_BY_NAME = {association_type_name(t): t for t in ASSOCIATION_PAIRS}

# ----------------------------------------------------------------------------- property definitions
_LIFECYCLE = ["subscriber", "lead", "marketingqualifiedlead", "salesqualifiedlead", "opportunity",
              "customer", "evangelist", "other"]
_DEAL_STAGES = ["appointmentscheduled", "qualifiedtobuy", "presentationscheduled", "decisionmakerboughtin",
                "contractsent", "closedwon", "closedlost"]
_CALL_STATUS = ["BUSY", "CALLING_CRM_USER", "CANCELED", "COMPLETED", "CONNECTING", "FAILED", "IN_PROGRESS",
                "MISSED", "NO_ANSWER", "QUEUED", "RINGING"]
_LEAD_STATUS = ["NEW", "OPEN", "IN_PROGRESS", "OPEN_DEAL", "UNQUALIFIED", "ATTEMPTED_TO_CONTACT",
                "CONNECTED", "BAD_TIMING"]

# (name, label, type, fieldType, groupName, options | None) -- HubSpot-defined unless noted
_S, _N, _DT, _D, _E, _B = "string", "number", "datetime", "date", "enumeration", "bool"
_COMMON = [
    ("hs_object_id", "Record ID", _N, "number", "{g}", None),
    ("hubspot_owner_id", "Owner", _E, "select", "{g}", "external"),
]
DEFAULT_DEFINITIONS: dict[str, list[tuple]] = {
    "contacts": _COMMON + [
        ("createdate", "Create Date", _DT, "date", "contactinformation", None),
        ("lastmodifieddate", "Last Modified Date", _DT, "date", "contactinformation", None),
        ("email", "Email", _S, "text", "contactinformation", None),
        ("firstname", "First Name", _S, "text", "contactinformation", None),
        ("lastname", "Last Name", _S, "text", "contactinformation", None),
        ("phone", "Phone Number", _S, "phonenumber", "contactinformation", None),
        ("mobilephone", "Mobile Phone Number", _S, "phonenumber", "contactinformation", None),
        ("company", "Company Name", _S, "text", "contactinformation", None),
        ("jobtitle", "Job Title", _S, "text", "contactinformation", None),
        ("website", "Website URL", _S, "text", "contactinformation", None),
        ("address", "Street Address", _S, "text", "contactinformation", None),
        ("city", "City", _S, "text", "contactinformation", None),
        ("state", "State/Region", _S, "text", "contactinformation", None),
        ("zip", "Postal Code", _S, "text", "contactinformation", None),
        ("country", "Country/Region", _S, "text", "contactinformation", None),
        ("lifecyclestage", "Lifecycle Stage", _E, "radio", "contactinformation", _LIFECYCLE),
        ("hs_lead_status", "Lead Status", _E, "radio", "sales_properties", _LEAD_STATUS),
        ("date_of_birth", "Date of birth", _D, "date", "contactinformation", "custom"),
        ("customer_type", "Customer type", _E, "select", "contactinformation", ["retail", "wholesale"]),
        ("lead_qualified", "Lead qualified", _B, "booleancheckbox", "contactinformation", ["true", "false"]),
    ],
    "companies": _COMMON + [
        ("createdate", "Create Date", _DT, "date", "companyinformation", None),
        ("hs_lastmodifieddate", "Last Modified Date", _DT, "date", "companyinformation", None),
        ("name", "Company name", _S, "text", "companyinformation", None),
        ("domain", "Company Domain Name", _S, "text", "companyinformation", None),
        ("website", "Website URL", _S, "text", "companyinformation", None),
        ("phone", "Phone Number", _S, "phonenumber", "companyinformation", None),
        ("industry", "Industry", _S, "text", "companyinformation", None),
        ("city", "City", _S, "text", "companyinformation", None),
        ("state", "State/Region", _S, "text", "companyinformation", None),
        ("country", "Country/Region", _S, "text", "companyinformation", None),
        ("numberofemployees", "Number of Employees", _N, "number", "companyinformation", None),
        ("annualrevenue", "Annual Revenue", _N, "number", "companyinformation", None),
        ("description", "Description", _S, "textarea", "companyinformation", None),
        ("lifecyclestage", "Lifecycle Stage", _E, "radio", "companyinformation", _LIFECYCLE),
    ],
    "deals": _COMMON + [
        ("createdate", "Create Date", _DT, "date", "dealinformation", None),
        ("hs_lastmodifieddate", "Last Modified Date", _DT, "date", "dealinformation", None),
        ("dealname", "Deal Name", _S, "text", "dealinformation", None),
        ("amount", "Amount", _N, "number", "dealinformation", None),
        ("dealstage", "Deal Stage", _E, "radio", "dealinformation", _DEAL_STAGES),
        ("pipeline", "Pipeline", _E, "select", "dealinformation", ["default"]),
        ("closedate", "Close Date", _DT, "date", "dealinformation", None),
        ("dealtype", "Deal Type", _E, "radio", "dealinformation", ["newbusiness", "existingbusiness"]),
        ("description", "Deal Description", _S, "textarea", "dealinformation", None),
    ],
    "calls": _COMMON + [
        ("hs_createdate", "Created at", _DT, "date", "call", None),
        ("hs_lastmodifieddate", "Last Modified Date", _DT, "date", "call", None),
        ("hs_timestamp", "Activity date", _DT, "date", "call", None),
        ("hs_call_title", "Call Title", _S, "text", "call", None),
        ("hs_call_body", "Call notes", _S, "textarea", "call", None),
        ("hs_call_duration", "Call duration", _N, "number", "call", None),
        ("hs_call_direction", "Call direction", _E, "select", "call", ["INBOUND", "OUTBOUND"]),
        ("hs_call_disposition", "Call outcome", _S, "text", "call", None),
        ("hs_call_status", "Call status", _E, "select", "call", _CALL_STATUS),
    ],
    "notes": _COMMON + [
        ("hs_createdate", "Created at", _DT, "date", "engagement", None),
        ("hs_lastmodifieddate", "Last Modified Date", _DT, "date", "engagement", None),
        ("hs_timestamp", "Activity date", _DT, "date", "engagement", None),
        ("hs_note_body", "Note body", _S, "textarea", "engagement", None),
    ],
}
_EPOCH_ISO = "1970-01-01T00:00:00.000Z"
_NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,99}$")
VALID_FIELD_TYPES = {
    "string": {"text", "textarea", "phonenumber", "html", "file", "select"},
    "number": {"number", "calculation_equation"},
    "date": {"date"},
    "datetime": {"date"},
    "enumeration": {"select", "radio", "checkbox", "booleancheckbox", "calculation_equation"},
    "bool": {"booleancheckbox", "calculation_equation"},
    "phone_number": {"phonenumber"},
}


def build_definition(object_type: str, name: str, label: str, ptype: str, field_type: str, group: str,
                     options: Any, created_at: str = _EPOCH_ISO, order: int = -1) -> dict[str, Any]:
    """A property definition as `GET /crm/v3/properties/{type}` returns it."""
    custom = options == "custom" or name in ("date_of_birth", "customer_type", "lead_qualified")
    external = options == "external"
    values = options if isinstance(options, list) else []
    if ptype == "bool":
        option_list = [{"label": "Yes", "value": "true", "displayOrder": 0, "hidden": False},
                       {"label": "No", "value": "false", "displayOrder": 1, "hidden": False}]
    else:
        option_list = [{"label": v.replace("_", " ").title(), "value": v, "displayOrder": i, "hidden": False}
                       for i, v in enumerate(values)]
    group = group.format(g={"contacts": "contactinformation", "companies": "companyinformation",
                            "deals": "dealinformation", "calls": "call",
                            "notes": "engagement"}[object_type])
    return {
        "name": name, "label": label, "type": ptype, "fieldType": field_type, "description": "",
        "groupName": group, "options": option_list, "displayOrder": order, "calculated": False,
        "externalOptions": external, "hasUniqueValue": False, "hidden": False,
        "hubspotDefined": not custom, "archived": False, "formField": True,
        "dataSensitivity": "non_sensitive", "createdAt": created_at, "updatedAt": created_at,
        "modificationMetadata": {"archivable": custom, "readOnlyDefinition": not custom,
                                 "readOnlyValue": name in READ_ONLY or name in ("createdate",)},
    }


# ----------------------------------------------------------------------------- time helpers
def now_ms() -> int:
    """The current time in epoch milliseconds."""
    return int(time.time() * 1000)


def iso_from_ms(ms: int) -> str:
    """Epoch milliseconds as HubSpot's ISO-8601 (`2024-01-02T03:04:05.678Z`)."""
    return _iso_second(ms // 1000) + f"{ms % 1000:03d}Z"


@functools.lru_cache(maxsize=4096)
def _iso_second(seconds: int) -> str:
    """`2024-01-02T03:04:05.` for epoch seconds (cached: a batch writes many records in the same second)."""
    return dt.datetime.fromtimestamp(seconds, tz=dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.")


def ms_from_value(value: Any) -> int | None:
    """Epoch milliseconds from epoch ms (int or digit string), ISO-8601 or `YYYY-MM-DD`; None if invalid."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return int(value)
    text = str(value).strip()
    if len(text) == 24 and text[10] == "T" and text[19] == "." and text[23] == "Z" and text[:4].isdigit():
        try:  # the canonical form the emulation writes itself: no regular expressions on the hot path
            d = dt.datetime.fromisoformat(text[:23]).replace(tzinfo=dt.timezone.utc)
        except ValueError:
            return None
        return int(round(d.timestamp() * 1000))
    if len(text) == 10 and text[4] == "-" and text[7] == "-":
        try:
            day = dt.date.fromisoformat(text)
        except ValueError:
            return None
        return (day - dt.date(1970, 1, 1)).days * 86_400_000
    if re.fullmatch(r"-?\d+", text):
        return int(text)
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            d = dt.datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=dt.timezone.utc)
        else:
            d = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
            if d.tzinfo is None:
                d = d.replace(tzinfo=dt.timezone.utc)
    except ValueError:
        return None
    return int(round(d.timestamp() * 1000))


def canonical_iso(value: Any) -> str | None:
    """HubSpot's ISO-8601 form of a timestamp value; None if it is not one."""
    if isinstance(value, str):
        n = len(value)
        # fast paths: already canonical, or second precision (both common in seeds)
        if n == 24 and value[10] == "T" and value[19] == "." and value[23] == "Z" and value[:4].isdigit():
            return value
        if n == 20 and value[10] == "T" and value[19] == "Z" and value[:4].isdigit():
            return value[:19] + ".000Z"
    ms = ms_from_value(value)
    return iso_from_ms(ms) if ms is not None else None


@functools.lru_cache(maxsize=65536)
def _days_since_epoch(date: str) -> int:
    """Days from 1970-01-01 to `YYYY-MM-DD` (days-from-civil, proleptic Gregorian)."""
    y, m, d = int(date[0:4]), int(date[5:7]), int(date[8:10])
    y -= m <= 2  # March-based year
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    return era * 146097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719468


def ms_from_canonical(iso: str) -> int:
    """Epoch milliseconds of a canonical `YYYY-MM-DDTHH:MM:SS.mmmZ` (integer arithmetic, no parsing)."""
    seconds = _days_since_epoch(iso[:10]) * 86400 + int(iso[11:13]) * 3600 + int(iso[14:16]) * 60 + int(iso[17:19])
    return seconds * 1000 + int(iso[20:23])


# ----------------------------------------------------------------------------- value validation
class PropertyError(Exception):
    """One invalid property value, in HubSpot's per-property validation shape."""

    def __init__(self, name: str, error: str, message: str):
        super().__init__(message)
        self.name, self.error, self.message = name, error, message

    def as_dict(self) -> dict[str, Any]:
        """The entry HubSpot lists inside `Property values were not valid: [...]`."""
        return {"isValid": False, "message": self.message, "error": self.error, "name": self.name,
                "localizedErrorMessage": self.message, "portalId": PORTAL_ID}


def coerce_value(definition: dict[str, Any] | None, name: str, raw: Any) -> str | None:
    """A property value as HubSpot stores it (a string; None clears it), or PropertyError."""
    if definition is None:
        raise PropertyError(name, "PROPERTY_DOESNT_EXIST", f'Property "{name}" does not exist')
    if raw is None or raw == "":
        return None
    ptype = definition["type"]
    if isinstance(raw, (dict, list)):
        raise PropertyError(name, "INVALID_PROPERTY_VALUE", f"{json.dumps(raw)} is not a valid value for {name}")
    if ptype == "bool" and isinstance(raw, bool):
        return "true" if raw else "false"
    text = str(raw)
    if ptype == "number":
        try:
            number = float(text)
        except ValueError:
            raise PropertyError(name, "INVALID_FLOAT", f"{text} was not a valid number.") from None
        if math.isnan(number) or math.isinf(number):
            raise PropertyError(name, "INVALID_FLOAT", f"{text} was not a valid number.")
        return text.strip()
    if ptype == "datetime":
        iso = canonical_iso(text)
        if iso is None:
            raise PropertyError(name, "INVALID_DATE", f"{text} was not a valid date-time (ISO-8601 or epoch millis).")
        return iso
    if ptype == "date":
        ms = ms_from_value(text)
        if ms is None:
            raise PropertyError(name, "INVALID_DATE", f"{text} was not a valid date (YYYY-MM-DD).")
        if ms % 86_400_000:
            raise PropertyError(name, "INVALID_DATE", f"{text} is at {iso_from_ms(ms)[11:23]}, not midnight UTC.")
        if len(text) == 10 and text[4] == "-" and text[7] == "-":
            return text  # already YYYY-MM-DD (ms_from_value checked it is a real day)
        return iso_from_ms(ms)[:10]
    if ptype in ("enumeration", "bool") and not definition.get("externalOptions"):
        allowed = [o["value"] for o in definition.get("options", [])]
        if ptype == "bool":
            text = text.lower()
        chosen = text.split(";") if definition.get("fieldType") == "checkbox" else [text]
        for value in chosen:
            if value not in allowed:
                raise PropertyError(name, "INVALID_OPTION",
                                    f"{value} was not one of the allowed options: [{', '.join(allowed)}]")
        return text
    return text


# ----------------------------------------------------------------------------- errors
def _correlation_id() -> str:
    return str(uuid.uuid4())


def hs_error(status: int, message: str, category: str, headers: dict[str, str] | None = None,
             **extra: Any) -> JSONResponse:
    """HubSpot's error body: status/message/correlationId/category (+ context, errors, subCategory)."""
    body = {"status": "error", "message": message, "correlationId": _correlation_id(), "category": category}
    body.update({k: v for k, v in extra.items() if v is not None})
    return JSONResponse(body, status_code=status, headers=headers)


def validation_error(errors: list[PropertyError]) -> JSONResponse:
    """400 for invalid property values: the JSON list inside the message, as HubSpot does."""
    message = "Property values were not valid: " + json.dumps([e.as_dict() for e in errors], separators=(",", ":"))
    return hs_error(400, message, "VALIDATION_ERROR",
                    context={"propertyName": [e.name for e in errors]},
                    errors=[{"message": e.message, "code": e.error, "context": {"propertyName": [e.name]}}
                            for e in errors])


def record_error(category: str, message: str, context: dict[str, list[str]],
                 sub_category: str | None = None) -> dict[str, Any]:
    """One entry of a batch response's `errors` (HubSpot's StandardError)."""
    out = {"status": "error", "category": category, "message": message, "context": context,
           "errors": [], "links": {}}
    if sub_category:
        out["subCategory"] = sub_category
    return out


class ApiError(Exception):
    """Aborts a request with a ready HubSpot error response."""

    def __init__(self, response: Response):
        super().__init__(response.status_code)
        self.response = response


def bad_request(message: str, category: str = "VALIDATION_ERROR", **extra: Any) -> ApiError:
    """A 400 VALIDATION_ERROR (or `category`) to raise from a handler."""
    return ApiError(hs_error(400, message, category, **extra))


def canonical_type(raw: str) -> str:
    """`contacts`/`contact`/`0-1` (any spelling HubSpot accepts) as the canonical plural name."""
    name = _TYPE_ALIASES.get(raw.lower())
    if name is None:
        raise bad_request(f"Unable to infer object type from: {raw}")
    return name


# ----------------------------------------------------------------------------- the emulation
class HubSpotCRM:
    """State and behaviour of one emulated HubSpot portal over the sandbox Store."""

    def __init__(self, ctx: SandboxContext):
        self.ctx = ctx
        self.store: Store = ctx.store
        self._lock = threading.RLock()  # serialises read-modify-write of records and definitions
        self._definitions: dict[str, dict[str, dict[str, Any]]] = {}  # archived ones included
        self._live: dict[str, dict[str, dict[str, Any]]] = {}
        self._uniques: dict[str, list[str]] = {}  # unique property names by type (asked for every record)
        self._id_floor: int | None = None  # cached `_meta/id_floor` (None: read it from the store)
        scale = ctx.rate_limit_scale
        self.search_bucket = (TokenBucket(SEARCH_RATE_PER_SECOND * scale, SEARCH_RATE_PER_SECOND * scale)
                              if scale > 0 else None)
        self._load_definitions()
        self._migrate_bucketed_index()

    # ---------------------------------------------------------------- definitions
    def _load_definitions(self) -> None:
        self._definitions = {}
        stored = {obj["_key"]: obj["definition"] for obj in self.store.scan(SYSTEM, "properties")}
        missing = []
        for object_type, rows in DEFAULT_DEFINITIONS.items():
            for order, row in enumerate(rows):
                key = f"{object_type}:{row[0]}"
                if key not in stored:
                    definition = build_definition(object_type, *row, order=order)
                    if row[0] == "email" and object_type == "contacts":
                        definition["hasUniqueValue"] = True
                    stored[key] = definition
                    missing.append((key, {"_key": key, "definition": definition}, 0, 0))
        if missing:
            self.store.put_many(SYSTEM, "properties", missing)
        for key, definition in stored.items():
            object_type, name = key.split(":", 1)
            self._definitions.setdefault(object_type, {})[name] = definition
        self._definition_count = len(stored)
        self._refresh_live()

    def _refresh_live(self) -> None:
        self._live = {t: {n: d for n, d in defs.items() if not d.get("archived")}
                      for t, defs in self._definitions.items()}
        self._uniques = {t: [n for n, d in defs.items() if d.get("hasUniqueValue")] for t, defs in self._live.items()}

    def refresh_after_reset(self) -> None:
        """Reload the cached definitions when the store lost them (`POST /_admin/reset`)."""
        if self.store.count(SYSTEM, "properties") != self._definition_count:
            with self._lock:
                self._id_floor = None
                self._load_definitions()

    def definitions(self, object_type: str) -> dict[str, dict[str, Any]]:
        """Live (not archived) property definitions of an object type, by name."""
        return self._live.get(object_type, {})

    def all_definitions(self, object_type: str) -> dict[str, dict[str, Any]]:
        """Every property definition of an object type, archived ones included."""
        return self._definitions.get(object_type, {})

    def unique_properties(self, object_type: str) -> list[str]:
        """Names of the properties whose values identify one record (`idProperty` candidates)."""
        return self._uniques.get(object_type, [])

    def save_definition(self, object_type: str, definition: dict[str, Any]) -> None:
        """Store a property definition and refresh the cache."""
        key = f"{object_type}:{definition['name']}"
        self.store.put(SYSTEM, "properties", key, {"_key": key, "definition": definition})
        if definition["name"] not in self.all_definitions(object_type):
            self._definition_count += 1
        self._definitions.setdefault(object_type, {})[definition["name"]] = definition
        self._refresh_live()

    # ---------------------------------------------------------------- ids
    def new_id(self) -> str:
        """A fresh numeric id above every seeded id (seeds choose their own ids)."""
        if self._id_floor is None:
            self._id_floor = (self.store.get(SYSTEM, "_meta", "id_floor") or {}).get("value", 0)
        return str(self._id_floor + self.store.next_id("hubspot_object"))

    def raise_id_floor(self, ids: Iterable[str]) -> None:
        """Keep generated ids above the largest seeded numeric id."""
        top = max((int(i) for i in ids if str(i).isdigit()), default=0)
        current = (self.store.get(SYSTEM, "_meta", "id_floor") or {}).get("value", 0)
        if top > current:
            self.store.put(SYSTEM, "_meta", "id_floor", {"value": top})
        self._id_floor = max(top, current)

    # ---------------------------------------------------------------- records
    @staticmethod
    def collection(object_type: str, archived: bool = False) -> str:
        """The Store collection of live or archived records of a type."""
        return f"archived_{object_type}" if archived else object_type

    def page_records(self, object_type: str, archived: bool, after_seq: int,
                     limit: int) -> list[tuple[int, dict[str, Any]]]:
        """Up to `limit` (seq, record) pairs after `after_seq`, in insertion order.

        Walks the rowid (`seq`) directly: `+system`/`+collection` keep SQLite from choosing a
        (system, collection, ...) index and sorting the whole collection on every page.
        """
        rows = self.store.query(
            "SELECT seq, data FROM objects WHERE +system = ? AND +collection = ? AND seq > ? ORDER BY seq LIMIT ?",
            (SYSTEM, self.collection(object_type, archived), after_seq, limit))
        return [(seq, orjson.loads(data)) for seq, data in rows]

    def get_record(self, object_type: str, object_id: str, archived: bool = False) -> dict[str, Any] | None:
        """One stored record by id, or None."""
        return self.store.get(SYSTEM, self.collection(object_type, archived), str(object_id))

    def find_by_unique(self, object_type: str, prop: str, value: str) -> dict[str, Any] | None:
        """The live record whose unique `prop` equals `value` (email case-insensitively)."""
        if prop == "hs_object_id":
            return self.get_record(object_type, value)
        record_id = self.store.lookup(SYSTEM, f"{object_type}:{prop}", self._unique_key(value))
        if record_id is None:
            return None
        record = self.get_record(object_type, record_id)
        if record is None or self._unique_key(record["properties"].get(prop, "")) != self._unique_key(value):
            return None  # stale index row (record archived, re-seeded or changed)
        return record

    @staticmethod
    def _unique_key(value: Any) -> str:
        return str(value).strip().lower()

    def _index_update(self, object_type: str, prop: str, changes: dict[str, str | None]) -> None:
        """Apply {normalised value: record id or None (remove)} to the unique-value index."""
        self.store.set_lookups(SYSTEM, f"{object_type}:{prop}", changes)

    def _migrate_bucketed_index(self) -> None:
        """Move a unique-value index kept in JSON buckets by an earlier sandbox into the lookup table."""
        with self._lock, self.store.transaction():
            rows = self.store.query("SELECT id, data FROM objects WHERE system = ? AND collection = 'unique_index'",
                                    (SYSTEM,))
            for bucket_id, data in rows:
                object_type, prop, _ = bucket_id.rsplit(":", 2)
                self.store.set_lookups(SYSTEM, f"{object_type}:{prop}", orjson.loads(data))
                self.store.delete(SYSTEM, "unique_index", bucket_id)

    def save_record(self, object_type: str, record: dict[str, Any], old: dict[str, Any] | None) -> None:
        """Store a record and keep the unique-value index in step with it."""
        created = ms_from_value(record["createdAt"]) or 0
        updated = ms_from_value(record["updatedAt"]) or 0
        self.store.put(SYSTEM, object_type, record["id"], record, created=created // 1000, updated=updated // 1000)
        for prop in self.unique_properties(object_type):
            new_value = record["properties"].get(prop)
            old_value = (old or {}).get("properties", {}).get(prop)
            changes: dict[str, str | None] = {}
            if old_value is not None and old_value != new_value:
                changes[self._unique_key(old_value)] = None
            if new_value is not None and new_value != old_value:
                changes[self._unique_key(new_value)] = record["id"]
            if changes:
                self._index_update(object_type, prop, changes)

    def validate_properties(self, object_type: str, properties: Any) -> dict[str, str | None]:
        """Coerced values of an input `properties` map, or ApiError with HubSpot's 400 body."""
        if properties is None:
            properties = {}
        if not isinstance(properties, dict):
            raise bad_request("Invalid input JSON: `properties` must be an object of property name to value.")
        defs = self.definitions(object_type)
        values: dict[str, str | None] = {}
        errors: list[PropertyError] = []
        for name, raw in properties.items():
            try:
                if name in READ_ONLY and name in defs:
                    raise PropertyError(name, "READ_ONLY_VALUE",
                                        f'"{name}" is a read only property; its value cannot be set.')
                values[name] = coerce_value(defs.get(name), name, raw)
            except PropertyError as exc:
                errors.append(exc)
        if errors:
            raise ApiError(validation_error(errors))
        return values

    def check_unique(self, object_type: str, values: dict[str, str | None], own_id: str | None,
                     looked_up: str | None = None) -> None:
        """HubSpot's 409 CONFLICT when a unique value (e.g. email) belongs to another record.
        `looked_up`: a property whose value the caller has just looked up itself (not asked again)."""
        for prop in self.unique_properties(object_type):
            value = values.get(prop)
            if value is None or prop == looked_up:
                continue
            other = self.find_by_unique(object_type, prop, value)
            if other is not None and other["id"] != own_id:
                singular = OBJECT_TYPES[object_type][1].capitalize()
                if prop == "email":
                    raise ApiError(hs_error(409, f"{singular} already exists. Existing ID: {other['id']}", "CONFLICT"))
                raise ApiError(hs_error(409, f"A {singular.lower()} with the unique value {value!r} for {prop} "
                                             f"already exists. Existing ID: {other['id']}", "CONFLICT"))

    def create_record(self, object_type: str, values: dict[str, str | None]) -> dict[str, Any]:
        """Store a new record from validated values; returns the record."""
        ms = now_ms()
        iso = iso_from_ms(ms)
        created_iso = values.pop("createdate", None) if object_type not in ("calls", "notes") else None
        record_id = self.new_id()
        props = {k: v for k, v in values.items() if v is not None}
        props[CREATED_PROP[object_type]] = created_iso or iso
        props[UPDATED_PROP[object_type]] = iso
        props["hs_object_id"] = record_id
        record = {"id": record_id, "properties": props, "createdAt": created_iso or iso, "updatedAt": iso,
                  "archived": False}
        self.save_record(object_type, record, None)
        hubspot_webhooks.record_saved(self.ctx, object_type, record, None)
        return record

    def update_record(self, object_type: str, record: dict[str, Any], values: dict[str, str | None]) -> dict[str, Any]:
        """Apply validated values; bumps updatedAt and keeps history only when something changed."""
        old = orjson.loads(orjson.dumps(record))
        props = record["properties"]
        changed = {k: v for k, v in values.items() if props.get(k) != v}
        if not changed:
            return record
        ms = now_ms()
        iso = iso_from_ms(ms)
        history = record.setdefault("history", {})
        for name, value in changed.items():
            entries = history.setdefault(name, [])
            if not entries and props.get(name) is not None:
                entries.append({"value": props[name], "timestamp": record["updatedAt"], "sourceType": "IMPORT"})
            entries.append({"value": "" if value is None else value, "timestamp": iso, "sourceType": "API"})
            if value is None:
                props.pop(name, None)
            else:
                props[name] = value
        if "createdate" in changed and changed["createdate"]:
            record["createdAt"] = changed["createdate"]
        props[UPDATED_PROP[object_type]] = iso
        record["updatedAt"] = iso
        self.save_record(object_type, record, old)
        hubspot_webhooks.record_saved(self.ctx, object_type, record, old)
        return record

    def archive_record(self, object_type: str, record_id: str) -> bool:
        """Move a record to the archived collection, free its unique values, drop its associations."""
        with self._lock:
            record = self.get_record(object_type, record_id)
            if record is None:
                return False
            iso = iso_from_ms(now_ms())
            record.update(archived=True, archivedAt=iso, updatedAt=iso)
            self.store.put(SYSTEM, self.collection(object_type, True), record_id, record,
                           created=(ms_from_value(record["createdAt"]) or 0) // 1000, updated=int(time.time()))
            self.store.delete(SYSTEM, object_type, record_id)
            for prop in self.unique_properties(object_type):
                if record["properties"].get(prop) is not None:
                    self._index_update(object_type, prop, {self._unique_key(record["properties"][prop]): None})
            # HubSpot drops a deleted record's associations.
            for to_type in OBJECT_TYPES:
                for to_id, _ in self.associations_of(object_type, record_id, to_type):
                    self.remove_association(object_type, record_id, to_type, to_id)
                    self.touch_record(to_type, to_id, iso)
            return True

    def touch_record(self, object_type: str, record_id: str, iso: str) -> None:
        """Move a live record's last-modified date to `iso`, as HubSpot does when it recalculates the
        record's association counts (`num_associated_*`) after the other side was deleted."""
        record = self.get_record(object_type, record_id)
        if record is not None:
            record["properties"][UPDATED_PROP[object_type]] = iso
            record["updatedAt"] = iso
            self.save_record(object_type, record, None)

    # ---------------------------------------------------------------- rendering
    def render(self, object_type: str, record: dict[str, Any], properties: list[str] | None = None,
               with_history: list[str] | None = None, associations: list[str] | None = None,
               all_properties: bool = False) -> dict[str, Any]:
        """A record in the API's JSON representation."""
        defs = self.definitions(object_type)
        stored = record["properties"]
        if all_properties:
            props = dict(stored)
        else:
            names = list(DEFAULT_PROPERTIES[object_type])
            if properties:
                names = [p for p in properties if p in defs]
                names += [p for p in (CREATED_PROP[object_type], UPDATED_PROP[object_type], "hs_object_id")
                          if p not in names]
            props = {name: stored.get(name) for name in names}
        props["hs_object_id"] = record["id"]
        out: dict[str, Any] = {"id": record["id"], "properties": props, "createdAt": record["createdAt"],
                               "updatedAt": record["updatedAt"], "archived": bool(record.get("archived"))}
        if record.get("archivedAt"):
            out["archivedAt"] = record["archivedAt"]
        if with_history:
            history = record.get("history", {})
            out["propertiesWithHistory"] = {}
            for name in with_history:
                if name not in defs:
                    continue
                entries = history.get(name)
                if not entries:
                    current = stored.get(name) if name != "hs_object_id" else record["id"]
                    entries = ([{"value": current, "timestamp": record["updatedAt"], "sourceType": "API"}]
                               if current is not None else [])
                out["propertiesWithHistory"][name] = sorted(
                    entries, key=lambda e: ms_from_value(e.get("timestamp")) or 0, reverse=True)
        if associations:
            found = {}
            for raw in associations:
                try:
                    to_type = canonical_type(raw)
                except ApiError:
                    continue
                results = [{"id": to_id, "type": association_type_name(t["typeId"])}
                           for to_id, types in self.associations_of(object_type, record["id"], to_type)
                           for t in types if t["typeId"] in ASSOCIATION_PAIRS]
                if results:
                    found[raw] = {"results": results}
            if found:
                out["associations"] = found
        return out

    # ---------------------------------------------------------------- associations
    @staticmethod
    def _assoc_bucket(from_type: str, from_id: str, to_type: str) -> str:
        return f"{from_type}:{to_type}:{zlib.crc32(from_id.encode()) % BUCKETS}"

    def associations_of(self, from_type: str, from_id: str, to_type: str,
                        after: str | None = None, limit: int | None = None) -> list[tuple[str, list[dict]]]:
        """(to_id, association types) of one record towards `to_type`, by numeric to_id, after `after`."""
        row = self.store.get(SYSTEM, "associations", self._assoc_bucket(from_type, from_id, to_type)) or {}
        targets = row.get(from_id) or {}
        ids = sorted(targets, key=lambda i: (len(i), i))  # numeric order for numeric strings
        if after:
            ids = [i for i in ids if (len(i), i) > (len(after), after)]
        if limit:
            ids = ids[:limit]
        return [(i, [{"category": "HUBSPOT_DEFINED", "typeId": t, "label": None} for t in targets[i]]) for i in ids]

    def _associations_update(self, edits: Iterable[tuple[str, str, str, str, list[int] | None]]) -> None:
        """Apply (from_type, from_id, to_type, to_id, typeIds to add | None to remove) edits, bucket by bucket."""
        by_bucket: dict[str, list[tuple[str, str, list[int] | None]]] = {}
        for from_type, from_id, to_type, to_id, type_ids in edits:
            by_bucket.setdefault(self._assoc_bucket(from_type, from_id, to_type), []).append((from_id, to_id, type_ids))
        with self._lock:
            rows = []
            for bucket, changes in by_bucket.items():
                data = self.store.get(SYSTEM, "associations", bucket) or {}
                for from_id, to_id, type_ids in changes:
                    targets = data.setdefault(from_id, {})
                    if type_ids is None:
                        targets.pop(to_id, None)
                    else:
                        known = targets.setdefault(to_id, [])
                        known += [t for t in type_ids if t not in known]
                    if not targets:
                        data.pop(from_id)
                rows.append((bucket, data, 0, 0))
            self.store.put_many(SYSTEM, "associations", rows)

    def _associations_merge(self, buckets: dict[str, dict[str, dict[str, list[int]]]]) -> None:
        """Merge pre-grouped {bucket: {from id: {to id: typeIds}}} into the stored buckets (seeding)."""
        with self._lock:
            rows = []
            for bucket, incoming in buckets.items():
                data = self.store.get(SYSTEM, "associations", bucket)
                if data is None:
                    data = incoming
                else:
                    for from_id, targets in incoming.items():
                        known = data.setdefault(from_id, {})
                        for to_id, type_ids in targets.items():
                            have = known.setdefault(to_id, [])
                            have += [t for t in type_ids if t not in have]
                rows.append((bucket, data, 0, 0))
            self.store.put_many(SYSTEM, "associations", rows)

    def add_association(self, from_type: str, from_id: str, to_type: str, to_id: str,
                        type_ids: list[int]) -> None:
        """Store an association in both directions, merging association types."""
        self._associations_update([(from_type, from_id, to_type, to_id, type_ids),
                                   (to_type, to_id, from_type, from_id, [INVERSE_ASSOCIATION[t] for t in type_ids])])

    def remove_association(self, from_type: str, from_id: str, to_type: str, to_id: str) -> None:
        """Delete an association in both directions."""
        self._associations_update([(from_type, from_id, to_type, to_id, None),
                                   (to_type, to_id, from_type, from_id, None)])

    # ---------------------------------------------------------------- seeding
    def seed(self, collection: str, objects: list[dict[str, Any]]) -> int:
        """Store API-shaped history (see the seeding contract); returns the number stored."""
        if collection == "owners":
            rows = []
            for obj in objects:
                owner = dict(obj)
                owner["id"] = str(owner["id"])
                owner.setdefault("type", "PERSON")
                owner.setdefault("archived", False)
                owner.setdefault("teams", [])
                if owner.get("userId") is not None:
                    owner.setdefault("userIdIncludingInactive", owner["userId"])
                created = ms_from_value(owner.get("createdAt")) or now_ms()
                updated = ms_from_value(owner.get("updatedAt")) or created
                owner["createdAt"], owner["updatedAt"] = iso_from_ms(created), iso_from_ms(updated)
                rows.append((owner["id"], owner, created // 1000, updated // 1000))
            return self.store.put_many(SYSTEM, "owners", rows)
        if collection.lower() not in _TYPE_ALIASES:
            raise ValueError(f"hubspot has no seedable collection {collection!r}; "
                             f"use one of {sorted(OBJECT_TYPES) + ['owners']}")
        object_type = _TYPE_ALIASES[collection.lower()]
        created_prop, updated_prop = CREATED_PROP[object_type], UPDATED_PROP[object_type]
        other_updated = "hs_lastmodifieddate" if object_type == "contacts" else "lastmodifieddate"
        datetime_props = {n for n, d in self.definitions(object_type).items() if d["type"] == "datetime"}
        uniques = self.unique_properties(object_type)
        live: list[tuple] = []
        archived: list[tuple] = []
        unique_rows: dict[str, dict[str, str]] = {prop: {} for prop in uniques}
        assoc: dict[str, dict[str, dict[str, list[int]]]] = {}
        bucket_of: dict[str, int] = {}  # crc32 buckets of ids, computed once per id
        crc32 = zlib.crc32
        now_iso = iso_from_ms(now_ms())
        for obj in objects:
            record_id = str(obj["id"])
            props: dict[str, str] = {k: v for k, v in (obj.get("properties") or {}).items() if v is not None}
            for name, value in props.items():
                if type(value) is not str:  # the API's property values are always strings
                    props[name] = ("true" if value else "false") if isinstance(value, bool) else (
                        json.dumps(value) if isinstance(value, (dict, list)) else str(value))
            for name in datetime_props:
                value = props.get(name)
                if value is not None:
                    props[name] = canonical_iso(value) or value
            created_iso = (canonical_iso(obj.get("createdAt")) or canonical_iso(props.get(created_prop))
                           or canonical_iso(props.get("createdate")) or now_iso)
            # The last-modified time is HubSpot's own and never in the future (a seeded record dated later
            # today gets the time of the seeding); `createdate` may be set to any time, as on an import.
            updated_iso = min(canonical_iso(obj.get("updatedAt")) or canonical_iso(props.get(updated_prop))
                              or created_iso, now_iso)
            props.pop(other_updated, None)
            props[created_prop] = created_iso
            props[updated_prop] = updated_iso
            props["hs_object_id"] = record_id
            record: dict[str, Any] = {"id": record_id, "properties": props, "createdAt": created_iso,
                                      "updatedAt": updated_iso, "archived": bool(obj.get("archived"))}
            if obj.get("propertiesWithHistory"):
                record["history"] = {
                    name: [{"value": str(e.get("value", "")),
                            "timestamp": canonical_iso(e.get("timestamp")) or updated_iso,
                            "sourceType": e.get("sourceType", "IMPORT")} for e in entries]
                    for name, entries in obj["propertiesWithHistory"].items()}
            row = (record_id, record, ms_from_canonical(created_iso) // 1000, ms_from_canonical(updated_iso) // 1000)
            if record["archived"]:
                record["archivedAt"] = canonical_iso(obj.get("archivedAt")) or updated_iso
                archived.append(row)
                continue
            live.append(row)
            for prop in uniques:
                if prop in props:
                    unique_rows[prop][self._unique_key(props[prop])] = record_id
            for raw_type, ids in (obj.get("associations") or {}).items():
                to_type = _TYPE_ALIASES.get(str(raw_type).lower())
                type_id = DEFAULT_ASSOCIATION.get((object_type, to_type)) if to_type else None
                if type_id is None:
                    raise ValueError(f"HubSpot has no default association from {object_type} to {raw_type!r}")
                inverse = INVERSE_ASSOCIATION[type_id]
                own = bucket_of.get(record_id)
                if own is None:
                    own = bucket_of[record_id] = crc32(record_id.encode()) % BUCKETS
                outgoing = assoc.setdefault(f"{object_type}:{to_type}:{own}", {}).setdefault(record_id, {})
                for item in ids:
                    to_id = str(item["id"] if isinstance(item, dict) else item)
                    outgoing[to_id] = [type_id]
                    other = bucket_of.get(to_id)
                    if other is None:
                        other = bucket_of[to_id] = crc32(to_id.encode()) % BUCKETS
                    incoming = assoc.setdefault(f"{to_type}:{object_type}:{other}", {}).setdefault(to_id, {})
                    incoming[record_id] = [inverse]
        with self._lock:
            self.store.put_many(SYSTEM, object_type, live)
            self.store.put_many(SYSTEM, self.collection(object_type, True), archived)
            for prop, changes in unique_rows.items():
                self._index_update(object_type, prop, changes)
            self._associations_merge(assoc)
            self.raise_id_floor(r[0] for r in live + archived)
        return len(live) + len(archived)


# ----------------------------------------------------------------------------- request helpers
def numeric_id(object_id: str) -> int | str:
    """v4 association bodies carry object ids as JSON numbers."""
    return int(object_id) if object_id.isdigit() else object_id



def list_param(request: Request, name: str) -> list[str]:
    """A multi-valued query parameter, accepting both repeated and comma-separated forms."""
    out: list[str] = []
    for value in request.query_params.getlist(name):
        out += [v.strip() for v in value.split(",") if v.strip()]
    return out


def bool_param(request: Request, name: str) -> bool:
    """A `true`/`false` query parameter (false when absent)."""
    return request.query_params.get(name, "false").lower() == "true"


def int_param(request: Request, name: str, default: int, maximum: int) -> int:
    """An integer query parameter within 1..`maximum`, or a 400."""
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise bad_request(f"Invalid value for query parameter {name}: {raw!r} is not an integer.") from None
    if value < 1 or value > maximum:
        raise bad_request(f"limit must be between 1 and {maximum}, got {value}.")
    return value


async def json_body(request: Request) -> Any:
    """The request's JSON body, or HubSpot's 400 for empty or malformed JSON."""
    raw = await request.body()
    if not raw:
        raise bad_request("Invalid input JSON: the request body is empty.")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        pass  # json gives the line and column HubSpot names (and takes what orjson refuses, e.g. NaN)
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        raise bad_request(f"Invalid input JSON on line {exc.lineno}, column {exc.colno}: {exc.msg}") from None


def batch_inputs(body: Any) -> list[Any]:
    """The `inputs` list of a batch body, enforcing HubSpot's 100-input limit."""
    if not isinstance(body, dict) or not isinstance(body.get("inputs"), list):
        raise bad_request("Invalid input JSON: expected an object with an `inputs` array.")
    inputs = body["inputs"]
    if len(inputs) > BATCH_MAX:
        raise bad_request(f"The maximum number of inputs supported in a batch request is {BATCH_MAX}. "
                          "Please reduce the number of items and try again", context={"inputs": [str(len(inputs))]})
    return inputs


def batch_response(results: list[Any], errors: list[dict[str, Any]], started: str,
                   ok_status: int = 200) -> JSONResponse:
    """HubSpot's batch envelope; 207 with `errors`/`numErrors` when some inputs failed."""
    body: dict[str, Any] = {"status": "COMPLETE", "results": results, "startedAt": started,
                            "completedAt": iso_from_ms(now_ms())}
    if errors:
        body.update(numErrors=len(errors), errors=errors)
        return JSONResponse(body, status_code=207)
    return JSONResponse(body, status_code=ok_status)


def next_link(request: Request, after: str) -> dict[str, Any]:
    """`paging` with the next cursor and its absolute link, as list endpoints return it."""
    return {"next": {"after": after, "link": str(request.url.include_query_params(after=after))}}


def record_key(values: dict[str, Any]) -> str:
    """What an injected `reject` fault matches a new record on: its email, else domain, else name."""
    return str(values.get("email") or values.get("domain") or values.get("name") or "")


def rejection(path: str, faults: Any, key: str) -> dict[str, Any] | None:
    """The per-record error for a record an injected `reject` fault matches, else None."""
    if key and faults.rejects(path, key):
        return record_error("VALIDATION_ERROR", f"Property values were not valid: record {key!r} was rejected.",
                            {"id": [key]}, sub_category="INVALID_PROPERTY_VALUE")
    return None


# ----------------------------------------------------------------------------- search SQL
_OPERATORS = {"EQ": "=", "NEQ": "!=", "LT": "<", "LTE": "<=", "GT": ">", "GTE": ">="}


def filter_sql(crm: HubSpotCRM, object_type: str, flt: dict[str, Any]) -> tuple[str, list[Any]]:
    """One search filter as an SQL condition over the `objects` row of a record."""
    name = flt.get("propertyName")
    operator = str(flt.get("operator", "")).upper()
    defs = crm.definitions(object_type)
    if not isinstance(name, str) or (name not in defs and name not in CREATED_ALIASES | UPDATED_ALIASES):
        raise bad_request(f"There was a problem with the request: property {name!r} does not exist "
                          f"on {object_type}.", context={"propertyName": [str(name)]})
    if name in UPDATED_ALIASES:
        expr, kind, column = "json_extract(data, '$.updatedAt')", "datetime", "updated"
    elif name in CREATED_ALIASES:
        expr, kind, column = "json_extract(data, '$.createdAt')", "datetime", "created"
    elif name == "hs_object_id":
        expr, kind, column = "CAST(id AS INTEGER)", "number", None
    else:
        kind = defs[name]["type"]
        expr, column = f"json_extract(data, '$.properties.{name}')", None

    def convert(value: Any) -> Any:
        """A filter value in the stored form of the property."""
        if kind == "datetime":
            iso = canonical_iso(value)
            if iso is None:
                raise bad_request(f"{value!r} is not a valid date-time value for {name}.")
            return iso
        if kind == "date":
            ms = ms_from_value(value)
            if ms is None:
                raise bad_request(f"{value!r} is not a valid date value for {name}.")
            return iso_from_ms(ms)[:10]
        if kind == "number":
            try:
                return float(value)
            except (TypeError, ValueError):
                raise bad_request(f"{value!r} is not a valid number for {name}.") from None
        return str(value).lower()

    value_expr = f"CAST({expr} AS REAL)" if kind == "number" else (
        f"lower({expr})" if kind not in ("datetime", "date") else expr)
    if operator in _OPERATORS:
        if "value" not in flt:
            raise bad_request(f"Filter on {name} with operator {operator} needs a value.")
        value = convert(flt["value"])
        sql, params = f"{value_expr} {_OPERATORS[operator]} ?", [value]
        if column and operator in ("GT", "GTE", "EQ"):
            sql += f" AND {column} >= ?"  # narrows by the indexed epoch-seconds column
            params.append((ms_from_value(value) or 0) // 1000)
        elif column and operator in ("LT", "LTE"):
            sql += f" AND {column} <= ?"
            params.append((ms_from_value(value) or 0) // 1000 + 1)
        if operator == "NEQ":
            sql = f"({expr} IS NULL OR {sql})"
        return sql, params
    if operator == "BETWEEN":
        low, high = convert(flt.get("value")), convert(flt.get("highValue"))
        return f"{value_expr} BETWEEN ? AND ?", [low, high]
    if operator in ("IN", "NOT_IN"):
        values = flt.get("values")
        if not isinstance(values, list) or not values:
            raise bad_request(f"Filter on {name} with operator {operator} needs a non-empty `values` list.")
        marks = ",".join("?" * len(values))
        sql = f"{value_expr} {'NOT IN' if operator == 'NOT_IN' else 'IN'} ({marks})"
        if operator == "NOT_IN":
            sql = f"({expr} IS NULL OR {sql})"
        return sql, [convert(v) for v in values]
    if operator == "HAS_PROPERTY":
        return f"{expr} IS NOT NULL", []
    if operator == "NOT_HAS_PROPERTY":
        return f"{expr} IS NULL", []
    if operator in ("CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN"):
        token = str(flt.get("value", "")).lower().replace("%", r"\%").replace("_", r"\_").replace("*", "%")
        pattern = token if "%" in token else f"%{token}%"
        sql = f"lower({expr}) LIKE ? ESCAPE '\\'"
        if operator == "NOT_CONTAINS_TOKEN":
            sql = f"({expr} IS NULL OR NOT ({sql}))"
        return sql, [pattern]
    raise bad_request(f"Unknown filter operator {operator!r}.")


def search_sql(crm: HubSpotCRM, object_type: str, body: dict[str, Any]) -> tuple[str, list[Any], str]:
    """(where, params, order by) for a search request body."""
    # HubSpot's limits since August 2024: 5 filterGroups, 10 filters per group, 25 filters in all.
    groups = body.get("filterGroups") or []
    if not isinstance(groups, list) or not all(isinstance(g, dict) for g in groups):
        raise bad_request("Invalid input JSON: `filterGroups` must be a list of objects with `filters`.")
    if len(groups) > SEARCH_MAX_GROUPS:
        raise bad_request(f"A search accepts at most {SEARCH_MAX_GROUPS} filterGroups.")
    if sum(len(g.get("filters") or []) for g in groups) > SEARCH_MAX_FILTERS:
        raise bad_request(f"A search accepts at most {SEARCH_MAX_FILTERS} filters in total across its filterGroups.")
    clauses, params = [], []
    for group in groups:
        filters = group.get("filters") or []
        if len(filters) > SEARCH_MAX_GROUP_FILTERS:
            raise bad_request(f"A filterGroup accepts at most {SEARCH_MAX_GROUP_FILTERS} filters.")
        parts = []
        for flt in filters:
            sql, p = filter_sql(crm, object_type, flt)
            parts.append(f"({sql})")
            params += p
        if parts:
            clauses.append("(" + " AND ".join(parts) + ")")
    where = " OR ".join(clauses) if clauses else "1=1"
    query = body.get("query")
    if query:
        likes = [f"lower(json_extract(data, '$.properties.{p}')) LIKE ?" for p in SEARCH_QUERY_PROPERTIES[object_type]]
        where = f"({where}) AND ({' OR '.join(likes)})"
        params += [f"%{str(query).lower()}%"] * len(likes)
    order = "seq"
    sorts = body.get("sorts") or []
    if sorts:
        sort = sorts[0]
        if isinstance(sort, str):
            name, descending = sort.lstrip("-"), sort.startswith("-")
        else:
            name, descending = sort.get("propertyName"), str(sort.get("direction", "ASCENDING")).upper() == "DESCENDING"
        direction = "DESC" if descending else "ASC"
        if name in UPDATED_ALIASES:
            order = f"updated {direction}, json_extract(data, '$.updatedAt') {direction}, seq {direction}"
        elif name in CREATED_ALIASES:
            order = f"created {direction}, json_extract(data, '$.createdAt') {direction}, seq {direction}"
        elif name == "hs_object_id":
            order = f"CAST(id AS INTEGER) {direction}"
        elif isinstance(name, str) and name in crm.definitions(object_type) and _NAME_RE.match(name):
            expr = f"json_extract(data, '$.properties.{name}')"
            if crm.definitions(object_type)[name]["type"] == "number":
                expr = f"CAST({expr} AS REAL)"
            order = f"{expr} {direction}, seq {direction}"
        else:
            raise bad_request(f"Cannot sort by {name!r}: no such property on {object_type}.")
    return where, params, order


# ----------------------------------------------------------------------------- routes
class RollingWindow:
    """HubSpot's ten-secondly rolling limit: at most `limit` requests in any `seconds`-long window."""

    def __init__(self, limit: int, seconds: int):
        from limits import RateLimitItemPerSecond
        from limits.storage import MemoryStorage
        from limits.strategies import MovingWindowRateLimiter

        self.item = RateLimitItemPerSecond(limit, seconds)
        self._limiter = MovingWindowRateLimiter(MemoryStorage())
        self.refused = 0

    def try_acquire(self) -> float:
        """0.0 when a request may pass now, else the seconds until the window frees one."""
        if self._limiter.hit(self.item, "private-app"):
            return 0.0
        self.refused += 1
        reset_at, _ = self._limiter.get_window_stats(self.item, "private-app")
        return max(0.001, reset_at - time.time())


class WriteCounts:
    """Writes each record received (create, update, upsert), for tests that check nothing is sent twice."""

    def __init__(self, store: Store) -> None:
        self._lock = threading.Lock()
        self.store = store
        self.counts: dict[str, dict[str, int]] = {}

    def add(self, object_type: str, *record_ids: str) -> None:
        """Count one applied write per id (also in the Store, read by `GET /_admin/writes`)."""
        with self._lock:
            per_type = self.counts.setdefault(object_type, {})
            for record_id in record_ids:
                per_type[record_id] = per_type.get(record_id, 0) + 1
        if hasattr(self.store, "count_writes"):
            self.store.count_writes(SYSTEM, object_type, record_ids)


def build(ctx: SandboxContext) -> Emulation:
    """The HubSpot emulation for the sandbox app."""
    crm = HubSpotCRM(ctx)
    scaled = int(WINDOW_REQUESTS * ctx.rate_limit_scale)
    window = RollingWindow(max(1, scaled), WINDOW_SECONDS) if ctx.rate_limit_scale > 0 else None
    writes = WriteCounts(ctx.store)

    def endpoint(handler):
        """Checks the bearer token and turns ApiError into its response."""
        async def wrapped(request: Request) -> Response:
            """The handler behind the bearer-token check."""
            if bearer_token(request) != ctx.token:
                return hs_error(
                    401, "Authentication credentials not found. This API supports OAuth 2.0 authentication and "
                         "you can find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview",
                    "INVALID_AUTHENTICATION")
            crm.refresh_after_reset()
            if window is not None:
                wait = window.try_acquire()
                if wait > 0:
                    return rate_limited(wait)
            try:
                return await handler(request)
            except ApiError as exc:
                return exc.response
        return wrapped

    # ---------------------------------------------------------------- objects
    async def list_objects(request: Request) -> Response:
        """GET /crm/v3/objects/{type}: a page of records by insertion order."""
        object_type = canonical_type(request.path_params["object_type"])
        with_history = list_param(request, "propertiesWithHistory")
        limit = int_param(request, "limit", 10, LIST_WITH_HISTORY_MAX if with_history else LIST_MAX)
        after_raw = request.query_params.get("after") or "0"
        if not after_raw.isdigit():
            raise bad_request(f"Invalid value for query parameter after: {after_raw!r}.")
        archived = bool_param(request, "archived")
        rows = crm.page_records(object_type, archived, int(after_raw), limit + 1)
        props, assocs = list_param(request, "properties"), list_param(request, "associations")
        results = [crm.render(object_type, rec, props, with_history, assocs) for _, rec in rows[:limit]]
        body: dict[str, Any] = {"results": results}
        if len(rows) > limit:
            body["paging"] = next_link(request, str(rows[limit - 1][0]))
        return JSONResponse(body)

    async def create_object(request: Request) -> Response:
        """POST /crm/v3/objects/{type}: create one record (with optional associations)."""
        object_type = canonical_type(request.path_params["object_type"])
        body = await json_body(request)
        if not isinstance(body, dict):
            raise bad_request("Invalid input JSON: expected an object with `properties`.")
        values = crm.validate_properties(object_type, body.get("properties"))
        associations = parse_create_associations(object_type, body.get("associations"))
        refuse_if_rejected(request, record_key(values))
        with crm._lock:
            crm.check_unique(object_type, values, None)
            record = crm.create_record(object_type, values)
            writes.add(object_type, record["id"])
            for to_type, to_id, type_ids in associations:
                crm.add_association(object_type, record["id"], to_type, to_id, type_ids)
        return JSONResponse(crm.render(object_type, record, all_properties=True), status_code=201)

    def parse_create_associations(object_type: str, raw: Any) -> list[tuple[str, str, list[int]]]:
        """(to type, to id, typeIds) of a create input's `associations`, targets checked."""
        out = []
        for item in raw or []:
            to_id = str((item.get("to") or {}).get("id", ""))
            type_ids = [int(t.get("associationTypeId", 0)) for t in item.get("types") or []]
            if not type_ids or any(t not in ASSOCIATION_PAIRS or ASSOCIATION_PAIRS[t][0] != object_type
                                   for t in type_ids):
                raise bad_request(f"Invalid association types {type_ids} from {object_type}.")
            to_type = ASSOCIATION_PAIRS[type_ids[0]][1]
            if crm.get_record(to_type, to_id) is None:
                raise bad_request(f"The {OBJECT_TYPES[to_type][1]} {to_id} to associate with does not exist.",
                                  "VALIDATION_ERROR", context={"toObjectId": [to_id]})
            out.append((to_type, to_id, type_ids))
        return out

    def refuse_duplicate_ids(ids: list[str]) -> None:
        """HubSpot's 400 when a batch names one record twice."""
        repeated = sorted({i for i in ids if ids.count(i) > 1})
        if repeated:
            raise bad_request(f"Duplicate IDs found in batch input: {repeated}. IDs must be unique",
                              context={"ids": repeated})

    def refuse_if_rejected(request: Request, key: str) -> None:
        """A single-record write that an injected `reject` fault matches fails as a 400."""
        rejected = rejection(request.url.path, ctx.faults, key)
        if rejected:
            raise ApiError(hs_error(400, rejected["message"], "VALIDATION_ERROR", context=rejected["context"]))

    def lookup(object_type: str, object_id: str, id_property: str | None, archived: bool) -> dict[str, Any] | None:
        """A record by id or by a unique `idProperty`, live or archived."""
        if id_property and id_property != "hs_object_id":
            if id_property not in crm.unique_properties(object_type):
                raise bad_request(f"Property {id_property!r} is not a unique identifier property of {object_type}.")
            return None if archived else crm.find_by_unique(object_type, id_property, object_id)
        return crm.get_record(object_type, object_id, archived)

    def not_found(object_type: str, object_id: str) -> ApiError:
        """HubSpot's 404 for a missing record."""
        return ApiError(hs_error(404, "resource not found", "OBJECT_NOT_FOUND",
                                 context={"id": [object_id], "type": [OBJECT_TYPES[object_type][1].upper()]}))

    async def get_object(request: Request) -> Response:
        """GET /crm/v3/objects/{type}/{id}."""
        object_type = canonical_type(request.path_params["object_type"])
        object_id = request.path_params["object_id"]
        record = lookup(object_type, object_id, request.query_params.get("idProperty"), bool_param(request, "archived"))
        if record is None:
            raise not_found(object_type, object_id)
        return JSONResponse(crm.render(object_type, record, list_param(request, "properties"),
                                       list_param(request, "propertiesWithHistory"),
                                       list_param(request, "associations")))

    async def update_object(request: Request) -> Response:
        """PATCH /crm/v3/objects/{type}/{id}."""
        object_type = canonical_type(request.path_params["object_type"])
        object_id = request.path_params["object_id"]
        body = await json_body(request)
        values = crm.validate_properties(object_type, (body or {}).get("properties"))
        refuse_if_rejected(request, object_id)
        with crm._lock:
            record = lookup(object_type, object_id, request.query_params.get("idProperty"), False)
            if record is None:
                raise not_found(object_type, object_id)
            crm.check_unique(object_type, values, record["id"])
            writes.add(object_type, record["id"])
            record = crm.update_record(object_type, record, values)
        return JSONResponse(crm.render(object_type, record, all_properties=True))

    async def archive_object(request: Request) -> Response:
        """DELETE /crm/v3/objects/{type}/{id}: archive (204 even when absent, as HubSpot does)."""
        object_type = canonical_type(request.path_params["object_type"])
        crm.archive_record(object_type, request.path_params["object_id"])
        return Response(status_code=204)

    # ---------------------------------------------------------------- batch
    async def batch(request: Request) -> Response:
        """POST /crm/v3/objects/{type}/batch/{read|create|update|upsert|archive}."""
        object_type = canonical_type(request.path_params["object_type"])
        action = request.path_params["action"]
        body = await json_body(request)
        inputs = batch_inputs(body)
        started = iso_from_ms(now_ms())
        path = request.url.path
        singular = OBJECT_TYPES[object_type][1].upper()
        if action == "read":
            if body.get("propertiesWithHistory") and len(inputs) > BATCH_WITH_HISTORY_MAX:
                raise bad_request(f"The maximum number of inputs supported in a batch request for property "
                                  f"histories is {BATCH_WITH_HISTORY_MAX}. Please reduce the number of items and "
                                  "try again")
            id_property = body.get("idProperty")
            archived = bool_param(request, "archived")
            results, missing = [], []
            for item in inputs:
                object_id = str((item or {}).get("id", ""))
                record = lookup(object_type, object_id, id_property, archived)
                if record is None:
                    missing.append(object_id)
                else:
                    results.append(crm.render(object_type, record, body.get("properties") or None,
                                              body.get("propertiesWithHistory") or None))
            errors = []
            if missing:
                errors.append(record_error("OBJECT_NOT_FOUND", f"Could not get some {singular} objects, they may be "
                                           "deleted or not exist. Check that ids are valid.", {"ids": missing}))
            return batch_response(results, errors, started)
        if action == "archive":
            for item in inputs:
                crm.archive_record(object_type, str((item or {}).get("id", "")))
            return Response(status_code=204)
        if action == "create":
            checked = [(crm.validate_properties(object_type, (i or {}).get("properties")),
                        parse_create_associations(object_type, (i or {}).get("associations"))) for i in inputs]
            for prop in crm.unique_properties(object_type):
                seen = [crm._unique_key(v[prop]) for v, _ in checked if v.get(prop) is not None]
                repeated = sorted({v for v in seen if seen.count(v) > 1})
                if repeated:
                    raise bad_request(f"Duplicate values for {prop} found in batch input: {repeated}",
                                      context={prop: repeated})
            results, errors, written = [], [], []
            with crm._lock, ctx.store.transaction():  # one commit per batch
                # HubSpot refuses the whole batch when one record already exists (409, nothing created).
                for values, _ in checked:
                    crm.check_unique(object_type, values, None)
                for values, associations in checked:
                    rejected = rejection(path, ctx.faults, record_key(values))
                    if rejected:
                        errors.append(rejected)
                        continue
                    record = crm.create_record(object_type, values)
                    written.append(record["id"])
                    for to_type, to_id, type_ids in associations:
                        crm.add_association(object_type, record["id"], to_type, to_id, type_ids)
                    results.append(crm.render(object_type, record, all_properties=True))
                writes.add(object_type, *written)
            return batch_response(results, errors, started, ok_status=201)
        if action == "update":
            checked = [(str((i or {}).get("id", "")), (i or {}).get("idProperty"),
                        crm.validate_properties(object_type, (i or {}).get("properties"))) for i in inputs]
            refuse_duplicate_ids([object_id for object_id, _, _ in checked])
            results, errors, missing, written = [], [], [], []
            with crm._lock, ctx.store.transaction():  # one commit per batch
                for object_id, id_property, values in checked:
                    rejected = rejection(path, ctx.faults, object_id)
                    if rejected:
                        errors.append(rejected)
                        continue
                    record = lookup(object_type, object_id, id_property, False)
                    if record is None:
                        missing.append(object_id)
                        continue
                    try:
                        crm.check_unique(object_type, values, record["id"])
                    except ApiError as exc:
                        errors.append(record_error("CONFLICT", json.loads(exc.response.body)["message"],
                                                   {"id": [object_id]}))
                        continue
                    written.append(record["id"])
                    results.append(crm.render(object_type, crm.update_record(object_type, record, values),
                                              all_properties=True))
                writes.add(object_type, *written)
            if missing:
                errors.append(record_error("OBJECT_NOT_FOUND", f"Could not get some {singular} objects, they may "
                                           "be deleted or not exist. Check that ids are valid.", {"ids": missing}))
            return batch_response(results, errors, started)
        if action == "upsert":
            checked = []
            for item in inputs:
                item = item or {}
                id_property = item.get("idProperty") or "hs_object_id"
                if id_property != "hs_object_id" and id_property not in crm.unique_properties(object_type):
                    raise bad_request(f"idProperty {id_property!r} is not a unique identifier property of "
                                      f"{object_type}; upsert needs a property with unique values (e.g. email).")
                if "id" not in item:
                    raise bad_request("Each upsert input needs an `id` (the value of its idProperty).")
                checked.append((str(item["id"]), id_property,
                                crm.validate_properties(object_type, item.get("properties"))))
            refuse_duplicate_ids([crm._unique_key(object_id) for object_id, _, _ in checked])
            results, errors, written = [], [], []
            with crm._lock, ctx.store.transaction():  # one commit per batch
                for object_id, id_property, values in checked:
                    rejected = rejection(path, ctx.faults, object_id)
                    if rejected:
                        errors.append(rejected)
                        continue
                    record = crm.find_by_unique(object_type, id_property, object_id)
                    if record is None and id_property == "hs_object_id":
                        errors.append(record_error("OBJECT_NOT_FOUND", f"No {singular} with id {object_id} "
                                                   "exists to update.", {"ids": [object_id]}))
                        continue
                    try:
                        if record is None:
                            values = {**values, id_property: values.get(id_property) or object_id}
                        # the idProperty's value was just looked up above, unless the input changes it
                        same = crm._unique_key(values.get(id_property) or object_id) == crm._unique_key(object_id)
                        looked_up = id_property if same else None
                        if record is None:
                            crm.check_unique(object_type, values, None, looked_up)
                            record, new = crm.create_record(object_type, values), True
                        else:
                            crm.check_unique(object_type, values, record["id"], looked_up)
                            record, new = crm.update_record(object_type, record, values), False
                    except ApiError as exc:
                        errors.append(record_error("CONFLICT", json.loads(exc.response.body)["message"],
                                                   {"id": [object_id]}))
                        continue
                    written.append(record["id"])
                    results.append({**crm.render(object_type, record, all_properties=True), "new": new})
                writes.add(object_type, *written)
            return batch_response(results, errors, started)
        raise ApiError(hs_error(404, f"Unknown batch action {action!r}; one of read, create, update, upsert, archive.",
                                "OBJECT_NOT_FOUND"))

    # ---------------------------------------------------------------- search
    async def search(request: Request) -> Response:
        """POST /crm/v3/objects/{type}/search: filterGroups, sorts, query, offset paging, 10,000 cap."""
        object_type = canonical_type(request.path_params["object_type"])
        if crm.search_bucket is not None:
            wait = crm.search_bucket.try_acquire()
            if wait > 0:
                return rate_limited(wait, policy="SECONDLY")
        body = await json_body(request)
        if not isinstance(body, dict):
            raise bad_request("Invalid input JSON: expected a search request object.")
        limit = body.get("limit", 10)
        if not isinstance(limit, int) or limit < 1 or limit > SEARCH_MAX:
            raise bad_request(f"limit must be between 1 and {SEARCH_MAX}, got {limit!r}.")
        after_raw = str(body.get("after") or "0")
        if not after_raw.isdigit():
            raise bad_request(f"Invalid value for after: {after_raw!r}.")
        offset = int(after_raw)
        if offset >= SEARCH_CAP:
            raise bad_request(f"Search results are capped at {SEARCH_CAP} records and after={offset} is past "
                              "the cap; narrow the filters (for example on hs_lastmodifieddate) to page further.",
                              context={"after": [after_raw]})
        where, params, order = search_sql(crm, object_type, body)
        limit = min(limit, SEARCH_CAP - offset)
        base = "FROM objects WHERE system=? AND collection=? AND (" + where + ")"
        head = [SYSTEM, object_type, *params]
        total = crm.store.query("SELECT count(*) " + base, head)[0][0]
        rows = crm.store.query(f"SELECT data {base} ORDER BY {order} LIMIT ? OFFSET ?", head + [limit, offset])
        props = body.get("properties") or None
        results = [crm.render(object_type, json.loads(data), props) for (data,) in rows]
        out: dict[str, Any] = {"total": total, "results": results}
        if offset + len(rows) < min(total, SEARCH_CAP):
            out["paging"] = {"next": {"after": str(offset + len(rows))}}
        return JSONResponse(out)

    # ---------------------------------------------------------------- properties
    async def list_properties(request: Request) -> Response:
        """GET /crm/v3/properties/{type}."""
        object_type = canonical_type(request.path_params["object_type"])
        archived = bool_param(request, "archived")
        wanted = set(list_param(request, "properties"))
        results = [d for d in crm.all_definitions(object_type).values()
                   if d.get("archived", False) == archived and (not wanted or d["name"] in wanted)]
        return JSONResponse({"results": results})

    async def get_property(request: Request) -> Response:
        """GET /crm/v3/properties/{type}/{name}."""
        object_type = canonical_type(request.path_params["object_type"])
        name = request.path_params["name"]
        definition = crm.all_definitions(object_type).get(name)
        if definition is None or definition.get("archived", False) != bool_param(request, "archived"):
            raise ApiError(hs_error(404, f"Unable to find property {name!r} on {object_type}.",
                                    "OBJECT_NOT_FOUND", context={"propertyName": [name]}))
        return JSONResponse(definition)

    def options_from(raw: Any) -> list[dict[str, Any]]:
        """Enumeration options of a property create/update body."""
        options = []
        for i, option in enumerate(raw or []):
            if not isinstance(option, dict) or "value" not in option or "label" not in option:
                raise bad_request("Each option needs a `label` and a `value`.")
            options.append({"label": str(option["label"]), "value": str(option["value"]),
                            "displayOrder": option.get("displayOrder", i), "hidden": bool(option.get("hidden", False)),
                            **({"description": option["description"]} if option.get("description") else {})})
        return options

    async def create_property(request: Request) -> Response:
        """POST /crm/v3/properties/{type}: a custom property."""
        object_type = canonical_type(request.path_params["object_type"])
        body = await json_body(request)
        if not isinstance(body, dict):
            raise bad_request("Invalid input JSON: expected a property definition object.")
        missing = [f for f in ("name", "label", "type", "fieldType", "groupName") if not body.get(f)]
        if missing:
            raise bad_request(f"Missing required fields: {', '.join(missing)}.", context={"missingFields": missing})
        name, ptype, field_type = str(body["name"]), str(body["type"]), str(body["fieldType"])
        if not _NAME_RE.match(name):
            raise bad_request(f"Property name {name!r} is invalid: use lowercase letters, digits and underscores, "
                              "starting with a letter.")
        if ptype not in VALID_FIELD_TYPES:
            raise bad_request(f"Invalid property type {ptype!r}; one of {sorted(VALID_FIELD_TYPES)}.")
        if field_type not in VALID_FIELD_TYPES[ptype]:
            raise bad_request(f"fieldType {field_type!r} is not valid for type {ptype!r}; "
                              f"one of {sorted(VALID_FIELD_TYPES[ptype])}.")
        options = options_from(body.get("options"))
        if ptype == "enumeration" and not options and not body.get("externalOptions"):
            raise bad_request("An enumeration property needs at least one option.")
        with crm._lock:
            existing = crm.definitions(object_type).get(name)
            if existing is not None:
                raise ApiError(hs_error(409, f"Property named '{name}' already exists.", "OBJECT_ALREADY_EXISTS",
                                        context={"propertyName": [name]}))
            iso = iso_from_ms(now_ms())
            definition = build_definition(object_type, name, str(body["label"]), ptype, field_type,
                                          str(body["groupName"]), "custom", created_at=iso,
                                          order=int(body.get("displayOrder", -1)))
            if ptype == "bool":
                options = options or definition["options"]
            definition.update(options=options, description=str(body.get("description", "")),
                              hasUniqueValue=bool(body.get("hasUniqueValue", False)),
                              hidden=bool(body.get("hidden", False)), formField=bool(body.get("formField", False)),
                              externalOptions=bool(body.get("externalOptions", False)),
                              createdUserId="0", updatedUserId="0")
            crm.save_definition(object_type, definition)
        return JSONResponse(definition, status_code=201)

    async def update_property(request: Request) -> Response:
        """PATCH /crm/v3/properties/{type}/{name}."""
        object_type = canonical_type(request.path_params["object_type"])
        name = request.path_params["name"]
        body = await json_body(request)
        if not isinstance(body, dict):
            raise bad_request("Invalid input JSON: expected an object of property fields to change.")
        with crm._lock:
            definition = crm.definitions(object_type).get(name)
            if definition is None or definition.get("archived"):
                raise ApiError(hs_error(404, f"Unable to find property {name!r} on {object_type}.",
                                        "OBJECT_NOT_FOUND", context={"propertyName": [name]}))
            if definition["hubspotDefined"] and set(body) - {"label", "description", "groupName", "displayOrder",
                                                               "hidden", "formField", "options"}:
                raise bad_request(f"Property {name!r} is HubSpot-defined; only its label, description, group, "
                                  "order, visibility and options can change.")
            updated = dict(definition)
            for field in ("label", "description", "groupName", "displayOrder", "hidden", "formField", "fieldType"):
                if field in body:
                    updated[field] = body[field]
            if "options" in body:
                updated["options"] = options_from(body["options"])
            updated["updatedAt"] = iso_from_ms(now_ms())
            crm.save_definition(object_type, updated)
        return JSONResponse(updated)

    async def archive_property(request: Request) -> Response:
        """DELETE /crm/v3/properties/{type}/{name} (custom properties only)."""
        object_type = canonical_type(request.path_params["object_type"])
        name = request.path_params["name"]
        with crm._lock:
            definition = crm.definitions(object_type).get(name)
            if definition is None or definition.get("archived"):
                raise ApiError(hs_error(404, f"Unable to find property {name!r} on {object_type}.",
                                        "OBJECT_NOT_FOUND", context={"propertyName": [name]}))
            if definition["hubspotDefined"]:
                raise bad_request(f"Property {name!r} is HubSpot-defined and cannot be archived.")
            crm.save_definition(object_type, {**definition, "archived": True, "archivedAt": iso_from_ms(now_ms())})
        return Response(status_code=204)

    # ---------------------------------------------------------------- owners
    async def list_owners(request: Request) -> Response:
        """GET /crm/v3/owners: owners by insertion order, `email` and `archived` filters."""
        limit = int_param(request, "limit", 100, OWNERS_MAX)
        after_raw = request.query_params.get("after") or "0"
        if not after_raw.isdigit():
            raise bad_request(f"Invalid value for query parameter after: {after_raw!r}.")
        archived = bool_param(request, "archived")
        where, params = "json_extract(data, '$.archived') = ?", [1 if archived else 0]
        email = request.query_params.get("email")
        if email:
            where += " AND lower(json_extract(data, '$.email')) = ?"
            params.append(email.strip().lower())
        rows = crm.store.page(SYSTEM, "owners", after_seq=int(after_raw), limit=limit + 1, where=where, params=params)
        body: dict[str, Any] = {"results": [owner for _, owner in rows[:limit]]}
        if len(rows) > limit:
            body["paging"] = next_link(request, str(rows[limit - 1][0]))
        return JSONResponse(body)

    async def get_owner(request: Request) -> Response:
        """GET /crm/v3/owners/{id} (idProperty id or userId)."""
        owner_id = request.path_params["owner_id"]
        id_property = request.query_params.get("idProperty", "id")
        archived = bool_param(request, "archived")
        if id_property == "userId":
            rows = crm.store.page(SYSTEM, "owners", limit=1, where="CAST(json_extract(data, '$.userId') AS TEXT) = ?",
                                  params=[owner_id])
            owner = rows[0][1] if rows else None
        elif id_property == "id":
            owner = crm.store.get(SYSTEM, "owners", owner_id)
        else:
            raise bad_request(f"idProperty must be id or userId, not {id_property!r}.")
        if owner is None or bool(owner.get("archived")) != archived:
            raise ApiError(hs_error(404, f"No owner with {id_property} {owner_id}.", "OBJECT_NOT_FOUND",
                                    context={"id": [owner_id]}))
        return JSONResponse(owner)

    # ---------------------------------------------------------------- associations
    def require_record(object_type: str, object_id: str) -> None:
        """HubSpot's 400 when an association names a record that does not exist."""
        if crm.get_record(object_type, object_id) is None:
            raise bad_request(f"The {OBJECT_TYPES[object_type][1]} {object_id} does not exist.",
                              "VALIDATION_ERROR", context={"objectId": [object_id]})

    def pair_types(from_type: str, to_type: str) -> int:
        """The default association typeId between two object types, or a 400."""
        type_id = DEFAULT_ASSOCIATION.get((from_type, to_type))
        if type_id is None:
            raise bad_request(f"{from_type} cannot be associated with {to_type} in this portal.")
        return type_id

    def v4_types(types: list[dict]) -> list[dict[str, Any]]:
        """Association types in the v4 shape."""
        return [{"category": t["category"], "typeId": t["typeId"], "label": t.get("label")} for t in types]

    def v4_ids(type_id: int) -> tuple[str, str]:
        """(fromObjectTypeId, toObjectTypeId) of an association typeId."""
        a, b = ASSOCIATION_PAIRS[type_id]
        return OBJECT_TYPES[a][0], OBJECT_TYPES[b][0]

    async def v4_put_default(request: Request) -> Response:
        """PUT /crm/v4/objects/{from}/{id}/associations/default/{to}/{toId}."""
        p = request.path_params
        from_type, to_type = canonical_type(p["from_type"]), canonical_type(p["to_type"])
        type_id = pair_types(from_type, to_type)
        require_record(from_type, p["from_id"])
        require_record(to_type, p["to_id"])
        started = iso_from_ms(now_ms())
        crm.add_association(from_type, p["from_id"], to_type, p["to_id"], [type_id])
        result = {"from": {"id": p["from_id"]}, "to": {"id": p["to_id"]},
                  "associationSpec": {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": type_id}}
        return batch_response([result], [], started)

    def parse_specs(from_type: str, to_type: str, raw: Any) -> list[int]:
        """typeIds of a list of association specs, each checked against the object pair."""
        if not isinstance(raw, list) or not raw:
            raise bad_request("Expected a non-empty list of {associationCategory, associationTypeId}.")
        ids = []
        for spec in raw:
            type_id = int((spec or {}).get("associationTypeId", 0))
            if ASSOCIATION_PAIRS.get(type_id) != (from_type, to_type):
                raise bad_request(f"associationTypeId {type_id} does not associate {from_type} with {to_type}.",
                                  context={"associationTypeId": [str(type_id)]})
            ids.append(type_id)
        return ids

    async def v4_put_labeled(request: Request) -> Response:
        """PUT /crm/v4/objects/{from}/{id}/associations/{to}/{toId} with association specs."""
        p = request.path_params
        from_type, to_type = canonical_type(p["from_type"]), canonical_type(p["to_type"])
        type_ids = parse_specs(from_type, to_type, await json_body(request))
        require_record(from_type, p["from_id"])
        require_record(to_type, p["to_id"])
        crm.add_association(from_type, p["from_id"], to_type, p["to_id"], type_ids)
        from_type_id, to_type_id = v4_ids(type_ids[0])
        return JSONResponse({"fromObjectTypeId": from_type_id, "fromObjectId": numeric_id(p["from_id"]),
                             "toObjectTypeId": to_type_id, "toObjectId": numeric_id(p["to_id"]), "labels": []},
                            status_code=201)

    async def v4_delete(request: Request) -> Response:
        """DELETE /crm/v4/objects/{from}/{id}/associations/{to}/{toId}."""
        p = request.path_params
        crm.remove_association(canonical_type(p["from_type"]), p["from_id"], canonical_type(p["to_type"]), p["to_id"])
        return Response(status_code=204)

    async def v4_list(request: Request) -> Response:
        """GET /crm/v4/objects/{from}/{id}/associations/{to}."""
        p = request.path_params
        from_type, to_type = canonical_type(p["from_type"]), canonical_type(p["to_type"])
        limit = int_param(request, "limit", ASSOC_PAGE_MAX, ASSOC_PAGE_MAX)
        rows = crm.associations_of(from_type, p["from_id"], to_type, request.query_params.get("after"), limit + 1)
        body: dict[str, Any] = {"results": [{"toObjectId": numeric_id(to_id), "associationTypes": v4_types(types)}
                                            for to_id, types in rows[:limit]]}
        if len(rows) > limit:
            body["paging"] = next_link(request, rows[limit - 1][0])
        return JSONResponse(body)

    async def v4_batch(request: Request) -> Response:
        """POST /crm/v4/associations/{from}/{to}/batch/{read|create|archive|associate/default}."""
        p = request.path_params
        from_type, to_type = canonical_type(p["from_type"]), canonical_type(p["to_type"])
        action = p["action"]
        inputs = batch_inputs(await json_body(request))
        started = iso_from_ms(now_ms())
        results, errors = [], []
        if action == "read":
            for item in inputs:
                from_id = str((item or {}).get("id", ""))
                rows = crm.associations_of(from_type, from_id, to_type, (item or {}).get("after"), ASSOC_PAGE_MAX + 1)
                if not rows:
                    errors.append(record_error(
                        "OBJECT_NOT_FOUND", f"No {OBJECT_TYPES[to_type][1]} is associated with "
                        f"{OBJECT_TYPES[from_type][1]} {from_id}.", {"fromObjectId": [from_id]},
                        sub_category="crm.associations.NO_ASSOCIATIONS_FOUND"))
                    continue
                result: dict[str, Any] = {"from": {"id": from_id}, "to": [
                    {"toObjectId": numeric_id(to_id), "associationTypes": v4_types(types)}
                    for to_id, types in rows[:ASSOC_PAGE_MAX]]}
                if len(rows) > ASSOC_PAGE_MAX:
                    result["paging"] = {"next": {"after": rows[ASSOC_PAGE_MAX - 1][0]}}
                results.append(result)
            return batch_response(results, errors, started)
        if action == "archive":
            for item in inputs:
                from_id = str(((item or {}).get("from") or {}).get("id", ""))
                for to in (item or {}).get("to") or []:
                    crm.remove_association(from_type, from_id, to_type, str(to.get("id", "")))
            return Response(status_code=204)
        if action in ("create", "associate/default"):
            default_type = pair_types(from_type, to_type)
            for item in inputs:
                item = item or {}
                from_id = str((item.get("from") or {}).get("id", ""))
                to_id = str((item.get("to") or {}).get("id", ""))
                type_ids = parse_specs(from_type, to_type, item.get("types")) if action == "create" else [default_type]
                absent = [i for t, i in ((from_type, from_id), (to_type, to_id)) if crm.get_record(t, i) is None]
                if absent:
                    errors.append(record_error("VALIDATION_ERROR", f"Object ids {absent} do not exist.",
                                               {"ids": absent}))
                    continue
                crm.add_association(from_type, from_id, to_type, to_id, type_ids)
                if action == "create":
                    from_type_id, to_type_id = v4_ids(type_ids[0])
                    results.append({"fromObjectTypeId": from_type_id, "fromObjectId": numeric_id(from_id),
                                    "toObjectTypeId": to_type_id, "toObjectId": numeric_id(to_id), "labels": []})
                else:
                    results.append({"from": {"id": from_id}, "to": {"id": to_id}, "associationSpec": {
                        "associationCategory": "HUBSPOT_DEFINED", "associationTypeId": default_type}})
            return batch_response(results, errors, started, ok_status=201 if action == "create" else 200)
        raise ApiError(hs_error(404, f"Unknown association batch action {action!r}.", "OBJECT_NOT_FOUND"))

    async def v3_assoc_batch(request: Request) -> Response:
        """POST /crm/v3/associations/{from}/{to}/batch/{read|create|archive}."""
        p = request.path_params
        from_type, to_type = canonical_type(p["from_type"]), canonical_type(p["to_type"])
        action = p["action"]
        inputs = batch_inputs(await json_body(request))
        started = iso_from_ms(now_ms())
        results, errors = [], []
        if action == "read":
            missing = []
            for item in inputs:
                from_id = str((item or {}).get("id", ""))
                rows = crm.associations_of(from_type, from_id, to_type)
                if not rows:
                    missing.append(from_id)
                    continue
                results.append({"from": {"id": from_id}, "to": [
                    {"id": to_id, "type": association_type_name(t["typeId"])} for to_id, types in rows for t in types]})
            if missing:
                errors.append(record_error("OBJECT_NOT_FOUND", f"No {OBJECT_TYPES[to_type][1]} is associated with "
                                           f"{OBJECT_TYPES[from_type][1]} ids {missing}.", {"ids": missing}))
            return batch_response(results, errors, started)
        if action in ("create", "archive"):
            for item in inputs:
                item = item or {}
                from_id = str((item.get("from") or {}).get("id", ""))
                to_id = str((item.get("to") or {}).get("id", ""))
                type_name = item.get("type") or association_type_name(pair_types(from_type, to_type))
                type_id = ASSOCIATION_BY_NAME.get(type_name)
                if type_id is None or ASSOCIATION_PAIRS[type_id] != (from_type, to_type):
                    raise bad_request(f"Association type {type_name!r} does not associate {from_type} with {to_type}.")
                if action == "archive":
                    crm.remove_association(from_type, from_id, to_type, to_id)
                    continue
                absent = [i for t, i in ((from_type, from_id), (to_type, to_id)) if crm.get_record(t, i) is None]
                if absent:
                    errors.append(record_error("VALIDATION_ERROR", f"Object ids {absent} do not exist.",
                                               {"ids": absent}))
                    continue
                crm.add_association(from_type, from_id, to_type, to_id, [type_id])
                results.append({"from": {"id": from_id}, "to": {"id": to_id}, "type": type_name})
            if action == "archive":
                return Response(status_code=204)
            return batch_response(results, errors, started, ok_status=201)
        raise ApiError(hs_error(404, f"Unknown association batch action {action!r}.", "OBJECT_NOT_FOUND"))

    # ---------------------------------------------------------------- 429 / 5xx
    def rate_limited(retry_after: float, policy: str = "TEN_SECONDLY_ROLLING") -> Response:
        """HubSpot's 429: RATE_LIMIT body, rate-limit headers and Retry-After."""
        # HubSpot's usage guidelines tell clients to honour Retry-After on a 429, so it is sent (whole seconds).
        if policy == "SECONDLY":
            message, group, interval, limit = ("You have reached your secondly limit.",
                                               f"publicapi:search-api-calls-secondly:{PORTAL_ID}", 1000,
                                               int(SEARCH_RATE_PER_SECOND))
        else:
            message, group, interval, limit = ("You have reached your ten_secondly_rolling limit.",
                                               f"publicapi:private-app-api-calls-ten-secondly:{PORTAL_ID}",
                                               10000, int(BURST))
        headers = {"Retry-After": str(max(1, math.ceil(retry_after))),
                   "X-HubSpot-RateLimit-Interval-Milliseconds": str(interval),
                   "X-HubSpot-RateLimit-Max": str(limit), "X-HubSpot-RateLimit-Remaining": "0"}
        return JSONResponse({"status": "error", "message": message, "errorType": "RATE_LIMIT",
                             "correlationId": _correlation_id(), "policyName": policy, "groupName": group},
                            status_code=429, headers=headers)

    def server_error(status: int) -> Response:
        """HubSpot's 5xx error body."""
        messages = {500: "internal error", 502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout"}
        return JSONResponse({"status": "error", "message": messages.get(status, "internal error"),
                             "correlationId": _correlation_id(), "category": "INTERNAL_ERROR"}, status_code=status)

    async def write_counts(request: Request) -> Response:
        """GET /_sandbox/writes/{type} (sandbox only): writes per record id and the window's 429s."""
        object_type = canonical_type(request.path_params["object_type"])
        return JSONResponse({"writes": dict(writes.counts.get(object_type, {})),
                             "rate_limited": window.refused if window is not None else 0})

    routes = [
        Route("/_sandbox/writes/{object_type}", write_counts, methods=["GET"]),
        Route("/crm/v3/objects/{object_type}", endpoint(list_objects), methods=["GET"]),
        Route("/crm/v3/objects/{object_type}", endpoint(create_object), methods=["POST"]),
        Route("/crm/v3/objects/{object_type}/search", endpoint(search), methods=["POST"]),
        Route("/crm/v3/objects/{object_type}/batch/{action}", endpoint(batch), methods=["POST"]),
        Route("/crm/v3/objects/{object_type}/{object_id}", endpoint(get_object), methods=["GET"]),
        Route("/crm/v3/objects/{object_type}/{object_id}", endpoint(update_object), methods=["PATCH"]),
        Route("/crm/v3/objects/{object_type}/{object_id}", endpoint(archive_object), methods=["DELETE"]),
        Route("/crm/v3/properties/{object_type}", endpoint(list_properties), methods=["GET"]),
        Route("/crm/v3/properties/{object_type}", endpoint(create_property), methods=["POST"]),
        Route("/crm/v3/properties/{object_type}/{name}", endpoint(get_property), methods=["GET"]),
        Route("/crm/v3/properties/{object_type}/{name}", endpoint(update_property), methods=["PATCH"]),
        Route("/crm/v3/properties/{object_type}/{name}", endpoint(archive_property), methods=["DELETE"]),
        Route("/crm/v3/owners", endpoint(list_owners), methods=["GET"]),
        Route("/crm/v3/owners/", endpoint(list_owners), methods=["GET"]),
        Route("/crm/v3/owners/{owner_id}", endpoint(get_owner), methods=["GET"]),
        Route("/crm/v4/objects/{from_type}/{from_id}/associations/default/{to_type}/{to_id}",
              endpoint(v4_put_default), methods=["PUT"]),
        Route("/crm/v4/objects/{from_type}/{from_id}/associations/{to_type}/{to_id}",
              endpoint(v4_put_labeled), methods=["PUT"]),
        Route("/crm/v4/objects/{from_type}/{from_id}/associations/{to_type}/{to_id}",
              endpoint(v4_delete), methods=["DELETE"]),
        Route("/crm/v4/objects/{from_type}/{from_id}/associations/{to_type}", endpoint(v4_list), methods=["GET"]),
        Route("/crm/v4/associations/{from_type}/{to_type}/batch/{action:path}", endpoint(v4_batch), methods=["POST"]),
        Route("/crm/v3/associations/{from_type}/{to_type}/batch/{action}", endpoint(v3_assoc_batch), methods=["POST"]),
    ]
    return Emulation(prefix="/hubspot", routes=routes, rate_limit_response=rate_limited,
                     error_response=server_error, rate=None, burst=None, seed=crm.seed)
