"""Collector throughput with durable acks, beside a bare Starlette endpoint on the same stack.

    .venv/bin/python bench/bench_collector.py [--seconds 8] [--connections 64] [--workers N]

Load generator: `wrk` (Debian package `wrk`; C, one thread, so it takes little of the server's
CPU) with a Lua script that POSTs a fixed body. Both servers run the same way (`serve()`: same
uvicorn/httptools/uvloop settings, same worker count); the baseline reads the body and discards
it, the collector validates, stamps, writes and fsyncs before answering. Prints events/s for
single events (`/v1/track`) and batches of 100 (`/v1/batch`), the ratio to the baseline, the
collector's RSS (all processes) before and after, and checks every acknowledged event is on disk.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import orjson
import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.servers import run_server, wait_http  # noqa: E402

AUTH = "Basic c2VydmVyLWRldi1rZXk6"  # base64("server-dev-key:")


def baseline_app():
    """A bare Starlette endpoint: read the body, discard it, answer like the collector does."""
    from starlette.applications import Starlette
    from starlette.responses import Response
    from starlette.routing import Route

    async def discard(request):
        await request.body()
        return Response(b'{"success":true}', media_type="application/json")

    async def health(request):
        return Response(b'{"ok":true}', media_type="application/json")

    return Starlette(routes=[Route("/v1/{kind}", discard, methods=["POST"]),
                             Route("/health", health, methods=["GET"])])


def _message(i: int) -> dict:
    return {
        "type": "track", "userId": f"user-{i % 997}", "event": "Product Viewed",
        "properties": {"product_id": f"sku-{i % 311}", "price": 19.99, "currency": "USD", "position": i % 7},
        "context": {"library": {"name": "analytics-python", "version": "2.3.4"}, "ip": "10.1.2.3",
                    "page": {"path": "/products", "url": "https://shop.example.com/products"}},
        "timestamp": "2026-11-26T12:00:00.000+00:00",
    }


def _lua(path: str, body: bytes, script: Path) -> Path:
    lua_body = body.decode().replace("\\", "\\\\").replace('"', '\\"')
    script.write_text(
        'wrk.method = "POST"\n'
        f'wrk.path = "{path}"\n'
        f'wrk.body = "{lua_body}"\n'
        'wrk.headers["Content-Type"] = "application/json"\n'
        f'wrk.headers["Authorization"] = "{AUTH}"\n'
    )
    return script


def _wrk(url: str, script: Path, seconds: int, connections: int) -> tuple[float, int, int]:
    """(requests/s, completed requests, non-2xx responses) from one wrk run."""
    out = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "-s", str(script), url],
                         capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    total = int(re.search(r"(\d+) requests in", out).group(1))
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    return rps, total, int(bad.group(1)) if bad else 0


def _cpu_seconds(pid: int) -> float:
    """User+system CPU of a server and its workers (to compare cost per event under a shared load)."""
    proc = psutil.Process(pid)
    return sum(sum(p.cpu_times()[:2]) for p in [proc, *proc.children(recursive=True)])


def _measure(pid: int, url: str, script: Path, seconds: int, connections: int, per_request: int):
    """(events/s, CPU µs per event, completed requests, non-2xx) of one wrk run against `pid`."""
    cpu0 = _cpu_seconds(pid)
    rps, total, bad = _wrk(url, script, seconds, connections)
    cpu = _cpu_seconds(pid) - cpu0
    return rps * per_request, cpu / max(1, total * per_request) * 1e6, total, bad


def _rss_mb(pid: int) -> float:
    proc = psutil.Process(pid)
    return sum(p.memory_info().rss for p in [proc, *proc.children(recursive=True)]) / 2**20


def _count_lines(home: Path) -> int:
    return sum(f.read_bytes().count(b"\n") for f in (home / "events").glob("source=*/date=*/*.jsonl"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--serve-baseline", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()

    from growth_stack_dagster.collector.command import default_workers, serve

    workers = args.workers or default_workers()
    if args.serve_baseline:
        serve(baseline_app, "127.0.0.1", args.serve_baseline, workers)
        return
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed: apt-get install -y wrk")

    single = orjson.dumps(_message(1))
    batch = orjson.dumps({"batch": [_message(i) for i in range(100)]})
    tmp = Path(tempfile.mkdtemp(prefix="bench_collector_"))
    scripts = {"single": _lua("/v1/track", single, tmp / "single.lua"),
               "batch": _lua("/v1/batch", batch, tmp / "batch.lua")}
    events_per_request = {"single": 1, "batch": 100}
    print(f"cpus={os.cpu_count()} load={os.getloadavg()[0]:.1f} workers={workers} "
          f"wrk -t1 -c{args.connections} -d{args.seconds}s; single body {len(single)} B, "
          f"batch body {len(batch)} B (100 events)")

    results: dict[tuple[str, str], float] = {}
    cpu: dict[tuple[str, str], float] = {}
    # baseline
    from tests.servers import free_port

    port = free_port()
    base_proc = subprocess.Popen([sys.executable, __file__, "--serve-baseline", str(port),
                                  "--workers", str(workers)], cwd=REPO)
    try:
        wait_http(f"http://127.0.0.1:{port}/health", base_proc)
        for kind, script in scripts.items():
            url = f"http://127.0.0.1:{port}"
            _wrk(url, script, 1, args.connections)  # warm up
            eps, cpu_us, _, bad = _measure(base_proc.pid, url, script, args.seconds, args.connections,
                                           events_per_request[kind])
            results[("baseline", kind)] = eps
            cpu[("baseline", kind)] = cpu_us
            print(f"baseline  {kind:6s} {eps:10.0f} events/s  {cpu_us:6.1f} CPU-us/event  non-2xx={bad}")
    finally:
        base_proc.terminate()
        base_proc.wait()

    # collector
    home = tmp / "home"
    env = {"GROWTH_STACK_HOME": str(home), "GROWTH_STACK_COLLECTOR_WORKERS": str(workers)}
    acked_events = 0
    with run_server("collector", "/health", env, log_path=tmp / "collector.log") as (url, proc):
        for kind, script in scripts.items():
            rps, total, bad = _wrk(url, script, 1, args.connections)  # warm up
            acked_events += (total - bad) * events_per_request[kind]
            rss_start = _rss_mb(proc.pid)
            eps, cpu_us, total, bad = _measure(proc.pid, url, script, args.seconds, args.connections,
                                               events_per_request[kind])
            rss_end = _rss_mb(proc.pid)
            acked_events += (total - bad) * events_per_request[kind]
            results[("collector", kind)] = eps
            cpu[("collector", kind)] = cpu_us
            print(f"collector {kind:6s} {eps:10.0f} events/s  {cpu_us:6.1f} CPU-us/event  non-2xx={bad}  "
                  f"RSS {rss_start:.0f} -> {rss_end:.0f} MB")
    stored = _count_lines(home)
    print(f"durable: {stored} lines on disk for {acked_events} acknowledged events "
          f"({'OK' if stored >= acked_events else 'MISSING EVENTS'})")
    cores = os.cpu_count() or 1
    for kind, target in (("single", 7_000), ("batch", 150_000)):
        c, b = results[("collector", kind)], results[("baseline", kind)]
        print(f"{kind:6s}: collector {c:,.0f} events/s = {c / b:.2f} x bare Starlette ({b:,.0f}); "
              f"CPU per event {cpu[('collector', kind)]:.1f} us = {cpu[('collector', kind)] / cpu[('baseline', kind)]:.2f}"
              f" x baseline; if given all {cores} cores: ~{cores / cpu[('collector', kind)] * 1e6:,.0f} events/s; "
              f"target {target:,} -> {'met' if c >= target else 'NOT met'} in this run")
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
