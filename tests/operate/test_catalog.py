"""Every asset of the code location explains itself: a group by flow, an owner, a description, and a
freshness policy wherever something materializes it."""

from __future__ import annotations

import datetime as dt

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
