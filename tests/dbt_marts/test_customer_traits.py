"""`dbt build --select +customer_traits+` on a real DuckDB file holding a small, known company:
the customer 360, the computed traits and the activation contract, checked row by row."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
import subprocess
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from tests.dbt_marts import company

pytestmark = pytest.mark.timeout(900)


@pytest.fixture(scope="module")
def _build(tmp_path_factory: pytest.TempPathFactory):
    home = tmp_path_factory.mktemp("gs_marts")
    company.write_events(home / "events")
    company.load_events(home)
    company.create_api_tables(home / "warehouse.duckdb")
    result = company.dbt_build(home, "+customer_traits+ +exec_daily_metrics +customer_revenue_by_currency "
                                     "+customer_trait_discards+ +high_value_customers_daily", company.AS_OF, home)
    assert result.returncode == 0, result.stdout[-6000:]
    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    yield con, result
    con.close()


@pytest.fixture(scope="module")
def built(_build):
    return _build[1]


@pytest.fixture(scope="module")
def warehouse(_build):
    return _build[0]


def _customer_of(con: duckdb.DuckDBPyConnection, identifier_type: str, value: str) -> str:
    rows = con.execute("select customer_id from marts.customer_identifiers where identifier_type = ? "
                       "and identifier_value = ?", [identifier_type, value]).fetchall()
    assert len(rows) == 1, (identifier_type, value, rows)
    return rows[0][0]


def _traits(con: duckdb.DuckDBPyConnection) -> dict[str, dict]:
    cur = con.execute("select * from marts.customer_traits")
    names = [d[0] for d in cur.description]
    by_id = {row[0]: dict(zip(names, row)) for row in cur.fetchall()}
    return {name: by_id[_customer_of(con, "anonymous_id", p["anonymous_id"])] for name, p in company.PEOPLE.items()}


def test_high_value_follows_the_rule_on_every_boundary(warehouse):
    traits = _traits(warehouse)
    assert {name for name, t in traits.items() if t["is_high_value"]} == company.HIGH_VALUE
    # five of exactly 100.00 and six of 90.00: no purchase is over 100.00
    for name, orders in (("bob", 5), ("fay", 6)):
        assert (traits[name]["orders_last_365d"], traits[name]["high_value_orders_last_365d"]) == (orders, 0), name
        assert not traits[name]["meets_orders_criterion"] and traits[name]["meets_age_criterion"], name
    # a purchase exactly at as_of - 365 days is outside the year, one second later inside
    assert (traits["gus"]["orders_last_365d"], traits["gus"]["lifetime_orders"], traits["gus"]["meets_orders_criterion"]) == (4, 5, False)
    assert (traits["hal"]["orders_last_365d"], traits["hal"]["meets_orders_criterion"]) == (5, True)
    # a purchase an hour before as_of counts
    assert (traits["ivy"]["orders_last_365d"], traits["ivy"]["meets_orders_criterion"]) == (5, True)
    # ages on the birthday: 24 and 46 fail, 25 and 45 pass
    ages = {name: (traits[name]["age"], traits[name]["meets_age_criterion"]) for name in ("kim", "ivy", "jo", "cy")}
    assert ages == {"kim": (24, False), "ivy": (25, True), "jo": (45, True), "cy": (46, False)}
    assert traits["cy"]["meets_orders_criterion"]
    assert (traits["dee"]["active_weeks"], traits["dee"]["meets_activity_criterion"]) == (3, False)
    assert traits["dee"]["meets_orders_criterion"] and traits["dee"]["meets_age_criterion"]
    assert (traits["eve"]["meets_activity_criterion"], traits["eve"]["lifetime_orders"]) == (True, 0)
    assert all(str(t["as_of_date"]) == company.AS_OF_DATE for t in traits.values())
    assert {t["as_of_at"].isoformat() for t in traits.values()} == {"2026-03-04T15:00:00+00:00"}


def test_an_unreadable_date_of_birth_is_counted_and_warned_about(warehouse, built):
    traits = _traits(warehouse)
    assert (traits["max"]["age"], traits["max"]["meets_age_criterion"]) == (None, False)
    discards = warehouse.execute("select customer_id, trait_name, source_record_id, raw_value from "
                                 "marts.customer_trait_discards").fetchall()
    assert discards == [(traits["max"]["customer_id"], "date_of_birth", "112", "31/12/1990")]
    assert "WARN 1 assert_no_unreadable_customer_traits" in built.stdout


def test_money_traits_come_from_stripe_and_sku_costs(warehouse):
    traits = _traits(warehouse)
    ann = traits["ann"]
    assert ann["high_value_orders_last_365d"] == 5
    assert (ann["lifetime_value"], ann["reporting_currency"]) == (Decimal("500.05"), "USD")
    assert ann["margin"] == Decimal("500.05") - 5 * Decimal("8.00")  # one tee per order at the January cost
    assert ann["coupon_usage_rate"] == pytest.approx(0.2)
    assert ann["days_since_last_seen"] == 8  # last page view Feb 24, as_of Mar 4
    assert (ann["lead_qualified"], ann["customer_type"]) == (True, "retail")
    # Jo pays in yen: JPY 20,000 at USD/JPY 160 is 125.00 USD; the USD 8.00 tee costs JPY 1,280
    assert traits["jo"]["lifetime_value"] == 5 * Decimal("125.00")
    assert traits["jo"]["margin"] == 5 * Decimal("117.00")


def test_revenue_is_never_added_across_currencies(warehouse):
    rows = warehouse.execute("select currency, sum(lifetime_value_minor), sum(lifetime_orders) from "
                             "marts.customer_revenue_by_currency group by currency order by currency").fetchall()
    usd = sum(sum(p["invoices"]) for p in company.PEOPLE.values() if p.get("invoices") and p.get("currency", "usd") == "usd")
    usd_orders = sum(len(p["invoices"]) for p in company.PEOPLE.values() if p.get("invoices") and p.get("currency", "usd") == "usd")
    assert rows == [("JPY", 100_000, 5), ("USD", usd, usd_orders)]
    daily = warehouse.execute("select currency, sum(revenue_minor), sum(revenue) from marts.exec_daily_metrics "
                              "group by currency order by currency").fetchall()
    assert daily == [("JPY", 100_000, Decimal("100000")), ("USD", usd, Decimal(usd) / 100)]
    assert warehouse.execute("select count(distinct order_date), count(*) from marts.exec_daily_metrics "
                             "where currency = 'JPY'").fetchone() == (26, 26)


def test_customer_360_survivorship_and_aggregates(warehouse):
    cur = warehouse.execute("select * from marts.customers where customer_id = ?",
                            [_customer_of(warehouse, "user_id", "u_1001")])
    ann = dict(zip([d[0] for d in cur.description], cur.fetchone()))
    # HubSpot is the system of record for email and names; the email is normalised
    assert (ann["email"], ann["first_name"], ann["full_name"]) == ("ann@shop.io", "Ann", "Ann Example")
    assert (ann["age"], str(ann["date_of_birth"]), ann["customer_type"], ann["lead_qualified"]) == (35, "1990-05-05", "retail", True)
    assert (ann["account_manager_name"], ann["account_manager_email"]) == ("Olivia Owner", "olivia.owner@shop.io")
    assert ann["company_name"] == "Shop Ltd"
    assert (ann["orders"], ann["revenue"], ann["discounts"], ann["cost"]) == (5, Decimal("500.05"), Decimal("5.00"), Decimal("40.00"))
    assert (ann["support_tickets"], ann["open_support_tickets"]) == (1, 1)
    assert (ann["devices"], ann["platforms"], ann["first_touch_channel"]) == (1, "web", "facebook / paid_social")
    assert ann["page_views"] == 4
    assert (ann["emails_delivered"], ann["emails_opened"], ann["email_open_rate"]) == (2, 1, 0.5)
    assert (ann["stripe_customer_id"], ann["hubspot_contact_id"], ann["zendesk_user_id"]) == ("cus_Ann0000000001", "101", "9001")


def test_customer_360_sums_the_hubspot_deals_of_the_customers_contacts(warehouse):
    deals = warehouse.execute("select deals, open_deals, won_deal_amount from marts.customers where customer_id = ?",
                              [_customer_of(warehouse, "hubspot_contact_id", "102")]).fetchone()
    assert (deals[0], deals[1], float(deals[2])) == (2, 1, 1200.5)


def test_crm_segmentation_reaches_every_identity_of_the_person(warehouse):
    rows = warehouse.execute("select identifier_type, lead_qualified, customer_type from marts.customer_identifier_traits "
                             "where customer_id = ? order by identifier_type",
                             [_customer_of(warehouse, "hubspot_contact_id", "102")]).fetchall()
    assert {r[0] for r in rows} >= {"anonymous_id", "user_id", "email", "hubspot_contact_id", "stripe_customer_id"}
    assert {(r[1], r[2]) for r in rows} == {(False, "wholesale")}


def test_activation_contract(warehouse):
    q = warehouse.execute
    known = {name: p for name, p in company.PEOPLE.items() if "contact_id" in p}
    hubspot = dict(q("select email, is_high_value from activation.sync_hubspot__contacts").fetchall())
    assert hubspot == {p["email"].strip().lower(): name in company.HIGH_VALUE for name, p in known.items()}
    audience = sorted(r[0] for r in q("select email_sha256 from activation.sync_facebook__high_value_audience").fetchall())
    assert audience == sorted(hashlib.sha256(company.PEOPLE[n]["email"].strip().lower().encode()).hexdigest()
                              for n in company.HIGH_VALUE)
    assert dict(q("select user_id, is_high_value from activation.sync_amplitude__user_properties").fetchall()) == {
        p["user_id"]: name in company.HIGH_VALUE for name, p in known.items()}
    zendesk = q("select email, zendesk_user_id, name from activation.sync_zendesk__users where is_high_value "
                "order by email").fetchall()
    assert zendesk == sorted((company.PEOPLE[n]["email"].strip().lower(), "9001" if n == "ann" else None,
                              f"{n.title()} Example") for n in company.HIGH_VALUE)


def _compile_traits(tmp_path: Path, dbt_vars: str | None = None, **env: str) -> subprocess.CompletedProcess:
    argv = [str(company.DBT), "compile", "--project-dir", "dbt_project", "--profiles-dir", "dbt_project",
            "--select", "customer_traits", "--target-path", str(tmp_path / "target"), "--log-path", str(tmp_path / "logs")]
    environment = {k: v for k, v in os.environ.items() if k != "GROWTH_STACK_AS_OF"}
    return subprocess.run(argv + (["--vars", dbt_vars] if dbt_vars else []), cwd=company.REPO,
                          env={**environment, "GROWTH_STACK_HOME": str(tmp_path), **env},
                          capture_output=True, text=True, timeout=600)


def _compiled_as_of(tmp_path: Path) -> dt.datetime:
    sql = next((tmp_path / "target").rglob("customer_traits.sql")).read_text()
    literal = re.search(r"cast\('([0-9-]+ [0-9:.]+)\+00' as timestamp with time zone\) as as_of_at", sql).group(1)
    return dt.datetime.fromisoformat(literal).replace(tzinfo=dt.timezone.utc)


def test_as_of_defaults_to_the_moment_of_the_build_and_can_be_pinned(tmp_path: Path):
    before = dt.datetime.now(dt.timezone.utc)
    result = _compile_traits(tmp_path / "default")
    after = dt.datetime.now(dt.timezone.utc)
    assert result.returncode == 0, result.stdout[-3000:]
    assert before - dt.timedelta(seconds=1) <= _compiled_as_of(tmp_path / "default") <= after  # not midnight
    result = _compile_traits(tmp_path / "env", GROWTH_STACK_AS_OF="2026-03-02T10:15:30Z")
    assert result.returncode == 0, result.stdout[-3000:]
    assert _compiled_as_of(tmp_path / "env") == dt.datetime(2026, 3, 2, 10, 15, 30, tzinfo=dt.timezone.utc)


def test_a_malformed_as_of_is_refused_with_a_sentence(tmp_path: Path):
    result = _compile_traits(tmp_path, '{"as_of": "03/02/2026"}')
    assert result.returncode != 0
    assert ("The dbt var as_of must be a date written YYYY-MM-DD or a timestamp written YYYY-MM-DDTHH:MM:SSZ "
            "(or empty for the moment of the build), not '03/02/2026'") in result.stdout


def _copy_warehouse(con: duckdb.DuckDBPyConnection, home: Path) -> None:
    home.mkdir()
    path = con.execute("select path from duckdb_databases() where database_name = current_database()").fetchone()[0]
    (home / "warehouse.duckdb").write_bytes(Path(path).read_bytes())


def _history(con: duckdb.DuckDBPyConnection) -> dict[dt.date, tuple[dt.datetime, int]]:
    rows = con.execute("select day, evaluated_at, high_value_customers from marts.high_value_customers_daily").fetchall()
    return {day: (at, n) for day, at, n in rows}


def _high_value_by_rule(con: duckdb.DuckDBPyConnection, day: dt.date, at: dt.datetime,
                        min_orders: int = 5, max_age: int = 45) -> set[str]:
    """The rule evaluated by hand, in Python, for one moment: who is high-value at `at` (on the UTC date `day`)."""
    births = dict(con.execute("select customer_id, date_of_birth from marts.customers").fetchall())
    orders: dict[str, int] = {}
    for customer_id, paid_at, total_minor, decimals in con.execute(
            "select customer_id, paid_at, total_minor, currency_decimals from marts.customer_orders "
            "where customer_id is not null").fetchall():
        if at - dt.timedelta(days=365) < paid_at <= at and total_minor > 100 * 10 ** decimals:
            orders[customer_id] = orders.get(customer_id, 0) + 1
    pages: dict[str, set[dt.date]] = {}
    for customer_id, occurred_date in con.execute(
            "select customer_id, occurred_date from intermediate.int_app_messages_attributed "
            "where message_type = 'page' and customer_id is not null").fetchall():
        pages.setdefault(customer_id, set()).add(occurred_date)
    monday = day - dt.timedelta(days=day.weekday())
    weeks = [monday - dt.timedelta(days=7 * k) for k in range(1, 5)]

    def age(born: dt.date) -> int:
        return day.year - born.year - ((born.month, born.day) > (day.month, day.day))

    return {c for c, n in orders.items()
            if n >= min_orders and births.get(c) is not None and 25 <= age(births[c]) <= max_age
            and all(any(w <= d <= w + dt.timedelta(days=6) for d in pages.get(c, ())) for w in weeks)}


def test_high_value_history_counts_each_day_at_its_end(warehouse):
    history = _history(warehouse)
    as_of = dt.datetime(2026, 3, 4, 15, tzinfo=dt.timezone.utc)
    # the data start a year back (Gus's purchase at as_of - 365 days), so the history is capped at 365 days
    assert min(history) == dt.date(2025, 3, 5) and max(history) == as_of.date() and len(history) == 365
    # every day but the last is evaluated at its last microsecond; the last, partial day at as_of
    assert history[as_of.date()][0] == as_of
    assert history[dt.date(2026, 3, 3)][0] == dt.datetime(2026, 3, 3, 23, 59, 59, 999999, tzinfo=dt.timezone.utc)
    assert history[dt.date(2025, 3, 5)][0] == dt.datetime(2025, 3, 5, 23, 59, 59, 999999, tzinfo=dt.timezone.utc)
    counts = {day: n for day, (_, n) in history.items() if n}
    # Mar 2: the four weeks Feb 2 - Mar 1 are complete. Ann, Gus, Hal, Cy (45) and Jo (44) hold on Mar 2 and 3;
    # on Mar 4 Gus's fifth purchase has left the year, Cy is 46, and Ivy (25 today, fifth purchase today) joins.
    # Dee (no page view Feb 16-22) never holds; Kim is 23 then 24.
    assert counts == {dt.date(2026, 3, 2): 5, dt.date(2026, 3, 3): 5, dt.date(2026, 3, 4): 4}
    traits_count = warehouse.execute("select count(*) filter (where is_high_value) from marts.customer_traits").fetchone()[0]
    assert history[as_of.date()][1] == traits_count == len(company.HIGH_VALUE)


def test_high_value_history_agrees_with_the_rule_on_every_day(warehouse):
    history = _history(warehouse)
    for day, (at, n) in sorted(history.items()):
        assert n == len(_high_value_by_rule(warehouse, day, at)), day


def test_high_value_history_row_equals_the_traits_built_at_that_moment(warehouse, tmp_path: Path):
    """customer_traits rebuilt as of the end of Mar 3 counts what the history says for Mar 3."""
    home = tmp_path / "home"
    _copy_warehouse(warehouse, home)
    result = company.dbt_build(home, "customer_traits high_value_customers_daily", "2026-03-03T23:59:59.999999Z", home)
    assert result.returncode == 0, result.stdout[-6000:]
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as con:
        traits = con.execute("select count(*) filter (where is_high_value), max(as_of_at) from marts.customer_traits").fetchone()
        rebuilt = _history(con)
    end_of_mar_3 = dt.datetime(2026, 3, 3, 23, 59, 59, 999999, tzinfo=dt.timezone.utc)
    assert traits == (_history(warehouse)[dt.date(2026, 3, 3)][1], end_of_mar_3) == (5, end_of_mar_3)
    assert rebuilt[dt.date(2026, 3, 3)] == (end_of_mar_3, 5)
    # the same rows as the build at Mar 4 15:00 for every day before Mar 3
    assert {d: v for d, v in rebuilt.items() if dt.date(2025, 3, 5) <= d < dt.date(2026, 3, 3)} == \
        {d: v for d, v in _history(warehouse).items() if d < dt.date(2026, 3, 3)}


def test_high_value_history_follows_the_same_vars_as_the_traits(warehouse, tmp_path: Path):
    """With 4 purchases and ages up to 46, Gus (4 in the year) and Cy (46 today) are high-value at as_of too."""
    home = tmp_path / "home"
    _copy_warehouse(warehouse, home)
    dbt_vars = {"as_of": company.AS_OF, "high_value_min_orders": 4, "high_value_max_age": 46}
    result = subprocess.run(
        [str(company.DBT), "run", "--project-dir", "dbt_project", "--profiles-dir", "dbt_project",
         "--select", "customer_traits high_value_customers_daily", "--vars", json.dumps(dbt_vars),
         "--target-path", str(home / "target"), "--log-path", str(home / "logs")],
        cwd=company.REPO, env={**os.environ, "GROWTH_STACK_HOME": str(home)}, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-6000:]
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as con:
        traits = con.execute("select count(*) filter (where is_high_value) from marts.customer_traits").fetchone()[0]
        history = _history(con)
        assert traits == history[dt.date(2026, 3, 4)][1] == len(company.HIGH_VALUE | {"gus", "cy"})
        for day, (at, n) in sorted(history.items()):
            assert n == len(_high_value_by_rule(con, day, at, min_orders=4, max_age=46)), day
