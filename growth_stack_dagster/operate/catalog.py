"""Freshness policies, owners and descriptions applied across the whole graph (as dagster-open-platform
does), so that every source, model and mart states who owns it and how fresh it should be.

Pure mapping from an asset's group to its expectations; `apply_catalog` maps every resolved spec.
"""

from __future__ import annotations

import datetime as dt
import warnings

import dagster as dg

HOUR = dt.timedelta(hours=1)

# (warn after, fail after) since the last materialization, by how the group is refreshed.
HOURLY = (2 * HOUR, 6 * HOUR)        # hourly schedules: a missed run warns, a missed afternoon fails
DAILY = (26 * HOUR, 50 * HOUR)       # daily schedules: one missed day warns, two fail
CONTINUOUS = (2 * HOUR, 26 * HOUR)   # event files close every few minutes; a quiet night is not a failure
DAILY_INGEST = {"ingest_facebook_ads", "ingest_finance"}
INGEST_SCHEMAS = {"hubspot", "stripe", "facebook_ads", "zendesk", "finance"}

OWNERS = {
    "capture": "team:data-platform",
    "ingest": "team:data-platform",
    "staging": "team:analytics",
    "identity": "team:analytics",
    "customer_360": "team:analytics",
    "marketing": "team:marketing-analytics",
    "finance": "team:finance-analytics",
    "activation": "team:growth",
    "streaming": "team:growth",
    "reports": "team:analytics",
}


def windows_for(group: str | None) -> tuple[dt.timedelta, dt.timedelta] | None:
    """(warn, fail) freshness windows of an asset in `group`; None for groups with no expectation."""
    if not group:
        return None
    if group == "capture":
        return CONTINUOUS
    if group in DAILY_INGEST:
        return DAILY
    return HOURLY


def owner_for(group: str | None) -> str | None:
    """The team owning the assets of `group` (ingest_<source> belongs to the ingest owners)."""
    if not group:
        return None
    return OWNERS.get("ingest" if group.startswith("ingest_") else group)


def default_description(key: dg.AssetKey, group: str | None) -> str:
    """A sentence for an asset that has none: where the table comes from."""
    schema, table = (key.path[0], key.path[-1]) if len(key.path) > 1 else ("", key.path[-1])
    if group and group.startswith("ingest_"):
        return f"Raw `{schema}.{table}` as loaded by dlt from the {schema} API (one column per field)."
    return f"`{'.'.join(key.path)}` in the warehouse."


def child_table_parent(spec: dg.AssetSpec) -> str | None:
    """For a dlt child table that dbt reads as a source (`stripe.invoices__lines`), its parent
    table's name; None otherwise. dlt loads it with its parent, so it has no asset of its own."""
    table = spec.key.path[-1]
    if (spec.group_name in (None, "default") and len(spec.key.path) == 2 and "__" in table
            and spec.key.path[0] in INGEST_SCHEMAS):
        return table.split("__")[0]
    return None


def catalog_spec(spec: dg.AssetSpec) -> dg.AssetSpec:
    """`spec` with a freshness policy, an owner and a description where it had none."""
    parent = child_table_parent(spec)
    if parent is not None:
        schema = spec.key.path[0]
        return spec.replace_attributes(
            group_name=f"ingest_{schema}", owners=spec.owners or [OWNERS["ingest"]],
            description=spec.description or f"Child table of `{schema}.{parent}`, loaded with it by dlt "
                                             "(nested lists become their own table, keyed to the parent row).")
    changes: dict = {}
    windows = windows_for(spec.group_name)
    if windows and spec.freshness_policy is None:
        warn, fail = windows
        changes["freshness_policy"] = dg.FreshnessPolicy.time_window(fail_window=fail, warn_window=warn)
    if not spec.description:
        changes["description"] = default_description(spec.key, spec.group_name)
    owner = owner_for(spec.group_name)
    if owner and not spec.owners:
        changes["owners"] = [owner]
    return spec.replace_attributes(**changes) if changes else spec


def undeclared_child_tables(defs: dg.Definitions) -> list[dg.AssetSpec]:
    """Specs for the dlt child tables that models read but no asset declares (they would otherwise sit
    in the `default` group with no description)."""
    # the resolved specs include the placeholders Dagster makes for dependencies nothing declares
    placeholders = [s for s in defs.resolve_all_asset_specs() if child_table_parent(s) is not None]
    return [catalog_spec(dg.AssetSpec(key=s.key)) for s in sorted(placeholders, key=lambda s: s.key.to_user_string())]


def apply_catalog(defs: dg.Definitions) -> dg.Definitions:
    """Every asset of `defs` through `catalog_spec`, with the dlt child tables models read declared."""
    with warnings.catch_warnings():  # map_resolved_asset_specs is a preview API in Dagster 1.13
        warnings.simplefilter("ignore", dg.PreviewWarning if hasattr(dg, "PreviewWarning") else Warning)
        mapped = defs.map_resolved_asset_specs(func=catalog_spec)
    children = undeclared_child_tables(mapped)
    return dg.Definitions.merge(mapped, dg.Definitions(assets=children)) if children else mapped
