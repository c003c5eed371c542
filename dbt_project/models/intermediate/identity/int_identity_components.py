"""The id map: the customer_id of every identifier, kept from build to build.

Nodes are `int_identifiers_accepted`, edges `int_identity_links_accepted`; the previous build's map
is this model's own table (an incremental model replaced whole: strategy `replace`). The stitch is
`growth_stack_dagster.lib.identity_graph.stitch`: a customer keeps its id when it gains identifiers,
the older id survives a merge, a part split off is named after its oldest identifier, and each node
that moved carries the merge or split that moved it (read by `identity_merges`).
With the var `identity_rebuild: true` the previous map is ignored (a build from scratch).
Grain: one row per node_key.
"""

from growth_stack_dagster.lib.identity_graph import stitch


def model(dbt, session):
    dbt.config(materialized="incremental", incremental_strategy="replace",
               on_schema_change="append_new_columns", full_refresh=False)
    links = dbt.ref("int_identity_links_accepted")
    identifiers = dbt.ref("int_identifiers_accepted")
    blocked = dbt.ref("int_identifiers_blocked")
    views = {"_identity_links": links, "_identity_identifiers": identifiers, "_identity_blocked": blocked}
    for name, relation in views.items():
        relation.create_view(name, replace=True)
    rebuild_var = dbt.config.get("identity_rebuild", False)
    rebuild = str(rebuild_var).lower() in ("true", "1", "yes")
    previous_sql = None
    if dbt.is_incremental and not rebuild:
        session.execute(f"create or replace temp table _identity_previous as select node_key, customer_id from {dbt.this}")
        previous_sql = "select node_key, customer_id from _identity_previous"
    try:
        stitch(
            session,
            nodes_sql="select node_key, first_seen_at, last_seen_at from _identity_identifiers",
            edges_sql="select node_key_a as key_a, node_key_b as key_b, link_id, first_seen_at from _identity_links",
            out_table="_identity_components",
            previous_sql=previous_sql,
            dropped_sql="select identifier_type || ':' || identifier_value as node_key, block_reason as reason "
                        "from _identity_blocked",
            temporary=True,
        )
    finally:
        # create_view makes persistent views in the file: remove them so the warehouse keeps only the model.
        for name in views:
            session.execute(f"drop view if exists {name}")
        session.execute("drop table if exists _identity_previous")
    return session.sql("select * from _identity_components")
