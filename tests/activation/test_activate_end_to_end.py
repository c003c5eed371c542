"""End to end on the hand-made example company: dbt builds the traits and the Customer.io, Amplitude,
Zendesk and Facebook sync models into a real DuckDB file, the engine runs their declared syncs against
the sandbox, and the `is_high_value` computed in the warehouse is read back on the Customer.io person,
the Amplitude user and the Zendesk user; the audience holds exactly the hashed emails of the high-value
customers."""

from __future__ import annotations

import duckdb
import pytest
import requests

from growth_stack_dagster.activation import engine
from tests.activation.destination_cases import CASES, ZENDESK_AUTH, fb_audience, sha, writes, zendesk_user
from tests.dbt_marts import company
from tests.servers import run_server

pytestmark = pytest.mark.timeout(900)
SYNCS = ("customerio_people_traits", "amplitude_user_traits", "zendesk_users_traits", "facebook_high_value_audience")


def test_is_high_value_reaches_customerio_amplitude_zendesk_and_the_audience(activated_company, monkeypatch):
    home = activated_company
    monkeypatch.setenv("GROWTH_STACK_HOME", str(home))
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as con:
        cio = dict(con.execute("select customerio_id, is_high_value from activation.sync_customerio__people").fetchall())
        zd = {r[0]: r[1:] for r in con.execute(
            "select customer_id, zendesk_user_id, external_id, email, is_high_value, account_manager_name "
            "from activation.sync_zendesk__users").fetchall()}
        high_emails = [e for (e,) in con.execute(
            "select lower(trim(i.identifier_value)) from marts.customer_identifiers i join marts.customer_traits t "
            "using (customer_id) where i.identifier_type = 'email' and t.is_high_value").fetchall()]
    # the example company: Ann (u_1001) is high-value, Bob (u_1002) misses by a cent; one person per customer
    identified = {p["user_id"] for p in company.PEOPLE.values() if p.get("user_id")}
    assert set(cio) == identified and cio["u_1001"] is True and cio["u_1002"] is False
    assert "ann@shop.io" in high_emails and "bob@shop.io" not in high_emails
    ann = next(v for v in zd.values() if v[2] == "ann@shop.io")
    assert ann[0] == "9001" and ann[3] is True and ann[4] == "Olivia Owner"  # her Zendesk user, her account manager

    # limits x10: reading every person back through Customer.io's App API (10/s) never waits
    with run_server("sandbox", "/_admin/health", {"GROWTH_STACK_HOME": str(home),
                                                  "GROWTH_STACK_SANDBOX_RATE_LIMIT_SCALE": "10",
                                                  "GROWTH_STACK_SANDBOX_ZENDESK_JOB_SECONDS": "0.1"},
                    log_path=home / "sandbox.log") as (sandbox, _):
        monkeypatch.setenv("GROWTH_STACK_SANDBOX_URL", sandbox)
        requests.post(f"{sandbox}/_admin/reset", timeout=10).raise_for_status()  # the home is shared by the session
        # Ann's Zendesk user exists in Zendesk (the warehouse loaded it from there)
        requests.post(f"{sandbox}/_admin/seed/zendesk/users", timeout=10, json=[
            {"id": 9001, "name": "Ann Zendesk", "email": "ann@shop.io"}]).raise_for_status()
        results = {name: engine.run_sync(name) for name in SYNCS}
        assert {n: (r.status, r.rejected) for n, r in results.items()} == dict.fromkeys(SYNCS, ("success", 0))

        for user_id, high in cio.items():
            assert CASES["customerio"].holds(CASES["customerio"].read(sandbox, user_id), high), user_id
            assert CASES["amplitude"].holds(CASES["amplitude"].read(sandbox, user_id), high), user_id
            user = zendesk_user(sandbox, user_id)
            assert user is not None and user["user_fields"]["is_high_value"] is high, user_id
        ann_user = requests.get(f"{sandbox}/zendesk/api/v2/users/9001.json", auth=ZENDESK_AUTH, timeout=10).json()["user"]
        assert ann_user["external_id"] == "u_1001" and ann_user["user_fields"]["is_high_value"] is True
        assert ann_user["user_fields"]["account_manager"] == "Olivia Owner"
        audience = fb_audience(sandbox)
        members = {m["key"] for m in requests.get(f"{sandbox}/facebook/_sandbox/customaudiences/{audience}/users",
                                                  timeout=10).json()["data"]}
        assert members == {sha(e) for e in high_emails}

        assert {n: engine.run_sync(n).sent for n in SYNCS} == dict.fromkeys(SYNCS, 0)
        assert set(writes(sandbox, "customerio", "customers").values()) == {1}
