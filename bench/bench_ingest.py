"""Benchmark: dlt ingest throughput against the ceiling the API sets.

Seeds HubSpot contacts and Stripe invoices (with line items) into a sandbox running with rate
limits off (`--rate-limit-scale 0`), then for each:
  baseline  a plain `requests.Session` paging the same endpoint with the same page size
            (the ceiling: the API's own paging speed, nothing stored);
  dlt       the Growth Stack dlt source loading the table into a fresh DuckDB warehouse.
Prints rows per second for both, their ratio (target: dlt >= 50% of the ceiling), the peak
memory (RSS) and the CPU seconds of each run (the whole process, imports included: a steadier
figure than wall time on a busy machine), each measured in a subprocess of its own. Module imports
happen before either clock starts.

    .venv/bin/python bench/bench_ingest.py                       # 100,000 contacts, 100,000 invoices x 5 lines
    .venv/bin/python bench/bench_ingest.py --contacts 5000 --invoices 5000   # a quick run
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import requests

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.servers import run_server  # noqa: E402

PAGE_SIZE = 100
SEED_BATCH = 5000
T0 = 1767225600  # 2026-01-01T00:00:00Z


# --------------------------------------------------------------------------- seeding
def _iso(epoch: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(epoch))


def contacts(n: int) -> list[dict[str, Any]]:
    return [{"id": str(100000 + i), "properties": {
        "email": f"user{i}@example.com", "firstname": f"First{i}", "lastname": f"Last{i}",
        "date_of_birth": f"19{70 + i % 30}-0{1 + i % 9}-1{i % 10}",
        "customer_type": "wholesale" if i % 5 == 0 else "retail", "lead_qualified": "true" if i % 2 else "false"},
        "createdAt": _iso(T0 + i), "updatedAt": _iso(T0 + i + 60), "archived": False} for i in range(n)]


def invoices(n: int, lines: int, offset: int = 0) -> list[dict[str, Any]]:
    out = []
    for i in range(offset, offset + n):
        inv_id, created = f"in_{i:08d}", T0 + i
        items = [{"id": f"il_{i:08d}_{j}", "object": "line_item", "amount": 500 * (j + 1), "currency": "usd",
                  "quantity": 1, "description": f"SKU{j}", "metadata": {},
                  "pricing": {"price_details": {"price": f"price_SKU{j}", "product": f"prod_SKU{j}"}}}
                 for j in range(lines)]
        total = sum(x["amount"] for x in items)
        out.append({"id": inv_id, "object": "invoice", "customer": f"cus_{i % 20000:06d}", "created": created,
                    "status": "paid", "currency": "usd", "subtotal": total, "total": total, "amount_paid": total,
                    "discounts": [], "total_discount_amounts": [], "livemode": False,
                    "status_transitions": {"paid_at": created + 30},
                    "lines": {"object": "list", "data": items, "has_more": False, "total_count": lines,
                              "url": f"/v1/invoices/{inv_id}/lines"}})
    return out


def seed(sandbox: str, n_contacts: int, n_invoices: int, lines: int) -> None:
    session = requests.Session()
    all_contacts = contacts(n_contacts)
    for i in range(0, n_contacts, SEED_BATCH):
        session.post(f"{sandbox}/_admin/seed/hubspot/contacts", json=all_contacts[i:i + SEED_BATCH],
                     timeout=600).raise_for_status()
    for i in range(0, n_invoices, SEED_BATCH):
        batch = invoices(min(SEED_BATCH, n_invoices - i), lines, offset=i)
        session.post(f"{sandbox}/_admin/seed/stripe/invoices", json=batch, timeout=600).raise_for_status()


# --------------------------------------------------------------------------- measured runs (subprocesses)
def baseline_worker(system: str) -> dict[str, Any]:
    """Page through the endpoint with a plain requests.Session, as fast as the API answers."""
    from growth_stack_dagster import config

    base, token = config.sandbox_url(), config.sandbox_token()
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    rows = 0
    started = time.perf_counter()
    if system == "hubspot":
        names = [p["name"] for p in session.get(f"{base}/hubspot/crm/v3/properties/contacts").json()["results"]]
        params: dict[str, Any] = {"limit": PAGE_SIZE, "properties": ",".join(sorted(names)), "archived": "false"}
        while True:
            body = session.get(f"{base}/hubspot/crm/v3/objects/contacts", params=params).json()
            rows += len(body["results"])
            after = (body.get("paging") or {}).get("next", {}).get("after")
            if not after:
                break
            params["after"] = after
    else:
        params = {"limit": PAGE_SIZE}
        while True:
            body = session.get(f"{base}/stripe/v1/invoices", params=params).json()
            rows += sum(len(inv["lines"]["data"]) for inv in body["data"])
            if not body["has_more"]:
                break
            params["starting_after"] = body["data"][-1]["id"]
    return {"rows": rows, "seconds": time.perf_counter() - started}


def dlt_worker(system: str) -> dict[str, Any]:
    """Load the table with the Growth Stack dlt source into a fresh warehouse."""
    import dlt.common.libs.sql_alchemy_compat  # noqa: F401
    import dlt.destinations.impl.duckdb.sql_client  # noqa: F401

    from growth_stack_dagster.ingest.pipelines import LOADER_FILE_FORMAT, build_source, bulk_load_gc, make_pipeline

    # The modules a pipeline imports lazily (the DuckDB client, SQLAlchemy for the credentials'
    # URL) are imported before the clock starts, as `requests` is for the baseline: the figure is
    # the load's rate, not the interpreter's start-up.
    started = time.perf_counter()
    if system == "hubspot":
        source = build_source("hubspot", page_size=PAGE_SIZE, include_archived=False).with_resources("contacts")
        table = "contacts"
    else:
        source = build_source("stripe", page_size=PAGE_SIZE).with_resources("invoices")
        table = "invoices__lines"
    pipeline = make_pipeline("hubspot" if system == "hubspot" else "stripe")
    setup = time.perf_counter() - started
    with bulk_load_gc():
        info = pipeline.run(source, loader_file_format=LOADER_FILE_FORMAT)
    info.raise_on_failed_jobs()
    seconds = time.perf_counter() - started
    counts = pipeline.last_trace.last_normalize_info.row_counts
    steps = {"setup": round(setup, 2),
             **{s.step: round((s.finished_at - s.started_at).total_seconds(), 2) for s in pipeline.last_trace.steps}}
    return {"rows": int(counts.get(table, 0)), "seconds": seconds, "steps": steps}


def run_worker(kind: str, system: str, env: dict[str, str]) -> dict[str, Any]:
    out = subprocess.run([sys.executable, __file__, "--worker", kind, system], env=env, cwd=REPO,
                         capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"{kind} {system} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--invoices", type=int, default=100_000)
    parser.add_argument("--lines-per-invoice", type=int, default=5)
    parser.add_argument("--worker", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.worker:
        kind, system = args.worker
        result = (baseline_worker if kind == "baseline" else dlt_worker)(system)
        usage = resource.getrusage(resource.RUSAGE_SELF)
        result["peak_rss_mb"] = usage.ru_maxrss / 1024
        result["cpu_seconds"] = round(usage.ru_utime + usage.ru_stime, 2)  # whole process, imports included
        print(json.dumps(result))
        return

    with tempfile.TemporaryDirectory(prefix="bench_ingest_") as tmp:
        home = Path(tmp)
        env = {**os.environ, "GROWTH_STACK_HOME": str(home), "GROWTH_STACK_SANDBOX_WEBHOOK_URL": ""}
        with run_server("sandbox", "/_admin/health", env, extra_args=["--rate-limit-scale", "0"],
                        log_path=home / "sandbox.log") as (url, _):
            env["GROWTH_STACK_SANDBOX_URL"] = url
            t = time.perf_counter()
            seed(url, args.contacts, args.invoices, args.lines_per_invoice)
            print(f"seeded {args.contacts:,} contacts and {args.invoices:,} invoices x {args.lines_per_invoice} lines "
                  f"in {time.perf_counter() - t:.1f}s; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
            print(f"{'table':<24}{'run':<10}{'rows':>10}{'seconds':>10}{'rows/s':>10}{'peak MB':>10}{'CPU s':>8}")
            for system, label in (("hubspot", "hubspot.contacts"), ("stripe", "stripe.invoices__lines")):
                base = run_worker("baseline", system, env)
                dlt_run = run_worker("dlt", system, env)
                for name, r in (("requests", base), ("dlt", dlt_run)):
                    print(f"{label:<24}{name:<10}{r['rows']:>10,}{r['seconds']:>10.1f}"
                          f"{r['rows'] / r['seconds']:>10,.0f}{r['peak_rss_mb']:>10.0f}{r['cpu_seconds']:>8.1f}")
                ratio = (dlt_run["rows"] / dlt_run["seconds"]) / (base["rows"] / base["seconds"])
                assert dlt_run["rows"] == base["rows"], f"dlt loaded {dlt_run['rows']} rows, the API holds {base['rows']}"
                print(f"{label:<24}dlt / ceiling = {ratio:.0%} (target >= 50%); dlt steps {dlt_run['steps']}")


if __name__ == "__main__":
    main()
