"""Capture flow definitions (no resources bound: `definitions.py` binds `duckdb`)."""

from __future__ import annotations

import dagster as dg

from growth_stack_dagster.capture.assets import capture_job, events_load
from growth_stack_dagster.capture.sensors import event_files_sensor

defs = dg.Definitions(assets=[events_load], sensors=[event_files_sensor], jobs=[capture_job])
