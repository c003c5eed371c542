"""Resources and run-level rules shared by every flow.

Only `definitions.py` binds resources; flows declare the keys they need:
`duckdb` (DuckDBResource on the warehouse file), `dlt` (DagsterDltResource), `dbt` (DbtCliResource).
"""

from __future__ import annotations

import dagster as dg

# Only one process may write a DuckDB file at a time: every writer step joins this Dagster pool
# (enforced across runs by the persistent instance's dagster.yaml) and carries WRITER_TAGS, which
# the in-run executor limits to one step at a time (see definitions.py).
WAREHOUSE_POOL = "duckdb_writer"
WRITER_TAG_KEY = "growth_stack/writer"
WRITER_TAGS = {WRITER_TAG_KEY: "duckdb"}

# Event loads and event-derived models are partitioned by the UTC date the collector received
# the event. History before this date is not loadable from the UI; set it to your first event day.
EVENTS_START_DATE = "2024-01-01"
events_daily_partitions = dg.DailyPartitionsDefinition(start_date=EVENTS_START_DATE, end_offset=1)

# Retries for steps that talk to the network or may meet the writer lock.
default_retry_policy = dg.RetryPolicy(max_retries=3, delay=5, backoff=dg.Backoff.EXPONENTIAL)
