"""dbt models as Dagster assets (dbt tests become asset checks)."""

# No `from __future__ import annotations` here: Dagster reads the context annotation at runtime.

from dagster import AssetExecutionContext
from dagster_dbt import DbtCliResource, dbt_assets

from growth_stack_dagster.resources import WAREHOUSE_POOL, WRITER_TAGS, default_retry_policy
from growth_stack_dagster.transform.project import dbt_project
from growth_stack_dagster.transform.translator import GrowthStackDbtTranslator


@dbt_assets(
    manifest=dbt_project.manifest_path,
    project=dbt_project,
    dagster_dbt_translator=GrowthStackDbtTranslator(),
    pool=WAREHOUSE_POOL,
    op_tags=WRITER_TAGS,
    retry_policy=default_retry_policy,
)
def growth_stack_dbt_models(context: AssetExecutionContext, dbt: DbtCliResource):
    """`dbt build` of the selected models: runs them and their tests."""
    yield from dbt.cli(["build"], context=context).stream()
