"""Benchmark: the sync engine's warehouse diff on a large model, beside a bare DuckDB EXCEPT.

Builds `activation.sync_hubspot__contacts` with N rows (default 1,000,000) in a fresh DuckDB file and
records every row as accepted in `activation_state.records` (what a first full sync leaves), then
changes one trait on 1% of the rows and times:
  engine    `plan_sync` of the HubSpot contacts sync: the checksum diff against the state, writing the
            exact set of records to send (parquet), as a run does before it sends anything;
  baseline  a bare `SELECT * FROM new EXCEPT SELECT * FROM old` of the model and a snapshot of it
            taken before the change (the same two tables' worth of data, no checksums, no state).
Checks that the engine's changed set is exactly the rows changed. Target: engine < 10 s.

    .venv/bin/python bench/bench_activation_diff.py              # 1,000,000 rows
    .venv/bin/python bench/bench_activation_diff.py --rows 100000
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import duckdb  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402


def build(warehouse: Path, rows: int) -> None:
    with duckdb.connect(str(warehouse)) as con:
        con.execute("create schema activation")
        con.execute(f"""
            create table activation.sync_hubspot__contacts as
            select 'person' || lpad(i::varchar, 8, '0') || '@shop.test' as email,
                   null::varchar as hubspot_contact_id, 'c' || i as customer_id,
                   'First' || i as first_name, 'Last' || (i % 997) as last_name,
                   i % 10 = 0 as is_high_value, round((i % 50000) / 100.0, 2)::decimal(18,2) as lifetime_value,
                   round((i % 9000) / 100.0, 2)::decimal(18,2) as margin,
                   round((i % 100) / 100.0, 4)::decimal(18,4) as coupon_usage_rate, (i % 13)::bigint as orders_last_365d,
                   date '2026-01-01' + (i % 300)::integer as last_seen_date
            from range({rows}) as t(i)
        """)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        os.environ["GROWTH_STACK_HOME"] = str(home)
        from growth_stack_dagster.activation import engine, state

        spec = engine.resolve("hubspot_contacts_traits")
        warehouse = home / "warehouse.duckdb"
        build(warehouse, args.rows)
        state.ensure_schema(warehouse)
        with duckdb.connect(str(warehouse)) as con:
            # What a first full sync leaves: every row accepted with the checksum of its payload.
            con.execute(f"create temp table diff as {engine.diff_sql(spec, True)}", [spec.name])
            con.execute("insert into activation_state.records (sync, record_key, checksum) "
                        "select ?, record_key, checksum from diff", [spec.name])
            con.execute("create table activation.snapshot as select * from activation.sync_hubspot__contacts")
            changed = con.execute("""
                update activation.sync_hubspot__contacts set is_high_value = not is_high_value
                where hash(email) % 100 = 0 returning email""").fetchall()
            con.execute("checkpoint")
        expected = {r[0] for r in changed}

        plan_file = home / "plan.parquet"
        t0 = time.perf_counter()
        plan = engine.plan_sync(spec, warehouse=warehouse, sample=0, plan_file=plan_file)
        engine_s = time.perf_counter() - t0
        got = set(pq.read_table(plan_file, columns=["record_key"]).column("record_key").to_pylist())
        assert got == expected and plan.counts["changed"] == len(expected), (len(got), len(expected))
        assert plan.counts["unchanged"] == args.rows - len(expected)

        with duckdb.connect(str(warehouse), read_only=True) as con:
            t0 = time.perf_counter()
            n = con.execute("select count(*) from (select * from activation.sync_hubspot__contacts "
                            "except select * from activation.snapshot)").fetchone()[0]
            baseline_s = time.perf_counter() - t0
        assert n == len(expected)
        load = os.getloadavg()[0]
        print(f"rows {args.rows:,}, changed {len(expected):,} ({len(expected) / args.rows:.2%})")
        print(f"engine diff (checksums vs activation_state, changed set written): {engine_s:.2f} s  "
              f"[target < 10 s: {'met' if engine_s < 10 else 'NOT met'}]")
        print(f"baseline bare DuckDB EXCEPT of the two tables:                    {baseline_s:.2f} s")
        print(f"ratio engine/baseline: {engine_s / baseline_s:.2f}; exact changed set: yes; load average {load:.1f}")


if __name__ == "__main__":
    main()
