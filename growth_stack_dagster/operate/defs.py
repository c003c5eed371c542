"""Operating the stack: the executive scorecard (asset, job, schedule) and the run-failure alert sensor.
`catalog.apply_catalog` (freshness policies, owners, descriptions) is applied to the whole code location
in `definitions.py`."""

from __future__ import annotations

import dagster as dg

from growth_stack_dagster.operate.assets import executive_scorecard, scorecard_job, scorecard_schedule
from growth_stack_dagster.operate.sensors import run_failure_alert_sensor

defs = dg.Definitions(assets=[executive_scorecard], jobs=[scorecard_job], schedules=[scorecard_schedule],
                      sensors=[run_failure_alert_sensor])
