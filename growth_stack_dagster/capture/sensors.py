"""A sensor that requests a day's load when closed event files appear for it.

The cursor is JSON `{"days": {"YYYY-MM-DD": "<count>:<digest of file names>"}}`, stored by Dagster,
so it survives restarts. A new file for an older day changes that day's digest and re-requests it:
a sensor-triggered backfill.
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


def day_fingerprints(events_root: Path) -> dict[str, str]:
    """{day: "<count>:<sha1 of the sorted closed file paths>"} for every day with closed files."""
    by_day: dict[str, list[str]] = {}
    for f in eventfiles.closed_files(events_root):
        parsed = eventfiles.parse_closed_path(f)
        if parsed:
            by_day.setdefault(parsed[1], []).append(f.relative_to(events_root).as_posix())
    return {day: f"{len(names)}:{hashlib.sha1(chr(10).join(sorted(names)).encode()).hexdigest()[:16]}"
            for day, names in by_day.items()}


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
    """(days to load, days before the partitions' start that are ignored, new cursor days).

    Days after `last_date` (the last partition that exists yet) are left out of the cursor, so
    they are requested once their partition exists.
    """
    ready = {d: fp for d, fp in fingerprints.items() if last_date is None or d <= last_date}
    changed = sorted(d for d, fp in ready.items() if seen.get(d) != fp)
    too_old = [d for d in changed if d < start_date]
    return [d for d in changed if d >= start_date], too_old, {**seen, **ready}


@dg.sensor(name="event_files_sensor", job=capture_job, minimum_interval_seconds=30,
           default_status=dg.DefaultSensorStatus.RUNNING,
           description="Requests the day's capture load when new closed event files appear (also for older days).")
def event_files_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult:
    """Compare the event files on disk with the cursor and request each changed day once."""
    seen = parse_cursor(context.cursor)
    last_date = (dt.datetime.now(dt.timezone.utc).date() + dt.timedelta(days=1)).isoformat()  # end_offset=1
    days, too_old, new_days = plan_requests(day_fingerprints(config.events_dir()), seen, last_date=last_date)
    if too_old:
        context.log.warning(f"event files for {too_old} are before {resources.EVENTS_START_DATE}; "
                            "move EVENTS_START_DATE earlier to load them.")
    latest = max(new_days) if new_days else None
    requests = [dg.RunRequest(run_key=f"{day}:{new_days[day]}", partition_key=day,
                              tags={BACKFILL_TAG: str(day != latest and day in seen).lower()})
                for day in days]
    return dg.SensorResult(run_requests=requests, cursor=json.dumps({"days": new_days}, sort_keys=True))
