"""Identity stitching with persistent customer ids.

Used by the dbt Python model `int_identity_components` and by `bench/bench_identity.py`.

`stitch` takes the identifiers (graph nodes, `type:value` keys with when each was first and last
seen), the links between them (edges) and, optionally, the id map of the previous build. It finds
the connected components with `scipy.sparse.csgraph.connected_components` once the keys are mapped
to integers in DuckDB, and gives every component a `customer_id` by these rules:

- An identifier's "age" is (first_seen_at, node_key): the oldest identifier is the one seen first,
  ties broken by its key, so the order never depends on the wall clock or on build order.
- A previous customer id lives on in the component that holds its oldest current identifier (its
  home). Gaining identifiers never renames a customer.
- A component that is home to several previous ids is a merge: the id whose oldest identifier is the
  oldest survives; each other id is recorded as merged into it, with the link (first seen the
  earliest, in time order) that joined it to the survivor.
- Identifiers of a previous id found outside its home split off: they take the id of their new
  component, recorded as a split.
- A component with no previous id (a new customer, or a part split off) is named after its oldest
  identifier: `md5(node_key)` of that identifier (with `#1`, `#2`, ... appended to the key in the rare
  case that id is already taken in this build).

Merges keep the older id and splits give each part the id of its own oldest identifier, so a build
from scratch over the same data gives every customer the id the successive builds gave it, as long
as identifiers arrived in the order they were first seen (see README, "Customer ids").
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib

import duckdb
import numpy as np
import pyarrow as pa
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

# Temporary tables are prefixed `_st_` and dropped before `stitch` returns.
_TEMP_TABLES = ("_st_nodes", "_st_labels", "_st_assign", "_st_prev", "_st_groups", "_st_claims", "_st_founders",
                "_st_fixed", "_st_ids", "_st_changes", "_st_merge_nodes", "_st_split_ids")

OUT_COLUMNS = ("node_key", "customer_id", "previous_customer_id", "change_type", "changed_at",
               "change_link_id", "change_reason")


@dataclasses.dataclass
class StitchStats:
    """What one stitch did: graph size, components and how many ids were kept, new, merged and split."""

    nodes: int
    edges: int
    components: int
    kept: int
    new: int
    merged: int
    split: int


@dataclasses.dataclass(frozen=True)
class Change:
    """One change of the id map: `old_customer_id` merged into, or split off to, `customer_id`."""

    change_type: str  # "merge" | "split"
    old_customer_id: str
    customer_id: str
    changed_at: dt.datetime | None
    link_id: str | None
    reason: str


class IdentityGraphError(ValueError):
    """The input of a stitch is inconsistent (a link names an identifier that is not a node)."""


def new_customer_id(node_key: str, attempt: int = 0) -> str:
    """The id of a customer founded by `node_key`: md5 of the key (of `key#attempt` after a clash)."""
    key = node_key if attempt == 0 else f"{node_key}#{attempt}"
    return hashlib.md5(key.encode()).hexdigest()


def stitch(con: duckdb.DuckDBPyConnection, nodes_sql: str, edges_sql: str, out_table: str,
           previous_sql: str | None = None, dropped_sql: str | None = None,
           temporary: bool = False) -> tuple[StitchStats, list[Change]]:
    """Write `out_table` (OUT_COLUMNS, one row per node) and return the stats and the id changes.

    nodes_sql selects `(node_key VARCHAR, first_seen_at TIMESTAMPTZ, last_seen_at TIMESTAMPTZ)`, one row
    per identifier; edges_sql selects `(key_a, key_b, link_id, first_seen_at)`, both keys among the nodes;
    previous_sql selects the previous build's `(node_key, customer_id)`, one row per node_key (None on
    the first build); dropped_sql optionally selects `(node_key, reason)` of identifiers that were taken
    out of the graph (e.g. blocked), used to explain splits; `temporary` makes `out_table` a temp table.
    `previous_customer_id` is the node's id in
    the previous map; `change_*` describe the merge or split that moved it, NULL when it did not move.
    Raises IdentityGraphError when a link names an identifier that is not a node.
    """
    try:
        return _stitch(con, nodes_sql, edges_sql, out_table, previous_sql, dropped_sql, temporary)
    finally:
        for table in _TEMP_TABLES:
            con.execute(f"drop table if exists {table}")
        con.execute("drop view if exists _st_labels_arrow")


def _stitch(con, nodes_sql, edges_sql, out_table, previous_sql, dropped_sql, temporary):
    # Integer ids in scan order; ages are compared on (first_seen_at, node_key) where needed.
    con.execute(f"""
        create or replace temp table _st_nodes as
        select node_key, first_seen_at, last_seen_at, (row_number() over () - 1)::integer as i
        from ({nodes_sql}) where node_key is not null
    """)
    n = con.execute("select count(*) from _st_nodes").fetchone()[0]
    arrays = con.execute(f"""
        select na.i as a, nb.i as b
        from ({edges_sql}) e
        left join _st_nodes na on na.node_key = e.key_a
        left join _st_nodes nb on nb.node_key = e.key_b
    """).fetchnumpy()
    a, b = arrays["a"], arrays["b"]
    if np.ma.is_masked(a) or np.ma.is_masked(b):
        key_a, key_b = con.execute(f"""
            select e.key_a, e.key_b from ({edges_sql}) e
            where e.key_a not in (select node_key from _st_nodes) or e.key_b not in (select node_key from _st_nodes)
            limit 1
        """).fetchone()
        raise IdentityGraphError(
            f"The link {key_a!r} - {key_b!r} names an identifier that is not among the nodes; "
            "every side of a link must also be selected by nodes_sql.")
    a, b = np.asarray(a, dtype=np.int32), np.asarray(b, dtype=np.int32)
    edge_count = len(a)
    graph = coo_matrix((np.ones(edge_count, dtype=np.int8), (a, b)), shape=(n, n)).tocsr()
    del arrays, a, b
    components, labels = connected_components(graph, directed=False)
    del graph
    labels_table = pa.table({"i": pa.array(np.arange(n, dtype=np.int32)), "component": pa.array(labels.astype(np.int32))})
    con.register("_st_labels_arrow", labels_table)
    con.execute("create or replace temp table _st_labels as select * from _st_labels_arrow")
    con.unregister("_st_labels_arrow")
    del labels_table, labels

    previous = f"({previous_sql})" if previous_sql else \
        "(select cast(null as varchar) as node_key, cast(null as varchar) as customer_id where false)"
    con.execute(f"""
        create or replace temp table _st_assign as
        select n.i, n.node_key, n.first_seen_at, l.component, p.customer_id as prev_id
        from _st_nodes n
        join _st_labels l using (i)
        left join (select node_key, customer_id from {previous} where customer_id is not null) p using (node_key)
    """)
    # The home of a previous id: the component of its oldest current identifier.
    con.execute("""
        create or replace temp table _st_prev as
        select prev_id, arg_min(component, (first_seen_at, node_key)) as home
        from _st_assign where prev_id is not null group by prev_id
    """)
    # A group is what one previous customer has in one component: at home, or a part split off.
    con.execute("""
        create or replace temp table _st_groups as
        select a.component, a.prev_id, p.home = a.component as is_home,
               min((a.first_seen_at, a.node_key)) as oldest,
               arg_min(a.node_key, (a.first_seen_at, a.node_key)) as oldest_key
        from _st_assign a join _st_prev p using (prev_id)
        group by a.component, a.prev_id, p.home
    """)
    # The oldest group wins its component: a previous id at home keeps its id, a part split off is
    # named after its oldest identifier. New identifiers never rename a component that has a group.
    con.execute("""
        create or replace temp table _st_claims as
        select component, count(*) as groups,
               arg_min(prev_id, oldest) as winner_prev, arg_min(is_home, oldest) as winner_is_home,
               arg_min(oldest_key, oldest) as winner_key
        from _st_groups group by component
    """)
    con.execute("""
        create or replace temp table _st_founders as
        select component, winner_key as founder from _st_claims where not winner_is_home
        union all
        select a.component, arg_min(a.node_key, (a.first_seen_at, a.node_key))
        from _st_assign a anti join _st_claims c using (component)
        group by a.component
    """)
    # Rarely a new id equals one a previous customer keeps: name it after the founder's key plus #k.
    clashes = con.execute("""
        select component, founder from _st_founders
        where md5(founder) in (select prev_id from _st_prev) order by founder
    """).fetchall()
    con.execute("create or replace temp table _st_fixed (component integer, customer_id varchar)")
    if clashes:
        taken = {r[0] for r in con.execute("select prev_id from _st_prev").fetchall()}
        fixed = []
        for component, founder in clashes:
            attempt = 1
            while (candidate := new_customer_id(founder, attempt)) in taken or con.execute(
                    "select count(*) from _st_founders where md5(founder) = ?", [candidate]).fetchone()[0]:
                attempt += 1
            taken.add(candidate)
            fixed.append((component, candidate))
        con.executemany("insert into _st_fixed values (?, ?)", fixed)
    con.execute("""
        create or replace temp table _st_ids as
        select component, winner_prev as customer_id from _st_claims where winner_is_home
        union all
        select f.component, coalesce(x.customer_id, md5(f.founder))
        from _st_founders f left join _st_fixed x using (component)
    """)

    changes = _merges(con, edges_sql) + _splits(con, previous, dropped_sql)
    con.execute("""create or replace temp table _st_changes (change_type varchar, old_customer_id varchar,
                   customer_id varchar, changed_at timestamptz, link_id varchar, reason varchar)""")
    if changes:
        con.executemany("insert into _st_changes values (?, ?, ?, ?, ?, ?)",
                        [dataclasses.astuple(c) for c in changes])
    con.execute(f"""
        create or replace {"temp " if temporary else ""}table {out_table} as
        select a.node_key, ids.customer_id, a.prev_id as previous_customer_id,
               c.change_type, c.changed_at, c.link_id as change_link_id, c.reason as change_reason
        from _st_assign a
        join _st_ids ids using (component)
        left join _st_changes c
            on c.old_customer_id = a.prev_id and c.customer_id = ids.customer_id
    """)
    kept, new = con.execute("""
        select (select count(*) from _st_claims where winner_is_home), (select count(*) from _st_founders)
    """).fetchone()
    stats = StitchStats(nodes=n, edges=edge_count, components=components, kept=kept, new=new,
                        merged=sum(c.change_type == "merge" for c in changes),
                        split=sum(c.change_type == "split" for c in changes))
    return stats, changes


def _merges(con: duckdb.DuckDBPyConnection, edges_sql: str) -> list[Change]:
    """The merges of this build, each with the link that joined the old id to its survivor.

    In every component with several groups (previous customers at home or parts split off), links are
    replayed in time order (first_seen_at, then link_id) over the groups' identifiers; the link at which
    a previous customer's identifiers first connect to the winning group is the one that merged it.
    """
    merged = con.execute("""
        select g.component, g.prev_id, ids.customer_id
        from _st_groups g
        join _st_claims c using (component)
        join _st_ids ids using (component)
        where c.groups > 1 and g.is_home and g.prev_id <> ids.customer_id
        order by 1, 2
    """).fetchall()
    if not merged:
        return []
    con.execute("""
        create or replace temp table _st_merge_nodes as
        select a.node_key, a.component, a.prev_id, a.prev_id = c.winner_prev as in_winner,
               p.home = a.component as at_home
        from _st_assign a
        join _st_claims c on c.component = a.component and c.groups > 1
        left join _st_prev p on p.prev_id = a.prev_id
        where a.component in (select component from _st_groups g
                              join _st_ids ids using (component)
                              where g.is_home and g.prev_id <> ids.customer_id)
    """)
    nodes = con.execute("select node_key, component, prev_id, in_winner, at_home from _st_merge_nodes").fetchall()
    links = con.execute(f"""
        select e.key_a, e.key_b, e.link_id, e.first_seen_at
        from ({edges_sql}) e semi join _st_merge_nodes m on m.node_key = e.key_a
        order by e.first_seen_at nulls last, e.link_id
    """).fetchall()
    parent: dict[str, str] = {}
    holds: dict[str, set[str]] = {}  # root -> previous ids at home in its set, "" for the winning group
    first_of_group: dict[tuple[int, str], str] = {}
    for node_key, component, prev_id, in_winner, at_home in nodes:
        parent[node_key] = node_key
        if prev_id is None:
            continue
        # The identifiers of one previous customer in one component start as one set: they were one customer.
        group = (component, prev_id)
        if group in first_of_group:
            parent[node_key] = first_of_group[group]
        else:
            first_of_group[group] = node_key
            holds[node_key] = {""} if in_winner else ({prev_id} if at_home else set())

    def find(x: str) -> str:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    survivor_of_old = {old: customer_id for _, old, customer_id in merged}
    changes: list[Change] = []
    for key_a, key_b, link_id, first_seen_at in links:
        ra, rb = find(key_a), find(key_b)
        if ra == rb:
            continue
        held_a, held_b = holds.pop(ra, set()), holds.pop(rb, set())
        if ("" in held_a) != ("" in held_b):  # this link joins previous customers to the winning group
            for old in sorted((held_b if "" in held_a else held_a) - {""}):
                changes.append(Change("merge", old, survivor_of_old[old], first_seen_at, link_id,
                                      f"{key_a} and {key_b} were linked"))
        parent[rb] = ra
        holds[ra] = held_a | held_b
    found = {c.old_customer_id for c in changes}
    if found != set(survivor_of_old):  # a component is connected, so every group meets the winner
        raise RuntimeError(f"identity merges without a joining link: {sorted(set(survivor_of_old) - found)[:5]}")
    return sorted(changes, key=lambda c: (c.customer_id, c.old_customer_id))


def _splits(con: duckdb.DuckDBPyConnection, previous: str, dropped_sql: str | None) -> list[Change]:
    """Identifiers of a previous customer found outside its home: split off to their new customer."""
    rows = con.execute("""
        select a.prev_id, ids.customer_id, count(*) as identifiers
        from _st_assign a
        join _st_prev p using (prev_id)
        join _st_ids ids on ids.component = a.component
        where a.component <> p.home
        group by all
        order by 1, 2
    """).fetchall()
    if not rows:
        return []
    changed_at = con.execute("select max(coalesce(last_seen_at, first_seen_at)) from _st_nodes").fetchone()[0]
    split_ids = sorted({r[0] for r in rows})
    dropped = f"({dropped_sql})" if dropped_sql else \
        "(select cast(null as varchar) as node_key, cast(null as varchar) as reason where false)"
    con.execute("create or replace temp table _st_split_ids (customer_id varchar)")
    con.executemany("insert into _st_split_ids values (?)", [(x,) for x in split_ids])
    removed: dict[str, list[str]] = {}
    for customer_id, node_key, reason in con.execute(f"""
        select p.customer_id, p.node_key, d.reason
        from {previous} p
        semi join _st_split_ids s on s.customer_id = p.customer_id
        anti join _st_nodes n on n.node_key = p.node_key
        left join {dropped} d on d.node_key = p.node_key
        order by 1, 2
    """).fetchall():
        removed.setdefault(customer_id, []).append(f"{node_key} left the identity graph" + (f" ({reason})" if reason else ""))
    changes = []
    for old, new, count in rows:
        why = removed.get(old)
        reason = ("; ".join(why[:3]) + (f" and {len(why) - 3} more" if len(why) > 3 else "")) if why else \
            "a link between its identifiers is no longer recorded by any system"
        changes.append(Change("split", old, new, changed_at, None,
                              f"{count} identifier{'s' if count != 1 else ''} split off: {reason}"))
    return changes
