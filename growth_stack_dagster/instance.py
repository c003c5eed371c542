"""The persistent Dagster instance under $GROWTH_STACK_HOME/dagster_home.

Its dagster.yaml keeps runs in SQLite there and caps every concurrency pool at 1, which is what
serialises DuckDB writers across runs launched side by side (the UI, schedules, sensors, backfills).
The project owns that file: while it starts with MANAGED_MARKER it is rewritten with the current
settings; remove the marker line to keep your own edits.
"""

from __future__ import annotations

import os
from pathlib import Path

import click

from growth_stack_dagster import config

MANAGED_MARKER = "# Written by `growth-stack init`."
DAGSTER_YAML = f"""\
{MANAGED_MARKER} Runs, schedules and sensor cursors persist in this folder.
# Remove the line above to keep edits of your own: the project then leaves this file alone.
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
# No "Join the Dagster community" dialog over the first page a newcomer sees.
nux:
  enabled: false
# Freshness policies (growth_stack_dagster.operate.freshness) are evaluated by the daemon.
freshness:
  enabled: true
# Tick history: skipped ticks (most of them) for a week, failures for a month, runs' ticks for 90 days.
retention:
  schedule:
    purge_after_days: 90
  sensor:
    purge_after_days:
      skipped: 7
      failure: 30
      success: 90
  auto_materialize:
    purge_after_days:
      skipped: 7
      failure: 30
      success: 90
# A run that never starts (a crashed worker) is marked failed instead of hanging in the queue.
run_monitoring:
  enabled: true
  start_timeout_seconds: 180
"""


def ensure_dagster_home() -> Path:
    """Create the data folders and DAGSTER_HOME with its dagster.yaml; export DAGSTER_HOME and an
    absolute GROWTH_STACK_HOME (dbt's profile and child processes read them). Returns DAGSTER_HOME."""
    home = config.home()
    dagster_home = config.dagster_home()
    for folder in (home, dagster_home, config.events_dir(), config.finance_drop_dir()):
        folder.mkdir(parents=True, exist_ok=True)
    yaml_path = dagster_home / "dagster.yaml"
    if not yaml_path.exists() or (yaml_path.read_text().startswith(MANAGED_MARKER)
                                  and yaml_path.read_text() != DAGSTER_YAML):
        yaml_path.write_text(DAGSTER_YAML)
    os.environ["GROWTH_STACK_HOME"] = str(home)
    os.environ["DAGSTER_HOME"] = str(dagster_home)
    return dagster_home


ENV_MARKER = "# Written by `growth-stack init`: `dagster dev` here uses the project's Dagster instance."


def write_dotenv(repo_root: Path, dagster_home: Path) -> Path | None:
    """Write `repo_root/.env` naming DAGSTER_HOME, which `dagster dev` reads from its working folder,
    so that a bare `dagster dev` in the repository root uses the persistent instance. Only for the
    default data folder (`repo_root/.growth_stack`), and never over a .env the user wrote. Returns
    the path written, or None."""
    env_path = repo_root / ".env"
    if not (repo_root / "workspace.yaml").exists():
        return None
    ours = env_path.exists() and env_path.read_text().startswith(ENV_MARKER)
    if env_path.exists() and not ours:
        return None
    if dagster_home != repo_root / ".growth_stack" / "dagster_home":
        if ours:  # it names another home: `dagster dev` would otherwise override the DAGSTER_HOME exported now
            env_path.unlink()
        return None
    env_path.write_text(f"{ENV_MARKER}\nDAGSTER_HOME={dagster_home}\n")
    return env_path


@click.command("init")
def init_command() -> None:
    """Create $GROWTH_STACK_HOME and its Dagster instance; print the DAGSTER_HOME to export."""
    dagster_home = ensure_dagster_home()
    write_dotenv(Path.cwd().resolve(), dagster_home)
    click.echo(dagster_home)
