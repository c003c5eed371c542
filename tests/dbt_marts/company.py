"""A small, hand-made example company for the customer 360 / traits / activation tests.

Events go through the real capture loader (Segment messages in event files -> `load_partition`).
The API sources are fixture tables with the names and types the dlt sources create (`hubspot.contacts`
with `properties__*` columns, `stripe.invoices` with epoch `created`, child tables with `_dlt_parent_id`,
...), so this stays fast (no sandbox subprocess, no dlt runs) and every expected value is known by hand;
`test_ground_truth.py` (slow) runs the real simulator, sandbox and dlt loaders instead.

as_of is Wednesday 2026-03-04 15:00:00 UTC: the 4 complete weeks are Feb 2-8, 9-15, 16-22 and Feb 23-Mar 1,
and the year of orders is (2025-03-04 15:00:00, 2026-03-04 15:00:00].
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import duckdb
import orjson

from growth_stack_dagster import eventfiles

REPO = Path(__file__).resolve().parents[2]
DBT = Path(sys.executable).with_name("dbt")
AS_OF = "2026-03-04T15:00:00Z"  # a Wednesday afternoon, UTC: the moment traits are evaluated at
AS_OF_DATE = "2026-03-04"
YEAR_BEFORE_AS_OF = dt.datetime(2025, 3, 4, 15, tzinfo=dt.timezone.utc)  # as_of - 365 days
ACTIVE_WEEK_DAYS = ("2026-02-03", "2026-02-10", "2026-02-17", "2026-02-24")
ANN_LIKE = {"dob": "1990-05-05", "customer_type": "retail", "lead_qualified": "true", "page_days": ACTIVE_WEEK_DAYS}

# person -> (anonymous id, user id, email as the app sends it, HubSpot contact id, date of birth, Stripe id,
# invoice totals in minor units of `currency` (default usd), paid on INVOICE_DAYS unless `invoice_times` says when)
PEOPLE: dict[str, dict] = {
    # five purchases of 100.01 each: high-value
    "ann": {"anonymous_id": "7c1e7d2a-0d43-4b7e-9d0a-1b2c3d4e5f01", "user_id": "u_1001", "email": "  Ann@Shop.io ",
            "contact_id": "101", "dob": "1990-05-05", "customer_type": "retail", "lead_qualified": "true",
            "stripe_id": "cus_Ann0000000001", "invoices": [10001] * 5, "page_days": ACTIVE_WEEK_DAYS,
            "zendesk_id": 9001},
    # five purchases of exactly 100.00: none is over 100.00
    "bob": {"anonymous_id": "7c1e7d2a-0d43-4b7e-9d0a-1b2c3d4e5f02", "user_id": "u_1002", "email": "bob@shop.io",
            "contact_id": "102", "dob": "1988-01-10", "customer_type": "wholesale", "lead_qualified": "false",
            "stripe_id": "cus_Bob0000000002", "invoices": [10000] * 5, "page_days": ACTIVE_WEEK_DAYS},
    # turns 46 on as_of
    "cy": {"anonymous_id": "7c1e7d2a-0d43-4b7e-9d0a-1b2c3d4e5f03", "user_id": "u_1003", "email": "cy@shop.io",
           "contact_id": "103", "dob": "1980-03-04", "customer_type": "retail", "lead_qualified": "true",
           "stripe_id": "cus_Cy00000000003", "invoices": [12000] * 5, "page_days": ACTIVE_WEEK_DAYS},
    # no page view in the week of Feb 16-22; one on Monday Mar 2 (the incomplete week) does not make up for it
    "dee": {"anonymous_id": "7c1e7d2a-0d43-4b7e-9d0a-1b2c3d4e5f04", "user_id": "u_1004", "email": "dee@shop.io",
            "contact_id": "104", "dob": "1995-07-01", "customer_type": "retail", "lead_qualified": "true",
            "stripe_id": "cus_Dee0000000004", "invoices": [12000] * 5,
            "page_days": ("2026-02-03", "2026-02-10", "2026-02-24", "2026-03-02")},
    # browses anonymously only
    "eve": {"anonymous_id": "7c1e7d2a-0d43-4b7e-9d0a-1b2c3d4e5f05", "page_days": ACTIVE_WEEK_DAYS},
    # six purchases of 90.00 (540.00 in all): none is over 100.00
    "fay": {**ANN_LIKE, "anonymous_id": "7c1e7d2a-0d43-4b7e-9d0a-1b2c3d4e5f06", "user_id": "u_1006", "email": "fay@shop.io",
            "contact_id": "106", "stripe_id": "cus_Fay0000000006", "invoices": [9000] * 6},
    # four recent purchases of 100.01 and a fifth exactly at as_of - 365 days: outside the year
    "gus": {**ANN_LIKE, "anonymous_id": "7c1e7d2a-0d43-4b7e-9d0a-1b2c3d4e5f07", "user_id": "u_1007", "email": "gus@shop.io",
            "contact_id": "107", "stripe_id": "cus_Gus0000000007", "invoices": [10001] * 5,
            "invoice_times": [YEAR_BEFORE_AS_OF]},
    # the same with the fifth 1 second later, at as_of - 365 days + 1 s: inside the year, high-value
    "hal": {**ANN_LIKE, "anonymous_id": "7c1e7d2a-0d43-4b7e-9d0a-1b2c3d4e5f08", "user_id": "u_1008", "email": "hal@shop.io",
            "contact_id": "108", "stripe_id": "cus_Hal0000000008", "invoices": [10001] * 5,
            "invoice_times": [YEAR_BEFORE_AS_OF + dt.timedelta(seconds=1)]},
    # turns 25 on as_of, and the fifth purchase was an hour before as_of: high-value
    "ivy": {**ANN_LIKE, "anonymous_id": "7c1e7d2a-0d43-4b7e-9d0a-1b2c3d4e5f09", "user_id": "u_1009", "email": "ivy@shop.io",
            "contact_id": "109", "dob": "2001-03-04", "stripe_id": "cus_Ivy0000000009", "invoices": [10001] * 5,
            "invoice_times": [dt.datetime(2026, 3, 4, 14, tzinfo=dt.timezone.utc)]},
    # turns 45 on as_of and buys in yen (0 decimals): five of JPY 20,000 are each over 100 -> high-value
    "jo": {**ANN_LIKE, "anonymous_id": "7c1e7d2a-0d43-4b7e-9d0a-1b2c3d4e5f10", "user_id": "u_1010", "email": "jo@shop.io",
           "contact_id": "110", "dob": "1981-03-04", "stripe_id": "cus_Jo00000000010", "invoices": [20000] * 5,
           "currency": "jpy"},
    # turns 24 on as_of
    "kim": {**ANN_LIKE, "anonymous_id": "7c1e7d2a-0d43-4b7e-9d0a-1b2c3d4e5f11", "user_id": "u_1011", "email": "kim@shop.io",
            "contact_id": "111", "dob": "2002-03-04", "stripe_id": "cus_Kim0000000011", "invoices": [10001] * 5},
    # a date of birth HubSpot holds but nobody can read: counted in customer_trait_discards, warned about
    "max": {**ANN_LIKE, "anonymous_id": "7c1e7d2a-0d43-4b7e-9d0a-1b2c3d4e5f12", "user_id": "u_1012", "email": "max@shop.io",
            "contact_id": "112", "dob": "31/12/1990", "stripe_id": "cus_Max0000000012", "invoices": [10001] * 5},
}
HIGH_VALUE = {"ann", "hal", "ivy", "jo"}
# USD -> JPY 160.00 from Jan 1 2026 (JPY 20,000 = 125.00 USD)
EXCHANGE_RATES = [("USD", "JPY", "160.00", "2026-01-01")]
OWNER = {"id": "7", "email": "Olivia.Owner@shop.io", "first_name": "Olivia", "last_name": "Owner"}
# SKU costs: TEE costs 8.00 from Jan 1 and 9.00 from Feb 1 (Ann's orders are in January: cost 8.00 each)
SKU_COSTS = [("TEE", "8.00", "2026-01-01"), ("TEE", "9.00", "2026-02-01")]
EMAIL_DAY = "2026-02-20"
INVOICE_DAYS = ("2026-01-05", "2026-01-12", "2026-01-19", "2026-01-26", "2026-01-30", "2026-02-02")


def _iso(day: str, hour: int, minute: int = 0) -> str:
    return f"{day}T{hour:02d}:{minute:02d}:00.000Z"


def _epoch(day: str, hour: int = 12) -> int:
    return int(dt.datetime.fromisoformat(day).replace(hour=hour, tzinfo=dt.timezone.utc).timestamp())


def _message(kind: str, day: str, hour: int, person: dict, identified: bool, **fields) -> dict:
    ts = _iso(day, hour)
    msg = {"type": kind, "messageId": str(uuid.uuid4()), "anonymousId": person["anonymous_id"],
           "timestamp": ts, "receivedAt": ts, "sentAt": ts, "originalTimestamp": ts,
           "context": {"library": {"name": "analytics.js", "version": "next-1.72.0"},
                       "campaign": {"source": "facebook", "medium": "paid_social", "name": "spring"}}, **fields}
    if identified and person.get("user_id"):
        msg["userId"] = person["user_id"]
    return msg


def write_events(events_root: Path) -> list[str]:
    """Write every person's web messages as event files; returns the received days."""
    by_day: dict[str, list[bytes]] = {}
    for person in PEOPLE.values():
        if person.get("user_id"):
            day = "2026-01-02"
            by_day.setdefault(day, []).append(orjson.dumps(_message(
                "identify", day, 9, person, True, traits={"email": person["email"], "first_name": "App name"})))
        for k, day in enumerate(person["page_days"]):
            by_day.setdefault(day, []).append(orjson.dumps(_message(
                "page", day, 10, person, k > 0, name="Home", properties={"path": "/", "title": "Home"})))
    for day, lines in by_day.items():
        eventfiles.write_closed_file(events_root, "web", day, lines)
    eventfiles.write_closed_file(events_root, "customerio", EMAIL_DAY, [orjson.dumps(e) for e in customerio_webhooks()])
    return sorted({*by_day, EMAIL_DAY})


def customerio_webhooks() -> list[dict]:
    """Customer.io reporting webhooks (as the collector writes them) for Ann: 2 emails delivered, 1 opened."""
    ann = PEOPLE["ann"]
    out = []
    for k, (metric, delivery) in enumerate((("delivered", "dlv_1"), ("opened", "dlv_1"), ("delivered", "dlv_2"))):
        body = {"event_id": f"01HEVT{k}", "metric": metric, "object_type": "email", "timestamp": _epoch(EMAIL_DAY) + k,
                "data": {"customer_id": ann["user_id"], "delivery_id": delivery, "campaign_id": 6, "action_id": 36,
                         "identifiers": {"id": ann["user_id"], "email": "ann@shop.io", "cio_id": "d9c106000001"},
                         "recipient": "ann@shop.io", "subject": "New tees"}}
        out.append({"type": "webhook", "messageId": str(uuid.uuid4()), "receivedAt": _iso(EMAIL_DAY, 13),
                    "body": json.dumps(body)})
    return out


def load_events(home: Path) -> None:
    """Load the event files under `home/events` with the real capture loader."""
    from growth_stack_dagster.capture import loader

    root = home / "events"
    with duckdb.connect(str(home / "warehouse.duckdb")) as con:
        for day in eventfiles.days_with_files(root):
            loader.load_partition(con, root, day)


API_TABLES = {
    "hubspot.contacts": "id varchar, properties__email varchar, properties__firstname varchar, properties__lastname varchar, "
                        "properties__company varchar, properties__date_of_birth varchar, properties__customer_type varchar, "
                        "properties__lead_qualified varchar, properties__hubspot_owner_id varchar, archived boolean, "
                        "created_at timestamptz, updated_at timestamptz, modified_at timestamptz, _dlt_load_id varchar, _dlt_id varchar",
    "hubspot.owners": "id varchar, email varchar, first_name varchar, last_name varchar, archived boolean, "
                      "created_at timestamptz, updated_at timestamptz, modified_at timestamptz, _dlt_load_id varchar, _dlt_id varchar",
    "hubspot.deals": "id varchar, properties__dealname varchar, properties__amount varchar, properties__dealstage varchar, "
                     "archived boolean, created_at timestamptz, updated_at timestamptz, modified_at timestamptz, "
                     "_dlt_load_id varchar, _dlt_id varchar",
    "hubspot.deal_contact_associations": "deal_id varchar, contact_id varchar, type_id bigint, category varchar, label varchar, "
                                         "_dlt_load_id varchar, _dlt_id varchar",
    "stripe.customers": "id varchar, email varchar, name varchar, created bigint, deleted boolean, _snapshot_at bigint, "
                        "_dlt_load_id varchar, _dlt_id varchar",
    "stripe.products": "id varchar, name varchar, metadata__sku varchar, created bigint, deleted boolean, _snapshot_at bigint, "
                       "_dlt_load_id varchar, _dlt_id varchar",
    "stripe.invoices": "id varchar, customer varchar, customer_email varchar, number varchar, status varchar, currency varchar, "
                       "subtotal bigint, total bigint, amount_paid bigint, status_transitions__paid_at bigint, created bigint, "
                       "deleted boolean, _snapshot_at bigint, _dlt_load_id varchar, _dlt_id varchar",
    "stripe.invoices__lines": "id varchar, invoice_id varchar, amount bigint, quantity bigint, currency varchar, "
                              "pricing__price_details json, _dlt_root_id varchar, _dlt_parent_id varchar, "
                              "_dlt_list_idx bigint, _dlt_id varchar",
    "stripe.invoices__total_discount_amounts": "amount bigint, discount varchar, _dlt_root_id varchar, _dlt_parent_id varchar, "
                                               "_dlt_list_idx bigint, _dlt_id varchar",
    "zendesk.users": "id bigint, name varchar, email varchar, created_at timestamptz, updated_at timestamptz, "
                     "_dlt_load_id varchar, _dlt_id varchar",
    "zendesk.tickets": "id bigint, subject varchar, status varchar, requester_id bigint, created_at timestamptz, "
                       "updated_at timestamptz, _dlt_load_id varchar, _dlt_id varchar",
    "finance.exchange_rates": "base_currency varchar, quote_currency varchar, rate decimal(28,12), effective_date date, "
                              "source_file varchar, line_number bigint, file_modified_at timestamptz, _dlt_load_id varchar, _dlt_id varchar",
    "finance.sku_costs": "sku varchar, unit_cost decimal(18,6), currency varchar, effective_date date, source_file varchar, "
                         "line_number bigint, file_modified_at timestamptz, _dlt_load_id varchar, _dlt_id varchar",
}


def create_api_tables(warehouse: Path) -> None:
    """The dlt sources' raw tables, filled with the company's CRM, payments, support and finance records."""
    load_id = "1772000000.5"
    with duckdb.connect(str(warehouse)) as con:
        con.execute("SET TimeZone = 'UTC'")
        for table, columns in API_TABLES.items():
            con.execute(f"create schema if not exists {table.split('.')[0]}")
            con.execute(f"create or replace table {table} ({columns})")
        con.execute("insert into hubspot.owners values (?, ?, ?, ?, false, '2025-01-01', '2025-01-01', '2025-01-01', ?, 'o7')",
                    [OWNER["id"], OWNER["email"], OWNER["first_name"], OWNER["last_name"], load_id])
        # Bob's wholesale account: one deal won, one still open
        for deal_id, stage, amount in (("501", "closedwon", "1200.50"), ("502", "appointmentscheduled", "500")):
            con.execute("insert into hubspot.deals values (?, 'Bulk tees', ?, ?, false, '2026-01-20', '2026-01-20', "
                        "'2026-01-20', ?, ?)", [deal_id, amount, stage, load_id, f"hd{deal_id}"])
            con.execute("insert into hubspot.deal_contact_associations values (?, ?, 3, 'HUBSPOT_DEFINED', null, ?, ?)",
                        [deal_id, PEOPLE["bob"]["contact_id"], load_id, f"ha{deal_id}"])
        con.execute("insert into stripe.products values ('prod_TEE', 'Tee', 'TEE', 1735689600, false, 1, ?, 'p1')", [load_id])
        for sku, cost, day in SKU_COSTS:
            con.execute("insert into finance.sku_costs values (?, ?, 'USD', ?, ?, 2, ?, ?, ?)",
                        [sku, cost, day, f"sku_costs_{day}.csv", f"{day} 06:00:00+00", load_id, f"c{day}"])
        for base, quote, rate, day in EXCHANGE_RATES:
            con.execute("insert into finance.exchange_rates values (?, ?, ?, ?, ?, 2, ?, ?, ?)",
                        [base, quote, rate, day, f"exchange_rates_{day}.csv", f"{day} 06:00:00+00", load_id, f"x{day}"])
        for name, p in PEOPLE.items():
            if "contact_id" not in p:
                continue
            email = p["email"].strip()
            con.execute("insert into hubspot.contacts values (?, ?, ?, ?, 'Shop Ltd', ?, ?, ?, ?, false, "
                        "'2025-12-01', '2026-01-03', '2026-01-03', ?, ?)",
                        [p["contact_id"], email.upper() if name == "ann" else email, name.title(), "Example", p["dob"],
                         p["customer_type"], p["lead_qualified"], OWNER["id"], load_id, f"hc{name}"])
            con.execute("insert into stripe.customers values (?, ?, ?, ?, false, 1, ?, ?)",
                        [p["stripe_id"], f" {email} ", f"{name.title()} Stripe", _epoch("2026-01-01"), load_id, f"sc{name}"])
            currency = p.get("currency", "usd")
            times = list(p.get("invoice_times", []))
            for k, cents in enumerate(p["invoices"]):
                invoice_id = f"in_{name}_{k}"
                # the last invoices are paid at `invoice_times`, the others at noon on INVOICE_DAYS
                late = k - (len(p["invoices"]) - len(times))
                paid = int(times[late].timestamp()) if late >= 0 else _epoch(INVOICE_DAYS[k % len(INVOICE_DAYS)])
                discount = 500 if (name == "ann" and k == 0) else 0
                con.execute("insert into stripe.invoices values (?, ?, ?, ?, 'paid', ?, ?, ?, ?, ?, ?, false, 1, ?, ?)",
                            [invoice_id, p["stripe_id"], email, f"N-{k}", currency, cents + discount, cents, cents,
                             paid, paid - 30, load_id, f"d_{invoice_id}"])
                # one tee per order; the line amount is before the invoice discount
                con.execute("insert into stripe.invoices__lines values (?, ?, ?, 1, ?, ?, ?, ?, 0, ?)",
                            [f"il_{invoice_id}", invoice_id, cents + discount, currency,
                             json.dumps({"price": "price_TEE", "product": "prod_TEE"}),
                             f"d_{invoice_id}", f"d_{invoice_id}", f"l_{invoice_id}"])
                if discount:
                    con.execute("insert into stripe.invoices__total_discount_amounts values (?, 'di_1', ?, ?, 0, ?)",
                                [discount, f"d_{invoice_id}", f"d_{invoice_id}", f"t_{invoice_id}"])
            if "zendesk_id" in p:
                con.execute("insert into zendesk.users values (?, ?, ?, '2026-01-10', '2026-01-10', ?, ?)",
                            [p["zendesk_id"], f"{name.title()} Zendesk", email, load_id, f"zu{name}"])
                con.execute("insert into zendesk.tickets values (1, 'Where is my tee?', 'open', ?, '2026-01-11', "
                            "'2026-01-11', ?, 'zt1')", [p["zendesk_id"], load_id])


def dbt_build(home: Path, select: str, as_of: str, target: Path) -> subprocess.CompletedProcess:
    """`dbt build --select <select>` of the repo's project on `home/warehouse.duckdb`, as of `as_of`.

    Tests that need identity_merges (not upstream of the selection) are left out (`buildable`);
    target and logs go to `target` so the shared manifest is untouched."""
    return subprocess.run(
        [str(DBT), "build", "--project-dir", "dbt_project", "--profiles-dir", "dbt_project",
         "--select", select, "--indirect-selection", "buildable", "--vars", json.dumps({"as_of": as_of}),
         "--target-path", str(target / "target"), "--log-path", str(target / "logs")],
        cwd=REPO, env={**os.environ, "GROWTH_STACK_HOME": str(home)}, capture_output=True, text=True, timeout=900,
    )
