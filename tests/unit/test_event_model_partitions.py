"""The partitioned dbt event models: their dates, their job and the sensor that follows capture loads."""

from __future__ import annotations

import datetime as dt

import dagster as dg

from growth_stack_dagster.transform.partitions import MAX_DATE_ENV, MIN_DATE_ENV, environ, partition_dates
from growth_stack_dagster.transform.sensors import BUILT_MODELS_KEY, LOADED_EVENTS_KEY, stale_days


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


def test_stale_days_are_loaded_after_their_last_build():
    assert stale_days({}, {}) == []
    assert stale_days({"2026-03-02": 10, "2026-03-01": 5, "2026-03-03": 7}, {"2026-03-01": 6, "2026-03-03": 3}) == \
        ["2026-03-02", "2026-03-03"]


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


def test_the_sensor_requests_days_loaded_since_their_models_were_built():
    from growth_stack_dagster.definitions import defs

    sensor = defs.get_sensor_def("event_models_sensor")
    with dg.instance_for_test() as instance:
        def event(key: dg.AssetKey, *days: str) -> None:
            for day in days:
                instance.report_runless_asset_event(dg.AssetMaterialization(key, partition=day))

        def tick():
            return sensor(dg.build_sensor_context(instance=instance, definitions=defs))

        assert isinstance(tick(), dg.SkipReason)
        event(LOADED_EVENTS_KEY, "2026-03-01", "2026-03-02", "2026-03-05")
        requests = tick().run_requests
        assert [(r.partition_key, r.tags.get("dagster/asset_partition_range_start"),
                 r.tags.get("dagster/asset_partition_range_end")) for r in requests] == \
            [(None, "2026-03-01", "2026-03-02"), ("2026-03-05", None, None)]
        # the same loads give the same run keys: Dagster launches each once, also after a failure
        assert [r.run_key for r in tick().run_requests] == [r.run_key for r in requests]
        # built after their load (as `growth-stack run` does): nothing to do; reloaded: its day again
        event(BUILT_MODELS_KEY, "2026-03-01", "2026-03-02", "2026-03-05")
        assert isinstance(tick(), dg.SkipReason)
        event(LOADED_EVENTS_KEY, "2026-02-10")
        assert [r.partition_key for r in tick().run_requests] == ["2026-02-10"]


def test_the_sensor_waits_while_a_run_builds_event_models():
    from growth_stack_dagster.definitions import defs

    sensor = defs.get_sensor_def("event_models_sensor")
    with dg.instance_for_test() as instance:
        instance.report_runless_asset_event(dg.AssetMaterialization(LOADED_EVENTS_KEY, partition="2026-03-01"))
        job = defs.resolve_job_def("dbt_events_daily")
        run = instance.create_run_for_job(job, asset_selection=frozenset({BUILT_MODELS_KEY}),
                                          status=dg.DagsterRunStatus.STARTED)
        result = sensor(dg.build_sensor_context(instance=instance, definitions=defs))
        assert isinstance(result, dg.SkipReason) and run.run_id in result.skip_message
