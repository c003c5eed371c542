"""One job per source (retried with the default RetryPolicy) and its schedule: CRM, support and
payments hourly (staggered so the single warehouse writer is not contended), ads and finance daily."""

from __future__ import annotations

import dagster as dg

from growth_stack_dagster.resources import default_retry_policy

# source name -> cron (UTC)
INGEST_CRONS = {
    "hubspot": "5 * * * *",
    "zendesk": "20 * * * *",
    "stripe": "35 * * * *",
    "facebook_ads": "0 6 * * *",
    "finance": "30 6 * * *",
}


def ingest_job(source_name: str) -> dg.UnresolvedAssetJobDefinition:
    """The job loading every table of one source."""
    return dg.define_asset_job(
        name=f"ingest_{source_name}_job",
        selection=dg.AssetSelection.groups(f"ingest_{source_name}"),
        op_retry_policy=default_retry_policy,
        description=f"Load the {source_name} raw tables with dlt.",
    )


ingest_jobs = {name: ingest_job(name) for name in INGEST_CRONS}

ingest_schedules = [
    dg.ScheduleDefinition(name=f"ingest_{name}_schedule", job=ingest_jobs[name], cron_schedule=cron,
                          execution_timezone="UTC", default_status=dg.DefaultScheduleStatus.RUNNING)
    for name, cron in INGEST_CRONS.items()
]
