"""Operating the stack: the executive scorecard (asset, job, schedule), the run-failure alert sensor and
the daily run retention (job, schedule).
`catalog.apply_catalog` (freshness policies, owners, descriptions) is applied to the whole code location
in `definitions.py`."""

from __future__ import annotations

import dagster as dg

from growth_stack_dagster.operate.assets import executive_scorecard, scorecard_job, scorecard_schedule
from growth_stack_dagster.operate.run_retention import run_retention_job, run_retention_schedule
from growth_stack_dagster.operate.sensors import run_failure_alert_sensor

# Syncs run when their model updates (AutomationCondition.eager): the sensor that evaluates the conditions
# is on from the start, like every schedule and sensor of the stack.
automation_sensor = dg.AutomationConditionSensorDefinition(
    "automation_condition_sensor", target=dg.AssetSelection.all(), default_status=dg.DefaultSensorStatus.RUNNING,
    description="Evaluates the assets' automation conditions (a sync runs when its sync_* model updates).")

defs = dg.Definitions(assets=[executive_scorecard], jobs=[scorecard_job, run_retention_job],
                      schedules=[scorecard_schedule, run_retention_schedule],
                      sensors=[run_failure_alert_sensor, automation_sensor])
