"""Asset keys of dlt tables: `[<schema>, <table>]`, the key of the dbt `source()` that reads the
table, so the lineage from API table to dbt model is one graph. Grouped `ingest_<schema>`."""

from __future__ import annotations

import dagster as dg
from dagster_dlt import DagsterDltTranslator
from dagster_dlt.translator import DltResourceTranslatorData


def raw_asset_key(schema: str, table: str) -> dg.AssetKey:
    """The asset key of raw table `schema.table` (equal to dbt's key for `source(schema, table)`)."""
    return dg.AssetKey([schema, table])


class IngestTranslator(DagsterDltTranslator):
    """dlt resource -> asset spec: key `[source name, table name]`, group `ingest_<source>`,
    no upstream assets (the SaaS API is outside the graph)."""

    def get_asset_spec(self, data: DltResourceTranslatorData) -> dg.AssetSpec:
        spec = super().get_asset_spec(data)
        resource = data.resource
        schema = resource.source_name
        table = resource.table_name if isinstance(resource.table_name, str) else resource.name
        return spec.replace_attributes(
            key=raw_asset_key(schema, table), group_name=f"ingest_{schema}", deps=[],
            kinds={"dlt", "duckdb"},
        )
