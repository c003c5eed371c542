"""A small raw warehouse for the journey, marketing and finance models: two received days of events
written as event files and loaded by the real capture loader (`load_partition`), and the SaaS tables in
the shape the dlt sources load them (same schema, table and column names and types)."""

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

DAY1, DAY2 = "2026-03-01", "2026-03-02"
WEB = {"library": {"name": "analytics.js", "version": "next-1.72.0"}, "userAgent": "Mozilla/5.0", "ip": "10.0.0.1"}
IOS = {"library": {"name": "analytics-ios", "version": "4.1.8"}, "app": {"name": "Example Shop", "version": "3.2.1"},
       "device": {"id": "vendor-1", "manufacturer": "Apple", "model": "iPhone16,1", "type": "ios"},
       "os": {"name": "iOS", "version": "18.1"}}
SPRING = {"source": "facebook", "medium": "paid_social", "name": "Spring Sale"}
LOAD_ID = "1772409600.123456"


def at(day: str, hh_mm_ss: str) -> str:
    """ISO-8601 UTC timestamp with milliseconds, as the collector writes it."""
    return f"{day}T{hh_mm_ss}.000Z"


def epoch(day: str, hh_mm_ss: str) -> int:
    return int(dt.datetime.fromisoformat(f"{day}T{hh_mm_ss}+00:00").timestamp())


def message(day: str, time: str, context: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """A message as the collector stores it: messageId and receivedAt stamped, received 1 s after it happened."""
    happened = at(day, time)
    received = (dt.datetime.fromisoformat(f"{day}T{time}+00:00") + dt.timedelta(seconds=1))
    return {"messageId": str(uuid.uuid4()), "receivedAt": received.isoformat().replace("+00:00", "Z"),
            "timestamp": happened, "sentAt": happened, "originalTimestamp": happened, "context": context, **fields}


def page(day: str, time: str, anonymous_id: str, path: str, user_id: str | None = None,
         campaign: dict[str, str] | None = None) -> dict[str, Any]:
    context = {**WEB, "page": {"path": path, "url": f"https://shop.example.com{path}"}}
    if campaign:
        context["campaign"] = campaign
    fields: dict[str, Any] = {"type": "page", "anonymousId": anonymous_id, "name": path, "properties": {"path": path}}
    if user_id:
        fields["userId"] = user_id
    return message(day, time, context, **fields)


def email_delivered(day: str, time: str, customer_id: str, email: str) -> dict[str, Any]:
    """A Customer.io `email delivered` reporting webhook, as the collector stores webhooks."""
    body = reporting_webhook_payload("delivered", customer_id=customer_id, email=email, delivery_id=f"dlv-{customer_id}",
                                     campaign_id=6, action_id=36, subject="New mugs", timestamp=epoch(day, time))
    return {"type": "webhook", "messageId": body["event_id"], "receivedAt": at(day, time), "body": orjson.dumps(body).decode()}


def write(root: Path, source: str, day: str, messages: list[dict[str, Any]]) -> None:
    eventfiles.write_closed_file(root, source, day, [orjson.dumps(m) for m in messages])


def write_day1_events(root: Path) -> None:
    """Ann's browser: a Spring Sale landing at 10:00, 29 minutes to the next page (same session), 31 to the
    one after (a new session), a last page at 23:50; her phone at noon; a Customer.io email at 09:00;
    Bob (wholesale) on his phone."""
    write(root, "web", DAY1, [
        page(DAY1, "10:00:00", "a-ann", "/landing/spring", campaign=SPRING),
        message(DAY1, "10:00:30", WEB, type="identify", anonymousId="a-ann", userId="u_ann",
                traits={"email": " Ann@Example.com "}),
        page(DAY1, "10:29:00", "a-ann", "/products/mug", user_id="u_ann"),
        page(DAY1, "11:00:01", "a-ann", "/cart", user_id="u_ann"),
        page(DAY1, "23:50:00", "a-ann", "/sale", user_id="u_ann"),
    ])
    write(root, "ios", DAY1, [
        message(DAY1, "12:00:00", IOS, type="screen", anonymousId="i-ann", userId="u_ann", name="Home"),
        message(DAY1, "12:01:00", IOS, type="track", anonymousId="i-ann", userId="u_ann", event="Product Viewed",
                properties={"sku": "MUG", "price": 25.0}),
        message(DAY1, "08:00:00", IOS, type="identify", anonymousId="i-bob", userId="u_bob", traits={"email": "bob@x.io"}),
        message(DAY1, "08:00:05", IOS, type="screen", anonymousId="i-bob", userId="u_bob", name="Catalogue"),
        message(DAY1, "08:02:00", IOS, type="track", anonymousId="i-bob", userId="u_bob", event="Request a Quote",
                properties={"sku": "MUG", "quantity": 500}),
    ])
    write(root, "customerio", DAY1, [email_delivered(DAY1, "09:00:00", "u_ann", "ann@example.com")])


def write_day2_events(root: Path) -> None:
    """Ann's browser 20 minutes after midnight (the 23:50 session goes on), then a track on the same page."""
    write(root, "web", DAY2, [
        page(DAY2, "00:10:00", "a-ann", "/checkout", user_id="u_ann"),
        message(DAY2, "00:12:00", WEB, type="track", anonymousId="a-ann", userId="u_ann", event="Checkout Started",
                properties={"revenue": 50.0}),
    ])


def load_events(home: Path, day: str) -> None:
    """The real capture loader, as the `events_load` asset runs it for one partition."""
    with duckdb.connect(str(home / "warehouse.duckdb")) as con:
        loader.load_partition(con, home / "events", day)


SAAS_TABLES = f"""
create schema if not exists hubspot;
create table hubspot.contacts (
    id varchar, properties__email varchar, properties__firstname varchar, properties__date_of_birth varchar,
    properties__customer_type varchar, properties__lead_qualified varchar, archived boolean,
    created_at timestamptz, updated_at timestamptz, modified_at timestamptz,
    _dlt_load_id varchar not null, _dlt_id varchar not null);
insert into hubspot.contacts values
    ('501', 'ANN@example.com', 'Ann', '1990-05-01', 'retail', 'true', false,
     '2026-01-05 08:00:00+00', '2026-01-05 08:00:00+00', '2026-01-05 08:00:00+00', '{LOAD_ID}', 'dlt-c501'),
    ('502', 'bob@x.io', 'Bob', '1980-02-01', 'wholesale', 'true', false,
     '2026-01-06 08:00:00+00', '2026-01-06 08:00:00+00', '2026-01-06 08:00:00+00', '{LOAD_ID}', 'dlt-c502');
create table hubspot.deals (
    id varchar, properties__dealname varchar, properties__amount varchar, properties__dealstage varchar,
    archived boolean, created_at timestamptz, updated_at timestamptz, modified_at timestamptz,
    _dlt_load_id varchar not null, _dlt_id varchar not null);
insert into hubspot.deals values ('9001', 'Bob wholesale order', '4000', 'closedwon', false,
    '2026-02-20 09:00:00+00', '2026-02-25 09:00:00+00', '2026-02-25 09:00:00+00', '{LOAD_ID}', 'dlt-d9001');
create table hubspot.deals__properties_with_history__dealstage (
    value varchar, "timestamp" timestamptz, source_type varchar,
    _dlt_parent_id varchar not null, _dlt_list_idx bigint not null, _dlt_id varchar not null);
insert into hubspot.deals__properties_with_history__dealstage values
    ('closedwon', '2026-02-25 09:00:00+00', 'CRM_UI', 'dlt-d9001', 0, 'dlt-h1'),
    ('appointmentscheduled', '2026-02-20 09:00:00+00', 'CRM_UI', 'dlt-d9001', 1, 'dlt-h2');
create table hubspot.deal_contact_associations (
    deal_id varchar, contact_id varchar, type_id bigint, category varchar, label varchar,
    _dlt_load_id varchar not null, _dlt_id varchar not null);
insert into hubspot.deal_contact_associations values ('9001', '502', 3, 'HUBSPOT_DEFINED', null, '{LOAD_ID}', 'dlt-a1');
create table hubspot.calls (
    id varchar, properties__hs_timestamp varchar, properties__hs_call_title varchar, archived boolean,
    created_at timestamptz, updated_at timestamptz, modified_at timestamptz,
    _dlt_load_id varchar not null, _dlt_id varchar not null);
insert into hubspot.calls values
    ('7001', '2026-02-19T15:00:00.000Z', 'Call with Bob', false,
     '2026-02-19 15:00:00+00', '2026-02-19 15:00:00+00', '2026-02-19 15:00:00+00', '{LOAD_ID}', 'dlt-k7001'),
    -- an archived (deleted) call is no touchpoint
    ('7002', '2026-02-21T15:00:00.000Z', 'Deleted call', true,
     '2026-02-21 15:00:00+00', '2026-02-21 15:00:00+00', '2026-02-21 15:00:00+00', '{LOAD_ID}', 'dlt-k7002');
create table hubspot.call_contact_associations (
    call_id varchar, contact_id varchar, type_id bigint, category varchar, label varchar,
    _dlt_load_id varchar not null, _dlt_id varchar not null);
insert into hubspot.call_contact_associations values
    ('7001', '502', 194, 'HUBSPOT_DEFINED', null, '{LOAD_ID}', 'dlt-ka1'),
    ('7002', '502', 194, 'HUBSPOT_DEFINED', null, '{LOAD_ID}', 'dlt-ka2');

create schema if not exists stripe;
create table stripe.customers (
    id varchar, email varchar, name varchar, created bigint, livemode boolean, deleted boolean, _snapshot_at bigint,
    _dlt_load_id varchar not null, _dlt_id varchar not null);
insert into stripe.customers values ('cus_ann', ' ann@example.com', 'Ann A', {epoch(DAY1, "09:00:00")}, false, false,
    {epoch(DAY2, "02:00:00")}, '{LOAD_ID}', 'dlt-cus-ann');
create table stripe.products (
    id varchar, name varchar, metadata__sku varchar, active boolean, created bigint,
    _dlt_load_id varchar not null, _dlt_id varchar not null);
insert into stripe.products values ('prod_MUG', 'Mug', 'MUG', true, 1767225600, '{LOAD_ID}', 'dlt-p1');
create table stripe.prices (
    id varchar, product varchar, unit_amount bigint, currency varchar, created bigint,
    _dlt_load_id varchar not null, _dlt_id varchar not null);
insert into stripe.prices values ('price_MUG', 'prod_MUG', 2750, 'usd', 1767225600, '{LOAD_ID}', 'dlt-pr1');
create table stripe.invoices (
    id varchar, object varchar, customer varchar, customer_email varchar, status varchar, currency varchar,
    subtotal bigint, total bigint, amount_paid bigint, status_transitions__paid_at bigint, created bigint,
    livemode boolean, deleted boolean, _snapshot_at bigint, _dlt_load_id varchar not null, _dlt_id varchar not null);
insert into stripe.invoices values ('in_ann1', 'invoice', 'cus_ann', 'Ann@Example.com', 'paid', 'usd', 5500, 5000, 5000,
    {epoch(DAY2, "01:00:00")}, {epoch(DAY2, "00:59:00")}, false, false, {epoch(DAY2, "02:00:00")}, '{LOAD_ID}', 'dlt-in1');
create table stripe.invoices__lines (
    id varchar, invoice_id varchar, amount bigint, currency varchar, quantity bigint, pricing__price_details varchar,
    _dlt_parent_id varchar not null, _dlt_list_idx bigint not null, _dlt_id varchar not null);
insert into stripe.invoices__lines values ('il_1', 'in_ann1', 5500, 'usd', 2,
    '{{"price": "price_MUG", "product": "prod_MUG"}}', 'dlt-in1', 0, 'dlt-il1');
create table stripe.invoices__total_discount_amounts (
    amount bigint, discount varchar, _dlt_parent_id varchar not null, _dlt_list_idx bigint not null, _dlt_id varchar not null);
insert into stripe.invoices__total_discount_amounts values (500, 'di_1', 'dlt-in1', 0, 'dlt-tda1');

create schema if not exists finance;
create table finance.sku_costs (
    sku varchar, unit_cost decimal(38, 9), currency varchar, effective_date date, source_file varchar, line_number bigint,
    file_modified_at timestamptz, _dlt_load_id varchar not null, _dlt_id varchar not null);
insert into finance.sku_costs values
    ('MUG', 8.00, 'usd', '2026-01-01', 'sku_costs_2026-01-01.csv', 2, '2026-01-01 06:00:00+00', '{LOAD_ID}', 'dlt-k1'),
    ('MUG', 9.00, 'usd', '{DAY2}', 'sku_costs_{DAY2}.csv', 2, '{DAY2} 06:00:00+00', '{LOAD_ID}', 'dlt-k2');

create schema if not exists facebook_ads;
create table facebook_ads.campaign_insights (
    campaign_id varchar, campaign_name varchar, account_id varchar, date_start date, date_stop date,
    spend double, impressions bigint, clicks bigint, _dlt_load_id varchar not null, _dlt_id varchar not null);
insert into facebook_ads.campaign_insights values
    ('111', 'Spring Sale', '1000', '{DAY1}', '{DAY1}', 20.0, 1000, 30, '{LOAD_ID}', 'dlt-f1'),
    ('111', 'Spring Sale', '1000', '{DAY2}', '{DAY2}', 5.0, 300, 4, '{LOAD_ID}', 'dlt-f2');

create schema if not exists zendesk;
create table zendesk.users (
    id bigint, name varchar, email varchar, role varchar, created_at timestamptz, updated_at timestamptz,
    _dlt_load_id varchar not null, _dlt_id varchar not null);
insert into zendesk.users values (360001, 'Ann A', 'ann@EXAMPLE.com ', 'end-user',
    '2026-02-01 00:00:00+00', '2026-02-01 00:00:00+00', '{LOAD_ID}', 'dlt-z1');
create table zendesk.tickets (
    id bigint, subject varchar, status varchar, requester_id bigint, created_at timestamptz, updated_at timestamptz,
    _dlt_load_id varchar not null, _dlt_id varchar not null);
insert into zendesk.tickets values (77, 'Mug arrived chipped', 'open', 360001,
    '{DAY1} 15:00:00+00', '{DAY1} 15:00:00+00', '{LOAD_ID}', 'dlt-t77');
"""


def create_saas_tables(home: Path) -> None:
    """HubSpot, Stripe, finance, Facebook Ads and Zendesk tables as the dlt sources load them."""
    with duckdb.connect(str(home / "warehouse.duckdb")) as con:
        con.execute(SAAS_TABLES)
