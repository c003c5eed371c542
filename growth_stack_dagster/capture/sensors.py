"""A sensor that requests a day's load when closed event files appear for it that its last load
did not read.

The cursor is JSON `{"days": {"YYYY-MM-DD": "<count>:<digest of file names>"}}`, stored by Dagster,
so it survives restarts; only days whose digest changed are looked at again. Such a day is requested
unless its latest load (a materialization of `events.tracks` for that partition, from any run: the
sensor, a backfill, `growth-stack run`) started after the last of its files was closed. So after
`growth-stack run` nothing is requested for work already done, while a file that arrives later for an
older day re-requests that day: a sensor-triggered backfill.
"""

import datetime as dt
import hashlib
import json
from collections.abc import Mapping
from pathlib import Path

import dagster as dg

from growth_stack_dagster import config, eventfiles, resources
from growth_stack_dagster.capture.assets import capture_job

BACKFILL_TAG = "growth_stack/backfill"
# events_load materializes every capture table for every day it loads: one of them stands for the load.
LOADED_EVENTS_KEY = dg.AssetKey(["events", "tracks"])
UNFINISHED = [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING,
              dg.DagsterRunStatus.STARTED]


def day_files(events_root: Path) -> dict[str, tuple[str, float]]:
    """{day: (fingerprint, closed_at)} for every day with closed files: the fingerprint is
    "<count>:<sha1 of the sorted closed file paths>", closed_at the latest time one of them was
    closed (its inode change time: a file is renamed to its final name when closed)."""
    by_day: dict[str, list[Path]] = {}
    for f in eventfiles.closed_files(events_root):
        parsed = eventfiles.parse_closed_path(f)
        if parsed:
            by_day.setdefault(parsed[1], []).append(f)
    out: dict[str, tuple[str, float]] = {}
    for day, files in by_day.items():
        names = sorted(f.relative_to(events_root).as_posix() for f in files)
        closed_at = 0.0
        for f in files:
            try:
                closed_at = max(closed_at, f.stat().st_ctime)
            except FileNotFoundError:  # deleted since the listing: the next tick sees the new set
                continue
        out[day] = (f"{len(names)}:{hashlib.sha1(chr(10).join(names).encode()).hexdigest()[:16]}", closed_at)
    return out


def day_fingerprints(events_root: Path) -> dict[str, str]:
    """{day: "<count>:<sha1 of the sorted closed file paths>"} for every day with closed files."""
    return {day: fp for day, (fp, _) in day_files(events_root).items()}


def parse_cursor(cursor: str | None) -> dict[str, str]:
    """The {day: fingerprint} saved in the cursor ({} for none); raises ValueError if corrupt."""
    if not cursor:
        return {}
    try:
        days = json.loads(cursor)["days"]
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"event-file sensor cursor is not the expected JSON: {cursor[:200]!r}; "
                         "reset the sensor's cursor from the UI to reload every day.") from exc
    return {str(k): str(v) for k, v in days.items()}


def plan_requests(fingerprints: Mapping[str, str], seen: Mapping[str, str],
                  start_date: str = resources.EVENTS_START_DATE,
                  last_date: str | None = None) -> tuple[list[str], list[str], dict[str, str]]:
    """(days whose files changed since the cursor, days before the partitions' start that are
    ignored, new cursor days).

    Days after `last_date` (the last partition that exists yet) are left out of the cursor, so
    they are requested once their partition exists.
    """
    ready = {d: fp for d, fp in fingerprints.items() if last_date is None or d <= last_date}
    changed = sorted(d for d, fp in ready.items() if seen.get(d) != fp)
    too_old = [d for d in changed if d < start_date]
    return [d for d in changed if d >= start_date], too_old, {**seen, **ready}


def days_to_load(changed: list[str], closed_at: Mapping[str, float],
                 load_started_at: Mapping[str, float]) -> list[str]:
    """The changed days that their latest load has not read: never loaded, or a file of the day was
    closed after that load started (a load lists the day's files after it starts)."""
    return [d for d in changed if d not in load_started_at or closed_at.get(d, 0.0) >= load_started_at[d]]


def latest_load_starts(instance: dg.DagsterInstance, days: list[str]) -> dict[str, float]:
    """{day: start time of the run of its latest load} for the days that were ever loaded."""
    if not days:
        return {}
    storage_ids = instance.get_latest_storage_id_by_partition(
        LOADED_EVENTS_KEY, dg.DagsterEventType.ASSET_MATERIALIZATION, partitions=set(days))
    if not storage_ids:
        return {}
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=LOADED_EVENTS_KEY, storage_ids=list(storage_ids.values())),
        limit=len(storage_ids)).records
    run_of = {r.storage_id: r.run_id for r in records}
    runs = {r.dagster_run.run_id: r for r in instance.get_run_records(
        dg.RunsFilter(run_ids=sorted(set(run_of.values()))))}
    starts: dict[str, float] = {}
    for day, storage_id in storage_ids.items():
        run = runs.get(run_of.get(storage_id, ""))
        # a run without a recorded start time cannot vouch for what it read: the day is loaded again
        if run is not None and run.start_time is not None:
            starts[day] = run.start_time
    return starts


def capture_run_under_way(instance: dg.DagsterInstance) -> str | None:
    """The id of an unfinished run that loads event days (which the sensor waits for), or None."""
    for run in instance.get_runs(dg.RunsFilter(statuses=UNFINISHED)):
        if LOADED_EVENTS_KEY in (run.asset_selection or set()):
            return run.run_id
    return None


@dg.sensor(name="event_files_sensor", job=capture_job, minimum_interval_seconds=30,
           default_status=dg.DefaultSensorStatus.RUNNING,
           description="Requests a day's capture load when closed event files appear that its last load did "
                       "not read (also for older days: a sensor-triggered backfill).")
def event_files_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult | dg.SkipReason:
    """Compare the event files on disk with the cursor, then each changed day with its latest load,
    and request each day its latest load did not read once."""
    seen = parse_cursor(context.cursor)
    last_date = (dt.datetime.now(dt.timezone.utc).date() + dt.timedelta(days=1)).isoformat()  # end_offset=1
    files = day_files(config.events_dir())
    changed, too_old, new_days = plan_requests({d: fp for d, (fp, _) in files.items()}, seen, last_date=last_date)
    if too_old:
        context.log.warning(f"event files for {too_old} are before {resources.EVENTS_START_DATE}; "
                            "move EVENTS_START_DATE earlier to load them.")
    if not changed:
        return dg.SkipReason("no new closed event files")
    # A load under way (e.g. `growth-stack run`) may be reading these very files: look again once it ends.
    running = capture_run_under_way(context.instance)
    if running:
        return dg.SkipReason(f"run {running} is loading events; waiting for it before comparing files")
    starts = latest_load_starts(context.instance, changed)
    days = days_to_load(changed, {d: files[d][1] for d in changed}, starts)
    latest = max(new_days) if new_days else None
    # a day loaded before that is not the newest: a late file, i.e. a backfill of that day
    requests = [dg.RunRequest(run_key=f"{day}:{new_days[day]}", partition_key=day,
                              tags={BACKFILL_TAG: str(day != latest and (day in seen or day in starts)).lower()})
                for day in days]
    return dg.SensorResult(run_requests=requests, cursor=json.dumps({"days": new_days}, sort_keys=True))

