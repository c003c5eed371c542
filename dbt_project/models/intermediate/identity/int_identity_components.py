"""The id map: the customer_id of every identifier, kept from build to build.

Nodes are `int_identifiers_accepted`, edges `int_identity_links_accepted`. On the first build the
stitch (`growth_stack_dagster.lib.identity_graph.stitch`) writes the map; on every later build
`update_map` brings this model's own table up to date in place, in a transaction of its own (dbt runs a
Python model outside one): only the rows of identifiers that are new, moved or gone, and those the build
before wrote for its new and moved ones, are written (when most rows are, every row is).
A customer keeps its id when it gains identifiers, the older id survives a merge, a part split off is
named after its oldest identifier, and each node that moved carries the merge or split that moved it
(read by `identity_merges`). The model then returns no rows, so the `append` strategy adds nothing.
With the var `identity_rebuild: true` the previous map is ignored (a build from scratch replaces it).
Grain: one row per node_key.
"""

from growth_stack_dagster.lib.identity_graph import OUT_COLUMNS, stitch, update_map


def model(dbt, session):
    dbt.config(materialized="incremental", incremental_strategy="append",
               on_schema_change="append_new_columns", full_refresh=False)
    links = dbt.ref("int_identity_links_accepted")
    identifiers = dbt.ref("int_identifiers_accepted")
    blocked = dbt.ref("int_identifiers_blocked")
    views = {"_identity_links": links, "_identity_identifiers": identifiers, "_identity_blocked": blocked}
    for name, relation in views.items():
        relation.create_view(name, replace=True)
    rebuild_var = dbt.config.get("identity_rebuild", False)
    rebuild = str(rebuild_var).lower() in ("true", "1", "yes")
    graph = dict(
        nodes_sql="select node_key, first_seen_at, last_seen_at from _identity_identifiers",
        edges_sql="select node_key_a as key_a, node_key_b as key_b, link_id, first_seen_at from _identity_links",
        dropped_sql="select identifier_type || ':' || identifier_value as node_key, block_reason as reason "
                    "from _identity_blocked",
    )
    columns = ", ".join(OUT_COLUMNS)
    try:
        if dbt.is_incremental:
            update_map(session, table=str(dbt.this), rebuild=rebuild, **graph)
            rows = f"select {columns} from {dbt.this} where false"  # the table is up to date: nothing to append
        else:
            stitch(session, out_table="_identity_components", temporary=True, **graph)
            rows = f"select {columns} from _identity_components"
    finally:
        # create_view makes persistent views in the file: remove them so the warehouse keeps only the model.
        for name in views:
            session.execute(f"drop view if exists {name}")
    return session.sql(rows)
