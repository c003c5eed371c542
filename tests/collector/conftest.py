"""Collector tests: files close quickly so tests see them, two workers like production."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.servers import run_server

FAST_ENV = {"GROWTH_STACK_COLLECTOR_FILE_SECONDS": "0.2", "GROWTH_STACK_COLLECTOR_WORKERS": "2"}


@pytest.fixture(autouse=True)
def _fast_rotation(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GROWTH_STACK_COLLECTOR_FILE_SECONDS", "0.2")
    monkeypatch.setenv("GROWTH_STACK_COLLECTOR_WORKERS", "2")
    for name in ("GROWTH_STACK_WRITE_KEYS", "STRIPE_WEBHOOK_SECRET", "CUSTOMERIO_WEBHOOK_SIGNING_KEY",
                 "GROWTH_STACK_WEBHOOK_SECRET", "GROWTH_STACK_COLLECTOR_MIN_FREE_MB"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def shared_collector(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """One collector for a module of tests that never expect anything on disk: (url, home)."""
    home = tmp_path_factory.mktemp("gs_home_shared")
    env = {**FAST_ENV, "GROWTH_STACK_HOME": str(home)}
    with run_server("collector", "/health", env, log_path=home / "collector.log") as (url, _):
        yield url, home
