"""End to end: `growth-stack simulate` fills a sandbox subprocess and the event files, the real
loaders (capture `load_partition`, the dlt sources) fill `warehouse.duckdb`, dbt builds
`+customer_traits+` as of the simulation's date, and `is_high_value` must equal the simulator's
ground truth exactly, person by person."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from tests.dbt_marts import company
from tests.servers import CLI, REPO, run_server

AS_OF = "2026-03-02"
API_SOURCES = ("hubspot", "stripe", "zendesk", "finance")
_LOAD = ("import sys; from growth_stack_dagster.ingest.pipelines import load_source; "
         "[load_source(name) for name in sys.argv[1:]]")

# Part of `make test`: the end-to-end check that computed traits equal the generator's truth.
pytestmark = [pytest.mark.timeout(1800)]


def _run(args: list[str], env: dict[str, str]) -> None:
    result = subprocess.run(args, env=env, cwd=REPO, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, f"{args[:4]} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"


@pytest.fixture(scope="module")
def simulated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("gs_sim")
    env = {"GROWTH_STACK_HOME": str(home), "GROWTH_STACK_SANDBOX_RATE_LIMIT_SCALE": "1000",
           "GROWTH_STACK_SANDBOX_ZENDESK_EXPORT_DELAY": "0", "GROWTH_STACK_SANDBOX_WEBHOOK_URL": ""}
    with run_server("sandbox", "/_admin/health", env, log_path=home / "sandbox.log") as (sandbox, _):
        full_env = {**os.environ, **env, "GROWTH_STACK_SANDBOX_URL": sandbox}
        _run([*CLI, "simulate", "--customers", "300", "--days", "120", "--seed", "11", "--as-of", AS_OF,
              "--sandbox-url", sandbox, "--no-collector"], full_env)
        _run([sys.executable, "-c", _LOAD, *API_SOURCES], full_env)
    company.load_events(home)
    result = company.dbt_build(home, "+customer_traits+", AS_OF, home)
    assert result.returncode == 0, result.stdout[-6000:]
    return home


def test_is_high_value_equals_the_simulator_ground_truth(simulated: Path):
    truth = [json.loads(line) for line in (simulated / "simulation" / "ground_truth.jsonl").read_text().splitlines()]
    with duckdb.connect(str(simulated / "warehouse.duckdb"), read_only=True) as con:
        customer_of = {(t, v): c for t, v, c in con.execute(
            "select identifier_type, identifier_value, customer_id from marts.customer_identifiers").fetchall()}
        traits = dict(con.execute("select customer_id, is_high_value from marts.customer_traits").fetchall())
    expected, actual_by_person = set(), {}
    for person in truth:
        ids = person["identifiers"]
        keys = [("anonymous_id", a) for a in ids["anonymous_id"]] + [("email", e.strip().lower()) for e in ids["email"]]
        keys += [("stripe_customer_id", s) for s in ids["stripe_customer_id"]]
        keys += [(t, str(ids[t])) for t in ("user_id", "hubspot_contact_id", "zendesk_user_id",
                                            "customerio_id") if ids[t] is not None]
        customers = {customer_of[k] for k in keys if k in customer_of}
        if person["is_high_value"]:
            expected.add(person["person_key"])
            assert len(customers) == 1, f"{person['person_key']} (high-value) is {len(customers)} customers"
        actual_by_person[person["person_key"]] = any(traits.get(c) for c in customers)
    actual = {p for p, hv in actual_by_person.items() if hv}
    assert expected, "the simulation has no high-value person: the comparison would prove nothing"
    assert actual == expected, f"missing {sorted(expected - actual)}, extra {sorted(actual - expected)}"
