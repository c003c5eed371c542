"""How long `growth-stack run`'s daily phase takes for the demo's days of events (1000 customers,
120 days by default): what it prints as "events loaded in X s", i.e. the capture loads and the
event-derived dbt models (with their staging views) for the whole range, run exactly as
`growth-stack run` runs them (`run_all.daily_runs`) and recorded in a persistent Dagster instance.
Beside it, in the same run, the baseline: the bare loader looping `load_partition` over the same days
into its own DuckDB file (no Dagster, no dbt), and the bare `load_days` the capture asset now uses.

    .venv/bin/python bench/bench_demo_event_load.py [--customers 1000] [--days 120]
"""

from __future__ import annotations

import argparse
import contextlib
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
    from growth_stack_dagster.lib.event_log import batch_asset_events
    from growth_stack_dagster.run_all import daily_asset_keys, daily_runs, parse_dbt_project

    ensure_dagster_home()
    parse_dbt_project()
    days = eventfiles.days_with_files(config.events_dir())

    t0 = time.perf_counter()
    with duckdb.connect(str(home / "baseline.duckdb")) as con:
        messages = sum(loader.load_partition(con, config.events_dir(), d).messages_read for d in days)
    baseline = time.perf_counter() - t0
    t0 = time.perf_counter()
    with duckdb.connect(str(home / "load_days.duckdb")) as con:
        loader.load_days(con, config.events_dir(), days)
    bare_range = time.perf_counter() - t0

    from growth_stack_dagster.definitions import defs

    job = defs.resolve_implicit_global_asset_job_def()
    repo = defs.get_repository_def()
    keys = daily_asset_keys(repo)
    steps: dict[str, float] = {}
    events = 0
    t0 = time.perf_counter()
    # dagster-dbt copies dbt's lines to stdout: to a file, as `growth-stack run` does unless --verbose
    with dg.DagsterInstance.get() as instance, open(home / "dbt.log", "w") as log, contextlib.redirect_stdout(log):
        batch_asset_events(instance)  # as `growth-stack run` does
        for _, run_args in daily_runs(repo, days, {"growth_stack/trigger": "bench"}):
            result = job.execute_in_process(
                instance=instance, asset_selection=keys, raise_on_error=True,
                run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}}, **run_args)
            events += len(instance.all_logs(result.run_id))
            for stat in instance.get_run_step_stats(result.run_id):
                steps[stat.step_key] = steps.get(stat.step_key, 0.0) + stat.end_time - stat.start_time
    phase = time.perf_counter() - t0
    capture = sum(s for k, s in steps.items() if k.startswith("events_load"))
    print(f"{len(days)} days, {messages:,} messages, {args.customers} customers")
    print(f"growth-stack run daily phase (Dagster, {events:,} events stored): {phase:.1f} s")
    print(f"  of which capture step {capture:.1f} s, dbt steps {sum(steps.values()) - capture:.1f} s "
          f"({', '.join(f'{k} {s:.1f} s' for k, s in steps.items())})")
    print(f"bare loader, load_partition day by day (baseline):    {baseline:.1f} s")
    print(f"bare loader, load_days over the range (no Dagster):   {bare_range:.1f} s")
    print(f"ratio to the baseline: {phase / baseline:.2f}x; target < 30 s")


if __name__ == "__main__":
    main()
