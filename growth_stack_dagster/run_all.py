"""`growth-stack run`: materialize every asset once, in dependency order, for every event day that
has files — a batch run for users without a Dagster daemon, and what `make demo` and the
end-to-end tests use. Runs are recorded in the persistent instance, so they show in the UI."""

from __future__ import annotations

import json
import os
import contextlib
import datetime as dt
import time
from pathlib import Path

import click

from growth_stack_dagster import config, eventfiles
from growth_stack_dagster.instance import ensure_dagster_home


def parse_dbt_project() -> None:
    """Write dbt's manifest.json, which the dbt assets need when the code location loads."""
    from growth_stack_dagster.transform.project import dbt_project

    dbt_project.preparer.prepare(dbt_project)


def daily_asset_keys(repo) -> list:
    """The daily phase's assets: the event loads, then the staging views over them and the
    event-derived dbt models."""
    import dagster as dg

    from growth_stack_dagster.capture.assets import CAPTURE_GROUP
    from growth_stack_dagster.transform.defs import event_models_selection

    return list((dg.AssetSelection.groups(CAPTURE_GROUP) | event_models_selection).resolve(repo.asset_graph))


def daily_runs(repo, days: list[str], tags: dict[str, str]) -> list[tuple[str, dict]]:
    """The runs that load `days` (sorted) and build their event models: [(what, execute_in_process
    arguments)], one run over the whole range when every daily asset allows it (a single-run backfill
    policy), else one run per day. For a range it also sets the environment Dagster reads to record
    the range's events in bulk."""
    from growth_stack_dagster.lib.event_log import EVENT_BATCH_SIZE
    from growth_stack_dagster.resources import events_daily_partitions

    assets = {id(a): a for a in repo.assets_defs_by_key.values()}.values()
    partitioned = [a for a in assets if a.partitions_def == events_daily_partitions]
    single_run = all(a.backfill_policy is not None and a.backfill_policy.max_partitions_per_run is None
                     for a in partitioned)
    if not days:
        return []
    if not single_run:
        return [(f"loading events for {day}", {"partition_key": day, "tags": tags}) for day in days]
    # One planned event per asset for the whole range instead of one per day and asset: a demo's
    # 120 days otherwise spend most of their time writing thousands of planned events to SQLite.
    # (Dagster's trade-off: should this run fail, its days are not marked failed, only not materialized.)
    os.environ.setdefault("DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS", "true")
    # And each asset's materializations for the range handed to the event log as one batch, which
    # `lib.event_log.batch_asset_events` has the instance write in one transaction.
    os.environ.setdefault("DAGSTER_EVENT_BATCH_SIZE", EVENT_BATCH_SIZE)
    # One run over the whole range, as a UI backfill with a single-run policy does.
    range_tags = {**tags, "dagster/asset_partition_range_start": days[0],
                  "dagster/asset_partition_range_end": days[-1]}
    return [(f"loading events {days[0]}..{days[-1]}", {"tags": range_tags})]


def run_everything(echo=click.echo, log_level: str = "ERROR") -> dict[str, object]:
    """Materialize, for every day with event files, the capture partitions and the event-derived dbt
    models (with the staging views between them), then every unpartitioned asset.

    Returns {"partitions": [...]}; raises click.ClickException naming the run and steps that failed.
    """
    import dagster as dg

    ensure_dagster_home()
    parse_dbt_project()
    from growth_stack_dagster.definitions import defs
    from growth_stack_dagster.lib.event_log import batch_asset_events
    from growth_stack_dagster.resources import events_daily_partitions

    instance = dg.DagsterInstance.get()
    batch_asset_events(instance)
    job = defs.resolve_implicit_global_asset_job_def()
    repo = defs.get_repository_def()
    assets = list({id(a): a for a in repo.assets_defs_by_key.values()}.values())
    daily_keys = daily_asset_keys(repo)
    other_keys = [k for a in assets if a.partitions_def is None and a.is_executable for k in a.keys]
    # Reverse-ETL syncs run last, once the models they read are built.
    sync_keys = [k for k in other_keys if k.path[0] == "destinations"]
    other_keys = [k for k in other_keys if k not in sync_keys]
    tags = {"growth_stack/trigger": "growth-stack run"}
    # The terminal shows errors only (dagster-dbt warns about every singular test and about column lineage it
    # cannot parse for a Python model); every event, warnings included, is in the run's log in the UI.
    run_config = {"loggers": {"console": {"config": {"log_level": log_level}}}}

    log_path = config.home() / "run" / "growth-stack-run.log"

    def execute(**kwargs):
        """One in-process run. dagster-dbt copies every dbt log line to stdout: unless --verbose, those go
        to the log file, so the terminal shows progress and the summary, not hundreds of dbt lines."""
        if log_level == "DEBUG":
            return job.execute_in_process(**kwargs)
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "a") as log, contextlib.redirect_stdout(log):
            return job.execute_in_process(**kwargs)

    def check(result, what: str) -> None:
        if not result.success:
            failed = [e.step_key for e in result.all_events if e.is_step_failure]
            raise click.ClickException(f"{what} failed at {', '.join(failed) or 'launch'} (run {result.run_id}); "
                                       f"open the run in the Dagster UI for the step's error (dbt's output: {log_path}).")

    days = eventfiles.days_with_files(config.events_dir())
    valid = set(events_daily_partitions.get_partition_keys())
    days = [d for d in days if d in valid]
    echo(f"Loading {len(days)} day(s) of events into the warehouse and building their journeys...")
    t0 = time.monotonic()
    for what, run_args in daily_runs(repo, days, tags):
        check(execute(instance=instance, asset_selection=daily_keys, run_config=run_config, raise_on_error=False,
                      **run_args), what)
    echo(f"  events loaded in {time.monotonic() - t0:.1f}s")
    echo("Ingesting SaaS sources and building dbt models...")
    t0 = time.monotonic()
    check(execute(instance=instance, asset_selection=other_keys, tags=tags,
                                 run_config=run_config, raise_on_error=False), "ingest and dbt")
    echo(f"  done in {time.monotonic() - t0:.1f}s")
    if sync_keys:
        echo(f"Syncing to destinations ({len(sync_keys)} syncs)...")
        t0 = time.monotonic()
        check(execute(instance=instance, asset_selection=sync_keys, tags=tags,
                                     run_config=run_config, raise_on_error=False), "reverse-ETL syncs")
        echo(f"  done in {time.monotonic() - t0:.1f}s")
    return {"partitions": days}


def _scalar(con, sql: str):
    """The first value of `sql`, or None when its tables do not exist (yet)."""
    import duckdb

    try:
        row = con.execute(sql).fetchone()
    except duckdb.Error:
        return None
    return row[0] if row else None


def synced_by_destination(con) -> dict[str, int]:
    """{destination: records it holds from our syncs} from `activation_state.records` ({} before any sync)."""
    import duckdb

    try:
        rows = con.execute("select sync, count(*) from activation_state.records "
                           "where checksum is not null group by 1 order by 1").fetchall()
    except duckdb.Error:
        return {}
    out: dict[str, int] = {}
    for sync, n in rows:
        destination = str(sync).removeprefix("sync_").split("__")[0]
        out[destination] = out.get(destination, 0) + int(n)
    return out


def routed_events(router_dir: Path) -> dict[str, int] | None:
    """{route: events delivered} from the router's `state.json`, None when the router never ran."""
    path = router_dir / "state.json"
    try:
        state = json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return None
    return {name: int((route.get("counts") or {}).get("delivered", 0))
            for name, route in sorted((state.get("routes") or {}).items())}


def _utc(moment: dt.datetime) -> str:
    return moment.astimezone(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def ground_truth_lines(simulation_dir: Path, as_of: dt.datetime | None, high_value: int) -> list[str]:
    """When the simulator generated this company: its ground truth's high-value count and the moment it
    holds at, and, when the build's traits hold at another moment and count otherwise, why (the example
    company has deliberate purchases on either side of the one-year boundary of the ground truth's moment)
    and how to reproduce it. [] without a ground truth."""
    try:
        simulated = json.loads((simulation_dir / "summary.json").read_text())
        truth_at = dt.datetime.fromisoformat(simulated["params"]["as_of_at"])
        truth_high_value = int(simulated["people"]["high_value"])
    except (FileNotFoundError, ValueError, KeyError, TypeError):
        return []
    lines = [f"Simulator's ground truth: {truth_high_value:,} high-value as of {_utc(truth_at)}"]
    if as_of is not None and as_of != truth_at and high_value != truth_high_value:
        lines.append("  (the two moments differ: the example company has purchases one second either side of one year "
                     "before the ground truth's moment, so a build later that day finds the ones just inside that "
                     "year already outside its own; GROWTH_STACK_AS_OF="
                     f"{truth_at.astimezone(dt.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')} reproduces the ground truth)")
    return lines


def summary_lines(warehouse: Path, router_dir: Path, simulation_dir: Path | None = None) -> list[str]:
    """A few sentences on what the stack holds: events captured, customers stitched, high-value
    customers (with the moment their traits hold at and, given the simulator's folder, its ground truth),
    records synced per destination, routed events. A line whose source does not exist yet is left out."""
    import duckdb

    lines: list[str] = []
    if warehouse.exists():
        with duckdb.connect(str(warehouse), read_only=True) as con:
            events = _scalar(con, "select count(*) from events._loaded_messages")
            if events is None:
                events = _scalar(con, "select (select count(*) from events.tracks) + (select count(*) from events.pages)"
                                      " + (select count(*) from events.screens) + (select count(*) from events.identifies)")
            if events is not None:
                lines.append(f"Events captured: {events:,}")
            customers = _scalar(con, "select count(*) from marts.customers")
            identifiers = _scalar(con, "select count(*) from marts.customer_identifiers")
            if customers is not None:
                lines.append(f"Customers stitched: {customers:,}"
                             + (f" (from {identifiers:,} identifiers)" if identifiers is not None else ""))
            high_value = _scalar(con, "select count(*) from marts.customer_traits where is_high_value")
            if high_value is not None:
                as_of = _scalar(con, "select max(as_of_at) from marts.customer_traits")
                lines.append(f"High-value customers: {high_value:,}"
                             + (f" (traits as of {_utc(as_of)})" if as_of is not None else ""))
                if simulation_dir is not None:
                    lines += ground_truth_lines(simulation_dir, as_of, high_value)
            synced = synced_by_destination(con)
            if synced:
                lines.append("Records synced: " + ", ".join(f"{d} {n:,}" for d, n in synced.items()))
    routed = routed_events(router_dir)
    if routed is not None:
        lines.append(f"Routed events: {sum(routed.values()):,}"
                     + (" (" + ", ".join(f"{r} {n:,}" for r, n in routed.items()) + ")" if routed else ""))
    return lines


def print_summary() -> None:
    """Print the short summary of what the stack holds."""
    for line in summary_lines(config.warehouse_path(), config.home() / "router", config.simulation_dir()):
        click.echo(f"  {line}")


@click.command("run")
@click.option("--summary/--no-summary", default=True,
              help="Print a short summary after: events, customers, high-value customers, syncs, routes.")
@click.option("--verbose", is_flag=True, help="Print every Dagster event, not only errors.")
def run_command(summary: bool, verbose: bool) -> None:
    """Materialize every asset once: event loads for each day with files, then ingest and dbt."""
    run_everything(log_level="DEBUG" if verbose else "ERROR")
    if summary:
        print_summary()
