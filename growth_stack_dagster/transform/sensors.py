"""A sensor that builds the event-derived dbt models for the days the capture flow has just loaded."""

from __future__ import annotations

import dagster as dg
from dagster._core.events import DagsterEventType

# events_load materializes every capture table for every day it loads: one of them stands for the load.
LOADED_EVENTS_KEY = dg.AssetKey(["events", "tracks"])
# A day whose event models were materialized after its load (e.g. by `growth-stack run`) is not redone.
BUILT_MODELS_KEY = dg.AssetKey(["marts", "journey_event_sessions"])
RANGE_START_TAG, RANGE_END_TAG = "dagster/asset_partition_range_start", "dagster/asset_partition_range_end"


def contiguous_ranges(days: list[str]) -> list[tuple[str, str]]:
    """Sorted distinct YYYY-MM-DD days grouped into inclusive (first, last) runs of consecutive days."""
    import datetime as dt

    ranges: list[tuple[str, str]] = []
    for day in sorted(set(days)):
        if ranges and dt.date.fromisoformat(day) - dt.date.fromisoformat(ranges[-1][1]) == dt.timedelta(days=1):
            ranges[-1] = (ranges[-1][0], day)
        else:
            ranges.append((day, day))
    return ranges


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
        """The cursor is the storage id of the last capture materialization already acted on; a day
        whose models were materialized after its latest load is up to date and left alone."""
        after = int(context.cursor) if context.cursor else None
        records = context.instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=LOADED_EVENTS_KEY, after_storage_id=after), limit=10_000,
            ascending=True).records
        if not records:
            return dg.SkipReason("no event day loaded since the last run request")
        last_id = records[-1].storage_id
        loaded: dict[str, int] = {}
        for r in records:
            if r.partition_key:
                loaded[r.partition_key] = max(loaded.get(r.partition_key, 0), r.storage_id)
        built = context.instance.get_latest_storage_id_by_partition(
            BUILT_MODELS_KEY, DagsterEventType.ASSET_MATERIALIZATION, partitions=set(loaded))
        days = [day for day, loaded_id in loaded.items() if built.get(day, 0) < loaded_id]
        requests = [run_request(first, last, f"{first}..{last}@{last_id}") for first, last in contiguous_ranges(days)]
        return dg.SensorResult(run_requests=requests, cursor=str(last_id))

    return event_models_sensor
