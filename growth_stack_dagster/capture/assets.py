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
# Share of the messages read that may be discarded before the check warns: a few odd values are normal,
# a rising share means a client sends something the schema cannot hold.
MAX_DISCARD_SHARE = 0.01
DISCARDS_CHECK = "discard_share_below_1_percent"
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
                        description=description, kinds={"duckdb"}, owners=["team:data-platform"])


def discard_check(discards: int, messages_read: int) -> dg.AssetCheckResult:
    """Passes while discards are at most MAX_DISCARD_SHARE of the messages read (a warning beyond)."""
    share = discards / messages_read if messages_read else 0.0
    return dg.AssetCheckResult(
        asset_key=dg.AssetKey([loader.SCHEMA, loader.DISCARDS]), check_name=DISCARDS_CHECK,
        passed=share <= MAX_DISCARD_SHARE, severity=dg.AssetCheckSeverity.WARN,
        metadata={"discards": discards, "messages_read": messages_read, "discard_share": round(share, 6)},
        description=f"{discards} of {messages_read} messages' values were discarded "
                    f"(at most {MAX_DISCARD_SHARE:.0%} expected); see events._discards for the reasons.")


@dg.multi_asset(
    name="events_load",
    specs=[_spec(t) for t in DECLARED_TABLES],
    check_specs=[dg.AssetCheckSpec(DISCARDS_CHECK, asset=dg.AssetKey([loader.SCHEMA, loader.DISCARDS]),
                                   description=f"Discarded values stay under {MAX_DISCARD_SHARE:.0%} of the messages read.")],
    partitions_def=resources.events_daily_partitions,
    # A backfill of many days is one run that loads the days in order, not one run per day.
    backfill_policy=dg.BackfillPolicy.single_run(),
    pool=resources.WAREHOUSE_POOL,
    op_tags=resources.WRITER_TAGS,
    retry_policy=resources.default_retry_policy,
    description="Load received dates of event files into events.* (each day replaces its earlier load).",
)
def events_load(context: dg.AssetExecutionContext, duckdb: DuckDBResource):
    """Load each day of the run's partitions from its closed event files (`loader.load_days`); one
    MaterializeResult per declared table, with the counts summed over the days."""
    days = sorted(context.partition_keys)
    totals: dict[str, int] = dict.fromkeys(
        ("files", "messages_read", "duplicates_dropped", "duplicates_in_day", "duplicates_across_days",
         "discards", "webhooks_transformed", "webhooks_skipped", "new_columns"), 0)
    rows_per_table: dict[str, int] = {}
    discards_by_reason: dict[str, int] = {}
    with duckdb.get_connection() as con:
        reports = loader.load_days(con, config.events_dir(), days)
    for report in reports:
        for key in totals:
            value = getattr(report, key)
            totals[key] += len(value) if key == "new_columns" else value
        for table, n in report.rows_per_table.items():
            # `users` is the whole table, counted once, with the last day
            rows_per_table[table] = n if table == "users" else rows_per_table.get(table, 0) + n
        for reason, n in report.discards_by_reason.items():
            discards_by_reason[reason] = discards_by_reason.get(reason, 0) + n
    # One line for the range: each log line is an event Dagster stores, one per day adds up over a backfill.
    context.log.info(
        f"loaded {totals['messages_read']} messages from {totals['files']} files for {len(days)} day(s) "
        f"{days[0]}..{days[-1]}: {totals['duplicates_in_day'] + totals['duplicates_across_days']} duplicates "
        f"dropped, {totals['discards']} discards")
    shared = {
        "partition_dates": days[0] if len(days) == 1 else f"{days[0]}..{days[-1]}",
        **totals,
        "discards_by_reason": dg.MetadataValue.json(discards_by_reason),
        "rows_per_table": dg.MetadataValue.json(rows_per_table),
    }
    for table in DECLARED_TABLES:
        rows = totals["discards"] if table == loader.DISCARDS else rows_per_table.get(table, 0)
        yield dg.MaterializeResult(asset_key=dg.AssetKey([loader.SCHEMA, table]),
                                   metadata={"rows": rows, **shared})
    yield discard_check(totals["discards"], totals["messages_read"])


capture_job = dg.define_asset_job(
    name="capture_events_job",
    selection=dg.AssetSelection.groups(CAPTURE_GROUP),
    description="Load one day of event files (all capture assets).",
)
