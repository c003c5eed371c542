"""`growth-stack run`: materialize every asset once, in dependency order, for every event day that
has files — a batch run for users without a Dagster daemon, and what `make demo` and the
end-to-end tests use. Runs are recorded in the persistent instance, so they show in the UI."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import click

from growth_stack_dagster import config, eventfiles
from growth_stack_dagster.instance import ensure_dagster_home

DBT = Path(sys.executable).with_name("dbt")


def parse_dbt_project() -> None:
    """Write dbt's manifest.json, which the dbt assets need when the code location loads."""
    from growth_stack_dagster.transform.project import DBT_PROJECT_DIR

    subprocess.run([str(DBT), "parse", "--quiet", "--project-dir", str(DBT_PROJECT_DIR),
                    "--profiles-dir", str(DBT_PROJECT_DIR)], check=True)


def run_everything(echo=click.echo) -> dict[str, object]:
    """Materialize capture partitions for every day with event files, then every other asset.

    Returns {"partitions": [...], "runs": n, "failed": [...]} and raises click.ClickException
    when a run fails, naming it.
    """
    import dagster as dg

    ensure_dagster_home()
    parse_dbt_project()
    from growth_stack_dagster.definitions import defs
    from growth_stack_dagster.resources import events_daily_partitions

    instance = dg.DagsterInstance.get()
    repo = defs.get_repository_def()
    assets = list(repo.assets_defs_by_key.values())
    unique_assets = list({id(a): a for a in assets}.values())
    partitioned = [a for a in unique_assets if a.partitions_def == events_daily_partitions]
    others = [a for a in unique_assets if a.partitions_def is None]
    resources = defs.resources or {}

    days = eventfiles.days_with_files(config.events_dir())
    valid = set(events_daily_partitions.get_partition_keys())
    days = [d for d in days if d in valid]
    echo(f"Loading {len(days)} day(s) of events into the warehouse...")
    t0 = time.monotonic()
    for day in days:
        result = dg.materialize(partitioned, partition_key=day, instance=instance, resources=resources,
                                raise_on_error=False, tags={"growth_stack/trigger": "growth-stack run"})
        if not result.success:
            raise click.ClickException(f"loading events for {day} failed (run {result.run_id}); "
                                       "open the run in the Dagster UI for the step's error.")
    echo(f"  events loaded in {time.monotonic() - t0:.1f}s")
    echo("Ingesting SaaS sources and building dbt models...")
    t0 = time.monotonic()
    result = dg.materialize([*others, *partitioned], selection=others, instance=instance, resources=resources,
                            raise_on_error=False, tags={"growth_stack/trigger": "growth-stack run"})
    if not result.success:
        failed = [e.step_key for e in result.all_events if e.is_step_failure]
        raise click.ClickException(f"steps failed: {', '.join(failed)} (run {result.run_id}); "
                                   "open the run in the Dagster UI for the errors.")
    echo(f"  done in {time.monotonic() - t0:.1f}s")
    return {"partitions": days, "runs": len(days) + 1}


def warehouse_summary() -> list[tuple[str, str, int]]:
    """(schema, table, rows) for every table in the warehouse, read-only."""
    import duckdb

    path = config.warehouse_path()
    if not path.exists():
        return []
    with duckdb.connect(str(path), read_only=True) as con:
        tables = con.execute(
            "select table_schema, table_name from information_schema.tables "
            "where table_schema not in ('information_schema', 'pg_catalog') and table_name not like '_dlt%' "
            "order by 1, 2").fetchall()
        return [(s, t, con.execute(f'select count(*) from "{s}"."{t}"').fetchone()[0]) for s, t in tables]


def print_summary() -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"Warehouse {config.warehouse_path()}")
    for col in ("schema", "table", "rows"):
        table.add_column(col, justify="right" if col == "rows" else "left")
    for schema, name, rows in warehouse_summary():
        table.add_row(schema, name, f"{rows:,}")
    Console().print(table)


@click.command("run")
@click.option("--summary/--no-summary", default=True, help="Print the warehouse's tables and row counts after.")
def run_command(summary: bool) -> None:
    """Materialize every asset once: event loads for each day with files, then ingest and dbt."""
    run_everything()
    if summary:
        print_summary()
