"""End to end on the hand-made example company: dbt builds the traits and the sync models into a real
DuckDB file, the Dagster sync asset pushes them to the sandbox's HubSpot, and the `is_high_value`
computed in the warehouse is read back on the contact with the official hubspot-api-client."""

from __future__ import annotations

import dagster as dg
import duckdb
import pytest
from hubspot import HubSpot

from tests.activation.helpers import write_counts
from tests.dbt_marts import company
from tests.servers import run_server

# A full dbt build of the traits and sync models (about 70 s on 2 cores): in `make test-slow`.
pytestmark = [pytest.mark.timeout(900), pytest.mark.slow]
KEY = dg.AssetKey(["destinations", "hubspot", "contacts", "hubspot_contacts_traits"])


@pytest.fixture(scope="module")
def built_company(tmp_path_factory):
    home = tmp_path_factory.mktemp("gs_activate")
    company.write_events(home / "events")
    company.load_events(home)
    company.create_api_tables(home / "warehouse.duckdb")
    result = company.dbt_build(home, "+sync_hubspot__contacts +sync_hubspot__companies", company.AS_OF, home)
    assert result.returncode == 0, result.stdout[-6000:]
    return home


def _materialize(run_config: dict | None = None) -> dg.ExecuteInProcessResult:
    from growth_stack_dagster.definitions import defs

    job = defs.resolve_implicit_global_asset_job_def()
    return job.execute_in_process(asset_selection=[KEY], instance=dg.DagsterInstance.ephemeral(),
                                  run_config=run_config or {}, raise_on_error=False)


def test_is_high_value_reaches_the_hubspot_contact(built_company, monkeypatch):
    home = built_company
    monkeypatch.setenv("GROWTH_STACK_HOME", str(home))
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as con:
        model = dict(con.execute("select email, is_high_value from activation.sync_hubspot__contacts").fetchall())
    assert model["ann@shop.io"] is True and model["bob@shop.io"] is False

    with run_server("sandbox", "/_admin/health", {"GROWTH_STACK_HOME": str(home)},
                    log_path=home / "sandbox.log") as (sandbox, _):
        monkeypatch.setenv("GROWTH_STACK_SANDBOX_URL", sandbox)
        op = "destinations__hubspot__contacts__hubspot_contacts_traits"
        dry = _materialize({"ops": {op: {"config": {"dry_run": True}}}})
        assert dry.success
        assert not dry.get_asset_materialization_events()
        [observation] = dry.get_asset_observation_events()
        assert observation.asset_observation_data.asset_observation.metadata["to_upsert"].value == len(model)
        assert write_counts(sandbox)["writes"] == {}

        run = _materialize()
        assert run.success
        [materialization] = run.get_asset_materialization_events()
        metadata = {k: v.value for k, v in materialization.materialization.metadata.items()}
        assert (metadata["rows_added"], metadata["rows_rejected"], metadata["rejection_rate"]) == (len(model), 0, 0)
        # never a personal record in the metadata
        assert not any("@" in str(v) for v in metadata.values())
        checks = {e.check_name: e.passed
                  for e in run.get_asset_check_evaluations()}
        assert checks == {"rejection_rate": True, "not_stale": True}

        client = HubSpot(access_token="sk_test_sandbox", host=f"{sandbox}/hubspot")
        for email, high in model.items():
            contact = client.crm.contacts.basic_api.get_by_id(email, id_property="email",
                                                               properties=["gs_is_high_value", "email"])
            assert contact.properties["gs_is_high_value"] == ("true" if high else "false"), email

        again = _materialize()
        [materialization] = again.get_asset_materialization_events()
        assert materialization.materialization.metadata["rows_sent"].value == 0
