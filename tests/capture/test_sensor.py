"""The event-file sensor against a real Dagster instance (SQLite in a temporary DAGSTER_HOME) and real
loads into DuckDB: new days, nothing re-requested for days already loaded (as after `growth-stack run`),
an older day's late file (a sensor-triggered backfill), and a restart."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
from dagster_duckdb import DuckDBResource

from growth_stack_dagster import config
from growth_stack_dagster.capture.assets import events_load
from growth_stack_dagster.capture.sensors import (
    BACKFILL_TAG, days_to_load, event_files_sensor, parse_cursor, plan_requests,
)
from tests.capture.payloads import DAY1, DAY2, stamp, write


def evaluate(instance: dg.DagsterInstance, cursor: str | None) -> dg.SensorResult | dg.SkipReason:
    return event_files_sensor(dg.build_sensor_context(cursor=cursor, instance=instance))


def requested(result: dg.SensorResult | dg.SkipReason) -> list[str]:
    return [] if isinstance(result, dg.SkipReason) else sorted(r.partition_key for r in result.run_requests)


def load(instance: dg.DagsterInstance, warehouse: Path, day: str) -> None:
    result = dg.materialize([events_load], partition_key=day, instance=instance,
                            resources={"duckdb": DuckDBResource(database=str(warehouse))})
    assert result.success


def test_sensor_requests_new_days_and_backfills_an_older_day_across_a_restart(gs_home: Path) -> None:
    root = config.events_dir()
    with dg.instance_for_test() as instance:
        assert requested(evaluate(instance, None)) == []

        write(root, "web", DAY1, [stamp({"type": "page", "anonymousId": "a"}, DAY1)])
        write(root, "web", DAY2, [stamp({"type": "page", "anonymousId": "a"}, DAY2)])
        first = evaluate(instance, None)
        assert requested(first) == [DAY1, DAY2]
        assert json.loads(first.cursor)["days"].keys() == {DAY1, DAY2}

        # Nothing new: nothing requested.
        assert requested(evaluate(instance, first.cursor)) == []

        # Restart: a fresh context only has the persisted cursor string. A late file for the older day.
        write(root, "ios", DAY1, [stamp({"type": "screen", "anonymousId": "i", "name": "Home"}, DAY1)])
        # An open (hidden) file is not closed yet and must not trigger anything.
        (root / "source=ios" / f"date={DAY2}").mkdir(parents=True, exist_ok=True)
        (root / "source=ios" / f"date={DAY2}" / ".part-x.jsonl.open").write_bytes(b'{"type":')
        restarted = evaluate(instance, str(first.cursor))
        [req] = restarted.run_requests
        assert req.partition_key == DAY1 and req.tags[BACKFILL_TAG] == "true"
        assert req.run_key != next(r.run_key for r in first.run_requests if r.partition_key == DAY1)
        assert requested(evaluate(instance, restarted.cursor)) == []


def test_days_already_loaded_are_not_requested_but_a_late_file_requests_its_day(gs_home: Path) -> None:
    """What `make demo` does: `growth-stack run` loads every day before the daemon's first tick, whose
    cursor is empty. Nothing is requested for that work; a late file still requests its day."""
    root = config.events_dir()
    warehouse = gs_home / "warehouse.duckdb"
    write(root, "web", DAY1, [stamp({"type": "page", "anonymousId": "a"}, DAY1)])
    write(root, "web", DAY2, [stamp({"type": "page", "anonymousId": "b"}, DAY2)])
    with dg.instance_for_test() as instance:
        load(instance, warehouse, DAY1)
        load(instance, warehouse, DAY2)

        first = evaluate(instance, None)
        assert requested(first) == []
        assert json.loads(first.cursor)["days"].keys() == {DAY1, DAY2}

        # A file closed after DAY1's last load started: that load did not read it.
        write(root, "ios", DAY1, [stamp({"type": "screen", "anonymousId": "i", "name": "Home"}, DAY1)])
        late = evaluate(instance, first.cursor)
        [req] = late.run_requests
        assert req.partition_key == DAY1 and req.tags[BACKFILL_TAG] == "true"

        # The requested run loads it; from a cursor reset to nothing, nothing is requested again.
        load(instance, warehouse, DAY1)
        assert requested(evaluate(instance, None)) == []


def test_the_sensor_waits_for_a_load_under_way(gs_home: Path) -> None:
    root = config.events_dir()
    write(root, "web", DAY1, [stamp({"type": "page", "anonymousId": "a"}, DAY1)])
    with dg.instance_for_test() as instance:
        instance.add_run(dg.DagsterRun(job_name="__ASSET_JOB", run_id="0" * 36, status=dg.DagsterRunStatus.STARTED,
                                       asset_selection=frozenset(events_load.keys)))
        result = evaluate(instance, None)
        assert isinstance(result, dg.SkipReason) and "0" * 36 in result.skip_message


def test_plan_requests_ignores_days_before_the_partitions_start() -> None:
    days, too_old, cursor = plan_requests({"2020-01-01": "1:a", DAY1: "1:b"}, {})
    assert days == [DAY1] and too_old == ["2020-01-01"] and cursor == {"2020-01-01": "1:a", DAY1: "1:b"}
    assert parse_cursor(None) == {}
    days, _, cursor = plan_requests({DAY1: "1:b", "2099-01-01": "1:c"}, {}, last_date=DAY2)
    assert days == [DAY1] and "2099-01-01" not in cursor


def test_days_to_load_compares_file_close_times_with_the_last_load_start() -> None:
    assert days_to_load([DAY1, DAY2], {DAY1: 100.0, DAY2: 100.0}, {DAY1: 101.0}) == [DAY2]
    assert days_to_load([DAY1], {DAY1: 102.0}, {DAY1: 101.0}) == [DAY1]
    assert days_to_load([DAY1], {DAY1: 101.0}, {DAY1: 101.0}) == [DAY1]  # same instant: not proven read
