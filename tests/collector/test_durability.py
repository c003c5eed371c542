"""SIGKILL under load loses no acknowledged event, and recovery publishes each exactly once."""

from __future__ import annotations

import collections
import os
import signal
import threading
import time
import uuid
from pathlib import Path

import orjson
import psutil
import requests

from tests.collector.conftest import FAST_ENV
from tests.collector.helpers import closed_lines
from tests.servers import run_server


def _sender(url: str, stop: threading.Event, acked: list[str], batch_size: int) -> None:
    session = requests.Session()
    session.auth = ("server-dev-key", "")
    while not stop.is_set():
        ids = [str(uuid.uuid4()) for _ in range(batch_size)]
        batch = [{"type": "track", "userId": "u", "event": "Load", "messageId": i} for i in ids]
        try:
            if batch_size == 1:
                r = session.post(url + "/v1/track", data=orjson.dumps(batch[0]),
                                 headers={"Content-Type": "application/json"}, timeout=5)
            else:
                r = session.post(url + "/v1/batch", data=orjson.dumps({"batch": batch}),
                                 headers={"Content-Type": "application/json"}, timeout=5)
        except requests.RequestException:
            continue  # killed mid-request: not acknowledged, and never retried here
        if r.status_code == 200:
            acked.extend(ids)


def test_sigkill_under_load_loses_no_acknowledged_event(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = {**FAST_ENV, "GROWTH_STACK_HOME": str(home), "GROWTH_STACK_COLLECTOR_FILE_SECONDS": "30"}
    acked: list[str] = []
    stop = threading.Event()
    with run_server("collector", "/health", env, log_path=tmp_path / "first.log") as (url, proc):
        workers = psutil.Process(proc.pid).children()
        assert len(workers) == 2
        threads = [threading.Thread(target=_sender, args=(url, stop, acked, size), daemon=True)
                   for size in (1, 1, 20, 50)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 20
        while len(acked) < 3000 and time.monotonic() < deadline:
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)  # workers follow (PR_SET_PDEATHSIG)
        proc.wait()
        psutil.wait_procs(workers, timeout=10)
        stop.set()
        for t in threads:
            t.join(timeout=10)
    killed_with = len(acked)
    assert killed_with >= 3000
    assert all(not w.is_running() for w in workers)
    # the crash left hidden open files behind; the restart publishes them
    assert list(home.rglob(".collector-*.jsonl.open"))
    with run_server("collector", "/health", env, log_path=tmp_path / "second.log"):
        pass
    assert list(home.rglob("*.open")) == []
    counts = collections.Counter(m["messageId"] for _, m in closed_lines(home))
    missing = [i for i in acked if counts[i] == 0]
    duplicated = [i for i in acked if counts[i] > 1]
    assert not missing, f"{len(missing)} of {killed_with} acknowledged events lost"
    assert not duplicated


def test_a_killed_worker_is_replaced_and_its_files_recovered(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = {**FAST_ENV, "GROWTH_STACK_HOME": str(home), "GROWTH_STACK_COLLECTOR_FILE_SECONDS": "30"}
    with run_server("collector", "/health", env, log_path=tmp_path / "collector.log") as (url, proc):
        parent = psutil.Process(proc.pid)
        session = requests.Session()
        acked = []
        for i in range(40):
            r = requests.post(url + "/v1/track", json={"userId": "u", "event": "E", "messageId": f"m{i}"},
                              auth=("web-dev-key", ""), timeout=10)
            assert r.status_code == 200
            acked.append(f"m{i}")
        # kill a worker that holds an open event file (connections may all have gone to one worker)
        victim = next(w for w in parent.children() if any(".collector-" in f.path for f in w.open_files()))
        victim.kill()
        victim.wait(timeout=10)
        deadline = time.monotonic() + 10
        while len(parent.children()) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(parent.children()) == 2
        time.sleep(0.3)
        assert session.get(url + "/health", timeout=10).status_code == 200
        # the dead worker's lines were published by the respawn, before shutdown
        recovered = {m["messageId"] for _, m in closed_lines(home)}
        assert recovered, "nothing was recovered from the killed worker"
    counts = collections.Counter(m["messageId"] for _, m in closed_lines(home))
    assert all(counts[i] == 1 for i in acked)
