"""Connected components of the identity graph, computed inside DuckDB until nothing changes.

Used by the dbt Python model `int_identity_components` and by `bench/bench_identity.py`. It takes
undirected edges between identifiers (`type:value` node keys) and labels every identifier with
its component. A component's `customer_id` is the hex of the smallest `md5_number(node_key)` in it,
so it depends only on the component's own identifiers: adding an unrelated customer never
changes it, and a merge keeps the id of whichever side holds the smallest key.

Method (graph contraction): nodes get dense integer ids in md5 order, so the smallest id is the
smallest md5. Each round every node points at its smallest neighbour, pointers are jumped until
each node points at its tree's root, and the edges are rewritten between roots (self-loops and
duplicates dropped). The graph shrinks every round; rounds repeat until no edge is left (no fixed
pass count; `max_rounds` only guards against a bug looping forever). Labels are then composed
backwards from the last round.
"""

from __future__ import annotations

import dataclasses

import duckdb


@dataclasses.dataclass
class StitchStats:
    nodes: int
    edges: int
    components: int
    rounds: int


def connected_components(con: duckdb.DuckDBPyConnection, edges_sql: str, out_table: str,
                         nodes_sql: str | None = None, max_rounds: int = 200) -> StitchStats:
    """Write `out_table(node_key VARCHAR, customer_id VARCHAR)` for every node of the graph.

    `edges_sql` selects `(key_a VARCHAR, key_b VARCHAR)`; `nodes_sql` optionally selects extra
    `(node_key VARCHAR)` rows that have no edge (they become customers of their own).
    Temporary tables are prefixed `_cc_` and dropped. Raises RuntimeError if labels have not
    converged after `max_rounds` rounds.
    """
    extra_nodes = f"union select node_key from ({nodes_sql})" if nodes_sql else ""
    con.execute(f"""
        create or replace temp table _cc_raw_edges as
        select key_a, key_b from ({edges_sql}) where key_a is not null and key_b is not null
    """)
    con.execute(f"""
        create or replace temp table _cc_nodes as
        with keys as (
            select key_a as node_key from _cc_raw_edges union select key_b from _cc_raw_edges {extra_nodes}
        )
        select node_key, md5_number(node_key) as node_hash,
               (row_number() over (order by md5_number(node_key)))::integer as node_id
        from keys
    """)
    con.execute("""
        create or replace temp table _cc_edges as
        with e as (
            select na.node_id as a, nb.node_id as b
            from _cc_raw_edges r
            join _cc_nodes na on na.node_key = r.key_a
            join _cc_nodes nb on nb.node_key = r.key_b
            where r.key_a <> r.key_b
        )
        select a, b from e union select b, a from e
    """)
    con.execute("drop table _cc_raw_edges")
    edge_count = con.execute("select count(*) // 2 from _cc_edges").fetchone()[0]
    rounds = 0
    while con.execute("select count(*) from _cc_edges").fetchone()[0] > 0:
        rounds += 1
        if rounds > max_rounds:
            raise RuntimeError(f"identity components did not converge in {max_rounds} rounds")
        # Hook: every node of this round's graph points at its smallest neighbour (or itself).
        con.execute(f"""
            create or replace temp table _cc_parent_{rounds} as
            select a as node_id, least(a, min(b)) as parent from _cc_edges group by a
        """)
        # Pointer jumping until every node points at the root of its tree (parents only decrease).
        while True:
            con.execute(f"""
                create or replace temp table _cc_jump as
                select c.node_id, coalesce(p.parent, c.parent) as parent, c.parent as old_parent
                from _cc_parent_{rounds} c left join _cc_parent_{rounds} p on p.node_id = c.parent
            """)
            changed = con.execute("select count(*) from _cc_jump where parent <> old_parent").fetchone()[0]
            con.execute(f"create or replace temp table _cc_parent_{rounds} as select node_id, parent from _cc_jump")
            if changed == 0:
                break
        # Contract: edges between roots of different trees form the next round's graph.
        con.execute(f"""
            create or replace temp table _cc_edges as
            select distinct pa.parent as a, pb.parent as b
            from _cc_edges e
            join _cc_parent_{rounds} pa on pa.node_id = e.a
            join _cc_parent_{rounds} pb on pb.node_id = e.b
            where pa.parent <> pb.parent
        """)
    # Compose the rounds backwards: a node's label is its root in the last round it took part in.
    con.execute("create or replace temp table _cc_final (node_id integer, label integer)")
    for k in range(rounds, 0, -1):
        con.execute(f"""
            create or replace temp table _cc_final as
            select p.node_id, coalesce(f.label, p.parent) as label
            from _cc_parent_{k} p left join _cc_final f on f.node_id = p.parent
        """)
        con.execute(f"drop table _cc_parent_{k}")
    con.execute("""
        create or replace temp table _cc_labels as
        select n.node_id, coalesce(f.label, n.node_id) as label
        from _cc_nodes n left join _cc_final f using (node_id)
    """)
    con.execute(f"""
        create or replace table {out_table} as
        select n.node_key, lower(hex(root.node_hash)) as customer_id
        from _cc_nodes n
        join _cc_labels l using (node_id)
        join _cc_nodes root on root.node_id = l.label
    """)
    stats = StitchStats(
        nodes=con.execute("select count(*) from _cc_nodes").fetchone()[0],
        edges=edge_count,
        components=con.execute(f"select count(distinct customer_id) from {out_table}").fetchone()[0],
        rounds=rounds,
    )
    for t in ("_cc_nodes", "_cc_edges", "_cc_labels", "_cc_jump", "_cc_final"):
        con.execute(f"drop table if exists {t}")
    return stats
