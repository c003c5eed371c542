"""The dlt sources as Dagster assets: one `@dlt_assets` per source, keyed `[<schema>, <table>]`.

Thin wrappers: the sources and the pipeline are built when a run starts (so configuration and
secrets are read then, from the environment), loaded by the `dlt` resource (bound in the
top-level definitions), and each table's materialization carries the rows it loaded.
(No `from __future__ import annotations` here: Dagster reads the `context` annotation at definition.)
"""

from collections.abc import Iterator
from typing import Any

import dagster as dg
import dlt
from dagster_dlt import DagsterDltResource, dlt_assets

from growth_stack_dagster.ingest.pipelines import (
    SOURCES, build_source, bulk_load_gc, make_pipeline, pipeline_name, run_options,
)
from growth_stack_dagster.ingest.translator import IngestTranslator
from growth_stack_dagster.resources import WAREHOUSE_POOL, WRITER_TAGS

TRANSLATOR = IngestTranslator()
# Placeholder arguments for the definition-time sources, which only list resources and tables:
# no secret is read at import time; runs build the sources again from the configuration.
_SPEC_ONLY_ARGS: dict[str, dict[str, Any]] = {
    "hubspot": {"base_url": "https://api.hubapi.com", "api_key": "<configured at run time>"},
    "stripe": {"base_url": "https://api.stripe.com", "api_key": "<configured at run time>"},
    "facebook_ads": {"base_url": "https://graph.facebook.com", "api_key": "<configured at run time>"},
    "zendesk": {"base_url": "https://example.zendesk.com", "api_key": "<configured at run time>"},
    "finance": {"drop_dir": "<configured at run time>"},
}


def rows_loaded_by_table(pipeline: dlt.Pipeline, table: str) -> dict[str, int]:
    """Rows the last run of `pipeline` loaded into `table` and its child tables (`table__*`)."""
    counts = pipeline.last_trace.last_normalize_info.row_counts if pipeline.last_trace else {}
    out = {table: int(counts.get(table, 0))}
    out.update({t: int(n) for t, n in counts.items() if t.startswith(f"{table}__")})
    return out


class IngestRunConfig(dg.Config):
    """Run configuration of a source's load (Launchpad: `ops: {<source>_raw: {config: {full_reload: true}}}`)."""

    full_reload: bool = False  # empty the source's tables and cursors and read everything again


def run_source(context: dg.AssetExecutionContext, dlt_resource: DagsterDltResource,
               source_name: str, full_reload: bool = False) -> Iterator[dg.MaterializeResult]:
    """Load the (selected tables of the) source, in full when `full_reload` or
    `$GROWTH_STACK_FULL_RELOAD` asks; one result per table with `rows_loaded` (0 when nothing was
    new), `rows_loaded_by_table` (the table and its child tables) and `full_reload`."""
    pipeline = make_pipeline(source_name)
    source = build_source(source_name)
    options = run_options(source_name, full_reload)
    with bulk_load_gc():
        results = list(dlt_resource.run(context=context, dlt_source=source, dlt_pipeline=pipeline,
                                        dagster_dlt_translator=TRANSLATOR, **options))
    for result in results:
        table = result.asset_key.path[-1]
        by_table = rows_loaded_by_table(pipeline, table)
        yield dg.MaterializeResult(
            asset_key=result.asset_key,
            metadata={**(result.metadata or {}), "rows_loaded": dg.MetadataValue.int(by_table[table]),
                      "rows_loaded_by_table": dg.MetadataValue.json(by_table),
                      "full_reload": dg.MetadataValue.bool("refresh" in options)},
        )


def _source_assets(source_name: str) -> dg.AssetsDefinition:
    @dlt_assets(
        dlt_source=SOURCES[source_name](**_SPEC_ONLY_ARGS[source_name]),
        dlt_pipeline=dlt.pipeline(pipeline_name=pipeline_name(source_name), destination="duckdb",
                                  dataset_name=source_name),
        name=f"{source_name}_raw",
        dagster_dlt_translator=TRANSLATOR,
        op_tags=WRITER_TAGS,
        pool=WAREHOUSE_POOL,
    )
    def _assets(context: dg.AssetExecutionContext, dlt: DagsterDltResource,
                config: IngestRunConfig) -> Iterator[dg.MaterializeResult]:
        yield from run_source(context, dlt, source_name, full_reload=config.full_reload)

    _assets.__doc__ = f"Raw {source_name} tables loaded by dlt."
    return _assets


hubspot_assets = _source_assets("hubspot")
stripe_assets = _source_assets("stripe")
facebook_ads_assets = _source_assets("facebook_ads")
zendesk_assets = _source_assets("zendesk")
finance_assets = _source_assets("finance")

ingest_assets = [hubspot_assets, stripe_assets, facebook_ads_assets, zendesk_assets, finance_assets]
