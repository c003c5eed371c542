"""The collector stays small: no Dagster, dlt or DuckDB in its process."""

from __future__ import annotations

import subprocess
import sys

from tests.servers import REPO


def test_collector_imports_no_warehouse_libraries() -> None:
    code = (
        "import sys\n"
        "from growth_stack_dagster.cli import main\n"
        "from growth_stack_dagster.collector.app import CollectorSettings, build_app\n"
        "import growth_stack_dagster.collector.command, uvicorn\n"
        "build_app(CollectorSettings.from_env())\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('dagster', 'dlt', 'duckdb', 'dbt'))\n"
        "print(heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_bad_webhook_secret_stops_startup_with_a_sentence(tmp_path) -> None:
    env = {"GROWTH_STACK_HOME": str(tmp_path), "GROWTH_STACK_WEBHOOK_SECRET": "whsec_not*base64", "PATH": ""}
    out = subprocess.run([sys.executable, "-m", "growth_stack_dagster.cli", "collector", "--port", "1"],
                         cwd=REPO, capture_output=True, text=True, env=env, timeout=30)
    assert out.returncode != 0
    assert "base64" in out.stderr and "not*base64" not in out.stderr
