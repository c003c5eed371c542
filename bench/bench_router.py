"""Streaming routes: acknowledgement-to-destination latency, and the drain rate after an outage.

    .venv/bin/python bench/bench_router.py [--rate 1000] [--seconds 20] [--outage-seconds 300]
                                           [--outage-rate 200] [--users 500]

Real processes on loopback: the collector (2 workers), the sandbox and `growth-stack router` with
the repository's routes file. Clients post signed Customer.io "email opened" webhooks (one event
per request, as Customer.io sends them), paced at `--rate` per second by several threads.

1. Latency at `--rate` routed events/s (Amplitude's Growth-plan limits: 100 batches per second and
   30 events per second per user, no project-wide events cap; a route capped at exactly the input
   rate would only measure its own queue): for each event, the time from the collector's
   acknowledgement (the client got its 200) to Amplitude's acceptance (the sandbox's
   `server_upload_time` of the event, read back through the Export API), p50/p95/p99, printed
   beside the collector's own acknowledgement latency (request sent -> 200) in the same run.
2. Drain: Amplitude answers 503 for `--outage-seconds` while clients keep posting at
   `--outage-rate`; then it recovers. Prints the backlog, the time the router took to notice the
   recovery, and the drain rate (backlog / time from the first to the last accepted event after
   the outage) as a share of the route's limit (the repository's routes file: Amplitude's
   Starter-plan 1000 events per second).
"""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
import http.client
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import zipfile
from pathlib import Path
from urllib.parse import urlparse

import requests

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from growth_stack_dagster import config  # noqa: E402
from growth_stack_dagster.collector.signatures import customerio_signature  # noqa: E402
import yaml  # noqa: E402

from growth_stack_dagster.router.routes import DEFAULT_ROUTES_FILE, load_routes  # noqa: E402
from tests.servers import CLI, free_port, run_server  # noqa: E402

TOKEN = config.DEFAULT_SANDBOX_TOKEN
KEY = config.DEFAULT_CUSTOMERIO_WEBHOOK_SIGNING_KEY


def _body(event_id: str, user: str) -> bytes:
    return json.dumps({
        "event_id": event_id, "object_type": "email", "metric": "opened", "timestamp": int(time.time()),
        "data": {"customer_id": user, "identifiers": {"id": user, "email": f"{user}@example.com"},
                 "email_address": f"{user}@example.com", "campaign_id": 7, "action_id": 3,
                 "delivery_id": event_id[:20], "subject": "Spring sale"}}, separators=(",", ":")).encode()


class Load:
    """Threads that post signed webhooks at a steady total rate; record ack times per event id."""

    def __init__(self, collector: str, users: int, threads: int = 8):
        self.target = urlparse(collector)
        self.users, self.threads = users, threads
        self.acked: dict[str, float] = {}  # event id -> wall clock time of the 200
        self.ack_latency: list[float] = []
        self.errors = 0
        self._lock = threading.Lock()

    def run(self, rate: float, seconds: float) -> None:
        per_thread = rate / self.threads
        deadline = time.monotonic() + seconds

        def worker(slot: int) -> None:
            conn = http.client.HTTPConnection(self.target.hostname, self.target.port, timeout=30)
            n, start = 0, time.monotonic()
            while True:
                due = start + n / per_thread
                now = time.monotonic()
                if due >= deadline:
                    break
                if due > now:
                    time.sleep(due - now)
                event_id = uuid.uuid4().hex
                body = _body(event_id, f"cust-bench-{(slot * 7919 + n) % self.users:05d}")
                ts = str(int(time.time()))
                sent = time.perf_counter()
                try:
                    conn.request("POST", "/v1/webhook/customerio", body=body, headers={
                        "Content-Type": "application/json", "X-CIO-Timestamp": ts,
                        "X-CIO-Signature": customerio_signature(body, KEY, int(ts))})
                    response = conn.getresponse()
                    response.read()
                    ok = response.status == 200
                except (OSError, http.client.HTTPException):
                    conn.close()
                    conn = http.client.HTTPConnection(self.target.hostname, self.target.port, timeout=30)
                    ok = False
                done, wall = time.perf_counter(), time.time()
                with self._lock:
                    if ok:
                        self.acked[event_id] = wall
                        self.ack_latency.append(done - sent)
                    else:
                        self.errors += 1
                n += 1

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(self.threads)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()


def accepted_times(sandbox: str, since: dt.datetime) -> dict[str, float]:
    """insert_id -> Amplitude's server_upload_time (epoch seconds) of every event uploaded since `since`."""
    now = dt.datetime.now(dt.timezone.utc)
    r = requests.get(f"{sandbox}/amplitude/api/2/export", auth=(TOKEN, TOKEN), timeout=300, params={
        "start": since.strftime("%Y%m%dT%H"), "end": now.strftime("%Y%m%dT%H")})
    if r.status_code == 404:
        return {}
    r.raise_for_status()
    out: dict[str, float] = {}
    with zipfile.ZipFile(io.BytesIO(r.content)) as zf:
        for name in zf.namelist():
            for line in gzip.decompress(zf.read(name)).splitlines():
                e = json.loads(line)
                at = dt.datetime.strptime(e["server_upload_time"], "%Y-%m-%d %H:%M:%S.%f").replace(
                    tzinfo=dt.timezone.utc).timestamp()
                out[e["$insert_id"]] = at
    return out


def wait_for(sandbox: str, since: dt.datetime, ids: set[str], timeout: float, state: Path,
             route: str, delivered_before: int) -> dict[str, float]:
    """Wait (reading the router's state file, which costs the sandbox nothing) until the route has
    delivered `ids`, then read their acceptance times with one export."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            counts = json.loads(state.read_text())["routes"][route]["counts"]
        except (FileNotFoundError, KeyError, ValueError):
            counts = {}
        if counts.get("delivered", 0) + counts.get("duplicates", 0) - delivered_before >= len(ids):
            break
        time.sleep(0.5)
    return accepted_times(sandbox, since)


def delivered(state: Path, route: str) -> int:
    try:
        counts = json.loads(state.read_text())["routes"][route]["counts"]
    except (FileNotFoundError, KeyError, ValueError):
        return 0
    return counts.get("delivered", 0) + counts.get("duplicates", 0)


def destination_capacity(sandbox: str, seconds: float = 5.0) -> float:
    """Events per second the sandbox's Amplitude accepts from one client posting 100-event batches
    back to back (the destination's own speed on this machine now, beside the drain rate)."""
    session, accepted, started = requests.Session(), 0, time.monotonic()
    while time.monotonic() - started < seconds:
        events = [{"user_id": f"cust-capacity-{(accepted + i) % 500:05d}", "event_type": "Email Opened",
                   "insert_id": uuid.uuid4().hex} for i in range(100)]
        r = session.post(f"{sandbox}/amplitude/2/httpapi", json={"api_key": TOKEN, "events": events}, timeout=30)
        accepted += 100 if r.status_code == 200 else 0
    return accepted / (time.monotonic() - started)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=1000, help="routed events per second for the latency run")
    parser.add_argument("--seconds", type=float, default=20, help="length of the latency run")
    parser.add_argument("--outage-seconds", type=float, default=300, help="length of the Amplitude outage")
    parser.add_argument("--outage-rate", type=float, default=200, help="events per second posted during the outage")
    parser.add_argument("--users", type=int, default=500, help="distinct people (Amplitude limits 30 events/s each)")
    args = parser.parse_args()
    route = next(r for r in load_routes() if r.name == "customerio_email_to_amplitude")
    limit = route.options.events_per_second

    home = Path(tempfile.mkdtemp(prefix="bench-router-"))
    collector_port = free_port()
    collector = f"http://127.0.0.1:{collector_port}"
    env = {"GROWTH_STACK_HOME": str(home), "GROWTH_STACK_COLLECTOR_URL": collector,
           "GROWTH_STACK_COLLECTOR_WORKERS": "2"}
    with run_server("collector", "/health", env, port=collector_port, log_path=home / "collector.log"), \
            run_server("sandbox", "/_admin/health", env, log_path=home / "sandbox.log") as (sandbox, _):
        router_env = {**os.environ, **env, "GROWTH_STACK_SANDBOX_URL": sandbox}
        growth = yaml.safe_load(DEFAULT_ROUTES_FILE.read_text())
        for r in growth["routes"]:
            if r["name"] == route.name:
                r["options"].pop("events_per_second")
        growth_file = home / "routes-growth-plan.yaml"
        growth_file.write_text(yaml.safe_dump(growth))

        def start_router(routes_file: Path | None) -> subprocess.Popen:
            with open(home / "router.log", "ab") as log:
                extra = ["--routes", str(routes_file)] if routes_file else []
                return subprocess.Popen([*CLI, "router", *extra], env=router_env, cwd=REPO, stdout=log, stderr=log)

        router = start_router(growth_file)
        try:
            time.sleep(2)
            since = dt.datetime.now(dt.timezone.utc)
            state = home / "router" / "state.json"
            before = delivered(state, route.name)
            load = Load(collector, args.users)
            load.run(args.rate, args.seconds)
            sent_rate = len(load.acked) / args.seconds
            got = wait_for(sandbox, since, set(f"customerio-{i}" for i in load.acked), 120, state, route.name, before)
            latencies = [got[f"customerio-{i}"] - t for i, t in load.acked.items() if f"customerio-{i}" in got]
            missing = len(load.acked) - len(latencies)
            print(f"latency run: {len(load.acked)} events acknowledged in {args.seconds:.0f} s "
                  f"({sent_rate:.0f}/s, {load.errors} errors), {missing} not in Amplitude")
            print(f"  ack -> Amplitude acceptance: p50 {pct(latencies, .5) * 1000:.0f} ms, "
                  f"p95 {pct(latencies, .95) * 1000:.0f} ms, p99 {pct(latencies, .99) * 1000:.0f} ms "
                  f"(goal p95 < 5000 ms)")
            acks = load.ack_latency
            print(f"  collector's own ack latency (same run): p50 {pct(acks, .5) * 1000:.1f} ms, "
                  f"p95 {pct(acks, .95) * 1000:.1f} ms, p99 {pct(acks, .99) * 1000:.1f} ms")

            # 2. outage, then drain, with the repository's routes file
            router.terminate()
            router.wait(timeout=30)
            capacity = destination_capacity(sandbox)
            router = start_router(None)
            time.sleep(2)
            requests.post(f"{sandbox}/_admin/faults", timeout=10, json={
                "prefix": "/amplitude/2/httpapi", "kind": "error", "status": 503, "count": -1}).raise_for_status()
            before = delivered(state, route.name)
            outage = Load(collector, args.users)
            outage.run(args.outage_rate, args.outage_seconds)
            recovered = time.time()
            requests.delete(f"{sandbox}/_admin/faults", timeout=10).raise_for_status()
            ids = set(f"customerio-{i}" for i in outage.acked)
            got = wait_for(sandbox, since, ids, 600 + len(ids) / limit * 3, state, route.name, before)
            times = sorted(got[i] for i in ids if i in got)
            drained = len(times)
            first, last = times[0], times[-1]
            rate = (drained - 1) / (last - first) if last > first else float("inf")
            print(f"outage run: Amplitude down {args.outage_seconds:.0f} s; backlog {len(ids)} events "
                  f"({drained} accepted after it, {len(ids) - drained} missing)")
            print(f"  recovery noticed after {first - recovered:.1f} s; drained in {last - first:.1f} s: "
                  f"{rate:.0f} events/s = {rate / limit:.0%} of the route's limit of {limit:.0f}/s (goal >= 90%)")
            print(f"  the sandbox's own Amplitude capacity (same run, one client, 100-event batches): "
                  f"{capacity:.0f} events/s; drain = {rate / min(limit, capacity):.0%} of min(limit, capacity)")
            state = json.loads((home / "router" / "state.json").read_text())["routes"][route.name]
            print(f"  router counts: {state['counts']}")
        finally:
            router.terminate()
            router.wait(timeout=30)
    print(f"load average: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}")


if __name__ == "__main__":
    main()
