"""How long `growth-stack run` takes to load the demo's days of events (1000 customers, 120 days by
default), as one single-run backfill of the capture assets recorded in a persistent Dagster instance,
beside the bare loader looping over the same days into its own DuckDB file (no Dagster) in the same run.

    .venv/bin/python bench/bench_demo_event_load.py [--customers 1000] [--days 120]

The difference between the two is what Dagster's bookkeeping costs: one materialization per day and
capture table (and, unless the planned-event setting is on, one planned event per day and table too).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=1000)
    parser.add_argument("--days", type=int, default=120)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="bench_demo_load_"))
    os.environ["GROWTH_STACK_HOME"] = str(home)
    os.environ["DAGSTER_HOME"] = str(home / "dagster_home")
    subprocess.run([sys.executable, "-m", "growth_stack_dagster.cli", "simulate", "--customers", str(args.customers),
                    "--days", str(args.days), "--seed", "42", "--no-sandbox", "--no-collector", "--no-progress"],
                   check=True, cwd=REPO, capture_output=True)

    import dagster as dg
    import duckdb

    from growth_stack_dagster import config, eventfiles
    from growth_stack_dagster.capture import loader
    from growth_stack_dagster.instance import ensure_dagster_home

    ensure_dagster_home()
    days = eventfiles.days_with_files(config.events_dir())

    t0 = time.perf_counter()
    with duckdb.connect(str(home / "baseline.duckdb")) as con:
        messages = sum(loader.load_partition(con, config.events_dir(), d).messages_read for d in days)
    baseline = time.perf_counter() - t0

    from growth_stack_dagster.capture.assets import CAPTURE_GROUP
    from growth_stack_dagster.definitions import defs

    os.environ.setdefault("DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS", "true")  # as growth-stack run does
    job = defs.resolve_implicit_global_asset_job_def()
    keys = list(dg.AssetSelection.groups(CAPTURE_GROUP).resolve(defs.get_repository_def().asset_graph))
    t0 = time.perf_counter()
    with dg.DagsterInstance.get() as instance:
        result = job.execute_in_process(
            instance=instance, asset_selection=keys, raise_on_error=True,
            tags={"dagster/asset_partition_range_start": days[0], "dagster/asset_partition_range_end": days[-1]},
            run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}})
        events = len(instance.all_logs(result.run_id))
    staged = time.perf_counter() - t0
    print(f"{len(days)} days, {messages:,} messages, {args.customers} customers")
    print(f"growth-stack run capture phase (Dagster, {events:,} events stored): {staged:.1f} s")
    print(f"bare loader over the same days (baseline):          {baseline:.1f} s")
    print(f"ratio: {staged / baseline:.2f}x; target < 30 s")


if __name__ == "__main__":
    main()
