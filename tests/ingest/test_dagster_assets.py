"""The ingest assets in Dagster: keys equal dbt source keys, groups, pool, tags, jobs, schedules,
the finance sensor, and a real materialization with rows-loaded metadata."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import dagster as dg
from dagster_dlt import DagsterDltResource

from growth_stack_dagster import config
from growth_stack_dagster.ingest.assets import ingest_assets
from growth_stack_dagster.ingest.defs import defs
from growth_stack_dagster.ingest.sensors import finance_drop_sensor, new_finance_exports
from growth_stack_dagster.resources import WAREHOUSE_POOL, WRITER_TAGS, default_retry_policy

EXPECTED_KEYS = {
    ("hubspot", t) for t in ("contacts", "companies", "deals", "calls", "owners",
                             "contact_company_associations", "deal_contact_associations",
                             "call_contact_associations")
} | {("stripe", t) for t in ("customers", "products", "prices", "coupons", "invoices", "charges")} | {
    ("facebook_ads", "campaigns"), ("facebook_ads", "campaign_insights"),
    ("zendesk", "tickets"), ("zendesk", "users"),
    ("finance", "sku_costs"), ("finance", "exchange_rates"), ("finance", "discards"),
}


def test_asset_keys_groups_pool_and_tags() -> None:
    keys = {tuple(k.path) for a in ingest_assets for k in a.keys}
    assert keys == EXPECTED_KEYS
    for assets_def in ingest_assets:
        schema = next(iter(assets_def.keys)).path[0]
        assert set(assets_def.group_names_by_key.values()) == {f"ingest_{schema}"}
        assert assets_def.op.name == f"{schema}_raw"
        assert assets_def.op.pool == WAREHOUSE_POOL
        assert WRITER_TAGS.items() <= dict(assets_def.op.tags).items()
        assert all(not spec.deps for spec in assets_def.specs)


def test_jobs_schedules_and_sensor_are_defined() -> None:
    repo = dg.Definitions.merge(defs, dg.Definitions(resources={"dlt": DagsterDltResource()}))
    schedules = {s.name: s for s in repo.schedules}
    assert schedules["ingest_hubspot_schedule"].cron_schedule == "5 * * * *"
    assert schedules["ingest_finance_schedule"].cron_schedule == "30 6 * * *"
    assert len(schedules) == 5
    job = repo.resolve_job_def("ingest_stripe_job")
    assert {tuple(k.path) for k in job.asset_layer.selected_asset_keys} == {k for k in EXPECTED_KEYS if k[0] == "stripe"}
    assert job.op_retry_policy == default_retry_policy
    assert [s.name for s in repo.sensors] == ["finance_drop_sensor"]


def test_finance_sensor_requests_a_run_per_new_export(finance_drop: Path) -> None:
    assert new_finance_exports(finance_drop, None) == ([], "{}")
    (finance_drop / "sku_costs_2026-01-01.csv").write_text("sku,unit_cost,currency,effective_date\n")
    result = finance_drop_sensor(dg.build_sensor_context(cursor=None))
    assert len(result.run_requests) == 1
    assert json.loads(result.cursor).keys() == {"sku_costs_2026-01-01.csv"}
    again = finance_drop_sensor(dg.build_sensor_context(cursor=result.cursor))
    assert isinstance(again, dg.SkipReason)


def test_finance_sensor_first_tick_skips_exports_the_pipeline_already_loaded(finance_drop: Path) -> None:
    """After a load (as `growth-stack run` does before the daemon's first tick), the sensor's first tick
    requests nothing for the files loaded; a file dropped or changed since is still requested."""
    from growth_stack_dagster.ingest.pipelines import build_source, make_pipeline

    loaded = finance_drop / "sku_costs_2026-01-01.csv"
    loaded.write_text("sku,unit_cost,currency,effective_date\nSKU1,4.20,USD,2026-01-01\n")
    make_pipeline("finance").run(build_source("finance"))
    first = finance_drop_sensor(dg.build_sensor_context(cursor=None))
    assert isinstance(first, dg.SkipReason), first
    later = finance_drop / "exchange_rates_2026-01-02.csv"
    later.write_text("base_currency,quote_currency,rate,effective_date\nUSD,EUR,0.92,2026-01-02\n")
    result = finance_drop_sensor(dg.build_sensor_context(cursor=None))
    assert len(result.run_requests) == 1
    assert result.run_requests[0].tags["growth_stack/finance_files"] == "exchange_rates_2026-01-02.csv"
    assert json.loads(result.cursor).keys() == {loaded.name, later.name}


def test_materialize_loads_every_source_with_row_metadata(seeded: dict[str, Any], finance_drop: Path) -> None:
    (finance_drop / "sku_costs_2026-01-01.csv").write_text(
        "sku,unit_cost,currency,effective_date\nSKU1,4.20,USD,2026-01-01\nSKU2,x,USD,2026-01-01\n")
    result = dg.materialize(ingest_assets, resources={"dlt": DagsterDltResource()})
    assert result.success
    by_key = {tuple(m.asset_key.path): m.metadata for m in result.get_asset_materialization_events()
              for m in [m.event_specific_data.materialization]}
    assert set(by_key) == EXPECTED_KEYS
    assert by_key[("hubspot", "contacts")]["rows_loaded"].value == len(seeded["hubspot"]["contacts"])
    assert by_key[("stripe", "invoices")]["rows_loaded_by_table"].value["invoices__lines"] == sum(
        len(i["lines"]["data"]) for i in seeded["stripe"]["invoices"])
    assert by_key[("finance", "discards")]["rows_loaded"].value == 1
    assert by_key[("zendesk", "tickets")]["dagster/table_name"].value == "duckdb.zendesk.tickets"
    # no credential reaches run metadata
    assert config.sandbox_token() not in json.dumps({str(k): str(v) for k, v in by_key.items()})

    # a subset run loads only the selected table, and a rerun reports zero new rows
    again = dg.materialize(ingest_assets, resources={"dlt": DagsterDltResource()},
                           selection=dg.AssetSelection.assets(["zendesk", "tickets"]))
    events = again.get_asset_materialization_events()
    assert [tuple(e.asset_key.path) for e in events] == [("zendesk", "tickets")]
    assert events[0].event_specific_data.materialization.metadata["rows_loaded"].value == 0
