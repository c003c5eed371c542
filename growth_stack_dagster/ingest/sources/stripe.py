"""Stripe (API v1) as a dlt source: customers, products, prices, coupons, invoices with their line
items and discounts, and charges.

How it stays incremental: the first run lists every object; later runs list only objects created
since the last listing (`created[gt]`) and read `/v1/events` since the last run for the objects
that changed or were deleted since (each event carries the object's full snapshot). A `*.deleted`
event keeps the object with `deleted = true` instead of silently keeping it live. The cursors
live in dlt resource state, committed with the load, so a failed or killed run resumes from the
last complete load. Rows merge on `id`; each object has one row per load (its newest snapshot).

An invoice's `lines` list object becomes the list of all its line items. Objects reach dlt as
Arrow tables in dlt's relational layout (`relational.py`): nested dicts flattened to `a__b`
columns, each list a child table (`invoices__lines`, `invoices__discounts`, ... joined on
`_dlt_parent_id` = the parent's `_dlt_id`), so large accounts load at close to the API's paging
speed. Child tables are tables of their own, carrying their object's key (`invoice_id`,
`customer_id`, ...) and merged on it: a reloaded object's child rows replace all its earlier ones.
Pages are fetched while dlt converts and writes the previous batch.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

import dlt
import pyarrow as pa
from dlt.common import jsonpath
from dlt.sources.helpers.rest_client.auth import BearerTokenAuth

from growth_stack_dagster.ingest.sources.http import StripeListPaginator, batched_pages, rest_client
from growth_stack_dagster.ingest.sources.relational import arrow_relational_tables, fit_to_columns, random_ids


class _JsonAsArrowText(logging.Filter):
    """Drops dlt's warning that an Arrow column's type differs from its hint, for this source's tables.
    Here that is by design: a nested value kept whole travels in Arrow as JSON text (Arrow has no JSON
    type) under a `json` hint, which DuckDB stores as JSON. dlt logs the columns at INFO level."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not ("when merging arrow schema with dlt schema" in message
                    and any(message.startswith(f"In resource: {name},") for name in STRIPE_OBJECTS))


logging.getLogger("dlt").addFilter(_JsonAsArrowText())

# Stripe object lists and the event types that carry changes to them.
STRIPE_OBJECTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "customers": ("/v1/customers", ("customer.created", "customer.updated", "customer.deleted")),
    "products": ("/v1/products", ("product.created", "product.updated", "product.deleted")),
    "prices": ("/v1/prices", ("price.created", "price.updated", "price.deleted")),
    "coupons": ("/v1/coupons", ("coupon.created", "coupon.updated", "coupon.deleted")),
    "invoices": ("/v1/invoices", (
        "invoice.created", "invoice.updated", "invoice.deleted", "invoice.finalized", "invoice.paid",
        "invoice.payment_failed", "invoice.voided", "invoice.marked_uncollectible",
    )),
    "charges": ("/v1/charges", (
        "charge.succeeded", "charge.failed", "charge.updated", "charge.refunded", "charge.captured",
    )),
}
# the column of each object's key in its child tables (they are merged on it)
ROOT_KEY_COLUMNS = {"customers": "customer_id", "products": "product_id", "prices": "price_id",
                    "coupons": "coupon_id", "invoices": "invoice_id", "charges": "charge_id"}
SNAPSHOT_COLUMNS = {"_snapshot_at": {"data_type": "bigint", "dedup_sort": "desc"}, "deleted": {"data_type": "bool"}}
# A row in a child table that only says "the rows of this object were replaced": it deletes the
# object's previous child rows (a changed invoice may have lost its discounts) and is never stored.
REPLACED = "_replaced"
MAX_NESTING = 2
DATA = jsonpath.compile_path("data")  # compiled once: dlt would parse a string selector on every page


def as_row(obj: dict[str, Any], snapshot_at: int, deleted: bool,
           lines: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """A Stripe object as a warehouse row: the object plus its `deleted` flag and snapshot time;
    for an invoice, `lines` (all its line items) replaces the embedded list object."""
    # (the snapshot columns first, where their hints put them in the table: dlt then writes each
    # Arrow batch as it is, without reordering it)
    row = {"_snapshot_at": snapshot_at, "deleted": bool(deleted or obj.get("deleted"))}
    row.update(obj)
    row["deleted"] = bool(deleted or obj.get("deleted"))
    if lines is not None:
        row["lines"] = lines
    return row


def invoice_lines(client, invoice: dict[str, Any], page_size: int) -> list[dict[str, Any]]:
    """Every line item of an invoice: the embedded page, then the rest through
    `/v1/invoices/<id>/lines` when the embedded list says `has_more`."""
    embedded = invoice.get("lines") or {}
    items = list(embedded.get("data") or [])
    if embedded.get("has_more") and items:
        path = embedded.get("url") or f"/v1/invoices/{invoice['id']}/lines"
        for page in client.paginate(path, params={"limit": page_size, "starting_after": items[-1]["id"]},
                                    paginator=StripeListPaginator(), data_selector=DATA):
            items.extend(page)
    return items


def child_table_hints(table: str, key_column: str, json_columns: set[str]) -> Any:
    """Hints of a child table (e.g. `invoices__lines`): merged on its object's key, so a reloaded
    object's rows replace all its previous ones; `REPLACED` rows delete and are not stored."""
    return dlt.mark.make_hints(
        table_name=table, write_disposition="merge", primary_key=[], merge_key=key_column,
        columns={REPLACED: {"data_type": "bool", "hard_delete": True},
                 **{c: {"data_type": "json"} for c in sorted(json_columns)}},
    )


def arrow_items(name: str, rows: list[dict[str, Any]], known_children: list[str], replacing: bool,
                columns_of: Callable[[str], dict[str, Any]] = lambda table: {}) -> Iterator[Any]:
    """A batch of object rows as Arrow tables for dlt: the root table `name`, then each child table.
    When `replacing` (the objects may have been loaded before), every known child table also gets a
    `REPLACED` row per object, so the object's old child rows go even when it now has none.
    Child tables seen for the first time are appended to `known_children`; `columns_of(table)` gives
    the columns a table already has, which the batch is fitted to (see `fit_to_columns`)."""
    key_column = ROOT_KEY_COLUMNS[name]
    tables, json_columns = arrow_relational_tables(rows, name, ("id", key_column), MAX_NESTING)
    root_hints = dlt.mark.make_hints(table_name=name, columns=SNAPSHOT_COLUMNS)
    yield dlt.mark.with_hints(fit_to_columns(tables.pop(name), columns_of(name)), root_hints, create_table_variant=True)
    children = set(tables) | (set(known_children) if replacing else set())
    known_children.extend(sorted(set(tables) - set(known_children)))
    for table in sorted(children):
        parts = [tables[table]] if table in tables else []
        if replacing:
            parts.append(pa.table({key_column: pa.array([row["id"] for row in rows], pa.string()),
                                   REPLACED: pa.array([True] * len(rows), pa.bool_()),
                                   "_dlt_id": random_ids(len(rows))}))
        items = pa.concat_tables(parts, promote_options="default")
        if REPLACED not in items.column_names:
            items = items.append_column(REPLACED, pa.nulls(len(items), pa.bool_()))
        hinted = [REPLACED, *sorted(json_columns.get(table, set()))]
        # hinted columns first, where the hints put them in the table: dlt then writes the batch as it is
        items = items.select([*hinted, *(c for c in items.column_names if c not in hinted)])
        items = fit_to_columns(items, columns_of(table))
        yield dlt.mark.with_hints(items, child_table_hints(table, key_column, set(hinted[1:])), create_table_variant=True)


def _list(client, path: str, page_size: int, created_gt: int | None) -> Iterator[list[dict[str, Any]]]:
    params: dict[str, Any] = {"limit": page_size}
    # Strictly after: an object created in the last listed second after that listing is an event.
    if created_gt is not None:
        params["created[gt]"] = created_gt
    yield from client.paginate(path, params=params, paginator=StripeListPaginator(), data_selector=DATA)


def _changed_objects(client, event_types: tuple[str, ...], page_size: int,
                     created_gte: int) -> dict[str, tuple[dict[str, Any], int, bool]]:
    """{object id: (newest object snapshot, its event time, deleted?)} from the events of
    `event_types` since `created_gte`."""
    params: dict[str, Any] = {"limit": page_size, "created[gte]": created_gte, "types[]": list(event_types)}
    newest: dict[str, tuple[dict[str, Any], int, bool]] = {}
    for page in client.paginate("/v1/events", params=params, paginator=StripeListPaginator(), data_selector=DATA):
        for event in page:
            obj = (event.get("data") or {}).get("object") or {}
            at = int(event["created"])
            if obj.get("id") and (obj["id"] not in newest or at > newest[obj["id"]][1]):
                newest[obj["id"]] = (obj, at, event["type"].endswith(".deleted"))
    return newest


def _stripe_resource(name: str, client, page_size: int, batch_rows: int):
    path, event_types = STRIPE_OBJECTS[name]

    def row(obj: dict[str, Any], at: int, deleted: bool) -> dict[str, Any]:
        embedded = name == "invoices" and isinstance(obj.get("lines"), dict)
        lines = invoice_lines(client, obj, page_size) if embedded else None
        return as_row(obj, at, deleted, lines)

    known_children: list[list[str]] = []  # the state's list of child tables, shared with `to_arrow`

    # parallelized: the next pages are fetched while dlt converts and writes the current batch.
    @dlt.resource(name=name, primary_key="id", write_disposition="merge", parallelized=True)
    def objects() -> Iterator[Any]:
        state = dlt.current.resource_state()
        known_children[:] = [state.setdefault("child_tables", [])]
        # Events are read from just before this run starts, so a change made while listing is not missed.
        run_started = int(time.time()) - 1
        listed_through = state.get("listed_through")
        events_through = state.get("events_through")
        # Changes first, newest snapshot per object; a listed object drops its events (the listing
        # is newer), so each object has one row per load and its child rows are its own.
        changed = {} if events_through is None else _changed_objects(client, event_types, page_size, events_through)
        newest_created = listed_through or 0
        for batch in batched_pages(_list(client, path, page_size, listed_through), batch_rows):
            newest_created = max([newest_created, *(int(o.get("created") or 0) for o in batch)])
            # Listed objects are new since the last listing, with no earlier child rows, unless a
            # load that was never committed listed them already (then they have events too).
            reloaded = [changed.pop(obj["id"], None) is not None for obj in batch]
            # (a tuple, not a list: dlt's map steps take a list apart, the conversion wants the batch)
            yield ([row(o, run_started, False) for o in batch], any(reloaded))
        snapshots = list(changed.values())
        for start in range(0, len(snapshots), batch_rows):
            yield ([row(obj, at, deleted) for obj, at, deleted in snapshots[start:start + batch_rows]], True)
        state["listed_through"] = newest_created
        state["events_through"] = run_started

    def to_arrow(batch: tuple[list[dict[str, Any]], bool]) -> Iterator[Any]:
        rows, replacing = batch
        tables = dlt.current.source_schema().tables
        yield from arrow_items(name, rows, known_children[0], replacing,
                               lambda table: (tables.get(table) or {}).get("columns") or {})

    # Column hints go with each table's items (`arrow_items`): child tables would inherit the
    # resource's. Converted in dlt's main thread while the next pages download.
    return objects.add_yield_map(to_arrow, insert_at=1)


@dlt.source(name="stripe", section="stripe", max_table_nesting=2)
def stripe_source(base_url: str = dlt.config.value, api_key: str = dlt.secrets.value,
                  page_size: int = 100, batch_rows: int = 2000) -> Any:
    """Stripe objects from `base_url` (https://api.stripe.com in production) with a secret key.

    `batch_rows` objects are converted and written at a time (2,000 invoices: ~10,000 line rows).
    Tables: customers, products, prices, coupons, invoices (+ child tables `invoices__lines`,
    `invoices__lines__discount_amounts`, `invoices__discounts`, `invoices__total_discount_amounts`), charges.
    """
    client = rest_client(base_url, BearerTokenAuth(api_key))
    return [_stripe_resource(name, client, page_size, batch_rows) for name in STRIPE_OBJECTS]
