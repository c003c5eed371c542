"""The compute flow: the dbt project, its schedule."""

from __future__ import annotations

import dagster as dg

from growth_stack_dagster.transform.assets import growth_stack_dbt_models

dbt_hourly_job = dg.define_asset_job("dbt_hourly", selection=dg.AssetSelection.assets(growth_stack_dbt_models))

defs = dg.Definitions(
    assets=[growth_stack_dbt_models],
    jobs=[dbt_hourly_job],
    schedules=[dg.ScheduleDefinition(name="dbt_hourly_schedule", job=dbt_hourly_job, cron_schedule="15 * * * *",
                                         execution_timezone="UTC")],
)
