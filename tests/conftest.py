"""Shared fixtures: a private GROWTH_STACK_HOME and real servers on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.servers import run_server, sandbox_server


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
