"""Helpers for the engine and HubSpot sync tests: a small warehouse holding `activation.sync_*` tables
built directly (so engine tests run in seconds), and readers of the sandbox's HubSpot state."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import duckdb
import requests

from growth_stack_dagster import config

CONTACT_COLUMNS = ("email varchar, hubspot_contact_id varchar, customer_id varchar, first_name varchar, "
                   "last_name varchar, is_high_value boolean, lifetime_value decimal(18,2), margin decimal(18,2), "
                   "coupon_usage_rate decimal(18,4), orders_last_365d bigint, last_seen_date date")


def contact_row(i: int, high: bool = False, value: str = "10.00") -> dict:
    """One row of sync_hubspot__contacts for customer `i`."""
    return {"email": f"person{i:05d}@shop.test", "hubspot_contact_id": None, "customer_id": f"c{i}",
            "first_name": f"First{i}", "last_name": f"Last{i}", "is_high_value": high,
            "lifetime_value": Decimal(value), "margin": Decimal("1.50"), "coupon_usage_rate": Decimal("0.2500"),
            "orders_last_365d": i % 7, "last_seen_date": dt.date(2026, 11, 1) + dt.timedelta(days=i % 20)}


def write_contacts(rows: list[dict], warehouse: Path | None = None) -> Path:
    """Replace activation.sync_hubspot__contacts in the warehouse with `rows`."""
    warehouse = warehouse or config.warehouse_path()
    with duckdb.connect(str(warehouse)) as con:
        con.execute("create schema if not exists activation")
        con.execute(f"create or replace table activation.sync_hubspot__contacts ({CONTACT_COLUMNS})")
        if rows:
            cols = list(rows[0])
            con.executemany(f"insert into activation.sync_hubspot__contacts ({', '.join(cols)}) "
                            f"values ({', '.join('?' * len(cols))})", [[r[c] for c in cols] for r in rows])
    return warehouse


def hubspot_contacts(sandbox_url: str, token: str = config.DEFAULT_SANDBOX_TOKEN) -> dict[str, dict]:
    """Every live contact in the sandbox by email: its properties."""
    out, after = {}, None
    props = "email,firstname,lastname,gs_is_high_value,gs_lifetime_value,gs_margin,gs_coupon_usage_rate," \
            "gs_orders_last_365d,gs_last_seen_date"
    while True:
        params = {"limit": 100, "properties": props, **({"after": after} if after else {})}
        r = requests.get(f"{sandbox_url}/hubspot/crm/v3/objects/contacts", params=params,
                         headers={"Authorization": f"Bearer {token}"}, timeout=30)
        r.raise_for_status()
        body = r.json()
        for item in body["results"]:
            out[item["properties"]["email"]] = {**item["properties"], "id": item["id"]}
        after = body.get("paging", {}).get("next", {}).get("after")
        if not after:
            return out


def write_counts(sandbox_url: str, object_type: str = "contacts") -> dict:
    """The sandbox's per-record write counts and its rolling window's 429 count."""
    return requests.get(f"{sandbox_url}/hubspot/_sandbox/writes/{object_type}", timeout=10).json()


def expected_properties(row: dict) -> dict:
    """What HubSpot should hold for a model row after the sync."""
    return {"email": row["email"], "firstname": row["first_name"], "lastname": row["last_name"],
            "gs_is_high_value": "true" if row["is_high_value"] else "false",
            "gs_lifetime_value": _number(row["lifetime_value"]), "gs_margin": _number(row["margin"]),
            "gs_coupon_usage_rate": _number(row["coupon_usage_rate"]),
            "gs_orders_last_365d": str(row["orders_last_365d"]),
            "gs_last_seen_date": row["last_seen_date"].isoformat()}


def _number(value: Decimal) -> str:
    return str(int(value)) if value == value.to_integral_value() else str(float(value))


def add_fault(sandbox_url: str, **spec) -> int:
    r = requests.post(f"{sandbox_url}/_admin/faults", json=spec, timeout=10)
    r.raise_for_status()
    return r.json()["id"]


COMPANY_COLUMNS = ("company_domain varchar, hubspot_company_id varchar, company_name varchar, customer_count bigint, "
                   "high_value_customer_count bigint, lifetime_value decimal(18,2)")


def write_companies(rows: list[dict], warehouse: Path | None = None) -> Path:
    """Replace activation.sync_hubspot__companies in the warehouse with `rows`."""
    warehouse = warehouse or config.warehouse_path()
    with duckdb.connect(str(warehouse)) as con:
        con.execute("create schema if not exists activation")
        con.execute(f"create or replace table activation.sync_hubspot__companies ({COMPANY_COLUMNS})")
        for r in rows:
            con.execute("insert into activation.sync_hubspot__companies values (?, ?, ?, ?, ?, ?)",
                        [r["company_domain"], r.get("hubspot_company_id"), r.get("company_name"), r["customer_count"],
                         r["high_value_customer_count"], r["lifetime_value"]])
    return warehouse
