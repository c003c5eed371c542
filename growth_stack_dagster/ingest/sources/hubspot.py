"""HubSpot CRM (v3 objects, v4 associations) as a dlt source: contacts, companies, deals (with deal
stage history), calls, owners, and the contact-company and deal-contact associations.

Every property of an object type is requested, custom ones included: the property names are listed
through the properties API when the run starts, so a property added in HubSpot becomes a new
column on the next run with no manual step (dlt evolves the table). Objects are listed live and
archived (`archived=true`); archived ones keep their row with `archived = true`. The incremental
cursor is `modified_at` (the later of `updatedAt` and `archivedAt`): rows at or before the last
loaded cursor are dropped, so a rerun adds nothing, and the cursor only moves when a load commits.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

import dlt
import pyarrow as pa
from dlt.common import jsonpath
import pyarrow.compute as pc
from dlt.sources.helpers.rest_client.auth import BearerTokenAuth
from dlt.sources.helpers.rest_client.paginators import JSONResponseCursorPaginator

from growth_stack_dagster.ingest.sources.arrow import explode
from growth_stack_dagster.ingest.sources.http import batched_pages, rest_client

CRM_OBJECTS = ("contacts", "companies", "deals", "calls")
RESULTS = jsonpath.compile_path("results")  # compiled once: dlt would parse a string selector on every page
# HubSpot caps list pages at 100 objects, and at 50 when property history is requested.
MAX_PAGE_SIZE = 100
MAX_PAGE_SIZE_WITH_HISTORY = 50
# (table, from object type, to object type) of the v4 association reads.
ASSOCIATIONS = (
    ("contact_company_associations", "contacts", "companies"),
    ("deal_contact_associations", "deals", "contacts"),
)
ID_COLUMNS = {"contacts": "contact_id", "companies": "company_id", "deals": "deal_id"}


def parse_hubspot_time(value: str | None) -> datetime | None:
    """HubSpot's ISO-8601 timestamps (`2024-01-01T00:00:00.000Z`, with or without millis) as UTC datetimes."""
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(timezone.utc)


TIMESTAMP = pa.timestamp("us", tz="UTC")
HISTORY_TYPE = pa.list_(pa.struct([("value", pa.string()), ("timestamp", pa.string()), ("sourceType", pa.string()),
                                   ("sourceId", pa.string()), ("updatedByUserId", pa.int64())]))


def objects_table(objects: list[dict[str, Any]], names: list[str], history: tuple[str, ...] = ()) -> pa.Table:
    """A page of CRM objects as one Arrow table: `id`, `created_at`, `updated_at`, `archived`,
    `archived_at`, `modified_at` (the cursor: the later of updated and archived) and one text column
    `properties__<name>` per property (the API sends every value as a string), plus, per property
    with history, `properties_with_history__<name>` (a JSON list of value changes)."""
    for obj in objects:  # a property that appeared after the property list was read still loads
        for name in obj.get("properties") or {}:
            if name not in names:
                names = [*names, name]
    updated = [parse_hubspot_time(o.get("updatedAt")) for o in objects]
    archived_at = [parse_hubspot_time(o.get("archivedAt")) for o in objects]
    columns: dict[str, pa.Array] = {
        "id": pa.array([str(o["id"]) for o in objects], pa.string()),
        "created_at": pa.array([parse_hubspot_time(o.get("createdAt")) for o in objects], TIMESTAMP),
        "updated_at": pa.array(updated, TIMESTAMP),
        "archived": pa.array([bool(o.get("archived")) for o in objects], pa.bool_()),
        "archived_at": pa.array(archived_at, TIMESTAMP),
        "modified_at": pa.array([max(filter(None, (u, a)), default=None) for u, a in zip(updated, archived_at)], TIMESTAMP),
    }
    props = [o.get("properties") or {} for o in objects]
    for name in names:
        values = [p.get(name) for p in props]
        columns[f"properties__{name}"] = pa.array([v if v is None or isinstance(v, str) else str(v) for v in values],
                                                  pa.string())
    for name in history:
        columns[f"properties_with_history__{name}"] = pa.array(
            [(o.get("propertiesWithHistory") or {}).get(name) for o in objects], HISTORY_TYPE)
    # the primary key is declared non-null, as dlt declares it
    schema = pa.schema([pa.field(n, c.type, nullable=n != "id") for n, c in columns.items()])
    return pa.Table.from_arrays(list(columns.values()), schema=schema)


def association_rows(result: dict[str, Any], from_key: str, to_key: str) -> list[dict[str, Any]]:
    """Rows of one v4 batch-read result: one per (from, to, association type)."""
    from_id = str(result["from"]["id"])
    rows = []
    for target in result.get("to") or []:
        for kind in target.get("associationTypes") or [{}]:
            rows.append({
                from_key: from_id, to_key: str(target["toObjectId"]),
                "type_id": kind.get("typeId"), "category": kind.get("category"), "label": kind.get("label"),
            })
    return rows


def live_ids(page: pa.Table) -> list[str]:
    """Ids of the objects of a page that are not archived."""
    return page.filter(pc.invert(page.column("archived"))).column("id").to_pylist()


def read_associations(client, from_type: str, to_type: str, inputs: list[dict[str, Any]]) -> dict[str, Any]:
    """One v4 batch read. Objects without associations come back as OBJECT_NOT_FOUND errors
    (HTTP 207), which is normal; any other per-object error fails the load with its message."""
    response = client.post(f"/crm/v4/associations/{from_type}/{to_type}/batch/read", json={"inputs": inputs})
    response.raise_for_status()
    body = response.json()
    unexpected = [e for e in body.get("errors", []) if e.get("category") != "OBJECT_NOT_FOUND"]
    if unexpected:
        raise ValueError(f"HubSpot association read {from_type}->{to_type} failed: "
                         f"{unexpected[0].get('category')}: {unexpected[0].get('message')}")
    return body


def _after_paginator() -> JSONResponseCursorPaginator:
    return JSONResponseCursorPaginator(cursor_path="paging.next.after", cursor_param="after")


def property_names(client, object_type: str) -> list[str]:
    """Names of every property of `object_type` (built-in and custom), from the properties API."""
    response = client.get(f"/crm/v3/properties/{object_type}")
    response.raise_for_status()
    return sorted(p["name"] for p in response.json().get("results", []))


def _crm_object_resource(client, object_type: str, page_size: int, include_archived: bool, batch_rows: int):
    history = ("dealstage",) if object_type == "deals" else ()

    # parallelized: the next pages are fetched while dlt writes the current batch
    @dlt.resource(name=object_type, primary_key="id", write_disposition="merge", parallelized=True)
    def crm_objects(
        modified_at=dlt.sources.incremental("modified_at", initial_value=None),
    ) -> Iterator[pa.Table]:
        names = property_names(client, object_type)
        params: dict[str, Any] = {
            "limit": min(page_size, MAX_PAGE_SIZE_WITH_HISTORY if history else MAX_PAGE_SIZE),
            "properties": ",".join(names),
        }
        if history:
            params["propertiesWithHistory"] = ",".join(history)
        for archived in (False, True) if include_archived else (False,):
            pages = client.paginate(f"/crm/v3/objects/{object_type}", params={**params, "archived": str(archived).lower()},
                                    paginator=_after_paginator(), data_selector=RESULTS)
            for objects in batched_pages(pages, batch_rows):
                yield objects_table(objects, names, history)

    return crm_objects


def _association_transformer(client, table: str, from_type: str, to_type: str):
    from_key, to_key = ID_COLUMNS[from_type], ID_COLUMNS[to_type]

    # merge_key: the associations of a re-read object replace its previous ones.
    @dlt.transformer(name=table, primary_key=(from_key, to_key, "type_id"), merge_key=from_key,
                     write_disposition="merge", columns={"label": {"data_type": "text"}})
    def associations(objects: pa.Table) -> Iterator[list[dict[str, Any]]]:
        pending = [{"id": i} for i in live_ids(objects)]
        while pending:
            body = read_associations(client, from_type, to_type, pending)
            yield [row for result in body.get("results", []) for row in association_rows(result, from_key, to_key)]
            # an object with more associations than one page holds is read again from its `after`
            pending = [{"id": r["from"]["id"], "after": r["paging"]["next"]["after"]}
                       for r in body.get("results", []) if (r.get("paging") or {}).get("next")]

    return associations


@dlt.source(name="hubspot", section="hubspot", max_table_nesting=2)
def hubspot_source(base_url: str = dlt.config.value, api_key: str = dlt.secrets.value,
                   page_size: int = 100, include_archived: bool = True, batch_rows: int = 5000) -> Any:
    """HubSpot CRM from `base_url` (https://api.hubapi.com in production) with a private-app token.

    Tables: contacts, companies, deals, deal_stage_history, calls, owners,
    contact_company_associations, deal_contact_associations.
    """
    client = rest_client(base_url, BearerTokenAuth(api_key))
    objects = {t: _crm_object_resource(client, t, page_size, include_archived, batch_rows) for t in CRM_OBJECTS}

    @dlt.resource(name="owners", primary_key="id", write_disposition="merge",
                  columns={"archived": {"data_type": "bool"}, "modified_at": {"data_type": "timestamp"}})
    def owners(modified_at=dlt.sources.incremental("modified_at", initial_value=None)) -> Iterator[list[dict[str, Any]]]:
        """CRM owners (sales reps), live and archived, with `modified_at` as for CRM objects."""
        for archived in (False, True) if include_archived else (False,):
            for page in client.paginate("/crm/v3/owners", params={"limit": min(page_size, 500), "archived": str(archived).lower()},
                                        paginator=_after_paginator(), data_selector=RESULTS):
                yield [{**o, "archived": bool(o.get("archived")),
                        "modified_at": max(filter(None, (parse_hubspot_time(o.get("updatedAt")),
                                                         parse_hubspot_time(o.get("archivedAt")))), default=None)}
                       for o in page]

    @dlt.transformer(name="deal_stage_history", primary_key=("deal_id", "timestamp", "value"), merge_key="deal_id",
                     write_disposition="merge")
    def deal_stage_history(deals: pa.Table) -> Iterator[pa.Table]:
        """Every deal stage a loaded deal went through, with when and how (the history HubSpot keeps)."""
        changes = explode(deals, "properties_with_history__dealstage", "id", "deal_id")
        if changes is not None:
            at = pc.cast(pc.replace_substring_regex(changes.column("timestamp"), "Z$", "+00:00"), TIMESTAMP)
            yield changes.set_column(changes.schema.get_field_index("timestamp"), "timestamp", at).rename_columns(
                {"sourceType": "source_type", "sourceId": "source_id", "updatedByUserId": "updated_by_user_id"})

    associations = [objects[from_type] | _association_transformer(client, table, from_type, to_type)
                    for table, from_type, to_type in ASSOCIATIONS]
    return [*objects.values(), owners, objects["deals"] | deal_stage_history, *associations]
