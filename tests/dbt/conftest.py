"""Helpers for the dbt tests: real `dbt build` runs (the venv's dbt executable) on a real DuckDB
file under a temporary GROWTH_STACK_HOME."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import duckdb

REPO = Path(__file__).resolve().parents[2]
DBT = Path(sys.executable).with_name("dbt")
# Only the models this suite is about (staging and identity) and their tests, so that a model
# elsewhere in the project cannot make these tests fail.
SELECTION = ["path:models/staging", "path:models/intermediate/identity", "path:models/marts/identity"]


def dbt_build(home: Path, work: Path, *extra: str) -> subprocess.CompletedProcess:
    """`dbt build` of SELECTION into `home/warehouse.duckdb`; target and logs under `work`.

    Raises AssertionError with dbt's output when the build fails.
    """
    env = {**os.environ, "GROWTH_STACK_HOME": str(home), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    result = subprocess.run(
        [str(DBT), "build", "--project-dir", "dbt_project", "--profiles-dir", "dbt_project",
         "--target-path", str(work / "target"), "--log-path", str(work / "logs"),
         "--select", *SELECTION, *extra],
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
