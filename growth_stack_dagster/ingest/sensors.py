"""A file sensor that loads finance exports as they land in the drop folder."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import dagster as dg
import dlt
from dlt.pipeline.exceptions import CannotRestorePipelineException

from growth_stack_dagster import config
from growth_stack_dagster.ingest.pipelines import pipeline_name
from growth_stack_dagster.ingest.schedules import ingest_jobs
from growth_stack_dagster.ingest.sources.finance import RATES_GLOB, changed_files


def new_finance_exports(drop_dir: Path, cursor: str | None) -> tuple[list[str], str]:
    """(names of exports new or changed since `cursor`, the next cursor).

    The cursor is JSON `{file name: modification time in ns}` of every export seen so far.
    """
    seen: dict[str, int] = json.loads(cursor) if cursor else {}
    files = changed_files(drop_dir, seen) + changed_files(drop_dir, seen, RATES_GLOB)
    for path in files:
        seen[path.name] = path.stat().st_mtime_ns
    return [p.name for p in files], json.dumps(seen, sort_keys=True)


def loaded_finance_exports() -> dict[str, int]:
    """{file name: modification time in ns} of the exports the finance pipeline has already loaded (its
    resources' dlt state under `$GROWTH_STACK_HOME/dlt`), {} before its first load."""
    try:
        pipeline = dlt.attach(pipeline_name=pipeline_name("finance"), pipelines_dir=str(config.home() / "dlt"))
    except CannotRestorePipelineException:
        return {}
    resources = pipeline.state.get("sources", {}).get("finance", {}).get("resources", {})
    return {name: mtime for resource in resources.values() for name, mtime in resource.get("seen_files", {}).items()}


@dg.sensor(job=ingest_jobs["finance"], minimum_interval_seconds=60,
           default_status=dg.DefaultSensorStatus.RUNNING)
def finance_drop_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult | dg.SkipReason:
    """Request a finance load when `sku_costs_*.csv` or `exchange_rates_*.csv` files arrive or change
    in the drop folder. Its first tick starts from what the finance pipeline already loaded (after
    `growth-stack run`, say), so it never queues a load of files that are in the warehouse."""
    drop_dir = config.finance_drop_dir()
    names, cursor = new_finance_exports(drop_dir, context.cursor or json.dumps(loaded_finance_exports()))
    if not names:
        return dg.SkipReason(f"no new sku_costs_*.csv or exchange_rates_*.csv export in {drop_dir}")
    run_key = hashlib.sha256(cursor.encode()).hexdigest()[:16]
    return dg.SensorResult(
        run_requests=[dg.RunRequest(run_key=run_key, tags={"growth_stack/finance_files": ",".join(names)[:200]})],
        cursor=cursor,
    )
