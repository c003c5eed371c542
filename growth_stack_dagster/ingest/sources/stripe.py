"""Stripe (API v1) as a dlt source: customers, products, prices, coupons, invoices with their line
items and discounts, and charges.

How it stays incremental: the first run lists every object; later runs list only objects created
since the last listing (`created[gt]`) and read `/v1/events` since the last run for the objects
that changed or were deleted since (each event carries the object's full snapshot). A `*.deleted`
event keeps the object with `deleted = true` instead of silently keeping it live. The cursors
live in dlt resource state, committed with the load, so a failed or killed run resumes from the
last complete load. Rows merge on `id`; within one load the newest snapshot wins (`_snapshot_at`).

An invoice's `lines` list object becomes the list of all its line items (each with `invoice_id`),
so dlt loads them, like `discounts` and `total_discount_amounts`, as child tables of the invoice
(`invoices__lines`, ... joined on `_dlt_parent_id` = `invoices._dlt_id`), merged with it.
Pages are handed to dlt in batches, fetched while dlt writes the previous batch.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import dlt
from dlt.common import jsonpath
from dlt.sources.helpers.rest_client.auth import BearerTokenAuth

from growth_stack_dagster.ingest.sources.http import StripeListPaginator, batched_pages, rest_client

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
DATA = jsonpath.compile_path("data")  # compiled once: dlt would parse a string selector on every page


def as_row(obj: dict[str, Any], snapshot_at: int, deleted: bool,
           lines: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """A Stripe object as a warehouse row: the object plus its `deleted` flag and snapshot time;
    for an invoice, `lines` (all its line items) replaces the embedded list object, each line
    carrying `invoice_id`."""
    row = dict(obj)
    row["deleted"] = bool(deleted or obj.get("deleted"))
    row["_snapshot_at"] = snapshot_at
    if lines is not None:
        row["lines"] = [{**item, "invoice_id": obj["id"]} for item in lines]
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
               for e in page if ((e.get("data") or {}).get("object") or {}).get("id")]


def _stripe_resource(name: str, client, page_size: int, batch_rows: int):
    path, event_types = STRIPE_OBJECTS[name]

    def row(obj: dict[str, Any], at: int, deleted: bool) -> dict[str, Any]:
        embedded = name == "invoices" and isinstance(obj.get("lines"), dict)
        lines = invoice_lines(client, obj, page_size) if embedded else None
        return as_row(obj, at, deleted, lines)

    # parallelized: the next pages are fetched while dlt writes the current batch
    @dlt.resource(name=name, primary_key="id", write_disposition="merge", columns=SNAPSHOT_COLUMNS, parallelized=True)
    def objects() -> Iterator[Any]:
        state = dlt.current.resource_state()
        # Events are read from just before the listing starts, so a change made while listing is not missed.
        run_started = int(time.time()) - 1
        listed_through = state.get("listed_through")
        newest_created = listed_through or 0
        for batch in batched_pages(_list(client, path, page_size, listed_through), batch_rows):
            newest_created = max([newest_created, *(int(o.get("created") or 0) for o in batch)])
            yield [row(o, run_started, False) for o in batch]
        events_through = state.get("events_through")
        if events_through is not None:
            for batch in batched_pages(_changed_objects(client, event_types, page_size, events_through), batch_rows):
                yield [row(obj, at, deleted) for obj, at, deleted in batch]
        state["listed_through"] = newest_created
        state["events_through"] = run_started

    return objects


@dlt.source(name="stripe", section="stripe", max_table_nesting=2)
def stripe_source(base_url: str = dlt.config.value, api_key: str = dlt.secrets.value,
                  page_size: int = 100, batch_rows: int = 5000) -> Any:
    """Stripe objects from `base_url` (https://api.stripe.com in production) with a secret key.

    Tables: customers, products, prices, coupons, invoices (+ child tables `invoices__lines`,
    `invoices__lines__discount_amounts`, `invoices__discounts`, `invoices__total_discount_amounts`), charges.
    """
    client = rest_client(base_url, BearerTokenAuth(api_key))
    return [_stripe_resource(name, client, page_size, batch_rows) for name in STRIPE_OBJECTS]
