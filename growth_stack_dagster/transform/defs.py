"""The compute flow: the dbt project as two asset definitions, their jobs, schedule and sensor.

    growth_stack_dbt_models        every model but the event-derived ones; the hourly schedule
    growth_stack_dbt_event_models  the `events_daily` models, partitioned by received date; built
                                   with their staging views by the sensor after each capture load
"""

from __future__ import annotations

import dagster as dg

from growth_stack_dagster.capture.assets import CAPTURE_GROUP
from growth_stack_dagster.transform.assets import growth_stack_dbt_event_models, growth_stack_dbt_models
from growth_stack_dagster.transform.sensors import build_event_models_sensor

dbt_hourly_job = dg.define_asset_job("dbt_hourly", selection=dg.AssetSelection.assets(growth_stack_dbt_models))

# The event models with their tests, and the staging views between them and the capture tables: views
# over whole tables, recreated first so that a table new that day is read at once. The views' own tests
# scan every day, so they run in the hourly job, not in each day's.
_event_models = dg.AssetSelection.assets(growth_stack_dbt_event_models)
event_models_selection = (
    (_event_models.upstream() - dg.AssetSelection.groups(CAPTURE_GROUP)).without_checks()
    | dg.AssetSelection.checks_for_assets(growth_stack_dbt_event_models)
)
dbt_events_daily_job = dg.define_asset_job(
    "dbt_events_daily", selection=event_models_selection,
    description="Build the event-derived dbt models (and their staging views) for days of received events.")

defs = dg.Definitions(
    assets=[growth_stack_dbt_models, growth_stack_dbt_event_models],
    jobs=[dbt_hourly_job, dbt_events_daily_job],
    schedules=[dg.ScheduleDefinition(name="dbt_hourly_schedule", job=dbt_hourly_job, cron_schedule="15 * * * *",
                                     execution_timezone="UTC", default_status=dg.DefaultScheduleStatus.RUNNING)],
    sensors=[build_event_models_sensor(dbt_events_daily_job)],
)
