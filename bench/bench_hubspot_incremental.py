"""Benchmark: an hourly HubSpot run that reads only what changed, against a full load.

Seeds a sandbox (rate limits off, `--rate-limit-scale 0`) with N contacts, each associated with one
of N/100 companies, then:
  full load    the HubSpot source into a fresh warehouse (every object listed, every association read);
  change       1% of the contacts change through the API: 98% of them updated (batch update), 1%
               archived, 1% created (batch archive and batch create);
  incremental  the next run into the same warehouse (CRM search by last-modified date, archived listing);
  reference    a full load of the changed portal into a second, fresh warehouse.
Counts the HTTP requests of each run (every request urllib3 sends, retries included) and prints the
incremental run's count beside the full load's, as a ratio (target: at most 2%). Then compares the
incremental warehouse's contacts and contact-company associations with the reference's, both ways
with EXCEPT ALL (dlt's per-load ids left out): they must be identical.

    .venv/bin/python bench/bench_hubspot_incremental.py                   # 100,000 contacts
    .venv/bin/python bench/bench_hubspot_incremental.py --contacts 10000  # a quick run
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import requests

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.ingest.requests_log import logged_requests  # noqa: E402
from tests.servers import run_server  # noqa: E402

SEED_BATCH = 5000
T0 = 1767225600  # 2026-01-01T00:00:00Z: the portal's history is older than the runs
COMPARED = ("contacts", "contact_company_associations")


def _iso(epoch: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(epoch))


def contacts(n: int, companies: int) -> list[dict[str, Any]]:
    return [{"id": str(100000 + i), "properties": {
        "email": f"user{i}@example.com", "firstname": f"First{i}", "lastname": f"Last{i}",
        "customer_type": "wholesale" if i % 5 == 0 else "retail"},
        "createdAt": _iso(T0 + i), "updatedAt": _iso(T0 + i + 60), "archived": False,
        "associations": {"companies": [str(900000 + i % companies)]}} for i in range(n)]


def companies(n: int) -> list[dict[str, Any]]:
    return [{"id": str(900000 + i), "properties": {"name": f"Company {i}", "domain": f"c{i}.example"},
             "createdAt": _iso(T0), "updatedAt": _iso(T0 + 30), "archived": False} for i in range(n)]


def seed(sandbox: str, n_contacts: int, n_companies: int) -> None:
    session = requests.Session()
    session.post(f"{sandbox}/_admin/seed/hubspot/companies", json=companies(n_companies),
                 timeout=600).raise_for_status()
    everyone = contacts(n_contacts, n_companies)
    for i in range(0, n_contacts, SEED_BATCH):
        session.post(f"{sandbox}/_admin/seed/hubspot/contacts", json=everyone[i:i + SEED_BATCH],
                     timeout=600).raise_for_status()


def change(sandbox: str, n_contacts: int, fraction: float, token: str) -> dict[str, int]:
    """Change `fraction` of the contacts through the public API; returns how many of each kind."""
    api = requests.Session()
    api.headers["Authorization"] = f"Bearer {token}"
    base = f"{sandbox}/hubspot/crm/v3/objects/contacts/batch"
    total = max(3, int(n_contacts * fraction))
    archived = created = max(1, total // 100)
    updated = total - archived - created
    step = max(1, n_contacts // total)  # spread over the whole portal
    ids = [str(100000 + i * step) for i in range(updated + archived)]
    for i in range(0, updated, 100):
        inputs = [{"id": c, "properties": {"lastname": "Changed", "customer_type": "wholesale"}}
                  for c in ids[i:min(i + 100, updated)]]
        api.post(f"{base}/update", json={"inputs": inputs}, timeout=60).raise_for_status()
    gone = ids[updated:]
    for i in range(0, len(gone), 100):
        api.post(f"{base}/archive", json={"inputs": [{"id": c} for c in gone[i:i + 100]]},
                 timeout=60).raise_for_status()
    for i in range(0, created, 100):
        inputs = [{"properties": {"email": f"new{j}@example.com", "firstname": "New"}}
                  for j in range(i, min(i + 100, created))]
        api.post(f"{base}/create", json={"inputs": inputs}, timeout=60).raise_for_status()
    return {"updated": updated, "archived": archived, "created": created}


def by_endpoint(requests_seen: list[tuple[str, str, dict, int]]) -> str:
    """`METHOD path[?archived=true] xN`, for the requests of one run."""
    from collections import Counter

    counts = Counter(f"{m} {p.removeprefix('/hubspot')}{'?archived=true' if q.get('archived') == ['true'] else ''}"
                     for m, p, q, _ in requests_seen if p.startswith("/hubspot/"))
    return ", ".join(f"{k} x{n}" for k, n in sorted(counts.items()))


def run_load(home: Path) -> tuple[int, float, dict[str, int], str]:
    """One HubSpot load into the warehouse under `home`: (requests, seconds, rows by table, requests by endpoint)."""
    os.environ["GROWTH_STACK_HOME"] = str(home)
    from growth_stack_dagster.ingest.pipelines import load_source

    with logged_requests() as log:
        t = time.perf_counter()
        info = load_source("hubspot")
        seconds = time.perf_counter() - t
    rows = {k: v for k, v in info.pipeline.last_trace.last_normalize_info.row_counts.items()
            if not k.startswith("_dlt")}
    return log.count("/hubspot/"), seconds, rows, by_endpoint(log.requests)


def differences(home_a: Path, home_b: Path) -> dict[str, tuple[int, int, int]]:
    """{table: (rows in a, rows in b, rows in one and not the other)} for the compared tables."""
    import duckdb

    con = duckdb.connect()
    con.execute(f"attach '{home_a / 'warehouse.duckdb'}' as a (read_only)")
    con.execute(f"attach '{home_b / 'warehouse.duckdb'}' as b (read_only)")
    out = {}
    for table in COMPARED:
        cols = "* exclude (_dlt_load_id, _dlt_id)"
        a, b = f"(select {cols} from a.hubspot.{table})", f"(select {cols} from b.hubspot.{table})"
        out[table] = con.execute(
            f"select (select count(*) from {a}), (select count(*) from {b}), "
            f"(select count(*) from ({a} except all {b})) + (select count(*) from ({b} except all {a}))").fetchone()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--change-fraction", type=float, default=0.01)
    args = parser.parse_args()
    n_companies = max(1, args.contacts // 100)

    with tempfile.TemporaryDirectory(prefix="bench_hubspot_incremental_") as tmp:
        root = Path(tmp)
        portal, hourly, reference = root / "sandbox", root / "hourly", root / "reference"
        for folder in (portal, hourly, reference):
            folder.mkdir()
        env = {**os.environ, "GROWTH_STACK_HOME": str(portal), "GROWTH_STACK_SANDBOX_WEBHOOK_URL": ""}
        with run_server("sandbox", "/_admin/health", env, extra_args=["--rate-limit-scale", "0"],
                        log_path=portal / "sandbox.log") as (url, _):
            os.environ["GROWTH_STACK_SANDBOX_URL"] = url
            from growth_stack_dagster import config

            t = time.perf_counter()
            seed(url, args.contacts, n_companies)
            print(f"seeded {args.contacts:,} contacts and {n_companies:,} companies in {time.perf_counter() - t:.1f}s; "
                  f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
            full_requests, full_s, full_rows, _ = run_load(hourly)
            print(f"full load:    {full_requests:>7,} requests, {full_s:6.1f}s, contacts {full_rows.get('contacts', 0):,} rows")
            changed = change(url, args.contacts, args.change_fraction, config.sandbox_token())
            total = sum(changed.values())
            print(f"changed {total:,} of {args.contacts:,} contacts ({total / args.contacts:.1%}) through the API: "
                  + ", ".join(f"{n:,} {kind}" for kind, n in changed.items()))
            inc_requests, inc_s, inc_rows, inc_endpoints = run_load(hourly)
            print(f"incremental:  {inc_requests:>7,} requests, {inc_s:6.1f}s, contacts {inc_rows.get('contacts', 0):,} rows")
            print(f"  by endpoint: {inc_endpoints}")
            ratio = inc_requests / full_requests
            print(f"incremental / full load = {ratio:.2%} of the requests (target <= 2%: "
                  f"{'met' if ratio <= 0.02 else 'NOT met'}); {inc_s / full_s:.1%} of the time")
            ref_requests, ref_s, _, _ = run_load(reference)
            print(f"reference full load of the changed portal: {ref_requests:,} requests, {ref_s:.1f}s")
        identical = True
        for table, (rows_a, rows_b, diff) in differences(hourly, reference).items():
            identical &= diff == 0 and rows_a == rows_b
            print(f"hubspot.{table}: incremental {rows_a:,} rows, full load {rows_b:,} rows, "
                  f"{diff:,} rows differ (EXCEPT ALL both ways)")
        assert inc_rows.get("contacts") == total, f"the incremental run loaded {inc_rows.get('contacts')} contacts, {total} changed"
        assert identical, "the incremental warehouse differs from a full load of the same portal"
        print("tables identical: yes; load average now " + f"{os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
