"""The executive scorecard as an asset: a thin wrapper around `scorecard.build_scorecard`, refreshed
hourly after the dbt models, whose materialization links to the page the console serves."""


# No `from __future__ import annotations` here: Dagster reads the context annotation at runtime.
import os
from pathlib import Path

import dagster as dg

from growth_stack_dagster import config
from growth_stack_dagster.operate import scorecard

REPORTS_GROUP = "reports"
SCORECARD_KEY = dg.AssetKey(["reports", "executive_scorecard"])
CONSOLE_URL_ENV = "GROWTH_STACK_CONSOLE_URL"
DEFAULT_CONSOLE_URL = "http://127.0.0.1:3001"
SCORECARD_MARTS = [dg.AssetKey(["marts", name]) for name in
                   ("exec_daily_metrics", "coupon_usage_by_segment", "campaign_performance", "customer_traits",
                    "high_value_customers_daily")]


def scorecard_dir() -> Path:
    """Where the page lives: `$GROWTH_STACK_HOME/scorecard/`."""
    return config.home() / "scorecard"


def console_url() -> str:
    """The console's address as users reach it (`$GROWTH_STACK_CONSOLE_URL`)."""
    return os.environ.get(CONSOLE_URL_ENV, DEFAULT_CONSOLE_URL).rstrip("/")


@dg.asset(key=SCORECARD_KEY, group_name=REPORTS_GROUP, deps=SCORECARD_MARTS, kinds={"plotly", "html"},
          owners=["team:analytics"],
          description="The executive scorecard: revenue, margin, orders, new customers, coupon usage by segment, "
                      "high-value customers over time and return on ad spend by campaign, as one page of charts "
                      "served by the console at /scorecard.")
def executive_scorecard(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    """Render the page from the marts (read-only) and link to it."""
    page, figures, charts = scorecard.build_scorecard(config.warehouse_path(), scorecard_dir())
    context.log.info(f"scorecard written to {page} with {charts} charts")
    metadata: dict = {
        "scorecard_url": dg.MetadataValue.url(f"{console_url()}/scorecard"),
        "path": dg.MetadataValue.path(str(page)),
        "charts": charts,
    }
    for name in ("orders", "new_customers", "high_value_customers"):
        if figures.get(name) is not None:
            metadata[f"{name}_last_30_days" if name != "high_value_customers" else name] = int(figures[name])
    for currency, value in (figures.get("revenue_by_currency") or {}).items():
        metadata[f"revenue_last_30_days_{currency.lower()}"] = dg.MetadataValue.float(float(value))
    return dg.MaterializeResult(metadata=metadata)


scorecard_job = dg.define_asset_job("executive_scorecard_job", selection=[SCORECARD_KEY],
                                    description="Refresh the executive scorecard page from the marts.")
# Half an hour after the hourly dbt build (:15) has refreshed the marts.
scorecard_schedule = dg.ScheduleDefinition(name="executive_scorecard_schedule", job=scorecard_job,
                                           cron_schedule="45 * * * *", execution_timezone="UTC",
                                           default_status=dg.DefaultScheduleStatus.RUNNING)
