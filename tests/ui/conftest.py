"""The stack as its users meet it: the session's small company built for real (`built_company`, shared
with tests/e2e), `dagster dev` and the console started on free ports over its DAGSTER_HOME, Chromium
driving both. One `dagster dev` per session."""

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

from tests.servers import REPO, free_port, run_server


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
            time.sleep(0.5)
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


@pytest.fixture(scope="session")
def stack(built_company) -> Iterator[dict[str, str]]:
    """The session's built company (tests/conftest.py) with the console on the port its scorecard links
    name and one `dagster dev` over its instance, for every UI test.
    Yields {"home", "dagster", "console", "collector", "sandbox"}."""
    home, env = built_company["home"], built_company["env"]
    with run_server("console", "/health", env, port=built_company["console_port"],
                    log_path=home / "console.log") as (console, _):
        with dagster_dev(env, home, home / "dagster.log") as dagster:
            yield {"home": str(home), "dagster": dagster, "console": console,
                   "collector": built_company["collector"], "sandbox": built_company["sandbox"]}
