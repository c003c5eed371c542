"""Activate: one asset per sync declared in `dbt_project/models/activation/syncs/` (see assets.py),
validated when the code location loads."""

from __future__ import annotations

import dagster as dg

from growth_stack_dagster.activation.assets import build_sync_assets
from growth_stack_dagster.activation.declarations import load_syncs
from growth_stack_dagster.transform.assets import growth_stack_dbt_models

# An invalid declaration raises here, naming its file and field, so the code location fails to load.
syncs = load_syncs()
sync_assets, sync_checks = build_sync_assets(syncs, [growth_stack_dbt_models])
activation_job = dg.define_asset_job("activation_syncs", selection=dg.AssetSelection.groups("activation")
                                     - dg.AssetSelection.assets(growth_stack_dbt_models))

defs = dg.Definitions(assets=sync_assets, asset_checks=sync_checks, jobs=[activation_job])
