"""`dbt build --select +customer_traits+` on a real DuckDB file holding a small, known company:
the customer 360, the computed traits and the activation contract, checked row by row."""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

import duckdb
import pytest

from tests.dbt_marts import company

pytestmark = pytest.mark.timeout(900)


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> duckdb.DuckDBPyConnection:
    home = tmp_path_factory.mktemp("gs_marts")
    company.write_events(home / "events")
    company.load_events(home)
    company.create_api_tables(home / "warehouse.duckdb")
    result = company.dbt_build(home, "+customer_traits+", company.AS_OF, home)
    assert result.returncode == 0, result.stdout[-6000:]
    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    yield con
    con.close()


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


def test_only_ann_is_high_value_and_each_near_miss_fails_its_own_criterion(warehouse):
    traits = _traits(warehouse)
    assert {name for name, t in traits.items() if t["is_high_value"]} == {"ann"}
    assert (traits["bob"]["orders_last_365d"], float(traits["bob"]["order_total_last_365d"])) == (5, 100.0)
    assert not traits["bob"]["meets_orders_criterion"] and traits["bob"]["meets_age_criterion"]
    assert (traits["cy"]["age"], traits["cy"]["meets_age_criterion"], traits["cy"]["meets_orders_criterion"]) == (46, False, True)
    assert (traits["dee"]["active_weeks"], traits["dee"]["meets_activity_criterion"]) == (3, False)
    assert traits["dee"]["meets_orders_criterion"] and traits["dee"]["meets_age_criterion"]
    assert (traits["eve"]["meets_activity_criterion"], traits["eve"]["lifetime_orders"]) == (True, 0)
    assert all(str(t["as_of_date"]) == company.AS_OF for t in traits.values())


def test_money_traits_come_from_stripe_and_sku_costs(warehouse):
    ann = _traits(warehouse)["ann"]
    assert float(ann["order_total_last_365d"]) == pytest.approx(100.01)
    assert float(ann["lifetime_value"]) == pytest.approx(100.01)
    assert float(ann["margin"]) == pytest.approx(100.01 - 5 * 8.00)  # one tee per order at the January cost
    assert ann["coupon_usage_rate"] == pytest.approx(0.2)
    assert ann["days_since_last_seen"] == 8  # last page view Feb 24, as_of Mar 4
    assert (ann["lead_qualified"], ann["customer_type"]) == (True, "retail")


def test_customer_360_survivorship_and_aggregates(warehouse):
    cur = warehouse.execute("select * from marts.customers where customer_id = ?",
                            [_customer_of(warehouse, "user_id", "u_1001")])
    ann = dict(zip([d[0] for d in cur.description], cur.fetchone()))
    # HubSpot is the system of record for email and names; the email is normalised
    assert (ann["email"], ann["first_name"], ann["full_name"]) == ("ann@shop.io", "Ann", "Ann Example")
    assert (ann["age"], str(ann["date_of_birth"]), ann["customer_type"], ann["lead_qualified"]) == (35, "1990-05-05", "retail", True)
    assert (ann["account_manager_name"], ann["account_manager_email"]) == ("Olivia Owner", "olivia.owner@shop.io")
    assert ann["company_name"] == "Shop Ltd"
    assert (ann["orders"], float(ann["revenue"]), float(ann["discounts"]), float(ann["cost"])) == (5, 100.01, 5.0, 40.0)
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
    hubspot = dict(q("select email, is_high_value from activation.sync_hubspot__contacts").fetchall())
    assert hubspot == {"ann@shop.io": True, "bob@shop.io": False, "cy@shop.io": False, "dee@shop.io": False}
    audience = q("select email_sha256 from activation.sync_facebook__high_value_audience").fetchall()
    assert audience == [(hashlib.sha256(b"ann@shop.io").hexdigest(),)]
    assert dict(q("select user_id, is_high_value from activation.sync_amplitude__user_properties").fetchall()) == {
        "u_1001": True, "u_1002": False, "u_1003": False, "u_1004": False}
    assert sorted(q("select customerio_id from activation.sync_customerio__people").fetchall()) == [
        ("u_1001",), ("u_1002",), ("u_1003",), ("u_1004",)]
    zendesk = q("select email, zendesk_user_id, name from activation.sync_zendesk__users where is_high_value").fetchall()
    assert zendesk == [("ann@shop.io", "9001", "Ann Example")]


def test_a_malformed_as_of_is_refused_with_a_sentence(tmp_path: Path):
    result = subprocess.run(
        [str(company.DBT), "compile", "--project-dir", "dbt_project", "--profiles-dir", "dbt_project",
         "--select", "customer_traits", "--vars", '{"as_of": "03/02/2026"}',
         "--target-path", str(tmp_path / "target"), "--log-path", str(tmp_path / "logs")],
        cwd=company.REPO, env={**os.environ, "GROWTH_STACK_HOME": str(tmp_path)}, capture_output=True, text=True,
        timeout=600)
    assert result.returncode != 0
    assert "The dbt var as_of must be a date written YYYY-MM-DD (or empty for today), not '03/02/2026'" in result.stdout
