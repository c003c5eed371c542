"""Run retention against a real persistent instance (SQLite storage under a temporary DAGSTER_HOME) with
real runs: old finished runs go, recent ones stay, and an old run that still holds the latest
materialization of an asset partition, or a run not finished, is never deleted."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import dagster as dg
import pytest

from growth_stack_dagster.instance import ensure_dagster_home
from growth_stack_dagster.operate import retention
from growth_stack_dagster.operate.run_retention import run_retention_job

DAYS = dg.StaticPartitionsDefinition(["2026-01-01", "2026-01-02"])


@dg.asset
def plain() -> int:
    return 1


@dg.asset(partitions_def=DAYS)
def daily() -> int:
    return 1


@dg.asset_check(asset=plain)
def plain_is_there() -> dg.AssetCheckResult:
    return dg.AssetCheckResult(passed=True)


@dg.op
def breaks() -> None:
    raise RuntimeError("this run fails on purpose")


@dg.job
def failing_job() -> None:
    breaks()


def _latest_run(instance: dg.DagsterInstance, partition: str | None = None) -> str:
    key = dg.AssetKey("daily" if partition else "plain")
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=key, asset_partitions=[partition] if partition else None), limit=1)
    return records.records[0].event_log_entry.run_id


def test_old_runs_go_recent_ones_stay_and_a_run_holding_a_partitions_latest_state_stays(gs_home: Path) -> None:
    with dg.DagsterInstance.from_config(str(ensure_dagster_home())) as instance:
        old_plain = dg.materialize([plain], instance=instance).run_id
        old_day_1 = dg.materialize([daily], instance=instance, partition_key="2026-01-01").run_id
        old_day_2 = dg.materialize([daily], instance=instance, partition_key="2026-01-02").run_id
        old_check = dg.materialize([plain, plain_is_there], instance=instance).run_id  # plain again, and its check
        old_failure = failing_job.execute_in_process(instance=instance, raise_on_error=False).run_id
        in_progress = instance.add_run(dg.DagsterRun(job_name="still_running", status=dg.DagsterRunStatus.STARTED)).run_id
        time.sleep(1.1)  # run timestamps are stored to the second
        cutoff = dt.datetime.now(dt.timezone.utc)
        time.sleep(1.1)
        recent_plain = dg.materialize([plain], instance=instance).run_id
        recent_day_1 = dg.materialize([daily], instance=instance, partition_key="2026-01-01").run_id

        check_key = dg.AssetCheckKey(dg.AssetKey("plain"), "plain_is_there")
        result = retention.delete_runs_finished_before(instance, cutoff, [check_key])

        assert sorted(result.deleted) == sorted([old_plain, old_day_1, old_failure])
        # day 2 was last materialized by an old run; the check last evaluated in another old one
        assert sorted(result.kept_holding_state) == sorted([old_day_2, old_check])
        remaining = {r.dagster_run.run_id for r in instance.get_run_records()}
        assert remaining == {old_day_2, old_check, in_progress, recent_plain, recent_day_1}
        assert instance.all_logs(old_plain) == [] and instance.all_logs(old_day_2)
        # the asset state the UI and the sensors read still resolves
        assert _latest_run(instance, "2026-01-02") == old_day_2
        assert _latest_run(instance, "2026-01-01") == recent_day_1
        assert _latest_run(instance) == recent_plain
        # a second pass deletes nothing more
        again = retention.delete_runs_finished_before(instance, cutoff, [check_key])
        assert again.deleted == []


def test_the_job_runs_against_the_instance_and_keeps_recent_runs(gs_home: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(retention.RETENTION_DAYS_ENV, "30")
    with dg.DagsterInstance.from_config(str(ensure_dagster_home())) as instance:
        recent = dg.materialize([plain], instance=instance).run_id
        result = run_retention_job.execute_in_process(instance=instance)
        assert result.success and result.output_for_node("delete_old_runs") == 0
        assert instance.get_run_by_id(recent) is not None


@pytest.mark.parametrize("value", ["0", "-3", "thirty", "1.5"])
def test_a_bad_retention_setting_is_a_clear_error(value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(retention.RETENTION_DAYS_ENV, value)
    with pytest.raises(ValueError, match=retention.RETENTION_DAYS_ENV):
        retention.retention_days()


def test_the_default_is_thirty_days(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(retention.RETENTION_DAYS_ENV, raising=False)
    assert retention.retention_days() == 30
    monkeypatch.setenv(retention.RETENTION_DAYS_ENV, "7")
    assert retention.retention_days() == 7
