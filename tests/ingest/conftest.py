"""Fixtures for the ingest tests: a sandbox seeded with a small example company, fast limits."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest
import requests

from tests.ingest.seed import seed_all


@pytest.fixture
def fast_env(gs_home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Environment for quick runs: rate limits scaled up, the Zendesk export delay off, no webhooks,
    short dlt retry backoff. Must come before `sandbox_url`, which copies the environment."""
    monkeypatch.setenv("GROWTH_STACK_SANDBOX_RATE_LIMIT_SCALE", "1000")
    _common_env(monkeypatch)
    return gs_home


@pytest.fixture
def real_limits_env(gs_home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Like `fast_env` but with the APIs' published rate limits."""
    monkeypatch.setenv("GROWTH_STACK_SANDBOX_RATE_LIMIT_SCALE", "1")
    _common_env(monkeypatch)
    return gs_home


def _common_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GROWTH_STACK_SANDBOX_ZENDESK_EXPORT_DELAY", "0")
    monkeypatch.setenv("GROWTH_STACK_SANDBOX_WEBHOOK_URL", "")
    monkeypatch.setenv("RUNTIME__REQUEST_BACKOFF_FACTOR", "0.2")
    monkeypatch.setenv("RUNTIME__REQUEST_MAX_RETRY_DELAY", "5")


@pytest.fixture
def sandbox(fast_env: Path, sandbox_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A running sandbox (fast limits) that the sources point at through their defaults."""
    monkeypatch.setenv("GROWTH_STACK_SANDBOX_URL", sandbox_url)
    return sandbox_url


@pytest.fixture
def seeded(sandbox: str) -> dict[str, Any]:
    """What was seeded into the `sandbox`, by system and collection."""
    return seed_all(sandbox)


def warehouse() -> duckdb.DuckDBPyConnection:
    """A read-only connection to the warehouse file of the current GROWTH_STACK_HOME."""
    from growth_stack_dagster import config

    return duckdb.connect(str(config.warehouse_path()), read_only=True)


def table_count(schema: str, table: str) -> int:
    with warehouse() as con:
        return con.execute(f'select count(*) from "{schema}"."{table}"').fetchone()[0]


def duplicate_keys(schema: str, table: str, key: str) -> int:
    with warehouse() as con:
        return con.execute(
            f'select count(*) from (select {key} from "{schema}"."{table}" group by {key} having count(*) > 1)'
        ).fetchone()[0]


def add_fault(sandbox: str, **rule: Any) -> int:
    r = requests.post(f"{sandbox}/_admin/faults", json=rule, timeout=10)
    r.raise_for_status()
    return r.json()["id"]


def faults(sandbox: str) -> list[dict[str, Any]]:
    return requests.get(f"{sandbox}/_admin/faults", timeout=10).json()


def clear_faults(sandbox: str) -> None:
    requests.delete(f"{sandbox}/_admin/faults", timeout=10).raise_for_status()


def auth() -> dict[str, str]:
    from growth_stack_dagster import config

    return {"Authorization": f"Bearer {config.sandbox_token()}"}


@pytest.fixture
def finance_drop(gs_home: Path) -> Iterator[Path]:
    from growth_stack_dagster import config

    folder = config.finance_drop_dir()
    folder.mkdir(parents=True, exist_ok=True)
    yield folder


def load(source_name: str, **overrides: Any) -> dict[str, int]:
    """Load one source in this process; returns the data rows normalized per table."""
    from growth_stack_dagster.ingest.pipelines import load_source

    info = load_source(source_name, **overrides)
    counts = info.pipeline.last_trace.last_normalize_info.row_counts
    return {t: n for t, n in counts.items() if not t.startswith("_dlt")}


