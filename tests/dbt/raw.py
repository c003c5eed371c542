"""A small raw warehouse with every identity edge case: the `events` schema written by the real
capture loader from event files, and the HubSpot, Stripe and Zendesk tables in the shape the dlt
sources produce (same table and column names and types, as loaded from the sandbox)."""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path
from typing import Any

import duckdb
import orjson

from growth_stack_dagster import eventfiles
from growth_stack_dagster.capture import loader
from growth_stack_dagster.sandbox.customerio import reporting_webhook_payload

DAY1, DAY2 = "2026-01-10", "2026-01-11"
WEB = {"library": {"name": "analytics.js", "version": "next-1.72.0"}}
IOS = {"library": {"name": "analytics-ios", "version": "4.1.8"}}
SHARED_EMAIL_USERS = [f"u_s{i}" for i in range(1, 7)]  # 6 users, one more than the default email cap


def _iso(day: str, second: int) -> str:
    t = dt.datetime.fromisoformat(day).replace(tzinfo=dt.timezone.utc) + dt.timedelta(seconds=second)
    return t.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def message(day: str, second: int, **fields: Any) -> dict[str, Any]:
    """A message as the collector stores it (messageId, receivedAt and timestamps stamped)."""
    at = _iso(day, second)
    return {"messageId": str(uuid.uuid4()), "receivedAt": at, "timestamp": at, "sentAt": at,
            "originalTimestamp": at, "context": WEB, **fields}


def write_events(root: Path, source: str, day: str, messages: list[dict[str, Any]]) -> None:
    eventfiles.write_closed_file(root, source, day, [orjson.dumps(m) for m in messages])


def customerio_delivered(day: str, second: int, customer_id: str, email: str) -> dict[str, Any]:
    """A Customer.io `email delivered` reporting webhook line, as the collector stores webhooks."""
    at = dt.datetime.fromisoformat(day).replace(tzinfo=dt.timezone.utc) + dt.timedelta(seconds=second)
    body = reporting_webhook_payload("delivered", customer_id=customer_id, email=email, delivery_id=f"dlv-{customer_id}",
                                     campaign_id=6, action_id=36, subject="New mugs", timestamp=int(at.timestamp()))
    return {"type": "webhook", "messageId": body["event_id"], "receivedAt": _iso(day, second + 2),
            "body": orjson.dumps(body).decode()}


def day1_events(root: Path) -> None:
    web = [
        # Ann: anonymous browsing, then sign-in with an email in odd case and spaces
        message(DAY1, 1, type="page", anonymousId="a-ann-web", name="Home", properties={"path": "/"}),
        message(DAY1, 2, type="identify", anonymousId="a-ann-web", userId="u_ann",
                traits={"email": " Ann@Example.com ", "name": "Ann A"}),
        message(DAY1, 3, type="page", anonymousId="a-ann-web", userId="u_ann", name="Mug"),
        # Bob: an alias chain a-bob -> u_bob_old -> u_bob, and a second device
        message(DAY1, 10, type="page", anonymousId="a-bob", name="Home"),
        message(DAY1, 11, type="alias", previousId="a-bob", userId="u_bob_old"),
        message(DAY1, 12, type="alias", previousId="u_bob_old", userId="u_bob"),
        message(DAY1, 13, type="identify", userId="u_bob", traits={"email": "bob@x.io"}),
        message(DAY1, 14, type="track", event="Product Viewed", anonymousId="a-bob-2", userId="u_bob",
                properties={"product_id": "prod_MUG002", "sku": "MUG002"}),
        # placeholder values that would wrongly join Carl, Dan, Erin, Frank, Gus and Hal
        message(DAY1, 20, type="page", anonymousId="a-carl", userId="u_carl"),
        message(DAY1, 21, type="page", anonymousId="00000000-0000-0000-0000-000000000000", userId="u_carl"),
        message(DAY1, 22, type="page", anonymousId="00000000-0000-0000-0000-000000000000", userId="u_dan"),
        message(DAY1, 23, type="page", anonymousId="anonymous", userId="u_carl"),
        message(DAY1, 24, type="page", anonymousId="anonymous", userId="u_dan"),
        message(DAY1, 25, type="identify", anonymousId="a-erin", userId="undefined", traits={"email": "erin@x.io"}),
        message(DAY1, 26, type="identify", anonymousId="a-frank", userId="undefined"),
        message(DAY1, 27, type="identify", userId="u_gus", traits={"email": "   "}),
        message(DAY1, 28, type="identify", userId="u_hal", traits={"email": "   "}),
        # one family inbox shared by more users than the email cap
        *[message(DAY1, 30 + i, type="identify", userId=u, traits={"email": "Family@Home.com"})
          for i, u in enumerate(SHARED_EMAIL_USERS)],
    ]
    write_events(root, "web", DAY1, web)
    write_events(root, "ios", DAY1, [
        message(DAY1, 4, type="screen", anonymousId=" a-ann-ios ", userId="u_ann", name="Cart", context=IOS)])
    write_events(root, "customerio", DAY1, [customerio_delivered(DAY1, 5, "u_ann", "ANN@example.com")])


def day2_unrelated_customer(root: Path) -> None:
    """Eve, who shares nothing with anyone of day 1."""
    write_events(root, "web", DAY2, [
        message(DAY2, 1, type="page", anonymousId="a-eve", name="Home"),
        message(DAY2, 2, type="identify", anonymousId="a-eve", userId="u_eve", traits={"email": "Eve@X.io"}),
    ])


def load_events(home: Path, day: str) -> None:
    with duckdb.connect(str(home / "warehouse.duckdb")) as con:
        loader.load_partition(con, home / "events", day)


DLT_TABLES = """
create schema if not exists hubspot;
create table if not exists hubspot.contacts (
    archived boolean, modified_at timestamptz, properties__email varchar, properties__firstname varchar,
    properties__date_of_birth varchar, properties__customer_type varchar, properties__lead_qualified varchar,
    id varchar, created_at timestamptz, updated_at timestamptz, _dlt_load_id varchar not null, _dlt_id varchar not null);
create schema if not exists stripe;
create table if not exists stripe.customers (
    _snapshot_at bigint, deleted boolean, id varchar, object varchar, created bigint, email varchar, name varchar,
    livemode boolean, _dlt_load_id varchar not null, _dlt_id varchar not null);
create table if not exists stripe.invoices (
    _snapshot_at bigint, deleted boolean, id varchar, object varchar, created bigint, currency varchar,
    customer varchar, customer_email varchar, status varchar, total bigint, status_transitions__paid_at bigint,
    _dlt_load_id varchar not null, _dlt_id varchar not null);
create schema if not exists zendesk;
create table if not exists zendesk.users (
    name varchar, email varchar, external_id varchar, role varchar, created_at timestamptz, updated_at timestamptz,
    id bigint, _dlt_load_id varchar not null, _dlt_id varchar not null);
"""
LOAD_ID = "1768003200.123456"


def hubspot_contact(con: duckdb.DuckDBPyConnection, contact_id: str, email: str, created: str) -> None:
    con.execute("insert into hubspot.contacts values (false, ?, ?, 'First', '1990-05-01', 'retail', 'false', ?, ?, ?, ?, ?)",
                [created, email, contact_id, created, created, LOAD_ID, f"dlt-{contact_id}"])


def day1_saas_tables(home: Path) -> None:
    """HubSpot, Stripe and Zendesk records of day 1's people, emails in odd case and spaces."""
    with duckdb.connect(str(home / "warehouse.duckdb")) as con:
        con.execute(DLT_TABLES)
        hubspot_contact(con, "501", "ANN@example.com ", "2026-01-09 08:00:00+00")
        hubspot_contact(con, "502", "bob@x.io", "2026-01-09 09:00:00+00")
        hubspot_contact(con, "503", "family@home.com", "2026-01-09 10:00:00+00")
        hubspot_contact(con, "504", "", "2026-01-09 11:00:00+00")
        created = int(dt.datetime(2026, 1, 10, 12, tzinfo=dt.timezone.utc).timestamp())
        con.execute("insert into stripe.customers values (?, false, 'cus_ann', 'customer', ?, ' ann@example.com', "
                    "'Ann A', false, ?, 'dlt-cus-ann')", [created, created, LOAD_ID])
        con.execute("insert into stripe.invoices values (?, false, 'in_ann1', 'invoice', ?, 'usd', 'cus_ann', "
                    "'Ann@Example.com', 'paid', 2500, ?, ?, 'dlt-in-ann1')", [created, created, created + 30, LOAD_ID])
        con.execute("insert into zendesk.users values ('Ann A', 'ann@EXAMPLE.com ', null, 'end-user', "
                    "'2026-01-10 13:00:00+00', '2026-01-10 14:00:00+00', 360000000001, ?, 'dlt-zd-1')", [LOAD_ID])


def day2_saas_tables(home: Path) -> None:
    with duckdb.connect(str(home / "warehouse.duckdb")) as con:
        hubspot_contact(con, "505", "eve@x.io", "2026-01-11 08:00:00+00")


ANN = {("anonymous_id", "a-ann-web"), ("anonymous_id", "a-ann-ios"), ("user_id", "u_ann"),
       ("email", "ann@example.com"), ("hubspot_contact_id", "501"), ("stripe_customer_id", "cus_ann"),
       ("zendesk_user_id", "360000000001"), ("customerio_id", "u_ann")}
BOB = {("anonymous_id", "a-bob"), ("anonymous_id", "a-bob-2"), ("user_id", "u_bob_old"), ("user_id", "u_bob"),
       ("email", "bob@x.io"), ("hubspot_contact_id", "502")}
CARL = {("anonymous_id", "a-carl"), ("user_id", "u_carl")}
# Erin's app sent userId "undefined" with her email: the email is her device's
ERIN = {("anonymous_id", "a-erin"), ("email", "erin@x.io")}
SINGLES = [("user_id", "u_dan"), ("anonymous_id", "a-frank"),
           ("user_id", "u_gus"), ("user_id", "u_hal"), ("hubspot_contact_id", "503"), ("hubspot_contact_id", "504"),
           *[("user_id", u) for u in SHARED_EMAIL_USERS]]
EXPECTED_DAY1 = {frozenset(ANN), frozenset(BOB), frozenset(CARL), frozenset(ERIN), *(frozenset({s}) for s in SINGLES)}
EVE = {("anonymous_id", "a-eve"), ("user_id", "u_eve"), ("email", "eve@x.io"), ("hubspot_contact_id", "505")}
EXPECTED_BLOCKED = {
    ("anonymous_id", "00000000-0000-0000-0000-000000000000"): "all-zero id",
    ("anonymous_id", "anonymous"): "placeholder value",
    ("user_id", "undefined"): "placeholder value",
    ("email", ""): "empty value",
    ("email", "family@home.com"): "linked to 6 distinct user_id values, more than the cap of 5",
}
