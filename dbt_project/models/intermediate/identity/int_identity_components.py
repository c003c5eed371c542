"""Connected components of the identity graph: one `customer_id` per set of linked identifiers.

Nodes are `int_identifiers_accepted`, edges `int_identity_links_accepted`. The components are
computed inside DuckDB by `growth_stack_dagster.lib.identity_graph.connected_components`, round after
round until no edge is left (no fixed number of passes). A customer_id is the hex of the smallest
md5 of its identifiers' node keys, so adding an unrelated customer never changes it.
Grain: one row per node_key.
"""

from growth_stack_dagster.lib.identity_graph import connected_components


def model(dbt, session):
    dbt.config(materialized="table")
    links = dbt.ref("int_identity_links_accepted")
    identifiers = dbt.ref("int_identifiers_accepted")
    links.create_view("_identity_links", replace=True)
    identifiers.create_view("_identity_identifiers", replace=True)
    # The function writes a regular table; it is copied to a temp table and dropped, so the
    # warehouse keeps nothing but this model's own table.
    work_table = f'"{dbt.this.schema}"."_int_identity_components_work"'
    connected_components(
        session,
        "select node_key_a as key_a, node_key_b as key_b from _identity_links",
        work_table,
        nodes_sql="select node_key from _identity_identifiers",
    )
    session.execute(f"create or replace temp table _identity_components as select * from {work_table}")
    session.execute(f"drop table {work_table}")
    # create_view makes persistent views in the file: remove them so the warehouse keeps only the model.
    session.execute("drop view if exists _identity_links")
    session.execute("drop view if exists _identity_identifiers")
    return session.sql("select node_key, customer_id from _identity_components")
