"""The Growth Stack code location: every flow's assets, checks, schedules and sensors, and the
resources they share. Start here: each flow's `defs.py` lists its assets.

    capture/defs.py     collector event files -> `events` schema (daily partitions, file sensor)
    ingest/defs.py      dlt: HubSpot, Stripe, Facebook Ads, Zendesk, finance CSVs -> raw schemas
    transform/defs.py   dbt: staging, identity, customer 360, marketing, finance, activation models
    streaming/defs.py   streaming routes: one asset per route observed from the router's state, lag checks
    activation/defs.py  reverse-ETL syncs declared in dbt_project/models/activation/syncs/
    operate/defs.py     the executive scorecard and run-failure alerts; operate/catalog.py gives every
                        asset its freshness policy, owner and description
"""

from __future__ import annotations

import dagster as dg
from dagster_dlt import DagsterDltResource
from dagster_duckdb import DuckDBResource

from growth_stack_dagster import config
from growth_stack_dagster.activation import defs as activation
from growth_stack_dagster.capture import defs as capture
from growth_stack_dagster.ingest import defs as ingest
from growth_stack_dagster.instance import ensure_dagster_home
from growth_stack_dagster.operate import defs as operate
from growth_stack_dagster.operate.catalog import apply_catalog
from growth_stack_dagster.resources import WRITER_TAG_KEY, WRITER_TAGS
from growth_stack_dagster.streaming import defs as streaming
from growth_stack_dagster.transform import defs as transform
from growth_stack_dagster.transform.project import DBT_EXECUTABLE, DbtResource, dbt_project

# dbt's profile reads GROWTH_STACK_HOME: make it absolute for the dbt subprocesses.
ensure_dagster_home()

# Within one run, steps carrying the writer tag go one at a time (the pool does it across runs).
executor = dg.multiprocess_executor.configured(
    {"max_concurrent": 2,
     "tag_concurrency_limits": [{"key": WRITER_TAG_KEY, "value": WRITER_TAGS[WRITER_TAG_KEY], "limit": 1}]}
)

# Only one Definitions object at module scope, so `dagster ... -m growth_stack_dagster.definitions` finds it.
defs = apply_catalog(dg.Definitions.merge(
    capture.defs,
    ingest.defs,
    transform.defs,
    streaming.defs,
    activation.defs,
    operate.defs,
    dg.Definitions(
        resources={
            "duckdb": DuckDBResource(database=str(config.warehouse_path())),
            "dlt": DagsterDltResource(),
            "dbt": DbtResource(project_dir=dbt_project, dbt_executable=str(DBT_EXECUTABLE)),
        },
        executor=executor,
    ),
))
