"""Identity stitching at scale: 3,000,000 customers (~10.8M identifiers, chains up to 8 hops).

Times `update_map` (connected components and persistent customer ids, the id map brought up to date in
place, as the dbt model `int_identity_components` does on every build after the first) on the full graph,
the map as an earlier build over 97% of it left it (new people, people who gained identifiers, customers
that merge and customers that split), beside two baselines over the same edges in the same run:

- compiled: the identifiers mapped to integers in DuckDB and `scipy.sparse.csgraph.connected_components`
  (components only, no ids kept); target: the stitch within 2x of it;
- in-memory union-find in pure Python (the earlier baseline).

Checks that the stitch's components equal both baselines', that no unaffected customer's id changed, and
that the expected merges and splits were recorded. Targets: < 60 s, < 6 GiB. The stitch and the compiled
baseline take turns (each goes first in every other run), four runs each by default, and their medians are
compared; every run is printed. The warehouse is a DuckDB file in a temporary folder, as in production;
before each stitch the earlier build's map is copied to the table the stitch updates (not timed). Each timed
step starts after a pause (--pause, 10 s), so that both start alike: on these machines memory freed by the
step before goes back to the host within seconds, and a step that starts before that has happened runs
slower (as a dbt build does in a new process, each step meets memory that has to be touched afresh).

    .venv/bin/python bench/bench_identity.py [--customers 3000000] [--skip-union-find] [--repeat 4]
                                             [--pause 10] [--numpy-huge-pages]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

# numpy asks the kernel to back large arrays with transparent huge pages; where the kernel compacts memory to
# find them on the first touch (transparent_hugepage/defrag = madvise, as on these machines), a fresh GiB can
# take seconds. dbt's Python models run without that advice in this project (transform/project.py sets
# NUMPY_MADVISE_HUGEPAGE=0 for dbt), and so do the stitch and the baseline here, unless --numpy-huge-pages
# keeps numpy's default for both. (numpy reads the variable when it is imported.)
NUMPY_HUGE_PAGES = "--numpy-huge-pages" in sys.argv
if not NUMPY_HUGE_PAGES:
    os.environ["NUMPY_MADVISE_HUGEPAGE"] = "0"

import duckdb  # noqa: E402
import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402
from scipy.sparse import coo_matrix  # noqa: E402
from scipy.sparse.csgraph import connected_components  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from growth_stack_dagster.lib.identity_graph import stitch, update_map  # noqa: E402

NODES_SQL = "select node_key, first_seen_at, first_seen_at as last_seen_at from ids"
EDGES_SQL = "select key_a, key_b, link_id, first_seen_at from edges"
# the earlier build's graph (see generate) and the id map it left
PREV_NODES_SQL = "select node_key, first_seen_at, first_seen_at as last_seen_at from prev_ids"
PREV_EDGES_SQL = "select * from prev_edges"
PREVIOUS_SQL = "select node_key, customer_id from prev_map"
# the graph of the build before that one
OLDER_NODES_SQL = "select node_key, first_seen_at, first_seen_at as last_seen_at from older_ids"
OLDER_EDGES_SQL = "select * from older_edges"


def connect(memory_limit: str, prefix: str) -> tuple[duckdb.DuckDBPyConnection, str]:
    """A DuckDB file in a new temporary folder (returned, for the caller to remove), with `memory_limit`,
    spilling what does not fit to that folder."""
    folder = tempfile.mkdtemp(prefix=prefix)
    con = duckdb.connect(f"{folder}/warehouse.duckdb")
    con.execute(f"set memory_limit = '{memory_limit}'")
    con.execute(f"set temp_directory = '{folder}/spill'")
    return con, folder


def generate(con: duckdb.DuckDBPyConnection, customers: int) -> None:
    """Edges of `customers` people: each has 1-5 identifiers (1 in 10 has 9) linked in a chain, so
    components are paths of up to 8 hops, plus a cross-device edge from the last identifier back to the
    first for every 7th person (a cycle). Identifier j of a person is first seen j hours after its first.

    Also the graph of an earlier build (`prev_ids`, `prev_edges`): 3% of people did not exist yet, 2% had
    not yet been seen with their last identifier, 0.1% were two customers (a link of theirs is new: they
    merge), and 1 pair of people in 2,000 was joined by a link that has since disappeared (they split).
    And the graph of the build before that one (`older_ids`, `older_edges`): 3% fewer people still."""
    con.execute(f"""
        create or replace table people as
        select c as person, case when c % 10 = 0 then 9 else 1 + (hash(c) % 5)::integer end as n,
               hash(c * 7919) % 100 < 3 as is_new,
               hash(c * 7919) % 100 < 6 as is_new_before,
               hash(c * 15485863) % 1000 = 0 and c % 2000 not in (1, 2) as merges,
               hash(c * 104729) % 50 = 0 and not merges and c % 2000 not in (1, 2) as gains,
               c % 2000 = 1 as splits_from_next
        from range({customers}) t(c)
    """)
    con.execute("""
        create or replace table ids as
        select person, j,
               (['anonymous_id','user_id','email','hubspot_contact_id','stripe_customer_id'])[1 + (j % 5)]
                 || ':' || md5(person::varchar || '-' || j::varchar) as node_key,
               timestamptz '2020-01-01 00:00:00+00' + to_seconds(person * 11 + j * 3600) as first_seen_at
        from people, range(n) t(j)
    """)
    con.execute("""
        create or replace table edges as
        select a.person, a.j as j_a, b.j as j_b, a.node_key as key_a, b.node_key as key_b,
               md5(a.node_key || '|' || b.node_key) as link_id, b.first_seen_at
        from ids a join ids b on a.person = b.person and b.j = a.j + 1
        union all
        select a.person, a.j, b.j, a.node_key, b.node_key, md5(a.node_key || '|' || b.node_key), a.first_seen_at
        from ids a join people p on p.person = a.person and a.j = p.n - 1
        join ids b on b.person = a.person and b.j = 0
        where a.person % 7 = 0 and p.n > 2
    """)
    con.execute("""
        create or replace view prev_ids as
        select i.node_key, i.first_seen_at from ids i join people p using (person)
        where not p.is_new and not (p.gains and i.j = p.n - 1 and p.n > 1)
    """)
    con.execute("""
        create or replace view prev_edges as
        select e.key_a, e.key_b, e.link_id, e.first_seen_at
        from edges e join people p using (person)
        where not p.is_new
          and not (p.gains and p.n > 1 and (e.j_a = p.n - 1 or e.j_b = p.n - 1))
          and not (p.merges and p.n > 2 and (e.j_a = 1 and e.j_b = 2 or e.j_b = 0))
        union all
        select a.node_key, b.node_key, md5('gone|' || a.node_key), b.first_seen_at
        from people p
        join ids a on a.person = p.person and a.j = 0
        join ids b on b.person = p.person + 1 and b.j = 0
        join people q on q.person = p.person + 1
        where p.splits_from_next and not p.is_new and not q.is_new
    """)
    con.execute("""
        create or replace view older_ids as
        select v.node_key, v.first_seen_at from prev_ids v join ids i using (node_key) join people p using (person)
        where not p.is_new_before
    """)
    con.execute("""
        create or replace view older_edges as
        select * from prev_edges e
        where e.key_a in (select node_key from older_ids) and e.key_b in (select node_key from older_ids)
    """)


def scipy_baseline(con: duckdb.DuckDBPyConnection) -> tuple[int, np.ndarray]:
    """Components of the full graph: identifiers to integers in DuckDB, then scipy's connected components.

    Leaves the temp table `baseline_nodes(node_key, i)`; returns (component count, label per i)."""
    con.execute("create or replace temp table baseline_nodes as "
                "select node_key, (row_number() over () - 1)::integer as i from ids")
    pairs = con.sql("""
        select na.i as a, nb.i as b from edges e
        join baseline_nodes na on na.node_key = e.key_a join baseline_nodes nb on nb.node_key = e.key_b
    """).to_arrow_table()  # (as the stitch reads its links: Arrow, then numpy, is faster than fetchnumpy)
    a, b = pairs.column("a").to_numpy(), pairs.column("b").to_numpy()
    n = con.execute("select count(*) from baseline_nodes").fetchall()[0][0]
    graph = coo_matrix((np.ones(len(a), dtype=np.int8), (a, b)), shape=(n, n)).tocsr()
    return connected_components(graph, directed=False)


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


def peak_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=3_000_000)
    parser.add_argument("--skip-union-find", action="store_true", help="leave out the slow pure-Python baseline")
    parser.add_argument("--repeat", type=int, default=4,
                        help="runs of the stitch and of the compiled baseline, taking turns; their medians are compared")
    parser.add_argument("--memory-limit", default="4GB", help="DuckDB's memory limit (it spills beyond it)")
    parser.add_argument("--pause", type=float, default=10.0,
                        help="seconds to wait before each timed step, so that memory freed before it has gone back "
                             "to the host and every step starts alike (see README, Benchmarks)")
    parser.add_argument("--numpy-huge-pages", action="store_true",
                        help="keep numpy's transparent huge page advice (its default) for the stitch and the baseline")
    args = parser.parse_args()
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")

    # In memory, with a memory limit: DuckDB spills what does not fit to a temporary folder.
    con, folder = connect(args.memory_limit, "bench_identity_")
    t0 = time.perf_counter()
    generate(con, args.customers)
    n_ids, n_edges = con.execute("select (select count(*) from ids), (select count(*) from edges)").fetchall()[0]
    expected_merges, expected_splits = con.execute("""
        select (select count(*) from people where merges and n > 2 and not is_new),
               (select count(*) from people p join people q on q.person = p.person + 1
                where p.splits_from_next and not p.is_new and not q.is_new)
    """).fetchall()[0]
    print(f"generated {args.customers:,} customers, {n_ids:,} identifiers, {n_edges:,} edges "
          f"in {time.perf_counter() - t0:.1f}s")

    # The map the earlier build left: a first build over the older graph, brought up to date over the earlier
    # one (its rows of new identifiers carry no previous id, as in any map a build left).
    t0 = time.perf_counter()
    stitch(con, OLDER_NODES_SQL, OLDER_EDGES_SQL, "prev_map")
    prev_stats, _ = update_map(con, PREV_NODES_SQL, PREV_EDGES_SQL, "prev_map")
    con.execute("checkpoint")
    print(f"earlier builds (94%, then 97% of the graph): {time.perf_counter() - t0:.1f}s, "
          f"{prev_stats.components:,} customers, {prev_stats.new:,} of them new in the later one")

    # The stitch and the compiled baseline take turns, --repeat times each, and their medians are compared:
    # on these machines a first touch of memory can cost seconds per GiB, and how much of it a run meets
    # varies from run to run and with what ran just before. So each run starts alike, without the outputs of
    # earlier runs and with its own input tables read just before (DuckDB spills what does not fit, and a run
    # would otherwise read back what the one before pushed out), after a pause in which the memory the step
    # before freed goes back to the host (without it, whichever step ran second was 1.5-2x slower), and the
    # order alternates: the stitch goes first in odd runs, the baseline in even ones. The last run keeps the
    # first one's output for the checks below (when that is the baseline's table of integer ids, the stitch
    # runs beside it).
    stitch_times: list[float] = []
    scipy_times: list[float] = []
    outputs = ("components", "baseline_nodes")

    def settle(*drop: str, previous_map: bool) -> None:
        """Drop the outputs of earlier runs and read the next step's inputs (for the stitch, the map it updates:
        a copy of the earlier build's)."""
        for table in drop:
            con.execute(f"drop table if exists {table}")
        if previous_map:
            con.execute("create or replace table components as select * from prev_map")
            con.execute("checkpoint")
            con.execute("select max(length(node_key)), max(length(customer_id)) from components").fetchall()
        con.execute("select max(length(key_a)), max(length(key_b)), max(length(link_id)), max(first_seen_at) "
                    "from edges").fetchall()
        con.execute("select max(length(node_key)), max(first_seen_at) from ids").fetchall()
        time.sleep(args.pause)

    def run_stitch() -> None:
        nonlocal stats, changes, stitch_peak
        t0 = time.perf_counter()
        stats, changes = update_map(con, NODES_SQL, EDGES_SQL, "components")
        stitch_times.append(time.perf_counter() - t0)
        stitch_peak = max(stitch_peak, peak_gib())

    def run_baseline() -> None:
        nonlocal components, labels
        t0 = time.perf_counter()
        components, labels = scipy_baseline(con)
        scipy_times.append(time.perf_counter() - t0)

    stats = changes = components = labels = None
    stitch_peak = 0.0
    for run in range(1, args.repeat + 1):
        first, second = (run_stitch, run_baseline) if run % 2 else (run_baseline, run_stitch)
        settle(*outputs, previous_map=first is run_stitch)
        first()
        settle(*(() if run == args.repeat else outputs), previous_map=second is run_stitch)
        second()
        print(f"run {run} ({'stitch' if run % 2 else 'baseline'} first): stitch with persistent ids "
              f"{stitch_times[-1]:.1f}s, compiled baseline (DuckDB integer ids + scipy connected_components) "
              f"{scipy_times[-1]:.1f}s: ratio {stitch_times[-1] / scipy_times[-1]:.2f}", flush=True)
    stitch_s, scipy_s = statistics.median(stitch_times), statistics.median(scipy_times)
    print(f"stitch with persistent ids: {stats.components:,} customers ({stats.kept:,} kept, "
          f"{stats.new:,} new, {stats.merged:,} merged, {stats.split:,} split), peak RSS through the stitches {stitch_peak:.2f} GiB")
    assert stats.components == args.customers, (stats.components, args.customers)
    assert stats.nodes == n_ids and stats.edges == n_edges
    assert (stats.merged, stats.split) == (expected_merges, expected_splits), (stats, expected_merges, expected_splits)
    changed_unaffected = con.execute("""
        select count(*) from components c join prev_map p using (node_key) join ids using (node_key)
        join people pe using (person)
        where c.customer_id <> p.customer_id and not pe.merges
          and not pe.splits_from_next and not coalesce((select splits_from_next from people q where q.person = pe.person - 1), false)
    """).fetchall()[0][0]
    assert changed_unaffected == 0, f"{changed_unaffected} identifiers of unaffected customers changed id"
    print(f"persistent ids: every kept customer's identifiers kept their id; {len(changes):,} changes recorded")
    con.register("baseline_labels", pa.table({"i": np.arange(len(labels), dtype=np.int32), "label": labels.astype(np.int32)}))
    pairs, labels_seen, ids_seen = con.execute("""
        select count(distinct (l.label, c.customer_id)), count(distinct l.label), count(distinct c.customer_id)
        from baseline_nodes n join baseline_labels l using (i) join components c using (node_key)
    """).fetchall()[0]
    assert pairs == labels_seen == ids_seen == components == stats.components, (pairs, labels_seen, ids_seen, components)
    print(f"components equal: {stats.components:,} customer ids == {components:,} scipy components (one-to-one)")

    uf_text = ""
    if not args.skip_union_find:
        t0 = time.perf_counter()
        roots = union_find(con)
        uf_s = time.perf_counter() - t0
        root_to_customer: dict[int, str] = {}
        for node_key, customer_id in con.execute("select node_key, customer_id from components").fetchall():
            if root_to_customer.setdefault(roots.pop(node_key), customer_id) != customer_id:
                raise AssertionError(f"{node_key} split from its union-find component")
        assert not roots and len(root_to_customer) == stats.components
        print(f"in-memory union-find baseline: {uf_s:.1f}s, components equal")
        uf_text = f"; union-find {uf_s:.1f}s (ratio {stitch_s / uf_s:.2f})"
    runs = f" ({args.repeat} runs each, medians)" if args.repeat > 1 else ""
    print(f"RESULT identity stitching {args.customers:,} customers, {n_ids:,} identifiers: stitch with persistent ids "
          f"{stitch_s:.1f}s vs compiled baseline {scipy_s:.1f}s{runs}: ratio {stitch_s / scipy_s:.2f} (target <= 2.0)"
          f"{uf_text}; peak RSS through the stitches {stitch_peak:.2f} GiB (target < 6 GiB), "
          f"at the end {peak_gib():.2f} GiB; numpy huge pages {'on' if NUMPY_HUGE_PAGES else 'off'} for both")
    con.close()
    shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
