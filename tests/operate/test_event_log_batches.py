"""`lib.event_log.batch_asset_events` (what `growth-stack run` applies to its instance): a run over a
range of partitions stores each asset's materializations as one batch, and Dagster then reads exactly
what it reads after storing them one by one (partitions, latest materialization, metadata, run logs)."""

# No `from __future__ import annotations` here: Dagster reads the context annotation at runtime.

import os
from pathlib import Path

import dagster as dg
import pytest

from growth_stack_dagster.instance import ensure_dagster_home
from growth_stack_dagster.lib import event_log

DAYS = dg.DailyPartitionsDefinition(start_date="2026-11-01")


@dg.asset(partitions_def=DAYS, backfill_policy=dg.BackfillPolicy.single_run())
def daily_numbers(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    return dg.MaterializeResult(metadata={"days": len(context.partition_keys)})


@dg.asset(partitions_def=DAYS, backfill_policy=dg.BackfillPolicy.single_run(), deps=[daily_numbers])
def daily_totals(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    return dg.MaterializeResult(metadata={"days": len(context.partition_keys)})


def recorded(instance: dg.DagsterInstance, run_id: str) -> dict:
    """What the UI and sensors read back about the run's materializations."""
    out = {}
    for asset in (daily_numbers, daily_totals):
        key = asset.key
        records = instance.fetch_materializations(key, limit=100).records
        out[key.to_user_string()] = {
            "partitions": sorted(instance.get_materialized_partitions(key)),
            "records": sorted((r.partition_key, r.run_id == run_id) for r in records),
            "latest": instance.get_latest_materialization_event(key).dagster_event.partition,
            "metadata": sorted((r.partition_key, r.asset_materialization.metadata["days"].value) for r in records),
        }
    out["run_events"] = sorted(e.dagster_event.event_type_value for e in instance.all_logs(run_id)
                               if e.dagster_event and e.dagster_event.is_step_materialization)
    return out


def run_range(instance: dg.DagsterInstance) -> str:
    result = dg.materialize([daily_numbers, daily_totals], instance=instance,
                            tags={"dagster/asset_partition_range_start": "2026-11-01",
                                  "dagster/asset_partition_range_end": "2026-11-05"})
    assert result.success
    return result.run_id


def test_a_range_is_stored_in_batches_and_reads_back_as_stored_one_by_one(
        gs_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stored: list[int] = []
    original = event_log.store_asset_event_batch
    monkeypatch.setattr(event_log, "store_asset_event_batch",
                        lambda storage, events: (stored.append(len(events)), original(storage, events))[1])

    monkeypatch.delenv("DAGSTER_EVENT_BATCH_SIZE", raising=False)
    with dg.DagsterInstance.from_config(str(ensure_dagster_home())) as instance:
        assert event_log.batch_asset_events(instance)
        assert os.environ["DAGSTER_EVENT_BATCH_SIZE"] == event_log.EVENT_BATCH_SIZE
        batched = recorded(instance, run_range(instance))
    # the planned events (one per asset and day), then one batch of five days per asset
    assert stored == [10, 5, 5]

    # The same run stored event by event (Dagster's default), in another instance.
    monkeypatch.setenv("DAGSTER_EVENT_BATCH_SIZE", "0")
    monkeypatch.setenv("GROWTH_STACK_HOME", str(tmp_path / "one_by_one"))  # without batch_asset_events
    with dg.DagsterInstance.from_config(str(ensure_dagster_home())) as instance:
        one_by_one = recorded(instance, run_range(instance))
    assert stored == [10, 5, 5]
    assert batched == one_by_one
    assert batched["daily_numbers"]["partitions"] == [f"2026-11-0{d}" for d in range(1, 6)]
    assert batched["daily_totals"]["latest"] == "2026-11-05" and len(batched["run_events"]) == 10
