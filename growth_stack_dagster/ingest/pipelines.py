"""Build the dlt pipeline and configured source of each ingest source, and load them.

Plain functions (no Dagster): the assets call them, and so can a script or a test subprocess
(`python -m growth_stack_dagster.ingest.pipelines <source>`).
"""

from __future__ import annotations

import gc
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import dlt
from dlt.common.pipeline import LoadInfo
from dlt.extract.source import DltSource

from growth_stack_dagster import config
from growth_stack_dagster.ingest.sources.defaults import register_sandbox_defaults
from growth_stack_dagster.ingest.sources.facebook_ads import facebook_ads_source
from growth_stack_dagster.ingest.sources.finance import finance_source
from growth_stack_dagster.ingest.sources.hubspot import hubspot_source
from growth_stack_dagster.ingest.sources.stripe import stripe_source
from growth_stack_dagster.ingest.sources.zendesk import zendesk_source

# Source name (= warehouse schema = dlt dataset) -> source function.
SOURCES: dict[str, Callable[..., DltSource]] = {
    "hubspot": hubspot_source,
    "stripe": stripe_source,
    "facebook_ads": facebook_ads_source,
    "zendesk": zendesk_source,
    "finance": finance_source,
}


# Parquet load files: DuckDB bulk-loads them, where `insert_values` (its default) makes it parse
# large INSERT statements, many times slower and with gigabytes of memory on big loads.
LOADER_FILE_FORMAT = "parquet"


@contextmanager
def bulk_load_gc() -> Iterator[None]:
    """Fewer garbage-collector passes while a load runs (restored after): pages parsed into
    millions of short-lived dicts otherwise trigger collections that rescan every live object,
    a third of the extract time of a large load."""
    threshold = gc.get_threshold()
    gc.freeze()  # objects alive before the load are never rescanned during it
    gc.set_threshold(100_000, 50, 1000)
    try:
        yield
    finally:
        gc.set_threshold(*threshold)
        gc.unfreeze()


def pipeline_name(source_name: str) -> str:
    """The dlt pipeline name (and state folder) of one source; Dagster's asset and a run share it."""
    return f"growth_stack_{source_name}"


def make_pipeline(source_name: str) -> dlt.Pipeline:
    """The dlt pipeline loading `source_name` into schema `source_name` of the warehouse DuckDB file,
    its state under `$GROWTH_STACK_HOME/dlt` (paths read now)."""
    return dlt.pipeline(
        pipeline_name=pipeline_name(source_name),
        pipelines_dir=str(config.home() / "dlt"),
        destination=dlt.destinations.duckdb(str(config.warehouse_path())),
        dataset_name=source_name,
    )


def build_source(source_name: str, **overrides: Any) -> DltSource:
    """The configured source (`SOURCES__<NAME>__*`, else the sandbox defaults)."""
    register_sandbox_defaults()
    return SOURCES[source_name](**overrides)


FULL_RELOAD_ENV = "GROWTH_STACK_FULL_RELOAD"


def full_reload_requested(source_name: str, requested: bool = False) -> bool:
    """True when this run of `source_name` must reload in full: `requested` (a CLI flag or Dagster run
    config), or `$GROWTH_STACK_FULL_RELOAD` naming the source (comma-separated names, or `all`)."""
    named = {n.strip().lower() for n in os.environ.get(FULL_RELOAD_ENV, "").split(",") if n.strip()}
    return requested or source_name in named or "all" in named


def run_options(source_name: str, full_reload: bool = False) -> dict[str, Any]:
    """Keyword arguments of `pipeline.run` for one load: Parquet load files, and for a full reload
    dlt's `refresh="drop_data"`, which empties the source's tables and resets its cursors in the
    same load, so every object is read again and nothing stale survives."""
    options: dict[str, Any] = {"loader_file_format": LOADER_FILE_FORMAT}
    if full_reload_requested(source_name, full_reload):
        options["refresh"] = "drop_data"
    return options


def load_source(source_name: str, full_reload: bool = False, **overrides: Any) -> LoadInfo:
    """Run one source's pipeline to the warehouse (in full when `full_reload`, see `run_options`);
    raises when a load job failed."""
    pipeline = make_pipeline(source_name)
    with bulk_load_gc():
        info = pipeline.run(build_source(source_name, **overrides), **run_options(source_name, full_reload))
    info.raise_on_failed_jobs()
    return info


if __name__ == "__main__":
    for name in sys.argv[1:] or list(SOURCES):
        print(load_source(name))
