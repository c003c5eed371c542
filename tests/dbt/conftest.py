"""Helpers for the dbt tests: real `dbt build` runs (the venv's dbt executable) on a real DuckDB
file under a temporary GROWTH_STACK_HOME."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

REPO = Path(__file__).resolve().parents[2]
DBT = Path(sys.executable).with_name("dbt")
# Only the models this suite is about (staging and identity) and their tests, so that a model
# elsewhere in the project cannot make these tests fail.
ALL_STAGING_AND_IDENTITY = ["path:models/staging", "path:models/intermediate/identity", "path:models/marts/identity"]
# The identity marts with every model they are built from, and those models' tests.
IDENTITY = ["+path:models/marts/identity"]


@pytest.fixture(scope="session")
def dbt_work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One target folder for the session's builds, so dbt parses the project once (partial parsing)."""
    return tmp_path_factory.mktemp("dbt_work")


# The simulated company the ground-truth and persistence tests share (simulated and loaded once).
COMPANY_CUSTOMERS, COMPANY_DAYS, COMPANY_SEED, COMPANY_AS_OF = 40, 40, 7, dt.date(2026, 3, 2)


@pytest.fixture(scope="session")
def simulated_company(dbt_work: Path) -> Path:
    """A folder with `warehouse.duckdb` (raw tables only, from the real loaders) and `simulation/`."""
    from tests.dbt.company import simulate_company

    folder = dbt_work / "company"
    folder.mkdir()
    simulate_company(folder, COMPANY_CUSTOMERS, COMPANY_DAYS, COMPANY_SEED, COMPANY_AS_OF)
    return folder


@pytest.fixture
def home(dbt_work: Path) -> Path:
    """An empty GROWTH_STACK_HOME, at the same path for every test: the profile holds this path,
    and dbt parses the whole project again whenever the profile changes."""
    folder = dbt_work / "gs_home"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    return folder


def dbt_build(home: Path, work: Path, selection: list[str] = IDENTITY,
              dbt_vars: dict | None = None) -> subprocess.CompletedProcess:
    """`dbt build --select <selection>` into `home/warehouse.duckdb`; target and logs under `work`.

    Raises AssertionError with dbt's output when the build fails.
    """
    env = {**os.environ, "GROWTH_STACK_HOME": str(home), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    result = subprocess.run(
        [str(DBT), "build", "--project-dir", "dbt_project", "--profiles-dir", "dbt_project",
         "--target-path", str(work / "target"), "--log-path", str(work / "logs"),
         "--select", *selection, *(["--vars", json.dumps(dbt_vars)] if dbt_vars else [])],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, f"dbt build failed:\n{result.stdout[-6000:]}\n{result.stderr[-3000:]}"
    return result


def query(home: Path, sql: str, *params) -> list[tuple]:
    """Rows of `sql` on the warehouse, read-only."""
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as con:
        return con.execute(sql, list(params)).fetchall()


def customers(home: Path) -> dict[tuple[str, str], str]:
    """{(identifier_type, identifier_value): customer_id} from marts.customer_identifiers."""
    return {(t, v): c for t, v, c in query(
        home, "select identifier_type, identifier_value, customer_id from marts.customer_identifiers")}


def partition(mapping: dict[tuple[str, str], str]) -> set[frozenset[tuple[str, str]]]:
    """The identifiers grouped by customer, ignoring the ids themselves."""
    groups: dict[str, set[tuple[str, str]]] = {}
    for identifier, customer_id in mapping.items():
        groups.setdefault(customer_id, set()).add(identifier)
    return {frozenset(g) for g in groups.values()}
