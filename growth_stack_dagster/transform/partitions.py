"""The received dates a partition run of the event-derived dbt models rebuilds, passed to dbt."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
from collections.abc import Iterator

import dagster as dg

# Read by the dbt macro `events_date_range`: the received dates a partition run rebuilds. Env vars, not
# --vars: dbt re-parses the whole project whenever --vars change, while the macro reads these only at
# run time, so a partition run re-parses nothing.
MIN_DATE_ENV, MAX_DATE_ENV = "GROWTH_STACK_EVENTS_MIN_DATE", "GROWTH_STACK_EVENTS_MAX_DATE"


def partition_dates(window: dg.TimeWindow) -> dict[str, str]:
    """The env vars naming the received dates of a partition time window (end exclusive) as an
    inclusive [min, max] range of YYYY-MM-DD dates."""
    first = window.start.date()
    last = (window.end - dt.timedelta(days=1)).date()
    return {MIN_DATE_ENV: first.isoformat(), MAX_DATE_ENV: last.isoformat()}


@contextlib.contextmanager
def environ(values: dict[str, str]) -> Iterator[None]:
    """Set environment variables for the dbt subprocess started inside the block, then restore them.
    Process-wide: safe because Dagster runs one step per process (or steps one after another)."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old
