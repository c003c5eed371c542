"""A real warehouse for the dbt tests: the simulator fills a sandbox subprocess and the event files,
then the real loaders (capture `load_partition`, the dlt pipelines) write `warehouse.duckdb`."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
from pathlib import Path

import duckdb

from tests.servers import CLI, REPO, run_server

API_SOURCES = ("hubspot", "stripe", "facebook_ads", "zendesk", "finance")


def load_events(home: Path) -> int:
    """Load every day of event files under `home` into `events.*`; returns the days loaded."""
    from growth_stack_dagster import eventfiles
    from growth_stack_dagster.capture import loader

    root = home / "events"
    days = eventfiles.days_with_files(root)
    with duckdb.connect(str(home / "warehouse.duckdb")) as con:
        for day in days:
            loader.load_partition(con, root, day)
    return len(days)


def simulate_company(home: Path, customers: int, days: int, seed: int, as_of: dt.date) -> None:
    """Simulate a company into a sandbox on loopback and load it all into `home/warehouse.duckdb`.

    Runs in subprocesses with GROWTH_STACK_HOME=`home`, so the caller's environment is untouched.
    """
    env = {"GROWTH_STACK_HOME": str(home), "GROWTH_STACK_SANDBOX_RATE_LIMIT_SCALE": "1000",
           "GROWTH_STACK_SANDBOX_ZENDESK_EXPORT_DELAY": "0", "GROWTH_STACK_SANDBOX_WEBHOOK_URL": ""}
    with run_server("sandbox", "/_admin/health", env, log_path=home / "sandbox.log") as (sandbox, _):
        full_env = {**os.environ, **env, "GROWTH_STACK_SANDBOX_URL": sandbox}
        _run([*CLI, "simulate", "--customers", str(customers), "--days", str(days), "--seed", str(seed),
              "--as-of", as_of.isoformat(), "--sandbox-url", sandbox, "--no-collector"], full_env)
        _run([CLI[0], "-c", _LOAD_SCRIPT], full_env)


def _run(command: list[str], env: dict[str, str]) -> None:
    result = subprocess.run(command, env=env, cwd=REPO, timeout=600, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command[:4])} failed ({result.returncode}):\n{result.stderr[-4000:]}")


# The loaders, run in a child process whose GROWTH_STACK_HOME is the simulated home.
_LOAD_SCRIPT = """
from growth_stack_dagster import config
from growth_stack_dagster.ingest.pipelines import load_source
from tests.dbt.company import API_SOURCES, load_events
load_events(config.home())
for name in API_SOURCES:
    load_source(name)
"""


if __name__ == "__main__":
    # python -m tests.dbt.company <home> <customers> <days>: a loaded warehouse to explore by hand
    import sys

    target = Path(sys.argv[1])
    target.mkdir(parents=True, exist_ok=True)
    simulate_company(target, int(sys.argv[2]), int(sys.argv[3]), 7, dt.date(2026, 3, 2))
    print("loaded", target / "warehouse.duckdb")
