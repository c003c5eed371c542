"""How long `growth-stack simulate --customers N` takes and its peak memory, beside a baseline.

Baseline: generation alone (every object and message generated and serialized to JSON, written
nowhere), in its own process. Measured: the real command into a fresh GROWTH_STACK_HOME, writing
the event files and seeding a real `growth-stack sandbox` (rate limits and webhooks off) on loopback.
Both run as child processes; peak RSS is the child's `ru_maxrss`.

    .venv/bin/python bench/bench_simulate.py [--customers 100000] [--days 120]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.servers import run_server  # noqa: E402

_BASELINE = """
import datetime as dt, sys, orjson
from growth_stack_dagster.simulate import generator as gen
p = gen.SimParams(int(sys.argv[1]), int(sys.argv[2]), 42, dt.date(2026, 11, 26))
size = sum(len(orjson.dumps(o)) for _, _, o in gen.company_globals(p).seeds)
for out in gen.iter_people(p):
    for _, _, o in out.seeds: size += len(orjson.dumps(o))
    for _, _, m in out.events: size += len(orjson.dumps(m))
    for _, m in out.live_events: size += len(orjson.dumps(m))
    size += len(orjson.dumps(out.truth))
print(size)
"""


def measure(cmd: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """(seconds, peak RSS in MB, stdout) of one child process."""
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = proc.communicate()
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"{cmd[:4]} failed ({proc.returncode}):\n{err.decode()[-2000:]}")
    return seconds, _peak_rss_mb(err), out.decode()


def _peak_rss_mb(stderr: bytes) -> float:
    for line in stderr.decode().splitlines()[::-1]:
        if line.startswith("PEAK_RSS_KB="):
            return int(line.split("=", 1)[1]) / 1024
    raise SystemExit("the child did not report its peak RSS")


def wrapped(args: list[str]) -> list[str]:
    """Run `args` (a python -c / -m invocation) and print its own peak RSS to stderr at exit."""
    code = ("import atexit, resource, sys;"
            "atexit.register(lambda: print(f'PEAK_RSS_KB={resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}',"
            " file=sys.stderr));")
    if args[0] == "-c":
        return [sys.executable, "-c", code + "\n" + args[1], *args[2:]]
    module, rest = args[1], args[2:]
    return [sys.executable, "-c", code + f"import runpy; sys.argv=['{module}', *{rest!r}];"
            f"runpy.run_module('{module}', run_name='__main__')"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--customers", type=int, default=100_000)
    ap.add_argument("--days", type=int, default=120)
    a = ap.parse_args()
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="bench_simulate_") as tmp:
        home = Path(tmp) / "home"
        home.mkdir()
        env = {**os.environ, "GROWTH_STACK_HOME": str(home), "GROWTH_STACK_SANDBOX_WEBHOOK_URL": "",
               "GROWTH_STACK_SANDBOX_RATE_LIMIT_SCALE": "0"}
        base_s, base_mb, size = measure(wrapped(["-c", _BASELINE, str(a.customers), str(a.days)]), env)
        with run_server("sandbox", "/_admin/health", env, log_path=home / "sandbox.log") as (url, _):
            full_s, full_mb, _ = measure(wrapped([
                "-m", "growth_stack_dagster.cli", "simulate", "--customers", str(a.customers), "--days", str(a.days),
                "--seed", "42", "--as-of", "2026-11-26", "--sandbox-url", url, "--no-collector", "--no-progress"]), env)
        events_mb = sum(f.stat().st_size for f in (home / "events").rglob("*.jsonl")) / 1e6
        db_mb = sum(f.stat().st_size for f in (home / "sandbox").glob("sandbox.sqlite3*")) / 1e6
    print(f"customers={a.customers} days={a.days} (1-min load average at start {load:.1f} on {os.cpu_count()} cores)")
    print(f"baseline  generation alone (serialize only, {int(size) / 1e6:.0f} MB of JSON): "
          f"{base_s:8.1f} s  peak RSS {base_mb:7.1f} MB")
    print(f"measured  simulate -> event files ({events_mb:.0f} MB) + real sandbox ({db_mb:.0f} MB SQLite): "
          f"{full_s:8.1f} s  peak RSS {full_mb:7.1f} MB")
    print(f"ratio     time {full_s / base_s:.2f}x   peak RSS {full_mb / base_mb:.2f}x   "
          f"({a.customers / full_s:,.0f} customers/s end to end)")


if __name__ == "__main__":
    main()
