"""End to end: the sandbox and the collector as servers on loopback, a small example company,
then `growth-stack run` (every flow once) into a real DuckDB file, checked against the sandbox's
own state and the simulator's ground truth. The company is built once per session (`built_company`
in tests/conftest.py) and shared with the Dagster UI tests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest


# The first test's setup builds the shared company: minutes on an idle machine, over ten on a busy one.
pytestmark = pytest.mark.timeout(1500)


@pytest.fixture(scope="module")
def company(built_company):
    """The session's built company (tests/conftest.py: 60 customers, 40 days, every flow run once);
    (home, the sandbox's counts before the build)."""
    return built_company["home"], built_company["stats"]


def query(home: Path, sql: str):
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as con:
        return con.execute(sql).fetchall()


def test_every_schema_is_loaded(company):
    home, _ = company
    schemas = {r[0] for r in query(home, "select distinct table_schema from information_schema.tables")}
    assert {"events", "hubspot", "stripe", "facebook_ads", "zendesk", "finance", "staging", "intermediate",
            "marts", "activation"} <= schemas


def test_raw_tables_hold_what_the_sandbox_holds(company):
    home, stats = company
    objects = stats["objects"]
    assert query(home, "select count(*) from hubspot.contacts where not archived")[0][0] == objects["hubspot"]["contacts"]
    assert query(home, "select count(*) from stripe.customers")[0][0] == objects["stripe"]["customers"]
    assert query(home, "select count(*) from stripe.invoices")[0][0] == objects["stripe"]["invoices"]
    assert query(home, "select count(*) from zendesk.tickets")[0][0] == objects["zendesk"]["tickets"]


def test_events_are_loaded_once_and_orders_come_from_paid_invoices(company):
    home, stats = company
    pages = query(home, "select count(*), count(distinct id) from events.pages")[0]
    assert pages[0] > 0 and pages[0] == pages[1]
    # every invoice paid since the history began sent its invoice.paid webhook, which became exactly one
    # Order Completed track (older purchases, a year before, exist only in Stripe's API)
    history_start = json.loads((home / "simulation" / "summary.json").read_text())["params"]["history_start"]
    invoices = query(home, "select count(*) from stripe.invoices where to_timestamp(status_transitions__paid_at) "
                           f">= timestamptz '{history_start} 00:00:00+00'")[0][0]
    assert invoices > 0
    assert query(home, "select count(*), count(distinct order_id) from events.order_completed")[0] == (invoices, invoices)


def test_the_journey_holds_every_sales_call_of_a_known_contact(company):
    home, stats = company
    calls = stats["objects"]["hubspot"]["calls"]
    assert calls > 0
    # the simulator logs each call with one contact, every contact is a customer
    assert query(home, "select count(*) from hubspot.call_contact_associations")[0][0] == calls
    assert query(home, "select count(*), count(distinct customer_id) > 1 from marts.customer_journey "
                       "where touchpoint_type = 'sales_call' and channel = 'sales'")[0] == (calls, True)


def test_high_value_customers_match_the_simulator(company):
    """Person by person: a ground-truth high-value person is exactly one customer, and high-value; nobody else is."""
    home, _ = company
    truth = [json.loads(line) for line in (home / "simulation" / "ground_truth.jsonl").read_text().splitlines()]
    customer_of = {(t, v): c for t, v, c in query(
        home, "select identifier_type, identifier_value, customer_id from marts.customer_identifiers")}
    traits = dict(query(home, "select customer_id, is_high_value from marts.customer_traits"))
    as_of = {str(r[0]) for r in query(home, "select distinct strftime(as_of_at, '%Y-%m-%dT%H:%M:%S') from marts.customer_traits")}
    assert as_of == {t["as_of"][:19] for t in truth}  # the build evaluated traits at the truth's moment
    expected, actual = set(), set()
    for person in truth:
        ids = person["identifiers"]
        keys = [("anonymous_id", a) for a in ids["anonymous_id"]] + [("email", e.strip().lower()) for e in ids["email"]]
        keys += [("stripe_customer_id", s) for s in ids["stripe_customer_id"]]
        keys += [(t, str(ids[t])) for t in ("user_id", "hubspot_contact_id", "zendesk_user_id",
                                            "customerio_id") if ids[t] is not None]
        customers = {customer_of[k] for k in keys if k in customer_of}
        if person["is_high_value"]:
            expected.add(person["person_key"])
            assert len(customers) == 1, f"{person['person_key']} (high-value) is {len(customers)} customers"
        if any(traits.get(c) for c in customers):
            actual.add(person["person_key"])
    assert expected, "the simulation has no high-value person: the comparison would prove nothing"
    assert actual == expected, f"missing {sorted(expected - actual)}, extra {sorted(actual - expected)}"
    audience = query(home, "select count(distinct customer_id) from activation.sync_facebook__high_value_audience")[0][0]
    assert audience == query(home, "select count(*) from marts.customer_traits where is_high_value")[0][0]


def test_event_models_are_built_per_received_day_as_dagster_partitions(company):
    """`growth-stack run` builds the partitioned dbt event models for every loaded day: the touchpoints
    cover each day with events, and Dagster records every one of those days as a materialized partition."""
    import dagster as dg

    home, _ = company
    loaded_days = {str(r[0]) for r in query(
        home, "select distinct cast(timezone('UTC', received_at) as date) from events.pages")}
    built_days = {str(r[0]) for r in query(
        home, "select distinct received_date from marts.journey_event_touchpoints where touchpoint_type = 'page_view'")}
    assert loaded_days and built_days == loaded_days
    # every page view of the warehouse is one touchpoint
    assert query(home, "select count(*) from marts.journey_event_touchpoints where touchpoint_type = 'page_view'") == \
        query(home, "select count(*) from events.pages where coalesce(context_library_name, '') <> 'growth-stack-webhooks'")
    with dg.DagsterInstance.from_config(str(home / "dagster_home")) as instance:
        for key in (["marts", "journey_event_touchpoints"], ["marts", "journey_event_sessions"]):
            partitions = instance.get_materialized_partitions(dg.AssetKey(key))
            assert loaded_days <= partitions, key


def test_a_day_rebuilt_by_the_daily_job_changes_nothing(company):
    """The job the event-models sensor launches, run for one day from the Dagster CLI: the staging
    views and that day's touchpoints and sessions are rebuilt, to the same rows."""
    home, _ = company
    day = query(home, "select cast(max(received_date) as varchar) from marts.journey_event_touchpoints")[0][0]
    snapshot = "select touchpoint_id, session_id, received_date from marts.journey_event_touchpoints order by 1"
    before = query(home, snapshot)
    built_before = _materializations(home, ["marts", "journey_event_sessions"], day)
    env = {**os.environ, "GROWTH_STACK_HOME": str(home), "DAGSTER_HOME": str(home / "dagster_home")}
    # Run from the company's folder: the dagster CLI loads a .env of its working folder over the environment
    # (`growth-stack init` writes one in the repository root for a bare `dagster dev`).
    result = subprocess.run([str(Path(sys.executable).with_name("dagster")), "job", "execute", "-m",
                             "growth_stack_dagster.definitions", "-j", "dbt_events_daily",
                             "--tags", json.dumps({"dagster/partition": day})],
                            env=env, cwd=home, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    assert "RUN_SUCCESS" in result.stdout + result.stderr
    assert _materializations(home, ["marts", "journey_event_sessions"], day) == built_before + 1
    assert query(home, snapshot) == before


def test_dbt_models_carry_their_column_types_and_sql_models_their_column_lineage(company):
    """Each dbt model's materialization holds its columns with their types; a SQL model also holds each
    column's lineage back to the columns it reads. The Python model (identity components) has types but
    no lineage, and building it printed no parser traceback to the terminal."""
    import dagster as dg

    home, _ = company
    with dg.DagsterInstance.from_config(str(home / "dagster_home")) as instance:
        def metadata(*key: str) -> dict:
            return instance.get_latest_materialization_event(dg.AssetKey(list(key))).asset_materialization.metadata

        traits = metadata("marts", "customer_traits")
        columns = {c.name: c.type for c in traits["dagster/column_schema"].value.columns}
        assert columns["is_high_value"].upper() == "BOOLEAN"
        lineage = traits["dagster/column_lineage"].value.deps_by_column
        assert dg.TableColumnDep(asset_key=dg.AssetKey(["marts", "customers"]), column_name="date_of_birth") \
            in lineage["age"]
        identifiers = metadata("marts", "customer_identifiers")["dagster/column_lineage"].value.deps_by_column
        assert [d.asset_key for d in identifiers["customer_id"]] == [dg.AssetKey(["intermediate", "int_identity_components"])]

        components = metadata("intermediate", "int_identity_components")
        assert "customer_id" in {c.name for c in components["dagster/column_schema"].value.columns}
        assert "dagster/column_lineage" not in components
    printed = (home / "run.stderr").read_text()
    assert "Lineage metadata will not be included" not in printed and "Traceback" not in printed, printed[-3000:]


def _materializations(home: Path, key: list[str], partition: str) -> int:
    import dagster as dg

    with dg.DagsterInstance.from_config(str(home / "dagster_home")) as instance:
        return len(instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=dg.AssetKey(key), asset_partitions=[partition]), limit=1000).records)
