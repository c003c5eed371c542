"""Every dbt unit test of the project passes. The Dagster assets leave unit tests out of scheduled
builds (they check SQL logic on fixed inputs, not data), so this is where all of them run."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from tests.dbt.conftest import DBT, REPO


def _dbt(home: Path, work: Path, *args: str) -> None:
    env = {**os.environ, "GROWTH_STACK_HOME": str(home), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    result = subprocess.run([str(DBT), *args, "--project-dir", "dbt_project", "--profiles-dir", "dbt_project",
                             "--target-path", str(work / "target"), "--log-path", str(work / "logs")],
                            cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f"dbt {' '.join(args)} failed:\n{result.stdout[-6000:]}\n{result.stderr[-2000:]}"


def test_every_dbt_unit_test_passes(home: Path, dbt_work: Path):
    # unit tests read their inputs' columns from the warehouse: create every model empty first
    _dbt(home, dbt_work, "run", "--empty")
    _dbt(home, dbt_work, "test", "--select", "test_type:unit")
    manifest = json.loads((dbt_work / "target" / "manifest.json").read_text())
    results = json.loads((dbt_work / "target" / "run_results.json").read_text())["results"]
    declared = set(manifest["unit_tests"])
    assert len(declared) >= 30
    assert {r["unique_id"] for r in results} == declared
    assert {r["status"] for r in results} == {"pass"}
