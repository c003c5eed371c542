"""Identity stitching at scale: 3,000,000 customers (~10M identifiers, chains up to 8 hops).

Prints the time and peak memory of `connected_components` in DuckDB beside an in-memory
union-find over the same edges in the same run, and checks that both find the same components.
Targets: under 60 s and under 6 GiB.

    .venv/bin/python bench/bench_identity.py [--customers 3000000]
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from growth_stack_dagster.lib.identity_graph import connected_components  # noqa: E402


def generate(con: duckdb.DuckDBPyConnection, customers: int) -> None:
    """Edges of `customers` people: each has 1-5 identifiers (1 in 10 has 9) linked in a chain,
    so components are paths of up to 8 hops, plus a cross-device edge from the last identifier
    back to the first for every 7th person (a cycle)."""
    con.execute(f"""
        create or replace table people as
        select c as person, case when c % 10 = 0 then 9 else 1 + (hash(c) % 5)::integer end as n
        from range({customers}) t(c)
    """)
    con.execute("""
        create or replace table ids as
        select person, j,
               (['anonymous_id','user_id','email','hubspot_contact_id','stripe_customer_id'])[1 + (j % 5)]
                 || ':' || md5(person::varchar || '-' || j::varchar) as node_key
        from people, range(n) t(j)
    """)
    con.execute("""
        create or replace table edges as
        select a.node_key as key_a, b.node_key as key_b
        from ids a join ids b on a.person = b.person and b.j = a.j + 1
        union all
        select a.node_key, b.node_key
        from ids a join people p on p.person = a.person and a.j = p.n - 1
        join ids b on b.person = a.person and b.j = 0
        where a.person % 7 = 0 and p.n > 2
    """)


def union_find(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """Component root per node key, by a plain in-memory union-find with path halving."""
    keys = [r[0] for r in con.execute("select node_key from ids").fetchall()]
    index = {k: i for i, k in enumerate(keys)}
    parent = list(range(len(keys)))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in con.execute("select key_a, key_b from edges").fetchall():
        ra, rb = find(index[a]), find(index[b])
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    return {k: find(i) for k, i in index.items()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=3_000_000)
    parser.add_argument("--skip-baseline", action="store_true")
    args = parser.parse_args()

    con = duckdb.connect()
    t0 = time.perf_counter()
    generate(con, args.customers)
    n_ids, n_edges = con.execute("select (select count(*) from ids), (select count(*) from edges)").fetchone()
    print(f"generated {args.customers:,} customers, {n_ids:,} identifiers, {n_edges:,} edges "
          f"in {time.perf_counter() - t0:.1f}s")

    t0 = time.perf_counter()
    stats = connected_components(con, "select key_a, key_b from edges", "components",
                                 nodes_sql="select node_key from ids")
    stitch_s = time.perf_counter() - t0
    peak_gib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(f"connected_components: {stitch_s:.1f}s, {stats.rounds} rounds, {stats.components:,} components, "
          f"peak RSS so far {peak_gib:.2f} GiB")
    assert stats.components == args.customers, (stats.components, args.customers)
    assert stats.nodes == n_ids

    if args.skip_baseline:
        return
    t0 = time.perf_counter()
    roots = union_find(con)
    uf_s = time.perf_counter() - t0
    print(f"in-memory union-find baseline: {uf_s:.1f}s")

    # Same partition: the map union-find root -> customer_id is one-to-one and covers every node.
    root_to_customer: dict[int, str] = {}
    customers_seen: set[str] = set()
    for node_key, customer_id in con.execute("select node_key, customer_id from components").fetchall():
        root = roots.pop(node_key)
        if root_to_customer.setdefault(root, customer_id) != customer_id:
            raise AssertionError(f"{node_key} split from its union-find component")
        customers_seen.add(customer_id)
    assert not roots, f"{len(roots)} nodes missing from the stitched output"
    uf_components = len(root_to_customer)
    assert uf_components == len(customers_seen) == stats.components, (uf_components, stats.components)
    print(f"components equal: {stats.components:,} == {uf_components:,} (one customer_id per union-find root)")
    print(f"RESULT identity stitching {args.customers:,} customers: {stitch_s:.1f}s "
          f"(target < 60s) vs union-find {uf_s:.1f}s: ratio {stitch_s / uf_s:.2f}; "
          f"peak RSS {peak_gib:.2f} GiB (target < 6 GiB)")


if __name__ == "__main__":
    main()
