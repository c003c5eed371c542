"""The event-file sensor: new days, an older day's late file (backfill), and a restart."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg

from growth_stack_dagster import config
from growth_stack_dagster.capture.sensors import BACKFILL_TAG, event_files_sensor, parse_cursor, plan_requests
from tests.capture.payloads import DAY1, DAY2, stamp, write


def evaluate(cursor: str | None) -> dg.SensorResult:
    return event_files_sensor(dg.build_sensor_context(cursor=cursor))


def test_sensor_requests_new_days_and_backfills_an_older_day_across_a_restart(gs_home: Path) -> None:
    root = config.events_dir()
    assert evaluate(None).run_requests == []

    write(root, "web", DAY1, [stamp({"type": "page", "anonymousId": "a"}, DAY1)])
    write(root, "web", DAY2, [stamp({"type": "page", "anonymousId": "a"}, DAY2)])
    first = evaluate(None)
    assert sorted(r.partition_key for r in first.run_requests) == [DAY1, DAY2]
    assert json.loads(first.cursor)["days"].keys() == {DAY1, DAY2}

    # Nothing new: nothing requested.
    assert evaluate(first.cursor).run_requests == []

    # Restart: a fresh context only has the persisted cursor string. A late file for the older day.
    write(root, "ios", DAY1, [stamp({"type": "screen", "anonymousId": "i", "name": "Home"}, DAY1)])
    # An open (hidden) file is not closed yet and must not trigger anything.
    (root / "source=ios" / f"date={DAY2}").mkdir(parents=True, exist_ok=True)
    (root / "source=ios" / f"date={DAY2}" / ".part-x.jsonl.open").write_bytes(b'{"type":')
    restarted = evaluate(str(first.cursor))
    [req] = restarted.run_requests
    assert req.partition_key == DAY1 and req.tags[BACKFILL_TAG] == "true"
    assert req.run_key != next(r.run_key for r in first.run_requests if r.partition_key == DAY1)
    assert evaluate(restarted.cursor).run_requests == []


def test_plan_requests_ignores_days_before_the_partitions_start() -> None:
    days, too_old, cursor = plan_requests({"2020-01-01": "1:a", DAY1: "1:b"}, {})
    assert days == [DAY1] and too_old == ["2020-01-01"] and cursor == {"2020-01-01": "1:a", DAY1: "1:b"}
    assert parse_cursor(None) == {}
    days, _, cursor = plan_requests({DAY1: "1:b", "2099-01-01": "1:c"}, {}, last_date=DAY2)
    assert days == [DAY1] and "2099-01-01" not in cursor
