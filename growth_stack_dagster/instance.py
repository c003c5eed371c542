"""The persistent Dagster instance under $GROWTH_STACK_HOME/dagster_home.

Its dagster.yaml keeps runs in SQLite there and caps every concurrency pool at 1, which is what
serialises DuckDB writers across runs launched side by side (the UI, schedules, sensors, backfills).
"""

from __future__ import annotations

import os
from pathlib import Path

import click

from growth_stack_dagster import config

DAGSTER_YAML = """\
# Written by `growth-stack init`. Runs, schedules and sensor cursors persist in this folder.
concurrency:
  pools:
    # Pools hold DuckDB writers (growth_stack_dagster.resources.WAREHOUSE_POOL): one at a time.
    default_limit: 1
  runs:
    max_concurrent_runs: 4
run_coordinator:
  module: dagster.core.run_coordinator
  class: QueuedRunCoordinator
telemetry:
  enabled: false
"""


def ensure_dagster_home() -> Path:
    """Create the data folders and DAGSTER_HOME with its dagster.yaml; export DAGSTER_HOME and an
    absolute GROWTH_STACK_HOME (dbt's profile and child processes read them). Returns DAGSTER_HOME."""
    home = config.home()
    dagster_home = config.dagster_home()
    for folder in (home, dagster_home, config.events_dir(), config.finance_drop_dir()):
        folder.mkdir(parents=True, exist_ok=True)
    yaml_path = dagster_home / "dagster.yaml"
    if not yaml_path.exists():
        yaml_path.write_text(DAGSTER_YAML)
    os.environ["GROWTH_STACK_HOME"] = str(home)
    os.environ["DAGSTER_HOME"] = str(dagster_home)
    return dagster_home


@click.command("init")
def init_command() -> None:
    """Create $GROWTH_STACK_HOME and its Dagster instance; print the DAGSTER_HOME to export."""
    click.echo(ensure_dagster_home())
