"""The analyst's path (issue 14 §3): in a copy of the dbt project, add a `sync_*` model (SQL and YAML) and
its sync declaration, run `dbt parse`, and the code location, loaded as Dagster loads it, has the model's
asset and the sync's asset downstream of it, with no Python change. Then materialize both with the
`dagster` CLI against a real DuckDB file and a real sandbox: the Dagster instance records both
materializations, the model's dbt tests and the sync's checks passed, and the people read back from
Customer.io's API are the model's. The scorecard exposure is in dbt's lineage and is not taken for a sync."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import dagster as dg
import duckdb
import pytest
import requests

from growth_stack_dagster import config
from growth_stack_dagster.activation import declarations

# dbt parse, a load of the code location per command and per step, one dbt build: minutes on a loaded 2-core machine.
pytestmark = pytest.mark.timeout(900)

DAGSTER = str(Path(sys.executable).with_name("dagster"))
DBT = str(Path(sys.executable).with_name("dbt"))
MODEL_KEY = "activation/sync_customerio__vip_people"
SYNC_KEY = "destinations/customerio/people/customerio_vip_tier"

# What the analyst writes: a model reading an existing one with ref(), its YAML, and the declaration.
MODEL_SQL = """\
{#- High-value customers for Customer.io's VIP campaigns, with a tier by lifetime value.
    Reuses sync_customerio__people for the Customer.io id of each customer. Grain: one row per customerio_id. -#}

with people as (
    select * from {{ ref('sync_customerio__people') }}
),

final as (
    select
        customerio_id,
        email,
        lifetime_value,
        case when lifetime_value >= 500 then 'gold' else 'silver' end as vip_tier
    from people
    where is_high_value
)

select * from final
"""

MODEL_YAML = """\
version: 2

models:
  - name: sync_customerio__vip_people
    description: >
      High-value customers as Customer.io people, with a VIP tier (gold from 500 of lifetime value,
      else silver). Grain: one row per customerio_id. Synced by `syncs/customerio_vip_tier.yml`.
    config:
      contract: {enforced: true}
    columns:
      - name: customerio_id
        description: "The Customer.io id of the customer (see sync_customerio__people)."
        data_type: varchar
        data_tests: [unique, not_null]
      - name: email
        description: "The customer's email."
        data_type: varchar
      - name: lifetime_value
        description: "Paid invoice totals, rounded to cents."
        data_type: decimal(18, 2)
      - name: vip_tier
        description: "gold from 500 of lifetime value, else silver."
        data_type: varchar
        data_tests: [not_null]
"""

DECLARATION = """\
version: 2

exposures:
  - name: customerio_vip_tier
    label: Customer.io people <- VIP tier
    type: application
    owner:
      name: Growth team
    depends_on:
      - ref('sync_customerio__vip_people')
    description: The VIP tier of every high-value customer, as a Customer.io attribute.
    meta:
      sync:
        destination: customerio
        object: people
        mode: upsert
        primary_key: customerio_id
        match_field: id
        mappings:
          - {column: customerio_id, field: id}
          - {column: email, field: email}
          - {column: vip_tier, field: vip_tier, null_policy: clear}
          - {column: lifetime_value, field: lifetime_value, null_policy: clear}
"""

# The upstream model's table, as the hourly dbt build leaves it (written directly: one dbt build, not all).
PEOPLE_COLUMNS = {"customerio_id": "varchar", "customer_id": "varchar", "email": "varchar", "first_name": "varchar",
                  "last_name": "varchar", "is_high_value": "boolean", "lead_qualified": "boolean",
                  "customer_type": "varchar", "lifetime_value": "decimal(18,2)",
                  "coupon_usage_rate": "decimal(18,4)", "orders_last_365d": "bigint", "last_seen_date": "date"}
PEOPLE = [{"customerio_id": f"u_{i:05d}", "customer_id": f"c{i:05d}", "email": f"person{i}@shop.test",
           "first_name": f"P{i}", "last_name": "Test", "is_high_value": i % 2 == 0, "lead_qualified": None,
           "customer_type": "retail", "lifetime_value": Decimal(f"{200 + 100 * i}.50"),
           "coupon_usage_rate": Decimal("0.2500"), "orders_last_365d": 6, "last_seen_date": dt.date(2026, 11, 1)}
          for i in range(6)]


def write_people(warehouse: Path) -> None:
    """Replace activation.sync_customerio__people with PEOPLE."""
    with duckdb.connect(str(warehouse)) as con:
        con.execute("create schema if not exists activation")
        con.execute("create or replace table activation.sync_customerio__people "
                    f"({', '.join(f'{c} {t}' for c, t in PEOPLE_COLUMNS.items())})")
        con.executemany(f"insert into activation.sync_customerio__people values "
                        f"({', '.join('?' * len(PEOPLE_COLUMNS))})", [[p[c] for c in PEOPLE_COLUMNS] for p in PEOPLE])


def run(name: str, args: list[str], env: dict[str, str], timeout: float = 400) -> subprocess.CompletedProcess:
    """Run a command as the analyst would; its output is kept in `<GROWTH_STACK_HOME>/<name>.log`. It runs in
    GROWTH_STACK_HOME, away from a `.env` that `make demo` may have left in the repository root."""
    started = time.monotonic()
    result = subprocess.run(args, env={**os.environ, **env}, cwd=env["GROWTH_STACK_HOME"], capture_output=True,
                            text=True, timeout=timeout)
    took = time.monotonic() - started
    print(f"{name}: {took:.1f} s")
    log = Path(env["GROWTH_STACK_HOME"]) / f"{name}.log"
    log.write_text(f"{' '.join(args)}\n{took:.1f} s\n{result.stdout}\n{result.stderr}")
    assert result.returncode == 0, f"{' '.join(args)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-5000:]}"
    return result


def customerio_person(sandbox_url: str, customerio_id: str) -> dict | None:
    """The person's attributes through Customer.io's App API (the sandbox's), or None."""
    r = requests.get(f"{sandbox_url}/customerio/v1/customers/{customerio_id}/attributes",
                     headers={"Authorization": f"Bearer {config.DEFAULT_SANDBOX_TOKEN}"}, timeout=10)
    if r.status_code == 404:
        return None
    r.raise_for_status()
    return r.json()["customer"]["attributes"]


@pytest.fixture
def project_copy(tmp_path: Path) -> Path:
    """A copy of the repository's dbt project: the analyst's files go there, never into the repository."""
    copy = tmp_path / "dbt_project"
    shutil.copytree(config.dbt_project_dir(), copy, ignore=shutil.ignore_patterns("logs", "run", "compiled"))
    return copy


def test_an_analyst_adds_a_model_and_its_sync_and_dagster_runs_both(
        project_copy: Path, gs_home: Path, sandbox_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    (project_copy / "models" / "activation" / "sync_customerio__vip_people.sql").write_text(MODEL_SQL)
    (project_copy / "models" / "activation" / "_sync_customerio__vip_people.yml").write_text(MODEL_YAML)
    (project_copy / "models" / "activation" / "syncs" / "customerio_vip_tier.yml").write_text(DECLARATION)
    dagster_home = gs_home / "dagster_home"
    dagster_home.mkdir()
    env = {"GROWTH_STACK_HOME": str(gs_home), "GROWTH_STACK_SANDBOX_URL": sandbox_url,
           "GROWTH_STACK_DBT_PROJECT_DIR": str(project_copy), "DAGSTER_HOME": str(dagster_home)}

    # `make dbt-parse`, on the copy
    run("dbt-parse", [DBT, "parse", "--quiet", "--project-dir", str(project_copy),
                      "--profiles-dir", str(project_copy)], env)
    manifest = json.loads((project_copy / "target" / "manifest.json").read_text())
    syncs = declarations.load_syncs(manifest)
    assert syncs["customerio_vip_tier"].model == "sync_customerio__vip_people"
    # the scorecard is a dashboard exposure in dbt's lineage, not a sync
    scorecard = manifest["exposures"]["exposure.growth_stack.executive_scorecard"]
    assert scorecard["type"] == "dashboard"
    assert {"model.growth_stack.exec_daily_metrics", "model.growth_stack.coupon_usage_by_segment",
            "model.growth_stack.campaign_performance",
            "model.growth_stack.customer_traits"} <= set(scorecard["depends_on"]["nodes"])
    assert "executive_scorecard" not in syncs

    # The code location as Dagster loads it (a reload in the UI does the same): the sync and, one step
    # upstream of it, the new model.
    listed = run("dagster-asset-list", [DAGSTER, "asset", "list", "-m", "growth_stack_dagster.definitions",
                                        "--select", f'1+key:"{SYNC_KEY}"'], env).stdout.split()
    assert sorted(listed) == [MODEL_KEY, SYNC_KEY]

    # Materialize the model (one dbt build, with its data tests) and then the sync, in one run.
    write_people(gs_home / "warehouse.duckdb")
    run("dagster-asset-materialize", [DAGSTER, "asset", "materialize", "-m", "growth_stack_dagster.definitions",
                                      "--select", f'key:"{MODEL_KEY}" or key:"{SYNC_KEY}"'], env)

    # what the UI shows: both materialized in one run, the model's dbt tests and the sync's checks passed
    monkeypatch.setenv("DAGSTER_HOME", str(dagster_home))
    with dg.DagsterInstance.get() as instance:
        (run_record,) = instance.get_run_records()
        assert run_record.dagster_run.status == dg.DagsterRunStatus.SUCCESS
        assert instance.get_latest_materialization_event(dg.AssetKey.from_user_string(MODEL_KEY)) is not None
        synced = instance.get_latest_materialization_event(dg.AssetKey.from_user_string(SYNC_KEY))
        metadata = {k: v.value for k, v in synced.asset_materialization.metadata.items()}
        assert (metadata["rows_added"], metadata["rows_sent"], metadata["rows_rejected"]) == (3, 3, 0)
        checks = {e.dagster_event.event_specific_data.check_name: e.dagster_event.event_specific_data.passed
                  for e in instance.all_logs(run_record.dagster_run.run_id,
                                             of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION)}
    assert checks == {"unique_sync_customerio__vip_people_customerio_id": True,
                      "not_null_sync_customerio__vip_people_customerio_id": True,
                      "not_null_sync_customerio__vip_people_vip_tier": True,
                      "rejection_rate": True, "not_stale": True}

    with duckdb.connect(str(gs_home / "warehouse.duckdb"), read_only=True) as con:
        built = con.execute("select customerio_id, vip_tier from activation.sync_customerio__vip_people "
                            "order by customerio_id").fetchall()
    assert built == [("u_00000", "silver"), ("u_00002", "silver"), ("u_00004", "gold")]
    for person in PEOPLE:
        got = customerio_person(sandbox_url, person["customerio_id"])
        if not person["is_high_value"]:
            assert got is None, f"{person['customerio_id']} is not high-value but was sent: {got}"
            continue
        assert got is not None, f"{person['customerio_id']} was not sent to Customer.io"
        assert got["email"] == person["email"]
        assert got["vip_tier"] == ("gold" if person["lifetime_value"] >= 500 else "silver")
        assert Decimal(got["lifetime_value"]) == person["lifetime_value"]
