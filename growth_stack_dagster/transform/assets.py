"""dbt models as Dagster assets (dbt tests become asset checks).

Two definitions over one dbt project: the event-derived incremental models (dbt tag `events_daily`)
are partitioned by received date like the event loads, everything else is unpartitioned.
"""

# No `from __future__ import annotations` here: Dagster reads the context annotation at runtime.

from collections.abc import Iterator

import dagster as dg
from dagster import AssetExecutionContext
from dagster_dbt import DbtCliInvocation, DbtCliResource, dbt_assets
from dagster_dbt.core.dbt_event_iterator import DbtEventIterator

from growth_stack_dagster import config
from growth_stack_dagster.operate.previews import with_previews
from growth_stack_dagster.resources import WAREHOUSE_POOL, WRITER_TAGS, default_retry_policy, events_daily_partitions
from growth_stack_dagster.transform.partitions import MAX_DATE_ENV, MIN_DATE_ENV, environ, partition_dates
from growth_stack_dagster.transform.project import dbt_project
from growth_stack_dagster.transform.translator import GrowthStackDbtTranslator

EVENTS_DAILY_SELECTION = "tag:events_daily"


def release_warehouse(invocation: DbtCliInvocation) -> None:
    """Close the warehouse connection dagster-dbt's adapter opened in this process: DuckDB lets one
    process hold the file, and the next dbt subprocess (another step of an in-process run) needs it."""
    adapter = invocation.adapter
    if adapter is None:
        return
    adapter.cleanup_connections()
    manager = type(adapter.connections)
    env = getattr(manager, "_ENV", None)  # dbt-duckdb keeps one database handle per process here
    if env is not None:
        env.close()
        manager._ENV = None


def with_table_metadata(invocation: DbtCliInvocation, previews: bool = False):
    """The invocation's events, once dbt has exited, with each model's row count, column types and
    column lineage (and, with `previews`, marts' first rows). Read after dbt exits because DuckDB lets
    only one process open the file for writing while dbt runs.

    Column lineage is worked out by sqlglot from a model's compiled SQL. A Python model has no SQL: its
    events get their row count and column types without lineage (asking for it would only print the
    parser's traceback for each Python model). The events keep dbt's order."""
    events = list(invocation.stream())
    if previews:
        events = list(with_previews(events, config.warehouse_path()))
    python = [_is_python_model(invocation, event) for event in events]

    def enriched(selected: list, lineage: bool) -> Iterator:
        iterator = DbtEventIterator(iter(selected), dbt_cli_invocation=invocation)
        return iter(list(iterator.fetch_row_counts().fetch_column_metadata(with_column_lineage=lineage)))

    try:
        sql_events = enriched([e for e, p in zip(events, python) if not p], lineage=True)
        python_events = enriched([e for e, p in zip(events, python) if p], lineage=False)
        yield from (next(python_events) if p else next(sql_events) for p in python)
    finally:
        release_warehouse(invocation)


def _is_python_model(invocation: DbtCliInvocation, event) -> bool:
    unique_id = event.metadata.get("unique_id")
    node = invocation.manifest["nodes"].get(unique_id.text) if unique_id is not None else None
    return node is not None and node.get("language") == "python"


# dbt unit tests check SQL logic on fixed inputs, not data: they run in CI (`make test`), not on every
# scheduled build (as dbt recommends).
BUILD = ["build", "--exclude", "resource_type:unit_test"]
# A day's run is frequent and small: dbt's start-up is most of it, and writing the project's whole
# manifest.json and run_results.json (which Dagster reads from dbt's event stream instead) is skipped.
DAILY_BUILD = ["build", "--no-write-json", "--exclude", "resource_type:unit_test"]


@dbt_assets(
    manifest=dbt_project.manifest_path,
    project=dbt_project,
    exclude=EVENTS_DAILY_SELECTION,
    dagster_dbt_translator=GrowthStackDbtTranslator(),
    pool=WAREHOUSE_POOL,
    op_tags=WRITER_TAGS,
    retry_policy=default_retry_policy,
)
def growth_stack_dbt_models(context: AssetExecutionContext, dbt: DbtCliResource):
    """`dbt build` of the selected models: runs them and their data tests. Each model's materialization
    carries its row count, its columns with their warehouse types and their lineage, and (marts) a
    preview of its first rows, read once dbt has let go of the warehouse."""
    invocation = dbt.cli(BUILD, context=context)
    yield from with_table_metadata(invocation, previews=True)


@dbt_assets(
    manifest=dbt_project.manifest_path,
    project=dbt_project,
    select=EVENTS_DAILY_SELECTION,
    name="growth_stack_dbt_event_models",
    partitions_def=events_daily_partitions,
    # a backfill of many days is one dbt run over the whole date range
    backfill_policy=dg.BackfillPolicy.single_run(),
    dagster_dbt_translator=GrowthStackDbtTranslator(),
    pool=WAREHOUSE_POOL,
    op_tags=WRITER_TAGS,
    retry_policy=default_retry_policy,
)
def growth_stack_dbt_event_models(context: AssetExecutionContext, dbt: DbtCliResource):
    """`dbt build` of the event-derived incremental models for the run's received dates only."""
    dates = partition_dates(context.partition_time_window)
    context.log.info(f"building received dates {dates[MIN_DATE_ENV]}..{dates[MAX_DATE_ENV]}")
    with environ(dates):  # the dbt subprocess starts, and reads them, inside `cli`
        invocation = dbt.cli(DAILY_BUILD, context=context)
    yield from with_table_metadata(invocation)
