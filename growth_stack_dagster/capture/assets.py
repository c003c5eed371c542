"""Capture assets: the daily load of event files into the warehouse `events` schema.

A thin wrapper: the work is `loader.load_partition`; this module declares the tables as assets,
binds them to the shared daily partitions, the writer pool, tags and retry policy, and reports
what the load did as materialization metadata.
"""

import dagster as dg
from dagster_duckdb import DuckDBResource

from growth_stack_dagster import config, resources
from growth_stack_dagster.capture import loader

CAPTURE_GROUP = "capture"
DECLARED_TABLES = (*loader.FIXED_TABLES, loader.DISCARDS, *loader.KNOWN_EVENT_TABLES)

_DESCRIPTIONS = {
    "tracks": "Every track call (Segment warehouse schema), without custom properties.",
    "pages": "Every page call with its properties as columns.",
    "screens": "Every screen call with its properties as columns.",
    "identifies": "Every identify call with its traits as columns.",
    "groups": "Every group call with the group's traits as columns.",
    "aliases": "Every alias call (previous_id -> user_id).",
    "users": "One row per identified user_id with the latest non-null value of each trait.",
    loader.DISCARDS: "Values and lines that could not be stored, with table, column, reason and source file.",
}


def _spec(table: str) -> dg.AssetSpec:
    description = _DESCRIPTIONS.get(table, f"Track events named like `{table}`, properties as columns.")
    return dg.AssetSpec(key=dg.AssetKey([loader.SCHEMA, table]), group_name=CAPTURE_GROUP,
                        description=description, kinds={"duckdb"})


@dg.multi_asset(
    name="events_load",
    specs=[_spec(t) for t in DECLARED_TABLES],
    partitions_def=resources.events_daily_partitions,
    pool=resources.WAREHOUSE_POOL,
    op_tags=resources.WRITER_TAGS,
    retry_policy=resources.default_retry_policy,
    description="Load one received date of event files into events.* (replaces that day's earlier load).",
)
def events_load(context: dg.AssetExecutionContext, duckdb: DuckDBResource):
    """Load the partition's day of closed event files; one MaterializeResult per declared table."""
    day = context.partition_key
    with duckdb.get_connection() as con:
        report = loader.load_partition(con, config.events_dir(), day)
    context.log.info(
        f"loaded {report.lines_read} lines from {report.files} files for {day}: "
        f"{report.duplicates_dropped} duplicates dropped, {report.discards} discards")
    shared = {
        "partition_date": day,
        "files": report.files,
        "lines_read": report.lines_read,
        "duplicates_dropped": report.duplicates_dropped,
        "duplicates_in_day": report.duplicates_in_day,
        "duplicates_across_days": report.duplicates_across_days,
        "discards": report.discards,
        "discards_by_reason": dg.MetadataValue.json(report.discards_by_reason),
        "webhooks_transformed": report.webhooks_transformed,
        "webhooks_skipped": report.webhooks_skipped,
        "rows_per_table": dg.MetadataValue.json(report.rows_per_table),
        "new_columns": len(report.new_columns),
    }
    for table in DECLARED_TABLES:
        rows = report.discards if table == loader.DISCARDS else report.rows_per_table.get(table, 0)
        yield dg.MaterializeResult(asset_key=dg.AssetKey([loader.SCHEMA, table]),
                                   metadata={"rows": rows, **shared})


capture_job = dg.define_asset_job(
    name="capture_events_job",
    selection=dg.AssetSelection.groups(CAPTURE_GROUP),
    description="Load one day of event files (all capture assets).",
)
