"""Every asset of the code location explains itself: a group by flow, an owner, a description, and a
freshness policy wherever something materializes it."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import dagster as dg

from growth_stack_dagster.definitions import defs
from growth_stack_dagster.operate.catalog import CONTINUOUS, DAILY, HOURLY, windows_for


def test_every_asset_has_a_group_owner_and_description_and_executable_ones_a_freshness_policy() -> None:
    repo = defs.get_repository_def()
    graph = repo.asset_graph
    specs = {s.key: s for s in defs.resolve_all_asset_specs()}
    assert not [k for k, s in specs.items() if s.group_name in (None, "default")]
    assert not [k for k, s in specs.items() if not s.owners]
    assert not [k for k, s in specs.items() if not s.description]
    executable = {k for k in specs if graph.get(k).is_executable}
    assert not [k for k in executable if specs[k].freshness_policy is None]
    groups = {s.group_name for s in specs.values()}
    assert {"capture", "staging", "identity", "customer_360", "marketing", "finance", "activation", "reports",
            "ingest_hubspot", "ingest_stripe", "ingest_zendesk", "ingest_facebook_ads", "ingest_finance"} <= groups
    # a dlt child table that models read sits with its source, owned, described
    child = specs[dg.AssetKey(["stripe", "invoices__lines"])]
    assert child.group_name == "ingest_stripe" and "invoices" in child.description


def test_freshness_windows_follow_how_each_flow_is_refreshed() -> None:
    assert windows_for("capture") == CONTINUOUS
    assert windows_for("ingest_facebook_ads") == DAILY and windows_for("ingest_hubspot") == HOURLY
    assert windows_for("customer_360") == HOURLY
    specs = {s.key: s for s in defs.resolve_all_asset_specs()}
    policy = specs[dg.AssetKey(["marts", "customers"])].freshness_policy
    assert policy == dg.FreshnessPolicy.time_window(fail_window=dt.timedelta(hours=6), warn_window=dt.timedelta(hours=2))


def test_schedules_and_sensors_are_on_by_default() -> None:
    repo = defs.get_repository_def()
    assert all(s.default_status == dg.DefaultScheduleStatus.RUNNING for s in repo.schedule_defs)
    assert all(s.default_status == dg.DefaultSensorStatus.RUNNING for s in repo.sensor_defs)
    assert {"dbt_hourly_schedule", "executive_scorecard_schedule"} <= {s.name for s in repo.schedule_defs}
    assert "run_failure_alert_sensor" in {s.name for s in repo.sensor_defs}


def test_every_mart_and_activation_model_has_an_enforced_contract_with_described_columns() -> None:
    from growth_stack_dagster.transform.project import dbt_project

    manifest = json.loads(Path(dbt_project.manifest_path).read_text())
    models = [n for n in manifest["nodes"].values() if n["resource_type"] == "model"
              and n["original_file_path"].startswith(("models/marts/", "models/activation/"))]
    names = {m["name"] for m in models}
    assert {"customer_identifiers", "identity_merges", "identity_links", "customers", "sync_hubspot__contacts",
            "sync_zendesk__users"} <= names
    assert not [m["name"] for m in models if not m["config"]["contract"]["enforced"]]
    assert not [m["name"] for m in models if not m["description"].strip()]
    assert not [(m["name"], c["name"]) for m in models for c in m["columns"].values()
                if not (c.get("data_type") or "").strip() or not (c.get("description") or "").strip()]
    # an incremental model under a contract must say what a new column does (dbt refuses "ignore")
    assert not [m["name"] for m in models if m["config"]["materialized"] == "incremental"
                and m["config"].get("on_schema_change") not in ("append_new_columns", "fail")]
    # every sync model is synced by an exposure, and the scorecard is an exposure of the marts it reads
    exposed = {dep for e in manifest["exposures"].values() for dep in e["depends_on"]["nodes"]}
    assert not [m["name"] for m in models if m["name"].startswith("sync_") and m["unique_id"] not in exposed]
    scorecard = [e for e in manifest["exposures"].values() if e["name"] == "executive_scorecard"]
    assert scorecard and all(dep.split(".")[-1] in names for dep in scorecard[0]["depends_on"]["nodes"])
