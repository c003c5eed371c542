"""The partitioned dbt event models: their dates, their job and the sensor that follows capture loads."""

from __future__ import annotations

import datetime as dt

import dagster as dg

from growth_stack_dagster.transform.partitions import MAX_DATE_ENV, MIN_DATE_ENV, environ, partition_dates
from growth_stack_dagster.transform.sensors import BUILT_MODELS_KEY, LOADED_EVENTS_KEY, contiguous_ranges


def test_a_partition_window_is_an_inclusive_date_range():
    utc = dt.timezone.utc
    one_day = dg.TimeWindow(dt.datetime(2026, 3, 1, tzinfo=utc), dt.datetime(2026, 3, 2, tzinfo=utc))
    assert partition_dates(one_day) == {MIN_DATE_ENV: "2026-03-01", MAX_DATE_ENV: "2026-03-01"}
    many = dg.TimeWindow(dt.datetime(2026, 2, 27, tzinfo=utc), dt.datetime(2026, 3, 3, tzinfo=utc))
    assert partition_dates(many) == {MIN_DATE_ENV: "2026-02-27", MAX_DATE_ENV: "2026-03-02"}


def test_environ_restores_what_was_there(monkeypatch):
    import os

    monkeypatch.setenv(MIN_DATE_ENV, "before")
    monkeypatch.delenv(MAX_DATE_ENV, raising=False)
    with environ({MIN_DATE_ENV: "2026-01-01", MAX_DATE_ENV: "2026-01-02"}):
        assert (os.environ[MIN_DATE_ENV], os.environ[MAX_DATE_ENV]) == ("2026-01-01", "2026-01-02")
    assert os.environ[MIN_DATE_ENV] == "before" and MAX_DATE_ENV not in os.environ


def test_consecutive_days_group_into_ranges():
    assert contiguous_ranges([]) == []
    assert contiguous_ranges(["2026-03-01", "2026-02-28", "2026-03-01", "2026-03-03"]) == \
        [("2026-02-28", "2026-03-01"), ("2026-03-03", "2026-03-03")]
    assert contiguous_ranges(["2024-12-31", "2025-01-01"]) == [("2024-12-31", "2025-01-01")]


def test_event_models_are_daily_partitions_and_their_job_rebuilds_the_staging_views_first():
    from growth_stack_dagster.definitions import defs
    from growth_stack_dagster.resources import events_daily_partitions
    from growth_stack_dagster.transform.defs import event_models_selection

    graph = defs.resolve_asset_graph()
    touchpoints = dg.AssetKey(["marts", "journey_event_touchpoints"])
    assert graph.get(touchpoints).partitions_def == events_daily_partitions
    assert graph.get(dg.AssetKey(["marts", "customers"])).partitions_def is None
    assert graph.get(dg.AssetKey(["staging", "stg_events__pages"])).partitions_def is None
    job = defs.resolve_job_def("dbt_events_daily")
    keys = {k.to_user_string() for k in job.asset_layer.executable_asset_keys}
    assert {"marts/journey_event_touchpoints", "marts/journey_event_sessions", "staging/stg_events__pages",
            "staging/stg_events__email_opened"} <= keys
    assert not any(k.startswith(("events/", "marts/customers")) for k in keys)
    # dbt tests of the event models are asset checks of the partitioned assets, run by the day's job;
    # those of the staging views (whole-table scans) run hourly
    assert any(c.asset_key == touchpoints for c in graph.asset_check_keys)
    selected = {c.asset_key.to_user_string() for c in event_models_selection.resolve_checks(graph)}
    assert "marts/journey_event_touchpoints" in selected and "staging/stg_events__pages" not in selected


def test_the_sensor_requests_the_days_capture_loaded_once():
    from growth_stack_dagster.definitions import defs

    sensor = defs.get_sensor_def("event_models_sensor")
    with dg.instance_for_test() as instance:
        def load(*days: str) -> None:
            for day in days:
                instance.report_runless_asset_event(dg.AssetMaterialization(LOADED_EVENTS_KEY, partition=day))

        assert isinstance(sensor(dg.build_sensor_context(instance=instance, definitions=defs)), dg.SkipReason)
        load("2026-03-01", "2026-03-02", "2026-03-05")
        result = sensor(dg.build_sensor_context(instance=instance, definitions=defs))
        requests = result.run_requests
        assert [(r.partition_key, r.tags.get("dagster/asset_partition_range_start"),
                 r.tags.get("dagster/asset_partition_range_end")) for r in requests] == \
            [(None, "2026-03-01", "2026-03-02"), ("2026-03-05", None, None)]
        # the next tick starts after its cursor: only the newly loaded (older) day
        load("2026-02-10")
        again = sensor(dg.build_sensor_context(instance=instance, cursor=result.cursor, definitions=defs))
        assert [r.partition_key for r in again.run_requests] == ["2026-02-10"]
        assert isinstance(sensor(dg.build_sensor_context(instance=instance, cursor=again.cursor, definitions=defs)),
                          dg.SkipReason)
        # a day whose models were built after its load (as `growth-stack run` does) is not requested again
        load("2026-04-01", "2026-04-02")
        instance.report_runless_asset_event(dg.AssetMaterialization(BUILT_MODELS_KEY, partition="2026-04-01"))
        last = sensor(dg.build_sensor_context(instance=instance, cursor=again.cursor, definitions=defs))
        assert [r.partition_key for r in last.run_requests] == ["2026-04-02"]
