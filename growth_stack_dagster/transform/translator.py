"""How dbt nodes become Dagster assets: sources keep their `[source, table]` key so they are the
very assets the capture and ingest flows materialize; models are grouped by the flow folder."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings

from growth_stack_dagster.ingest.translator import raw_asset_key

# dbt folder under models/ -> Dagster asset group
FOLDER_GROUPS = {
    "staging": "staging",
    "intermediate": "identity",
    "identity": "identity",
    "marts": "customer_360",
    "customers": "customer_360",
    "marketing": "marketing",
    "finance": "finance",
    "activation": "activation",
}


def group_for_fqn(fqn: list[str]) -> str:
    """Dagster group of a dbt model from its fqn (`[project, folder, ..., name]`).

    Staging models are one group whatever their source; elsewhere a sub-folder named in
    FOLDER_GROUPS wins over its parent (marts/marketing -> marketing).
    """
    if len(fqn) > 2 and fqn[1] == "staging":
        return "staging"
    for folder in reversed(fqn[1:-1]):
        if folder in FOLDER_GROUPS:
            return FOLDER_GROUPS[folder]
    return "transform"


class GrowthStackDbtTranslator(DagsterDbtTranslator):
    def __init__(self) -> None:
        super().__init__(settings=DagsterDbtTranslatorSettings(enable_asset_checks=True))

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> dg.AssetKey:
        if dbt_resource_props["resource_type"] == "source":
            return raw_asset_key(dbt_resource_props["source_name"], dbt_resource_props["name"])
        return super().get_asset_key(dbt_resource_props)

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        if dbt_resource_props["resource_type"] == "model":
            return group_for_fqn(list(dbt_resource_props["fqn"]))
        return super().get_group_name(dbt_resource_props)
