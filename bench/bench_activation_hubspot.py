"""Benchmark: HubSpot sync throughput at HubSpot's published rate limit, with memory and 429s.

Starts a sandbox whose HubSpot counts requests in HubSpot's rolling window (190 requests per 10 s, the
Professional private-app limit), builds `activation.sync_hubspot__contacts` with N rows (default
1,000,000) and runs the HubSpot contacts sync once (all rows new: batch upserts of 100). Prints:
  limit     the rows per second the limit allows: 190 requests / 10 s x 100 rows = 1,900 rows/s;
  engine    the sync's rows per second over its whole run (plan, properties, sends, state writes),
            its share of the limit (target >= 90%), the 429s the sandbox answered (target 0) and the
            process's resident memory sampled through the run (target: flat, < 500 MB);
  baseline  in the same run, bare `requests` posting ready-made batch bodies on a fixed schedule at exactly
            the limit (one request per 10/190 s) for `--baseline-seconds`, with as many batches in flight as
            the engine keeps: what pacing alone achieves against this sandbox on this machine.

    .venv/bin/python bench/bench_activation_hubspot.py                 # 1,000,000 rows: ~9 minutes
    .venv/bin/python bench/bench_activation_hubspot.py --rows 20000    # a quick run
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import duckdb  # noqa: E402
import psutil  # noqa: E402
import requests  # noqa: E402

from tests.servers import run_server  # noqa: E402

LIMIT_REQUESTS, LIMIT_SECONDS, BATCH = 190, 10, 100


def build(warehouse: Path, rows: int) -> None:
    with duckdb.connect(str(warehouse)) as con:
        con.execute("create schema if not exists activation")
        con.execute(f"""
            create or replace table activation.sync_hubspot__contacts as
            select 'person' || lpad(i::varchar, 8, '0') || '@shop.test' as email,
                   null::varchar as hubspot_contact_id, 'c' || i as customer_id,
                   'First' || i as first_name, 'Last' || (i % 997) as last_name,
                   i % 10 = 0 as is_high_value, round((i % 50000) / 100.0, 2)::decimal(18,2) as lifetime_value,
                   round((i % 9000) / 100.0, 2)::decimal(18,2) as margin,
                   round((i % 100) / 100.0, 4)::decimal(18,4) as coupon_usage_rate, (i % 13)::bigint as orders_last_365d,
                   date '2026-01-01' + (i % 300)::integer as last_seen_date
            from range({rows}) as t(i)
        """)


class RssSampler(threading.Thread):
    """Samples this process's resident memory every half second."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.samples: list[tuple[float, int]] = []
        self.stop = threading.Event()

    def run(self) -> None:
        proc = psutil.Process()
        while not self.stop.is_set():
            self.samples.append((time.monotonic(), proc.memory_info().rss))
            time.sleep(0.5)


def baseline(url: str, seconds: float, in_flight: int) -> tuple[float, int]:
    """Rows per second of bare ready-made 100-contact upserts on a fixed schedule at exactly the limit
    (request n leaves at n x 10/190 s), `in_flight` threads sending so that no request waits for another's
    answer (the same number of batches in flight as the engine); and the 429s they drew."""
    interval = LIMIT_SECONDS / LIMIT_REQUESTS
    lock = threading.Lock()
    counts = {"next": 0, "sent": 0, "refused": 0}
    start = time.monotonic()

    def worker() -> None:
        session = requests.Session()
        headers = {"Authorization": "Bearer sk_test_sandbox"}
        while True:
            with lock:
                n = counts["next"]
                counts["next"] += 1
            due = start + n * interval
            if due - start >= seconds:
                return
            # the same properties the sync sends, so the sandbox does the same work per record
            inputs = [{"id": f"base{n}-{i}@shop.test", "idProperty": "email",
                       "properties": {"email": f"base{n}-{i}@shop.test", "firstname": f"First{i}",
                                      "lastname": "Last", "gs_is_high_value": "false", "gs_lifetime_value": "12.5",
                                      "gs_margin": "1.5", "gs_coupon_usage_rate": "0.25",
                                      "gs_orders_last_365d": "3", "gs_last_seen_date": "2026-03-01"}}
                      for i in range(BATCH)]
            if due > time.monotonic():
                time.sleep(due - time.monotonic())
            r = session.post(f"{url}/hubspot/crm/v3/objects/contacts/batch/upsert", json={"inputs": inputs},
                             headers=headers, timeout=60)
            with lock:
                counts["sent" if r.status_code == 200 else "refused"] += BATCH if r.status_code == 200 else 1

    threads = [threading.Thread(target=worker) for _ in range(in_flight)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return counts["sent"] / (time.monotonic() - start), counts["refused"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--baseline-seconds", type=float, default=30.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        os.environ["GROWTH_STACK_HOME"] = str(home)
        env = {"GROWTH_STACK_HOME": str(home), "GROWTH_STACK_SANDBOX_RATE_LIMIT_SCALE": "1"}
        with run_server("sandbox", "/_admin/health", env, log_path=home / "sandbox.log") as (url, _):
            os.environ["GROWTH_STACK_SANDBOX_URL"] = url
            from growth_stack_dagster.activation import engine

            build(home / "warehouse.duckdb", args.rows)
            spec = engine.resolve("hubspot_contacts_traits")
            before = requests.get(f"{url}/hubspot/_sandbox/writes/contacts", timeout=30).json()["rate_limited"]
            sampler = RssSampler()
            sampler.start()
            t0 = time.monotonic()
            result = engine.run_sync(spec)
            elapsed = time.monotonic() - t0
            sampler.stop.set()
            sampler.join()
            refused = requests.get(f"{url}/hubspot/_sandbox/writes/contacts", timeout=60).json()["rate_limited"] - before
            assert result.accepted == args.rows, (result.status, result.message, result.accepted)
            time.sleep(LIMIT_SECONDS + 0.5)  # let the window empty before the baseline
            from growth_stack_dagster.activation.destinations.hubspot import HubSpot

            base, base_refused = baseline(url, args.baseline_seconds, HubSpot.max_concurrency)
    limit = LIMIT_REQUESTS / LIMIT_SECONDS * BATCH
    rate = args.rows / elapsed
    rss = [r for _, r in sampler.samples]
    quarter = [rss[int(len(rss) * f)] // 2**20 for f in (0.1, 0.25, 0.5, 0.75)] + [rss[-1] // 2**20]
    print(f"rows {args.rows:,} in {elapsed:.1f} s; load average {os.getloadavg()[0]:.1f}")
    print(f"limit (190 requests / 10 s x 100 rows):   {limit:,.0f} rows/s")
    print(f"engine:                                  {rate:,.0f} rows/s = {rate / limit:.1%} of the limit "
          f"[target >= 90%: {'met' if rate / limit >= 0.9 else 'NOT met'}]; 429s caused: {refused}")
    print(f"engine memory (RSS MB at 10/25/50/75/100% of the run): {quarter}; peak {max(rss) // 2**20} MB "
          f"[target < 500 MB: {'met' if max(rss) < 500 * 2**20 else 'NOT met'}]")
    print(f"baseline bare requests at exactly the limit ({args.baseline_seconds:.0f} s, same batches in flight): "
          f"{base:,.0f} rows/s = {base / limit:.1%} of the limit; 429s drawn: {base_refused}")


if __name__ == "__main__":
    main()
