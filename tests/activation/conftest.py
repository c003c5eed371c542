"""Fixtures shared by the activation tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.dbt_marts import company


@pytest.fixture(scope="session")
def activated_company(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A GROWTH_STACK_HOME holding the hand-made example company with every activation model built by dbt
    (as of `company.AS_OF`), once per test session for every end-to-end sync test."""
    home = tmp_path_factory.mktemp("gs_activated_company")
    company.write_events(home / "events")
    company.load_events(home)
    company.create_api_tables(home / "warehouse.duckdb")
    result = company.dbt_build(home, "+path:models/activation", company.AS_OF, home)
    assert result.returncode == 0, result.stdout[-6000:]
    return home


@pytest.fixture
def hubspot(sandbox_url, gs_home, monkeypatch):
    """The sandbox's HubSpot as the destination, with short backoffs so fault tests stay quick."""
    monkeypatch.setenv("GROWTH_STACK_SANDBOX_URL", sandbox_url)
    monkeypatch.setenv("ACTIVATION__BACKOFF_FACTOR", "0.05")
    monkeypatch.setenv("ACTIVATION__BACKOFF_MAX", "1")
    return sandbox_url
