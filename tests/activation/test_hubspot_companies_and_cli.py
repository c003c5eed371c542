"""The companies sync (upsert by a unique company property the sync creates; companies HubSpot already
holds are updated by their id, never duplicated) and the `growth-stack sync` command line."""

from __future__ import annotations

import json
import os
import subprocess
from decimal import Decimal

import requests

from growth_stack_dagster.activation import engine
from tests.activation.helpers import contact_row, write_companies, write_contacts
from tests.servers import CLI, REPO

TOKEN = {"Authorization": "Bearer sk_test_sandbox"}
PROPS = "domain,name,gs_company_domain,gs_customer_count,gs_high_value_customers,gs_lifetime_value"


def companies(url: str) -> list[dict]:
    r = requests.get(f"{url}/hubspot/crm/v3/objects/companies", params={"limit": 100, "properties": PROPS},
                     headers=TOKEN, timeout=10)
    r.raise_for_status()
    return [{**c["properties"], "id": c["id"]} for c in r.json()["results"]]


def test_companies_are_updated_by_id_or_upserted_by_their_unique_domain(sandbox_url, gs_home, monkeypatch):
    monkeypatch.setenv("GROWTH_STACK_SANDBOX_URL", sandbox_url)
    existing = requests.post(f"{sandbox_url}/hubspot/crm/v3/objects/companies", headers=TOKEN, timeout=10,
                             json={"properties": {"name": "Acme", "domain": "acme.test"}}).json()
    rows = [
        {"company_domain": "acme.test", "hubspot_company_id": existing["id"], "company_name": "Acme",
         "customer_count": 3, "high_value_customer_count": 1, "lifetime_value": Decimal("250.50")},
        {"company_domain": "globex.test", "hubspot_company_id": None, "company_name": "Globex",
         "customer_count": 1, "high_value_customer_count": 0, "lifetime_value": Decimal("20.00")},
    ]
    write_companies(rows)
    result = engine.run_sync("hubspot_companies_rollup")
    assert (result.accepted, result.rejected) == (2, 0)
    prop = requests.get(f"{sandbox_url}/hubspot/crm/v3/properties/companies/gs_company_domain", headers=TOKEN,
                        timeout=10).json()
    assert prop["hasUniqueValue"] is True
    by_domain = {c["gs_company_domain"]: c for c in companies(sandbox_url)}
    assert len(companies(sandbox_url)) == 2
    assert by_domain["acme.test"]["id"] == existing["id"]
    assert (by_domain["acme.test"]["gs_customer_count"], by_domain["acme.test"]["gs_lifetime_value"]) == ("3", "250.5")
    assert by_domain["globex.test"]["gs_high_value_customers"] == "0"

    rows[1]["customer_count"] = 2
    write_companies(rows)
    again = engine.run_sync("hubspot_companies_rollup")
    assert (again.sent, again.counts["unchanged"]) == (1, 1)
    assert len(companies(sandbox_url)) == 2
    assert {c["gs_company_domain"]: c["gs_customer_count"] for c in companies(sandbox_url)}["globex.test"] == "2"


def _cli(*args: str, home, sandbox_url: str, input: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "GROWTH_STACK_HOME": str(home), "GROWTH_STACK_SANDBOX_URL": sandbox_url}
    return subprocess.run([*CLI, "sync", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=120,
                          input=input)


def test_the_command_line_lists_plans_runs_and_resets(sandbox_url, gs_home):
    rows = [contact_row(i) for i in range(12)]
    write_contacts(rows, gs_home / "warehouse.duckdb")
    listing = _cli("list", home=gs_home, sandbox_url=sandbox_url)
    assert listing.returncode == 0 and "hubspot_contacts_traits" in listing.stdout

    plan = _cli("plan", "hubspot_contacts_traits", "--json", "--sample", "1", home=gs_home, sandbox_url=sandbox_url)
    assert plan.returncode == 0, plan.stderr
    body = json.loads(plan.stdout)
    assert body["counts"]["added"] == 12 and body["operations"] == {"upsert": 12}
    assert body["samples"][0]["request"][0]["body"]["inputs"][0]["idProperty"] == "email"

    run = _cli("run", "hubspot_contacts_traits", home=gs_home, sandbox_url=sandbox_url)
    assert run.returncode == 0, run.stderr
    assert "sent 12, accepted 12, rejected 0" in run.stdout
    assert "0 to send" in _cli("run", "hubspot_contacts_traits", home=gs_home, sandbox_url=sandbox_url).stdout

    reset = _cli("reset", "hubspot_contacts_traits", "--yes", home=gs_home, sandbox_url=sandbox_url)
    assert reset.returncode == 0 and "12 records will be sent again" in reset.stdout
    assert "sent 12" in _cli("run", "hubspot_contacts_traits", home=gs_home, sandbox_url=sandbox_url).stdout

    unknown = _cli("plan", "no_such_sync", home=gs_home, sandbox_url=sandbox_url)
    assert unknown.returncode != 0 and "No sync named 'no_such_sync'" in unknown.stderr


def test_an_unreachable_destination_stops_the_run_and_loses_nothing(gs_home, monkeypatch, sandbox_url):
    from tests.servers import free_port

    monkeypatch.setenv("GROWTH_STACK_SANDBOX_URL", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("ACTIVATION__RETRIES", "1")
    monkeypatch.setenv("ACTIVATION__BACKOFF_FACTOR", "0.01")
    write_contacts([contact_row(i) for i in range(3)])
    result = engine.run_sync("hubspot_contacts_traits")
    assert result.status == "stopped" and "Could not prepare hubspot contacts" in result.message
    monkeypatch.setenv("GROWTH_STACK_SANDBOX_URL", sandbox_url)
    assert engine.plan_sync("hubspot_contacts_traits").counts["added"] == 3
    assert engine.run_sync("hubspot_contacts_traits").accepted == 3
