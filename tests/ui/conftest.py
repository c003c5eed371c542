"""The stack as its users meet it: a small company built for real, `dagster dev` and the console
started on free ports with a temporary DAGSTER_HOME, Chromium driving both. One `dagster dev` per module."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.servers import CLI, REPO, free_port, run_server

CUSTOMERS, DAYS, SEED = 40, 36, 7


@contextlib.contextmanager
def dagster_dev(env: dict[str, str], cwd: Path, log_path: Path) -> Iterator[str]:
    """`dagster dev` on a free loopback port, in its own process group; yields its URL once the code
    location has loaded. Run outside the repository so that no .env there applies."""
    port = free_port()
    log = open(log_path, "ab")
    proc = subprocess.Popen([sys.executable, "-m", "dagster", "dev", "-h", "127.0.0.1", "-p", str(port),
                             "-w", str(REPO / "workspace.yaml")],
                            env={**os.environ, **env}, cwd=cwd, stdout=log, stderr=log, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 240
        query = {"query": "{ workspaceOrError { ... on Workspace { locationEntries { name "
                          "locationOrLoadError { __typename } } } } }"}
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"dagster dev exited with {proc.returncode}; see {log_path}")
            with contextlib.suppress(requests.RequestException, ValueError, KeyError, TypeError):
                entries = requests.post(url + "/graphql", json=query, timeout=5).json()["data"]["workspaceOrError"]["locationEntries"]
                if entries and all((e["locationOrLoadError"] or {}).get("__typename") == "RepositoryLocation" for e in entries):
                    break
                if any((e["locationOrLoadError"] or {}).get("__typename") == "PythonError" for e in entries):
                    raise RuntimeError(f"the code location failed to load in dagster dev; see {log_path}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"dagster dev did not load the code location; see {log_path}")
            time.sleep(1)
        yield url
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> Iterator[dict[str, str]]:
    """A built warehouse of a small company, the collector, the sandbox, the console and dagster dev.
    Yields {"home", "dagster", "console", "collector", "sandbox"}."""
    home = tmp_path_factory.mktemp("ui_home")
    console_port = free_port()
    env = {"GROWTH_STACK_HOME": str(home), "DAGSTER_HOME": str(home / "dagster_home"),
           "GROWTH_STACK_CONSOLE_URL": f"http://127.0.0.1:{console_port}"}
    with run_server("collector", "/health", env, log_path=home / "collector.log") as (collector, _):
        env["GROWTH_STACK_COLLECTOR_URL"] = collector
        env["GROWTH_STACK_SANDBOX_WEBHOOK_URL"] = collector + "/v1/webhook"
        with run_server("sandbox", "/_admin/health", env, log_path=home / "sandbox.log") as (sandbox, _):
            env["GROWTH_STACK_SANDBOX_URL"] = sandbox
            full_env = {**os.environ, **env}
            subprocess.run([*CLI, "init"], check=True, env=full_env, cwd=home, timeout=120, capture_output=True)
            subprocess.run([*CLI, "simulate", "--customers", str(CUSTOMERS), "--days", str(DAYS), "--seed", str(SEED),
                            "--sandbox-url", sandbox, "--collector-url", collector],
                           check=True, env=full_env, cwd=REPO, timeout=600, capture_output=True)
            requests.post(f"{sandbox}/_admin/webhooks/flush", timeout=60).raise_for_status()
            time.sleep(6)  # the collector closes its open files within seconds
            subprocess.run([*CLI, "run", "--no-summary"], check=True, env=full_env, cwd=REPO, timeout=900,
                           capture_output=True)
            with run_server("console", "/health", env, port=console_port, log_path=home / "console.log") as (console, _):
                with dagster_dev(env, home, home / "dagster.log") as dagster:
                    yield {"home": str(home), "dagster": dagster, "console": console, "collector": collector,
                           "sandbox": sandbox}
