"""The ingest flow: dlt assets per source, their jobs, schedules and the finance drop sensor.
The `dlt` resource (DagsterDltResource) is bound in the top-level definitions."""

from __future__ import annotations

import dagster as dg

from growth_stack_dagster.ingest.assets import ingest_assets
from growth_stack_dagster.ingest.schedules import ingest_jobs, ingest_schedules
from growth_stack_dagster.ingest.sensors import finance_drop_sensor

defs = dg.Definitions(
    assets=ingest_assets,
    schedules=ingest_schedules,
    sensors=[finance_drop_sensor],
    jobs=list(ingest_jobs.values()),
)
