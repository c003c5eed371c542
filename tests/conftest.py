"""Shared fixtures: a private GROWTH_STACK_HOME and real servers on loopback."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.servers import CLI, REPO, free_port, run_server, sandbox_server

# The small example company that every flow ran on once, shared by the end-to-end checks and the
# Dagster UI tests (see `built_company`).
COMPANY_CUSTOMERS, COMPANY_DAYS, COMPANY_SEED = 60, 40, 11


@pytest.fixture
def gs_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh GROWTH_STACK_HOME for one test, exported to this process and its children."""
    home = tmp_path / "gs_home"
    home.mkdir()
    monkeypatch.setenv("GROWTH_STACK_HOME", str(home))
    return home


@pytest.fixture
def sandbox_url(gs_home: Path) -> Iterator[str]:
    """A running `growth-stack sandbox` with its state under the test's GROWTH_STACK_HOME."""
    with sandbox_server(gs_home) as url:
        yield url


@pytest.fixture
def collector_url(gs_home: Path) -> Iterator[str]:
    """A running `growth-stack collector` writing event files under GROWTH_STACK_HOME."""
    with run_server("collector", "/health", {"GROWTH_STACK_HOME": str(gs_home)},
                    log_path=gs_home / "collector.log") as (url, _):
        yield url


@pytest.fixture(scope="module")
def browser():
    """One headless Chromium per test module (see tests/browser.py). Not per session: while Playwright's
    sync API is running, `asyncio.run()` fails in any other test, so it is closed after each module."""
    from playwright.sync_api import sync_playwright

    from tests.browser import launch

    with sync_playwright() as p:
        b = launch(p)
        try:
            yield b
        finally:
            b.close()


def wait_until_closed(events: Path, timeout: float = 120.0) -> None:
    """Poll until the collector has closed (published) every event file it holds open."""
    from growth_stack_dagster import eventfiles

    deadline = time.monotonic() + timeout
    while open_files := sorted(events.rglob(f"*{eventfiles.OPEN_SUFFIX}")):
        if time.monotonic() > deadline:
            raise TimeoutError(f"the collector still holds {len(open_files)} open event files after {timeout}s")
        time.sleep(0.2)


@pytest.fixture(scope="session")
def built_company(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """A small simulated company with every flow run once (`growth-stack init`, `simulate`, then
    `growth-stack run` into a real DuckDB file and a persistent Dagster instance), with its collector
    and sandbox kept running: built once per session for tests/e2e (which only read it) and tests/ui
    (which change it, and so run last: see `pytest_collection_modifyitems`).

    Yields {"home", "env", "stats", "collector", "sandbox", "console_port"}: `env` is the environment
    the build ran with (GROWTH_STACK_HOME, DAGSTER_HOME, the servers' URLs, GROWTH_STACK_AS_OF and
    GROWTH_STACK_CONSOLE_URL naming `console_port`, where a test may start the console), `stats` the
    sandbox's counts before the build read it."""
    home = tmp_path_factory.mktemp("built_company")
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
            subprocess.run([*CLI, "simulate", "--customers", str(COMPANY_CUSTOMERS), "--days", str(COMPANY_DAYS),
                            "--seed", str(COMPANY_SEED), "--sandbox-url", sandbox, "--collector-url", collector],
                           check=True, env=full_env, cwd=REPO, timeout=600)
            requests.post(f"{sandbox}/_admin/webhooks/flush", timeout=60).raise_for_status()
            # traits are computed at the moment the simulator's ground truth holds at
            summary = json.loads((home / "simulation" / "summary.json").read_text())
            env["GROWTH_STACK_AS_OF"] = summary["params"]["as_of_at"]
            stats = requests.get(f"{sandbox}/_admin/stats", timeout=10).json()
            wait_until_closed(home / "events")
            # what `growth-stack run` prints to its terminal's stderr, kept for tests/e2e to read
            with open(home / "run.stderr", "w") as stderr:
                subprocess.run([*CLI, "run"], check=True, env={**full_env, **env}, cwd=REPO, timeout=900, stderr=stderr)
            yield {"home": home, "env": env, "stats": stats, "collector": collector, "sandbox": sandbox,
                   "console_port": console_port}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # The Dagster UI tests change the shared built company (a late event file, new runs), so they run
    # after every test that only reads it, whatever order the paths were given in.
    items.sort(key=lambda item: item.nodeid.startswith("tests/ui/"))
