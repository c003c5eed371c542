"""Stripe (API v1) as a dlt source: customers, products, prices, coupons, invoices with their line
items and discounts, and charges.

How it stays incremental: the first run lists every object; later runs list only objects created
since the last listing (`created[gt]`) and read `/v1/events` since the last run for the objects
that changed or were deleted since (each event carries the object's full snapshot). A `*.deleted`
event keeps the object with `deleted = true` instead of silently keeping it live. The cursors
live in dlt resource state, committed with the load, so a failed or killed run resumes from the
last complete load. Rows merge on `id`; within one load the newest snapshot wins (`_snapshot_at`).

Invoices are the high-volume table: they go to dlt as Arrow tables (see `arrow.py`), with their
line items in `invoices__lines` and discount amounts in `invoices__total_discount_amounts`, keyed
by `invoice_id` (a reloaded invoice replaces its lines). `discounts` stays a JSON list of ids.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from typing import Any

import dlt
import pyarrow as pa
from dlt.common import jsonpath
from dlt.sources.helpers.rest_client.auth import BearerTokenAuth

from growth_stack_dagster.ingest.sources.arrow import to_table
from growth_stack_dagster.ingest.sources.http import StripeListPaginator, batched_pages, rest_client

log = logging.getLogger(__name__)

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
SNAPSHOT_COLUMNS = {"_snapshot_at": {"data_type": "bigint", "dedup_sort": "desc"}, "deleted": {"data_type": "bool"}}
# (child table, list field, primary key) of an invoice
INVOICE_CHILDREN = (
    ("invoices__lines", "lines", ("invoice_id", "id")),
    ("invoices__total_discount_amounts", "total_discount_amounts", ("invoice_id", "discount")),
)
DATA = jsonpath.compile_path("data")  # compiled once: dlt would parse a string selector on every page


def as_row(obj: dict[str, Any], snapshot_at: int, deleted: bool) -> dict[str, Any]:
    """A Stripe object as a warehouse row: the object plus its `deleted` flag and snapshot time."""
    row = dict(obj)
    row["deleted"] = bool(deleted or obj.get("deleted"))
    row["_snapshot_at"] = snapshot_at
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


def split_invoices(rows: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Invoice rows (with `lines` already a list of every line item) split into the invoice table
    and its child tables, each child row carrying `invoice_id`."""
    out: dict[str, list[dict[str, Any]]] = {"invoices": []}
    for table, _, _ in INVOICE_CHILDREN:
        out[table] = []
    for row in rows:
        invoice = dict(row)
        for table, field, _ in INVOICE_CHILDREN:
            items = invoice.pop(field, None) or []
            out[table].extend({**(i if isinstance(i, dict) else {"value": i}), "invoice_id": row["id"]} for i in items)
        out["invoices"].append(invoice)
    return out


def as_arrow_or_rows(rows: list[dict[str, Any]]) -> pa.Table | list[dict[str, Any]]:
    """The rows as one Arrow table, or unchanged (for dlt's normalizer, which makes variant columns)
    when a field holds values of different types."""
    try:
        return to_table(rows)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as exc:
        log.info("rows with mixed value types go through dlt's normalizer: %s", exc)
        return rows


def invoice_items(rows: list[dict[str, Any]]) -> Iterator[Any]:
    """dlt items for a batch of invoice rows: the invoices, then each child table (with its hints)."""
    tables = split_invoices(rows)
    yield as_arrow_or_rows(tables["invoices"])
    for table, _, key in INVOICE_CHILDREN:
        if tables[table]:
            hints = dlt.mark.make_hints(table_name=table, primary_key=list(key), merge_key="invoice_id",
                                        write_disposition="merge")
            yield dlt.mark.with_hints(as_arrow_or_rows(tables[table]), hints, create_table_variant=True)


def _list(client, path: str, page_size: int, created_gt: int | None) -> Iterator[list[dict[str, Any]]]:
    params: dict[str, Any] = {"limit": page_size}
    # Strictly after: an object created in the last listed second after that listing is an event.
    if created_gt is not None:
        params["created[gt]"] = created_gt
    yield from client.paginate(path, params=params, paginator=StripeListPaginator(), data_selector=DATA)


def _changed_objects(client, event_types: tuple[str, ...], page_size: int,
                     created_gte: int) -> Iterator[list[tuple[dict[str, Any], int, bool]]]:
    """Pages of (object snapshot, event time, deleted?) for the events of `event_types` since `created_gte`."""
    params: dict[str, Any] = {"limit": page_size, "created[gte]": created_gte, "types[]": list(event_types)}
    for page in client.paginate("/v1/events", params=params, paginator=StripeListPaginator(), data_selector=DATA):
        yield [(e["data"]["object"], int(e["created"]), e["type"].endswith(".deleted"))
               for e in page if (e.get("data") or {}).get("object", {}).get("id")]


def _stripe_resource(name: str, client, page_size: int, batch_rows: int):
    path, event_types = STRIPE_OBJECTS[name]
    columns = {**SNAPSHOT_COLUMNS, "discounts": {"data_type": "json"}} if name == "invoices" else SNAPSHOT_COLUMNS

    def items(rows: list[dict[str, Any]]) -> Iterator[Any]:
        if name != "invoices":
            yield rows
            return
        for row in rows:
            if isinstance(row.get("lines"), dict):
                row["lines"] = invoice_lines(client, row, page_size)
        yield from invoice_items(rows)

    # parallelized: the next pages are fetched while dlt writes the current batch
    @dlt.resource(name=name, primary_key="id", write_disposition="merge", columns=columns, parallelized=True)
    def objects() -> Iterator[Any]:
        state = dlt.current.resource_state()
        # Events are read from just before the listing starts, so a change made while listing is not missed.
        run_started = int(time.time()) - 1
        listed_through = state.get("listed_through")
        newest_created = listed_through or 0
        for batch in batched_pages(_list(client, path, page_size, listed_through), batch_rows):
            newest_created = max([newest_created, *(int(o.get("created") or 0) for o in batch)])
            yield from items([as_row(o, run_started, False) for o in batch])
        events_through = state.get("events_through")
        if events_through is not None:
            for batch in batched_pages(_changed_objects(client, event_types, page_size, events_through), batch_rows):
                yield from items([as_row(obj, at, deleted) for obj, at, deleted in batch])
        state["listed_through"] = newest_created
        state["events_through"] = run_started

    return objects


@dlt.source(name="stripe", section="stripe", max_table_nesting=2)
def stripe_source(base_url: str = dlt.config.value, api_key: str = dlt.secrets.value,
                  page_size: int = 100, batch_rows: int = 5000) -> Any:
    """Stripe objects from `base_url` (https://api.stripe.com in production) with a secret key.

    Tables: customers, products, prices, coupons, invoices (+ `invoices__lines`,
    `invoices__total_discount_amounts`), charges.
    """
    client = rest_client(base_url, BearerTokenAuth(api_key))
    return [_stripe_resource(name, client, page_size, batch_rows) for name in STRIPE_OBJECTS]
