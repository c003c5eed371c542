"""HubSpot CRM (v3 objects, v4 associations) as a dlt source: contacts, companies, deals (with deal
stage history), calls, owners, and the contact-company, deal-contact and call-contact associations.

Every property of an object type is requested, custom ones included: the property names are listed
through the properties API when the run starts, so a property added in HubSpot becomes a new
column on the next run with no manual step (dlt evolves the table). The incremental cursor is
`modified_at` (the later of `updatedAt` and `archivedAt`), kept by `dlt.sources.incremental`: rows
at or before the last loaded cursor are dropped, so a rerun adds nothing, and the cursor only moves
when a load commits.

Reading only what changed: the first run (and a full reload, which drops the tables and cursors)
pages every object through the list endpoint, live and archived. Later runs ask the CRM search
endpoint for the objects whose last-modified property (`lastmodifieddate` for contacts,
`hs_lastmodifieddate` for the others) is at or after the cursor, sorted ascending, and read the
archived listing (search never returns archived objects). The changed objects' associations are
read again; the others keep theirs.

CRM objects reach dlt as Arrow tables (one text column per property), a batch of pages at a time,
so large portals load at close to the API's paging speed; deals go through dlt's normalizer so
their stage history becomes the child table `deals__properties_with_history__dealstage`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from itertools import chain
from typing import Any

import dlt
import pyarrow as pa
import pyarrow.compute as pc
from dlt.common import jsonpath
from dlt.sources.helpers.rest_client.auth import BearerTokenAuth
from dlt.sources.helpers.rest_client.paginators import JSONResponseCursorPaginator

from growth_stack_dagster.ingest.sources.http import batched_pages, rest_client
from growth_stack_dagster.ingest.sources.relational import random_ids

CRM_OBJECTS = ("contacts", "companies", "deals", "calls")
RESULTS = jsonpath.compile_path("results")  # compiled once: dlt would parse a string selector on every page
# HubSpot caps list pages at 100 objects, and at 50 when property history is requested.
MAX_PAGE_SIZE = 100
MAX_PAGE_SIZE_WITH_HISTORY = 50
# (table, from object type, to object type) of the v4 association reads.
ASSOCIATIONS = (
    ("contact_company_associations", "contacts", "companies"),
    ("deal_contact_associations", "deals", "contacts"),
    ("call_contact_associations", "calls", "contacts"),
)
ID_COLUMNS = {"contacts": "contact_id", "companies": "company_id", "deals": "deal_id", "calls": "call_id"}
# objects per batch read (HubSpot's CRM batch limit is 100 inputs per request, 50 with property history)
BATCH_INPUTS = 100
BATCH_INPUTS_WITH_HISTORY = 50
# HubSpot's last-modified property of each object type: contacts keep the older name.
LAST_MODIFIED = {"contacts": "lastmodifieddate", "companies": "hs_lastmodifieddate",
                 "deals": "hs_lastmodifieddate", "calls": "hs_lastmodifieddate"}
SEARCH_PAGE_SIZE = 200  # the search endpoints' largest page


def parse_hubspot_time(value: str | None) -> datetime | None:
    """HubSpot's ISO-8601 timestamps (`2024-01-01T00:00:00.000Z`, with or without millis) as UTC datetimes."""
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(timezone.utc)


TIMESTAMP = pa.timestamp("us", tz="UTC")


def _timestamps(values: list[str | None]) -> pa.Array:
    return pc.cast(pa.array(values, pa.string()), TIMESTAMP)


def _text_struct(props: list[dict[str, Any]], names: list[str]) -> pa.StructArray:
    """The property values as a struct of text fields, converted by Arrow (values the API sent
    as something other than strings are turned into strings first)."""
    struct = pa.struct([(name, pa.string()) for name in names])
    try:
        return pa.array(props, type=struct)
    except (pa.ArrowTypeError, pa.ArrowInvalid):
        return pa.array([{n: v if v is None or isinstance(v, str) else str(v) for n, v in p.items()} for p in props],
                        type=struct)


def objects_table(objects: list[dict[str, Any]], names: list[str]) -> pa.Table:
    """A page of CRM objects as one Arrow table, in the same columns dlt's normalizer would give
    the rows: `id`, `created_at`, `updated_at`, `archived`, `archived_at`, `modified_at` (the cursor:
    the later of updated and archived) and one text column `properties__<name>` per requested
    property (the API sends every value as a string; a property empty on every object still gets
    its column), and a fresh `_dlt_id` per row; dlt adds `_dlt_load_id` (see `defaults.py`)."""
    updated = _timestamps([o.get("updatedAt") for o in objects])
    archived_at = _timestamps([o.get("archivedAt") for o in objects])
    columns: dict[str, pa.Array] = {
        "id": pa.array([str(o["id"]) for o in objects], pa.string()),
        "created_at": _timestamps([o.get("createdAt") for o in objects]),
        "updated_at": updated,
        "archived": pa.array([bool(o.get("archived")) for o in objects], pa.bool_()),
        "archived_at": archived_at,
        # (compared as integers: Arrow has no element-wise max kernel for zoned timestamps)
        "modified_at": pc.max_element_wise(updated.cast(pa.int64()), archived_at.cast(pa.int64()),
                                           skip_nulls=True).cast(TIMESTAMP),
    }
    props = _text_struct([o.get("properties") or {} for o in objects], names)
    for name, values in zip(names, props.flatten()):
        columns[f"properties__{name}"] = values
    columns["_dlt_id"] = random_ids(len(objects))
    # the primary key is declared non-null, as dlt declares it
    schema = pa.schema([pa.field(n, c.type, nullable=n not in ("id", "_dlt_id")) for n, c in columns.items()])
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


def object_row(obj: dict[str, Any]) -> dict[str, Any]:
    """A CRM object (or owner) as a row for dlt's normalizer (used for deals, whose property history
    becomes the child table `deals__properties_with_history__<property>`): the API's shape,
    `archived` always present, plus `modified_at`."""
    row = dict(obj)
    row["archived"] = bool(obj.get("archived"))
    row["modified_at"] = max(filter(None, (parse_hubspot_time(obj.get("updatedAt")),
                                          parse_hubspot_time(obj.get("archivedAt")))), default=None)
    return row


def property_columns(names: list[str]) -> dict[str, dict[str, Any]]:
    """Text column hints for every property (`properties__<name>`), so that dlt's normalizer gives
    a property empty on every object its column too, typed as the API sends values."""
    return {f"properties__{name}": {"data_type": "text", "nullable": True} for name in names}


def live_ids(page: pa.Table | list[dict[str, Any]]) -> list[str]:
    """Ids of the objects of a page (Arrow table or rows) that are not archived."""
    if isinstance(page, pa.Table):
        return page.filter(pc.invert(page.column("archived"))).column("id").to_pylist()
    return [o["id"] for o in page if not o.get("archived")]


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


def epoch_ms(value: datetime) -> int:
    """A datetime as HubSpot's epoch milliseconds (search filter values)."""
    return int(round(value.timestamp() * 1000))


def modified_ms(obj: dict[str, Any], prop: str) -> int:
    """Epoch milliseconds of a search result's last-modified property (else its `updatedAt`)."""
    stamp = parse_hubspot_time((obj.get("properties") or {}).get(prop) or obj.get("updatedAt"))
    if stamp is None:
        raise ValueError(f"HubSpot search result {obj.get('id')!r} has no {prop} nor updatedAt; "
                         "it cannot be placed in the modified-since order.")
    return epoch_ms(stamp)


def _search_body(prop: str, filters: list[dict[str, Any]], sort: str, properties: list[str]) -> dict[str, Any]:
    return {"filterGroups": [{"filters": filters}], "sorts": [{"propertyName": sort, "direction": "ASCENDING"}],
            "properties": properties, "limit": SEARCH_PAGE_SIZE}


def search_modified_between(search: Callable[[dict[str, Any]], dict[str, Any]], object_type: str,
                            since_ms: int, until_ms: int, properties: list[str]) -> Iterator[list[dict[str, Any]]]:
    """Pages of the live objects of `object_type` whose last-modified time is in [since_ms, until_ms],
    each object once, in ascending modified order. `search(body)` posts one search request and
    returns its parsed response.

    Every request is a new window that starts at the last timestamp seen, so no query ever nears the
    search's 10,000-result cap, and an object modified while the run reads moves ahead of the window
    instead of shifting the offsets of the objects not read yet (offset paging with `after` would skip
    one of them). Objects already returned at the window's first instant are skipped, so ties at the
    edge are neither lost nor returned twice; an instant holding more objects than a page is read
    whole, ordered by id, before the window moves past it.
    """
    prop = LAST_MODIFIED[object_type]
    lower, edge_ids = since_ms, set()  # ids already returned whose timestamp is `lower`
    upper = {"propertyName": prop, "operator": "LTE", "value": str(until_ms)}
    while lower <= until_ms:
        page = search(_search_body(prop, [{"propertyName": prop, "operator": "GTE", "value": str(lower)}, upper],
                                   prop, properties))
        results = page.get("results") or []
        stamps = [modified_ms(o, prop) for o in results]
        fresh = [o for o, t in zip(results, stamps) if not (t == lower and o["id"] in edge_ids)]
        if fresh:
            yield fresh
        if not (page.get("paging") or {}).get("next") or not results:
            return
        last = stamps[-1]
        if last < lower:  # the window would move back and read forever
            raise ValueError(f"HubSpot's {object_type} search returned objects modified before the window it was "
                             f"asked for ({prop} >= {lower}); check that {prop} is the object's last-modified property.")
        at_last = {o["id"] for o, t in zip(results, stamps) if t == last}
        if last == lower:  # a whole page at one instant and more may follow: read that instant by id
            yield from _search_instant(search, prop, lower, edge_ids | at_last, properties)
            lower, edge_ids = lower + 1, set()
        else:
            lower, edge_ids = last, at_last


def _search_instant(search: Callable[[dict[str, Any]], dict[str, Any]], prop: str, instant: int,
                    seen: set[str], properties: list[str]) -> Iterator[list[dict[str, Any]]]:
    """Every object modified exactly at `instant` not in `seen`, by ascending id (keyset on id)."""
    after_id = 0
    while True:
        filters = [{"propertyName": prop, "operator": "EQ", "value": str(instant)},
                   {"propertyName": "hs_object_id", "operator": "GT", "value": str(after_id)}]
        page = search(_search_body(prop, filters, "hs_object_id", properties))
        results = page.get("results") or []
        fresh = [o for o in results if o["id"] not in seen]
        if fresh:
            yield fresh
        if not (page.get("paging") or {}).get("next") or not results:
            return
        after_id = int(results[-1]["id"])


def read_with_history(client, object_type: str, ids: list[str], properties: list[str],
                      history: tuple[str, ...]) -> Iterator[list[dict[str, Any]]]:
    """The objects `ids` with the history of `history` properties (search cannot return it), in
    batch reads of 50; an id archived since it was found is left to the archived listing."""
    for start in range(0, len(ids), BATCH_INPUTS_WITH_HISTORY):
        inputs = [{"id": i} for i in ids[start:start + BATCH_INPUTS_WITH_HISTORY]]
        response = client.post(f"/crm/v3/objects/{object_type}/batch/read",
                               json={"inputs": inputs, "properties": properties,
                                     "propertiesWithHistory": list(history)})
        response.raise_for_status()
        body = response.json()
        unexpected = [e for e in body.get("errors", []) if e.get("category") != "OBJECT_NOT_FOUND"]
        if unexpected:
            raise ValueError(f"HubSpot batch read of {object_type} failed: "
                             f"{unexpected[0].get('category')}: {unexpected[0].get('message')}")
        yield body.get("results") or []


def _searcher(client, object_type: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    def search(body: dict[str, Any]) -> dict[str, Any]:
        response = client.post(f"/crm/v3/objects/{object_type}/search", json=body)
        response.raise_for_status()
        return response.json()
    return search


def _until_ms(settle_seconds: float) -> int:
    return epoch_ms(datetime.now(timezone.utc)) - int(settle_seconds * 1000)


def _after_paginator() -> JSONResponseCursorPaginator:
    return JSONResponseCursorPaginator(cursor_path="paging.next.after", cursor_param="after")


def property_names(client, object_type: str) -> list[str]:
    """Names of every property of `object_type` (built-in and custom), from the properties API."""
    response = client.get(f"/crm/v3/properties/{object_type}")
    response.raise_for_status()
    return sorted(p["name"] for p in response.json().get("results", []))


def _crm_object_resource(client, object_type: str, page_size: int, include_archived: bool, batch_rows: int,
                         settle_seconds: float):
    history = ("dealstage",) if object_type == "deals" else ()
    requested: list[str] = []  # the property names this run asks for, set before the first batch

    # parallelized: the next pages are fetched while dlt converts and writes the current batch
    @dlt.resource(name=object_type, primary_key="id", write_disposition="merge", parallelized=True)
    def crm_objects(
        modified_at=dlt.sources.incremental("modified_at", initial_value=None),
    ) -> Iterator[tuple[list[dict[str, Any]]]]:
        requested[:] = property_names(client, object_type)
        if history:
            dlt.current.resource().apply_hints(columns={"archived": {"data_type": "bool"},
                                                        "modified_at": {"data_type": "timestamp"},
                                                        **property_columns(requested)})
        # Nothing modified after `until` is loaded, so the cursor never passes it: a change made while
        # this run reads (or not yet in the search index, see settle_seconds) is read by the next run.
        until = _until_ms(settle_seconds)
        since = modified_at.start_value
        if since is None:  # first run or full reload: list everything
            pages = _listed_pages(object_type, archived=False, page_size=page_size, history=history)
        else:
            pages = search_modified_between(_searcher(client, object_type), object_type,
                                            epoch_ms(since), until,
                                            [LAST_MODIFIED[object_type]] if history else requested)
            if history:
                pages = (page for found in pages
                         for page in read_with_history(client, object_type, [o["id"] for o in found],
                                                       requested, history))
        if include_archived:
            pages = chain(pages, _listed_pages(object_type, archived=True, page_size=page_size, history=history))
        until_iso = _iso_ms(until)
        pages = ([o for o in page if _modified_not_after(o, until, until_iso)] for page in pages)
        # a tuple, not a list: dlt's map steps take a list apart, the conversion wants the batch
        yield from ((batch,) for batch in batched_pages(pages, batch_rows))

    def _listed_pages(object_type: str, archived: bool, page_size: int, history: tuple[str, ...]):
        params: dict[str, Any] = {
            "limit": min(page_size, MAX_PAGE_SIZE_WITH_HISTORY if history else MAX_PAGE_SIZE),
            "properties": ",".join(requested), "archived": str(archived).lower(),
        }
        if history:
            params["propertiesWithHistory"] = ",".join(history)
        return client.paginate(f"/crm/v3/objects/{object_type}", params=params,
                               paginator=_after_paginator(), data_selector=RESULTS)

    def to_items(batch: tuple[list[dict[str, Any]]]) -> pa.Table | list[dict[str, Any]]:
        # Deals go through dlt's normalizer, which makes their stage history a child table.
        return [object_row(o) for o in batch[0]] if history else objects_table(batch[0], requested)

    # converted in dlt's main thread, ahead of the incremental cursor, while the next pages download
    return crm_objects.add_map(to_items, insert_at=1)


def _iso_ms(ms: int) -> str:
    """Epoch milliseconds in HubSpot's timestamp form, `2026-01-01T00:00:00.000Z`."""
    return datetime.fromtimestamp(ms // 1000, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def _modified_not_after(obj: dict[str, Any], until_ms: int, until_iso: str) -> bool:
    """True when the object's `modified_at` is at or before `until`: HubSpot's own fixed-width UTC
    timestamps compare as text (the hot path of a full listing), anything else is parsed."""
    updated, archived = obj.get("updatedAt"), obj.get("archivedAt")
    if archived is None and type(updated) is str and len(updated) == 24 and updated[-1] == "Z":
        return updated <= until_iso
    return _modified_ms_of(obj) <= until_ms


def _modified_ms_of(obj: dict[str, Any]) -> int:
    """Epoch milliseconds of an object's `modified_at` (the later of updatedAt and archivedAt)."""
    stamps = [parse_hubspot_time(obj.get("updatedAt")), parse_hubspot_time(obj.get("archivedAt"))]
    return max((epoch_ms(t) for t in stamps if t is not None), default=0)


REMOVED_FLAG = "association_removed"


def removal_markers(ids: list[str], from_key: str, to_key: str) -> list[dict[str, Any]]:
    """One row per object whose associations are all gone (archived, or none left): dlt's hard
    delete removes every stored row of that object (same merge key) and stores the marker nowhere."""
    return [{from_key: i, to_key: "", "type_id": 0, REMOVED_FLAG: True} for i in ids]


def _all_ids(page: pa.Table | list[dict[str, Any]]) -> list[str]:
    return page.column("id").to_pylist() if isinstance(page, pa.Table) else [o["id"] for o in page]


def _association_transformer(client, table: str, from_type: str, to_type: str):
    from_key, to_key = ID_COLUMNS[from_type], ID_COLUMNS[to_type]

    # merge_key: the associations of a re-read object replace its previous ones.
    @dlt.transformer(name=table, primary_key=(from_key, to_key, "type_id"), merge_key=from_key,
                     write_disposition="merge",
                     columns={"label": {"data_type": "text"},
                              REMOVED_FLAG: {"data_type": "bool", "nullable": True, "hard_delete": True}})
    def associations(objects: pa.Table | list[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
        live = live_ids(objects)
        # HubSpot drops an archived object's associations: so does the warehouse
        live_set = set(live)
        removed = [i for i in _all_ids(objects) if i not in live_set]
        pending = [{"id": i} for i in live]
        while pending:
            inputs, pending = pending[:BATCH_INPUTS], pending[BATCH_INPUTS:]
            body = read_associations(client, from_type, to_type, inputs)
            results = body.get("results", [])
            yield [row for result in results for row in association_rows(result, from_key, to_key)]
            found = {str(r["from"]["id"]) for r in results}
            removed += [i["id"] for i in inputs if "after" not in i and i["id"] not in found]
            # an object with more associations than one page holds is read again from its `after`
            pending += [{"id": r["from"]["id"], "after": r["paging"]["next"]["after"]}
                        for r in results if (r.get("paging") or {}).get("next")]
        if removed:
            yield removal_markers(removed, from_key, to_key)

    return associations


@dlt.source(name="hubspot", section="hubspot", max_table_nesting=2)
def hubspot_source(base_url: str = dlt.config.value, api_key: str = dlt.secrets.value,
                   page_size: int = 100, include_archived: bool = True, batch_rows: int = 5000,
                   search_settle_seconds: float = 0) -> Any:
    """HubSpot CRM from `base_url` (https://api.hubapi.com in production) with a private-app token.

    Tables: contacts, companies, deals (+ `deals__properties_with_history__dealstage`), calls, owners,
    contact_company_associations, deal_contact_associations, call_contact_associations.
    `search_settle_seconds`: changes younger than this are left to the next run, for a search index
    that trails writes (HubSpot's may by a few seconds; `SOURCES__HUBSPOT__SEARCH_SETTLE_SECONDS`).
    """
    client = rest_client(base_url, BearerTokenAuth(api_key))
    objects = {t: _crm_object_resource(client, t, page_size, include_archived, batch_rows, search_settle_seconds)
               for t in CRM_OBJECTS}

    @dlt.resource(name="owners", primary_key="id", write_disposition="merge",
                  columns={"archived": {"data_type": "bool"}, "modified_at": {"data_type": "timestamp"}})
    def owners(
        modified_at=dlt.sources.incremental("modified_at", initial_value=None),
    ) -> Iterator[list[dict[str, Any]]]:
        """CRM owners (sales reps), live and archived, with `modified_at` as for CRM objects."""
        for archived in (False, True) if include_archived else (False,):
            params = {"limit": min(page_size, 500), "archived": str(archived).lower()}
            for page in client.paginate("/crm/v3/owners", params=params, paginator=_after_paginator(),
                                        data_selector=RESULTS):
                yield [object_row(o) for o in page]

    associations = [objects[from_type] | _association_transformer(client, table, from_type, to_type)
                    for table, from_type, to_type in ASSOCIATIONS]
    return [*objects.values(), owners, *associations]
