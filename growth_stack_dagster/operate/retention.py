"""Run retention for the persistent instance: Dagster keeps every run and its event log forever, and its
dagster.yaml has no setting for that (only tick retention), so a daily job deletes finished runs older than
`$GROWTH_STACK_RUN_RETENTION_DAYS` (default 30).

Deleting a run deletes its event log, and the asset state the UI shows and the sensors read (the latest
materialization of each asset and of each partition, the latest observation, the latest run of an asset,
the latest evaluation of a check) points into those events. So a run that holds any of them is kept
however old it is, and so is every run that has not finished.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterable
from dataclasses import dataclass

import dagster as dg

RETENTION_DAYS_ENV = "GROWTH_STACK_RUN_RETENTION_DAYS"
DEFAULT_RETENTION_DAYS = 30
FINISHED = [dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED]
_STORAGE_ID_BATCH = 500


def retention_days() -> int:
    """Days a finished run is kept, from `$GROWTH_STACK_RUN_RETENTION_DAYS` (default 30)."""
    raw = os.environ.get(RETENTION_DAYS_ENV, "").strip()
    if not raw:
        return DEFAULT_RETENTION_DAYS
    try:
        days = int(raw)
    except ValueError:
        days = 0
    if days < 1:
        raise ValueError(f"{RETENTION_DAYS_ENV} is {raw!r}: set it to a whole number of days, 1 or more "
                         f"(or unset it for the default, {DEFAULT_RETENTION_DAYS}).")
    return days


def runs_holding_asset_state(instance: dg.DagsterInstance,
                             check_keys: Iterable[dg.AssetCheckKey] = ()) -> set[str]:
    """The ids of the runs whose events are the latest state of some asset, partition or check in the
    instance: latest materialization and observation (per asset and per partition), the asset's latest
    run (also a planned or failed one), and the latest execution of each check in `check_keys`."""
    holding: set[str] = set()
    for record in instance.get_asset_records():
        entry = record.asset_entry
        for event_record in (entry.last_materialization_record, entry.last_observation_record,
                             entry.last_failed_to_materialize_record):
            if event_record is not None:
                holding.add(event_record.event_log_entry.run_id)
        for run_id in (entry.last_run_id, entry.last_planned_materialization_run_id):
            if run_id:
                holding.add(run_id)
        for event_type, fetch in ((dg.DagsterEventType.ASSET_MATERIALIZATION, instance.fetch_materializations),
                                  (dg.DagsterEventType.ASSET_OBSERVATION, instance.fetch_observations)):
            storage_ids = sorted(set(instance.get_latest_storage_id_by_partition(entry.asset_key, event_type).values()))
            for start in range(0, len(storage_ids), _STORAGE_ID_BATCH):
                batch = storage_ids[start:start + _STORAGE_ID_BATCH]
                result = fetch(dg.AssetRecordsFilter(asset_key=entry.asset_key, storage_ids=batch), limit=len(batch))
                holding.update(r.event_log_entry.run_id for r in result.records)
    check_keys = list(check_keys)
    if check_keys:
        executions = instance.event_log_storage.get_latest_asset_check_execution_by_key(check_keys)
        holding.update(execution.run_id for execution in executions.values())
    return holding


@dataclass(frozen=True)
class RetentionResult:
    deleted: list[str]
    kept_holding_state: list[str]


def delete_runs_finished_before(instance: dg.DagsterInstance, cutoff: dt.datetime,
                                check_keys: Iterable[dg.AssetCheckKey] = ()) -> RetentionResult:
    """Delete every finished run (success, failure, canceled) last updated before `cutoff`, except the
    runs holding asset state (`runs_holding_asset_state`). Runs not finished are never touched."""
    candidates = instance.get_run_records(filters=dg.RunsFilter(statuses=FINISHED, updated_before=cutoff),
                                          ascending=True)
    if not candidates:
        return RetentionResult(deleted=[], kept_holding_state=[])
    holding = runs_holding_asset_state(instance, check_keys)
    deleted, kept = [], []
    for record in candidates:
        run_id = record.dagster_run.run_id
        if run_id in holding:
            kept.append(run_id)
        else:
            instance.delete_run(run_id)
            deleted.append(run_id)
    return RetentionResult(deleted=deleted, kept_holding_state=kept)
