"""A sensor that builds the event-derived dbt models for the days the capture flow has loaded since."""

from __future__ import annotations

import dagster as dg

from growth_stack_dagster.resources import events_daily_partitions

# events_load materializes every capture table for every day it loads: one of them stands for the load.
LOADED_EVENTS_KEY = dg.AssetKey(["events", "tracks"])
# The last of the event models a run builds (it reads the touchpoints): it stands for all of them.
BUILT_MODELS_KEY = dg.AssetKey(["marts", "journey_event_sessions"])
RANGE_START_TAG, RANGE_END_TAG = "dagster/asset_partition_range_start", "dagster/asset_partition_range_end"
UNFINISHED = [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING,
              dg.DagsterRunStatus.STARTED]


def stale_days(loaded: dict[str, int], built: dict[str, int]) -> list[str]:
    """Days whose latest load (event storage id) is newer than their latest event-model build."""
    return sorted(day for day, loaded_id in loaded.items() if built.get(day, 0) < loaded_id)


def run_request(first: str, last: str, run_key: str) -> dg.RunRequest:
    """One run for a day, or one run over a range of days (as a single-run backfill launches it)."""
    if first == last:
        return dg.RunRequest(run_key=run_key, partition_key=first)
    return dg.RunRequest(run_key=run_key, tags={RANGE_START_TAG: first, RANGE_END_TAG: last})


def build_event_models_sensor(job: dg.UnresolvedAssetJobDefinition) -> dg.SensorDefinition:
    @dg.sensor(name="event_models_sensor", job=job, minimum_interval_seconds=30,
               default_status=dg.DefaultSensorStatus.RUNNING,
               description="After the capture flow loads days of events, builds those days' event-derived dbt "
                           "models (one run per range of consecutive days).")
    def event_models_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult | dg.SkipReason:
        """Compares, per day, the latest capture load with the latest event-model build (two lookups,
        whatever the history). A run key names the days and their loads, so a failed run is not
        launched again until one of its days is loaded again (re-run it from the UI)."""
        instance = context.instance
        loaded = instance.get_latest_storage_id_by_partition(LOADED_EVENTS_KEY, dg.DagsterEventType.ASSET_MATERIALIZATION)
        built = instance.get_latest_storage_id_by_partition(
            BUILT_MODELS_KEY, dg.DagsterEventType.ASSET_MATERIALIZATION, partitions=set(loaded))
        days = stale_days(loaded, built)
        if not days:
            return dg.SkipReason("every loaded day's event models are up to date")
        # a run building them may be under way (e.g. `growth-stack run`, a backfill): let it finish first
        for run in instance.get_runs(dg.RunsFilter(statuses=UNFINISHED)):
            if BUILT_MODELS_KEY in (run.asset_selection or set()):
                return dg.SkipReason(f"run {run.run_id} is building event models; waiting for it")
        ranges = events_daily_partitions.subset_with_partition_keys(days).get_partition_key_ranges(
            events_daily_partitions)
        return dg.SensorResult(run_requests=[
            run_request(r.start, r.end, f"{r.start}..{r.end}@{max(loaded[d] for d in days if r.start <= d <= r.end)}")
            for r in ranges])

    return event_models_sensor
