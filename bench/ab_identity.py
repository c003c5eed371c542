"""Two versions of the identity stitch, timed in one process, taking turns, beside the compiled baseline.

On these machines a step's time depends on what ran just before it (see bench_identity.py), so a change
to `growth_stack_dagster/lib/identity_graph.py` is best judged against the code before it in one process,
on one generated graph, the two versions and the baseline taking turns. Each version's output is checked
against the other's (the same map, previous ids and changes).

    git show HEAD~1:growth_stack_dagster/lib/identity_graph.py > /tmp/identity_graph_before.py
    .venv/bin/python bench/ab_identity.py /tmp/identity_graph_before.py growth_stack_dagster/lib/identity_graph.py \
        [--customers 3000000] [--repeat 4] [--in-place] [--numpy-huge-pages]

With --in-place each version that has `update_map` is timed as the dbt model runs it: `update_map` on a copy
of the earlier build's map (the copy is not timed); a version without it runs `stitch`, writing a new map.
numpy's huge-page advice is off for every version and the baseline, as in bench_identity.py (which sets it
when imported), unless --numpy-huge-pages.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import shutil
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import bench_identity  # noqa: E402


def load(path: str, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("before", help="identity_graph.py of the code before the change")
    parser.add_argument("after", help="identity_graph.py of the code after the change")
    parser.add_argument("--customers", type=int, default=3_000_000)
    parser.add_argument("--repeat", type=int, default=4)
    parser.add_argument("--memory-limit", default="4GB")
    parser.add_argument("--in-place", action="store_true",
                        help="time each version that has update_map as update_map on a copy of the earlier map")
    parser.add_argument("--numpy-huge-pages", action="store_true",
                        help="keep numpy's transparent huge page advice (read by bench_identity.py when imported)")
    args = parser.parse_args()
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    versions = {"before": load(args.before, "identity_graph_before"), "after": load(args.after, "identity_graph_after")}

    con, folder = bench_identity.connect(args.memory_limit, "ab_identity_")
    bench_identity.generate(con, args.customers)
    # The earlier build's map, as bench_identity.py makes it (a first build, then one over the earlier graph)
    after = versions["after"]
    after.stitch(con, bench_identity.OLDER_NODES_SQL, bench_identity.OLDER_EDGES_SQL, "prev_map")
    after.update_map(con, bench_identity.PREV_NODES_SQL, bench_identity.PREV_EDGES_SQL, "prev_map")
    con.execute("checkpoint")

    def in_place(name: str) -> bool:
        return args.in_place and name in versions and hasattr(versions[name], "update_map")

    def build(name: str, out_table: str):
        if in_place(name):
            return versions[name].update_map(con, bench_identity.NODES_SQL, bench_identity.EDGES_SQL, out_table)
        return versions[name].stitch(con, bench_identity.NODES_SQL, bench_identity.EDGES_SQL, out_table,
                                     previous_sql=bench_identity.PREVIOUS_SQL)

    def prepare(name: str, out_table: str) -> None:
        """Drop the outputs of earlier runs; for update_map, copy the earlier map to the table it updates."""
        for table in (out_table, "baseline_nodes"):
            con.execute(f"drop table if exists {table}")
        if in_place(name):
            con.execute(f"create table {out_table} as select * from prev_map")
            con.execute("checkpoint")

    # First, untimed: the two versions must give the same map, previous ids and changes.
    changes = {}
    for name in versions:
        prepare(name, f"components_{name}")
        _, recorded = build(name, f"components_{name}")
        changes[name] = [dataclasses.astuple(change) for change in recorded]  # each version has its own Change class
    columns = ", ".join(after.OUT_COLUMNS)  # (a map updated in place also holds the stitch's state columns)
    differ = con.execute(f"""
        select count(*) from (
            (select {columns} from components_before except all select {columns} from components_after)
            union all
            (select {columns} from components_after except all select {columns} from components_before))
    """).fetchall()[0][0]
    assert differ == 0, f"the two versions' maps differ in {differ} rows"
    assert changes["before"] == changes["after"], "the two versions recorded other changes"
    con.execute("drop table components_before")
    con.execute("drop table components_after")
    print("the two versions give the same map, previous ids and changes", flush=True)

    times: dict[str, list[float]] = {"before": [], "after": [], "baseline": []}
    for run in range(args.repeat):
        # The order turns in every run: before, after, baseline; after, baseline, before; ...
        order = list(times)[run % 3:] + list(times)[:run % 3]
        for name in order:
            prepare(name, "components")
            t0 = time.perf_counter()
            if name == "baseline":
                bench_identity.scipy_baseline(con)
            else:
                build(name, "components")
            times[name].append(time.perf_counter() - t0)
        print(f"run {run + 1} ({', '.join(order)}): " + ", ".join(f"{k} {v[-1]:.2f}s" for k, v in times.items()),
              flush=True)
    medians = {k: statistics.median(v) for k, v in times.items()}
    print(f"RESULT medians over {args.repeat} runs: before {medians['before']:.2f}s, after {medians['after']:.2f}s "
          f"(after/before {medians['after'] / medians['before']:.2f}), compiled baseline {medians['baseline']:.2f}s "
          f"(after/baseline {medians['after'] / medians['baseline']:.2f}); numpy huge pages "
          f"{'on' if bench_identity.NUMPY_HUGE_PAGES else 'off'}")
    con.close()
    shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
