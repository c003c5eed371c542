"""HubSpot without re-reading everything (issue 10 §4): the CRM search by last-modified date in
windows that never reach its 10,000-result cap, ties at a window's edge neither lost nor repeated,
archived objects from the archived listing, and a full reload on demand, against the sandbox."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
from typing import Any

import dagster as dg
import duckdb
import pyarrow as pa
import pytest
import requests
from dagster_dlt import DagsterDltResource

from tests.ingest.conftest import auth, load, table_count, warehouse
from tests.ingest.requests_log import logged_requests
from tests.ingest.seed import seed
from tests.servers import CLI, REPO

T0 = dt.datetime(2026, 3, 1, tzinfo=dt.timezone.utc)


def _iso(t: dt.datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def _ms(t: dt.datetime) -> int:
    return int(t.timestamp() * 1000)


def _contact(i: int, updated: dt.datetime) -> dict[str, Any]:
    return {"id": str(50_000 + i), "properties": {"email": f"c{i}@example.com", "firstname": f"F{i}"},
            "createdAt": _iso(T0 - dt.timedelta(days=30)), "updatedAt": _iso(updated), "archived": False}


def test_search_windows_return_every_change_once_past_the_cap_and_across_ties(sandbox: str) -> None:
    from growth_stack_dagster.ingest.sources.hubspot import LAST_MODIFIED, search_modified_between

    since, until = T0, T0 + dt.timedelta(hours=1)
    contacts = [_contact(i, since - dt.timedelta(seconds=1 + i)) for i in range(5)]  # before the window
    contacts.append(_contact(5, until + dt.timedelta(milliseconds=1)))  # after it
    expected: list[tuple[int, str]] = []
    # 450 objects at the window's first instant (more than a page of 200), then 10,300 in threes
    # per instant, so page edges fall inside ties
    for i in range(450):
        contacts.append(_contact(100 + i, since))
        expected.append((_ms(since), contacts[-1]["id"]))
    for i in range(10_300):
        t = since + dt.timedelta(milliseconds=10 + i // 3)
        contacts.append(_contact(1000 + i, t))
        expected.append((_ms(t), contacts[-1]["id"]))
    # 250 objects sharing one instant in the middle of the window
    middle = since + dt.timedelta(minutes=30)
    for i in range(250):
        contacts.append(_contact(20_000 + i, middle))
        expected.append((_ms(middle), contacts[-1]["id"]))
    seed(sandbox, "hubspot", "contacts", contacts)

    url = f"{sandbox}/hubspot/crm/v3/objects/contacts/search"
    bodies: list[dict[str, Any]] = []

    def search(body: dict[str, Any]) -> dict[str, Any]:
        bodies.append(body)
        r = requests.post(url, json=body, headers=auth(), timeout=60)
        assert r.status_code == 200, r.text
        return r.json()

    found = [o for page in search_modified_between(search, "contacts", _ms(since), _ms(until), ["email"])
             for o in page]
    ids = [o["id"] for o in found]
    assert len(ids) == len(set(ids)) == len(expected)  # nothing twice, nothing lost
    assert set(ids) == {i for _, i in expected}
    stamps = [_ms(dt.datetime.fromisoformat(o["properties"][LAST_MODIFIED["contacts"]].replace("Z", "+00:00")))
              for o in found]
    assert stamps == sorted(stamps)  # ascending by last-modified time
    # one request per page plus the re-read edges; each window asks for its first page only
    assert len(bodies) <= len(expected) // 200 + 12
    assert all("after" not in b for b in bodies)
    # the same set read with offset paging (`after`) stops at HubSpot's cap with a 400
    first = bodies[0]
    capped = requests.post(url, json={**first, "after": "10000"}, headers=auth(), timeout=60)
    assert capped.status_code == 400 and capped.json()["category"] == "VALIDATION_ERROR"


HISTORY = "deals__properties_with_history__dealstage"


def _snapshot(tables: list[str]) -> dict[str, pa.Table]:
    """The tables without dlt's per-load ids (a child row is tied to its parent by the parent's id)."""
    queries = {t: f"select * exclude (_dlt_load_id, _dlt_id) from hubspot.{t}" for t in tables}
    queries[HISTORY] = (f"select d.id as deal_id, h.* exclude (_dlt_id, _dlt_parent_id, _dlt_root_id) "
                        f"from hubspot.{HISTORY} h join hubspot.deals d on h._dlt_parent_id = d._dlt_id")
    with warehouse() as con:
        return {t: con.execute(queries[t]).to_arrow_table() for t in tables}


def _differences(a: pa.Table, b: pa.Table) -> int:
    con = duckdb.connect()
    con.register("a", a)
    con.register("b", b)
    return con.execute("select (select count(*) from (select * from a except all select * from b)) + "
                       "(select count(*) from (select * from b except all select * from a))").fetchone()[0]


OBJECT_TABLES = ["contacts", "companies", "deals", "calls"]
ASSOCIATION_TABLES = ["contact_company_associations", "deal_contact_associations", "call_contact_associations"]


def test_an_hourly_run_reads_only_what_changed_and_equals_a_full_reload(seeded: dict[str, Any], sandbox: str) -> None:
    load("hubspot")
    hubspot = f"{sandbox}/hubspot"
    patched = ["1003", "1010"]
    for contact in patched:
        r = requests.patch(f"{hubspot}/crm/v3/objects/contacts/{contact}", headers=auth(),
                           json={"properties": {"lastname": "Changed"}})
        assert r.status_code == 200, r.text
    assert requests.delete(f"{hubspot}/crm/v3/objects/contacts/1004", headers=auth()).status_code == 204
    r = requests.post(f"{hubspot}/crm/v3/objects/contacts", headers=auth(),
                      json={"properties": {"email": "brand.new@example.com"},
                            "associations": [{"to": {"id": "2001"}, "types": [
                                {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 279}]}]})
    assert r.status_code == 201, r.text
    new_contact = r.json()["id"]
    r = requests.patch(f"{hubspot}/crm/v3/objects/deals/3002", headers=auth(),
                       json={"properties": {"dealstage": "closedlost"}})
    assert r.status_code == 200, r.text

    with logged_requests() as log:
        rows = load("hubspot")
    assert rows["contacts"] == len(patched) + 2  # the two changed, the archived and the new one
    # the deal whose stage changed (3 history entries) and the records associated with the archived
    # contact, whose association counts HubSpot recalculated: deal 3004 (2 entries), company 2004, call 4004
    assert rows["deals"] == 2 and rows["deals__properties_with_history__dealstage"] == 3 + 2
    assert rows["companies"] == 1 and rows["calls"] == 1
    assert {"deal_contact_associations", "call_contact_associations"} <= set(rows)
    # search, not a listing of every live object; the archived listing is read
    live_lists = [(p, q) for m, p, q, _ in log.requests
                  if m == "GET" and p.startswith("/hubspot/crm/v3/objects/") and q.get("archived") != ["true"]]
    assert live_lists == []
    for object_type in OBJECT_TABLES:
        assert log.count(f"/hubspot/crm/v3/objects/{object_type}/search", "POST") >= 1
    assert log.count("/hubspot/crm/v3/objects/deals/batch/read", "POST") == 1  # stage history of the change
    assert log.count("/hubspot/") <= 24
    with warehouse() as con:
        assert con.execute(f"select properties__email from hubspot.contacts where id = '{new_contact}'"
                           ).fetchone() == ("brand.new@example.com",)
        assert con.execute("select archived from hubspot.contacts where id = '1004'").fetchone() == (True,)
        assert con.execute(f"select company_id from hubspot.contact_company_associations "
                           f"where contact_id = '{new_contact}'").fetchall() == [("2001",)]
        # HubSpot dropped the archived contact's associations, and so does the warehouse
        assert con.execute("select count(*) from hubspot.contact_company_associations "
                           "where contact_id = '1004'").fetchone() == (0,)
        assert con.execute("select count(*) from hubspot.contact_company_associations "
                           "where contact_id in ('1003', '1010')").fetchone() == (2,)

    incremental = _snapshot([*OBJECT_TABLES, HISTORY, *ASSOCIATION_TABLES])
    with logged_requests() as log:
        load("hubspot", full_reload=True)
    assert log.count("/hubspot/crm/v3/objects/contacts", "GET") >= 2  # listed again, live and archived
    full = _snapshot(list(incremental))
    for table in incremental:
        assert incremental[table].num_rows == full[table].num_rows > 0, table
        assert _differences(incremental[table], full[table]) == 0, table


def _add_stale_contact() -> None:
    """A row HubSpot no longer has (say, deleted for GDPR): only a full reload removes it."""
    from growth_stack_dagster import config

    with duckdb.connect(str(config.warehouse_path())) as con:
        con.execute("insert into hubspot.contacts (id, archived, _dlt_load_id, _dlt_id) "
                    "values ('999999', false, 'x', 'stale-row')")


def _stale_rows() -> int:
    with warehouse() as con:
        return con.execute("select count(*) from hubspot.contacts where id = '999999'").fetchone()[0]


def test_a_full_reload_on_demand_from_the_environment_the_cli_and_the_run_config(
        seeded: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    from growth_stack_dagster.ingest.assets import hubspot_assets

    contacts = len(seeded["hubspot"]["contacts"])
    load("hubspot")
    _add_stale_contact()
    assert load("hubspot") == {} and _stale_rows() == 1  # an incremental run keeps it

    monkeypatch.setenv("GROWTH_STACK_FULL_RELOAD", "stripe,hubspot")
    assert load("hubspot")["contacts"] == contacts and _stale_rows() == 0
    monkeypatch.delenv("GROWTH_STACK_FULL_RELOAD")

    _add_stale_contact()
    out = subprocess.run([*CLI, "ingest", "hubspot", "--full-reload"], cwd=REPO, capture_output=True, text=True,
                         env={**os.environ}, timeout=300)
    assert out.returncode == 0, out.stderr
    assert f"hubspot (full reload): " in out.stdout and f"contacts {contacts}" in out.stdout
    assert _stale_rows() == 0 and table_count("hubspot", "contacts") == contacts
    out = subprocess.run([*CLI, "ingest", "hubspot"], cwd=REPO, capture_output=True, text=True,
                         env={**os.environ}, timeout=300)
    assert out.returncode == 0 and "hubspot (incremental): nothing new" in out.stdout, out.stdout + out.stderr

    _add_stale_contact()
    selection = dg.AssetSelection.assets(["hubspot", "contacts"])
    result = dg.materialize([hubspot_assets], resources={"dlt": DagsterDltResource()}, selection=selection,
                            run_config={"ops": {"hubspot_raw": {"config": {"full_reload": True}}}})
    assert result.success
    [event] = result.get_asset_materialization_events()
    metadata = event.event_specific_data.materialization.metadata
    assert metadata["full_reload"].value is True and metadata["rows_loaded"].value == contacts
    assert _stale_rows() == 0 and table_count("hubspot", "contacts") == contacts


@pytest.fixture
def published_limits_sandbox(real_limits_env, sandbox_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A sandbox with HubSpot's published limits: 100 requests per 10 s, and 5 per second for search."""
    monkeypatch.setenv("GROWTH_STACK_SANDBOX_URL", sandbox_url)
    return sandbox_url


def test_many_changes_under_the_published_search_limit_load_once_each(published_limits_sandbox: str) -> None:
    n = 1200
    seed(published_limits_sandbox, "hubspot", "contacts", [_contact(i, T0) for i in range(n)])
    load("hubspot")
    # every contact changes after the first run, in pairs sharing a millisecond
    seed(published_limits_sandbox, "hubspot", "contacts",
         [_contact(i, T0 + dt.timedelta(minutes=5, milliseconds=i // 2)) for i in range(n)])
    with logged_requests() as log:
        rows = load("hubspot")
    searches = [s for m, p, _, s in log.requests if p.endswith("/contacts/search")]
    assert rows["contacts"] == n and table_count("hubspot", "contacts") == n
    assert searches.count(200) >= n // 200  # six pages at least; any 429 (5 per second) was waited out
    assert set(searches) <= {200, 429}
    with warehouse() as con:
        assert con.execute("select count(*) from hubspot.contacts where updated_at > '2026-03-01 00:01:00+00'"
                           ).fetchone() == (n,)
