"""`growth-stack run`: materialize every asset once, in dependency order, for every event day that
has files — a batch run for users without a Dagster daemon, and what `make demo` and the
end-to-end tests use. Runs are recorded in the persistent instance, so they show in the UI."""

from __future__ import annotations

import time

import click

from growth_stack_dagster import config, eventfiles
from growth_stack_dagster.instance import ensure_dagster_home


def parse_dbt_project() -> None:
    """Write dbt's manifest.json, which the dbt assets need when the code location loads."""
    from growth_stack_dagster.transform.project import dbt_project

    dbt_project.preparer.prepare(dbt_project)


def run_everything(echo=click.echo, log_level: str = "WARNING") -> dict[str, object]:
    """Materialize, for every day with event files, the capture partitions and the event-derived dbt
    models (with the staging views between them), then every unpartitioned asset.

    Returns {"partitions": [...]}; raises click.ClickException naming the run and steps that failed.
    """
    import dagster as dg

    ensure_dagster_home()
    parse_dbt_project()
    from growth_stack_dagster.capture.assets import CAPTURE_GROUP
    from growth_stack_dagster.definitions import defs
    from growth_stack_dagster.resources import events_daily_partitions
    from growth_stack_dagster.transform.defs import event_models_selection

    instance = dg.DagsterInstance.get()
    job = defs.resolve_implicit_global_asset_job_def()
    repo = defs.get_repository_def()
    assets = list({id(a): a for a in repo.assets_defs_by_key.values()}.values())
    partitioned = [a for a in assets if a.partitions_def == events_daily_partitions]
    # the event loads, then the staging views over them and the event-derived dbt models, per day range
    daily_keys = list((dg.AssetSelection.groups(CAPTURE_GROUP) | event_models_selection).resolve(repo.asset_graph))
    other_keys = [k for a in assets if a.partitions_def is None and a.is_executable for k in a.keys]
    # Reverse-ETL syncs run last, once the models they read are built.
    sync_keys = [k for k in other_keys if k.path[0] == "destinations"]
    other_keys = [k for k in other_keys if k not in sync_keys]
    tags = {"growth_stack/trigger": "growth-stack run"}
    # The console shows warnings and errors only; every event is still in the run's log in the UI.
    run_config = {"loggers": {"console": {"config": {"log_level": log_level}}}}

    def check(result, what: str) -> None:
        if not result.success:
            failed = [e.step_key for e in result.all_events if e.is_step_failure]
            raise click.ClickException(f"{what} failed at {', '.join(failed) or 'launch'} (run {result.run_id}); "
                                       "open the run in the Dagster UI for the step's error.")

    days = eventfiles.days_with_files(config.events_dir())
    valid = set(events_daily_partitions.get_partition_keys())
    days = [d for d in days if d in valid]
    echo(f"Loading {len(days)} day(s) of events into the warehouse and building their journeys...")
    t0 = time.monotonic()
    single_run = all(a.backfill_policy is not None and a.backfill_policy.max_partitions_per_run is None
                     for a in partitioned)
    if days and single_run:
        # One run over the whole range, as a UI backfill with a single-run policy does.
        range_tags = {**tags, "dagster/asset_partition_range_start": days[0],
                      "dagster/asset_partition_range_end": days[-1]}
        check(job.execute_in_process(instance=instance, asset_selection=daily_keys, tags=range_tags,
                                     run_config=run_config, raise_on_error=False),
              f"loading events {days[0]}..{days[-1]}")
    else:
        for day in days:
            check(job.execute_in_process(instance=instance, asset_selection=daily_keys, partition_key=day,
                                         tags=tags, run_config=run_config, raise_on_error=False),
                  f"loading events for {day}")
    echo(f"  events loaded in {time.monotonic() - t0:.1f}s")
    echo("Ingesting SaaS sources and building dbt models...")
    t0 = time.monotonic()
    check(job.execute_in_process(instance=instance, asset_selection=other_keys, tags=tags,
                                 run_config=run_config, raise_on_error=False), "ingest and dbt")
    echo(f"  done in {time.monotonic() - t0:.1f}s")
    if sync_keys:
        echo(f"Syncing to destinations ({len(sync_keys)} syncs)...")
        t0 = time.monotonic()
        check(job.execute_in_process(instance=instance, asset_selection=sync_keys, tags=tags,
                                     run_config=run_config, raise_on_error=False), "reverse-ETL syncs")
        echo(f"  done in {time.monotonic() - t0:.1f}s")
    return {"partitions": days}


def warehouse_summary() -> list[tuple[str, str, int]]:
    """(schema, table, rows) for every table in the warehouse, read-only."""
    import duckdb

    path = config.warehouse_path()
    if not path.exists():
        return []
    with duckdb.connect(str(path), read_only=True) as con:
        tables = con.execute(
            "select table_schema, table_name from information_schema.tables "
            "where table_schema not in ('information_schema', 'pg_catalog') and table_schema not like '%\\_staging' escape '\\' "
            "and table_name not like '\\_%' escape '\\' "
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
    console = Console(width=120)
    console.print(table)
    for line in headlines():
        console.print(line)


def headlines() -> list[str]:
    """A few sentences on what the computed marts hold (empty before dbt has built them)."""
    import duckdb

    path = config.warehouse_path()
    if not path.exists():
        return []
    facts = {
        "customers": "select count(*) from marts.customers",
        "identifiers": "select count(*) from marts.customer_identifiers",
        "high_value": "select count(*) from marts.customer_traits where is_high_value",
        "synced_rows": "select (select count(*) from activation.sync_hubspot__contacts)",
    }
    values = {}
    with duckdb.connect(str(path), read_only=True) as con:
        for name, sql in facts.items():
            try:
                values[name] = con.execute(sql).fetchone()[0]
            except duckdb.Error:
                return []
    return [f"{values['identifiers']:,} identifiers stitched into {values['customers']:,} customers; "
            f"{values['high_value']:,} are high-value; {values['synced_rows']:,} HubSpot contacts are ready to sync."]


@click.command("run")
@click.option("--summary/--no-summary", default=True, help="Print the warehouse's tables and row counts after.")
@click.option("--verbose", is_flag=True, help="Print every Dagster event, not only warnings and errors.")
def run_command(summary: bool, verbose: bool) -> None:
    """Materialize every asset once: event loads for each day with files, then ingest and dbt."""
    run_everything(log_level="DEBUG" if verbose else "WARNING")
    if summary:
        print_summary()
