"""The daily run-retention job and its schedule: a thin wrapper around `operate.retention`, which says what
is deleted and what is always kept."""

import datetime as dt

import dagster as dg

from growth_stack_dagster.operate import retention


@dg.op(description="Deletes finished runs older than $GROWTH_STACK_RUN_RETENTION_DAYS (default 30), keeping every "
                   "run that holds the latest materialization or observation of an asset or partition, the latest "
                   "run of an asset or the latest evaluation of a check.")
def delete_old_runs(context: dg.OpExecutionContext) -> dg.Output[int]:
    """Delete the runs past retention; the output is how many were deleted."""
    days = retention.retention_days()
    cutoff = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=days)
    # The code location's checks; imported here, not at the top, since definitions.py imports this module
    # (the run's process has it loaded already).
    from growth_stack_dagster.definitions import defs
    check_keys = list(defs.get_repository_def().asset_graph.asset_check_keys)
    result = retention.delete_runs_finished_before(context.instance, cutoff, check_keys)
    context.log.info(f"Deleted {len(result.deleted)} run(s) finished before {cutoff:%Y-%m-%d %H:%M} UTC; kept "
                     f"{len(result.kept_holding_state)} older run(s) that hold the latest state of an asset or check.")
    return dg.Output(len(result.deleted), metadata={
        "retention_days": days,
        "cutoff": cutoff.isoformat(),
        "runs_deleted": len(result.deleted),
        "old_runs_kept_holding_asset_state": len(result.kept_holding_state),
    })


@dg.job(name="run_retention_job", tags={"growth_stack/operate": "run_retention"},
        description="Deletes finished runs older than $GROWTH_STACK_RUN_RETENTION_DAYS days (default 30), except "
                    "those holding an asset's or partition's latest state.")
def run_retention_job() -> None:
    delete_old_runs()


# Daily, at a quiet hour between the hourly dbt build (:15) and the scorecard (:45).
run_retention_schedule = dg.ScheduleDefinition(name="run_retention_schedule", job=run_retention_job,
                                               cron_schedule="30 4 * * *", execution_timezone="UTC",
                                               default_status=dg.DefaultScheduleStatus.RUNNING)
