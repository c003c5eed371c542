"""The HubSpot emulation driven through the official `hubspot-api-client` against a real sandbox process."""

from __future__ import annotations

import json
import math
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from hubspot import HubSpot
from hubspot.crm.associations.v4 import (
    BatchInputPublicFetchAssociationsBatchRequest, PublicFetchAssociationsBatchRequest,
)
from hubspot.crm.companies import SimplePublicObjectInputForCreate as CompanyCreate
from hubspot.crm.contacts import (
    BatchInputSimplePublicObjectBatchInputForCreate, BatchInputSimplePublicObjectBatchInputUpsert,
    BatchInputSimplePublicObjectId, BatchReadInputSimplePublicObjectId, Filter, FilterGroup, PublicObjectSearchRequest,
    SimplePublicObjectBatchInputForCreate, SimplePublicObjectBatchInputUpsert, SimplePublicObjectId,
    SimplePublicObjectInput, SimplePublicObjectInputForCreate,
)
from hubspot.crm.contacts.exceptions import ApiException
from hubspot.crm.deals import SimplePublicObjectInput as DealUpdate
from hubspot.crm.deals import SimplePublicObjectInputForCreate as DealCreate
from hubspot.crm.objects.calls import SimplePublicObjectInputForCreate as CallCreate
from hubspot.crm.properties import OptionInput, PropertyCreate
from urllib3.util.retry import Retry

from growth_stack_dagster.sandbox.core import Store
from tests.servers import run_server

TOKEN = "sk_test_sandbox"


def client(sandbox_url: str, token: str = TOKEN, retry: Retry | None = None) -> HubSpot:
    return HubSpot(access_token=token, host=f"{sandbox_url}/hubspot", retry=retry)


def api(sandbox_url: str, method: str, path: str, body=None, token: str = TOKEN, **params) -> requests.Response:
    return requests.request(method, f"{sandbox_url}/hubspot{path}", json=body, params=params,
                            headers={"Authorization": f"Bearer {token}"}, timeout=30)


def unlimited(request, timeout: float = 30.0) -> requests.Response:
    """The first answer to `request()` that is not a 429 (retried, honouring Retry-After, until a deadline)."""
    deadline = time.monotonic() + timeout
    while (r := request()).status_code == 429 and time.monotonic() < deadline:
        time.sleep(min(float(r.headers.get("Retry-After") or 0.2), 1.0))
    return r


def iso(ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms / 1000)) + f".{ms % 1000:03d}Z"


def seed(sandbox_url: str, collection: str, objects: list[dict]) -> int:
    r = requests.post(f"{sandbox_url}/_admin/seed/hubspot/{collection}", data=json.dumps(objects), timeout=60)
    r.raise_for_status()
    return r.json()["seeded"]


def test_contacts_create_upsert_and_read_back_custom_properties(sandbox_url: str) -> None:
    hs = client(sandbox_url)
    created = hs.crm.contacts.basic_api.create(SimplePublicObjectInputForCreate(properties={
        "email": "Ada@Example.com", "firstname": "Ada", "date_of_birth": "1990-05-01",
        "customer_type": "retail", "lead_qualified": "false"}))
    assert created.id.isdigit()
    assert created.properties["hs_object_id"] == created.id
    assert created.properties["createdate"] and created.properties["lastmodifieddate"]

    time.sleep(0.01)
    upserted = hs.crm.contacts.batch_api.upsert(BatchInputSimplePublicObjectBatchInputUpsert(inputs=[
        SimplePublicObjectBatchInputUpsert(id="ada@example.com", id_property="email",
                                           properties={"customer_type": "wholesale", "lead_qualified": "true"}),
        SimplePublicObjectBatchInputUpsert(id="bob@example.com", id_property="email",
                                           properties={"firstname": "Bob", "date_of_birth": "1985-12-31"}),
    ]))
    by_email = {r.properties["email"].lower(): r for r in upserted.results}
    assert by_email["ada@example.com"].new is False and by_email["ada@example.com"].id == created.id
    assert by_email["bob@example.com"].new is True

    ada = hs.crm.contacts.basic_api.get_by_id(
        created.id, properties=["email", "date_of_birth", "customer_type", "lead_qualified"],
        properties_with_history=["customer_type"])
    assert ada.properties["customer_type"] == "wholesale"
    assert ada.properties["lead_qualified"] == "true"
    assert ada.properties["date_of_birth"] == "1990-05-01"
    assert ada.updated_at > ada.created_at
    assert [h.value for h in ada.properties_with_history["customer_type"]] == ["wholesale", "retail"]

    bob = hs.crm.contacts.basic_api.get_by_id("BOB@example.com", id_property="email", properties=["firstname"])
    assert bob.properties["firstname"] == "Bob"

    read = hs.crm.contacts.batch_api.read(BatchReadInputSimplePublicObjectId(
        properties=["email"], properties_with_history=[],
        inputs=[SimplePublicObjectId(id=i) for i in (created.id, bob.id, "999999")]))
    assert sorted(r.id for r in read.results) == sorted([created.id, bob.id])
    assert read.errors[0].category == "OBJECT_NOT_FOUND" and read.errors[0].context["ids"] == ["999999"]

    # a second contact with the same email is HubSpot's 409 conflict
    with pytest.raises(ApiException) as conflict:
        hs.crm.contacts.basic_api.create(SimplePublicObjectInputForCreate(properties={"email": "ada@example.com"}))
    assert conflict.value.status == 409
    assert f"Existing ID: {created.id}" in json.loads(conflict.value.body)["message"]
    # in a batch create, one existing contact refuses the whole batch
    with pytest.raises(ApiException) as batch_conflict:
        hs.crm.contacts.batch_api.create(BatchInputSimplePublicObjectBatchInputForCreate(inputs=[
            SimplePublicObjectBatchInputForCreate(properties={"email": "carol@example.com"}),
            SimplePublicObjectBatchInputForCreate(properties={"email": "ADA@example.com"})]))
    assert batch_conflict.value.status == 409
    assert json.loads(batch_conflict.value.body)["category"] == "CONFLICT"
    with pytest.raises(ApiException):
        hs.crm.contacts.basic_api.get_by_id("carol@example.com", id_property="email")


def test_companies_deals_calls_and_associations(sandbox_url: str) -> None:
    hs = client(sandbox_url)
    contact = hs.crm.contacts.basic_api.create(SimplePublicObjectInputForCreate(properties={"email": "c@shop.io"}))
    company = hs.crm.companies.basic_api.create(CompanyCreate(properties={"name": "Shop", "domain": "shop.io"}))
    deal = hs.crm.deals.basic_api.create(DealCreate(properties={
        "dealname": "Big order", "amount": "1250.50", "pipeline": "default", "dealstage": "appointmentscheduled",
        "closedate": "2026-12-01T00:00:00Z"}))
    call = hs.crm.objects.calls.basic_api.create(CallCreate(properties={
        "hs_timestamp": "2026-11-01T10:00:00Z", "hs_call_title": "Intro", "hs_call_direction": "OUTBOUND"},
        associations=[{"to": {"id": contact.id}, "types": [
            {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 194}]}]))
    assert call.properties["hs_createdate"] and call.properties["hs_lastmodifieddate"]

    v4 = hs.crm.associations.v4.basic_api
    v4.create_default("contacts", contact.id, "companies", company.id)
    v4.create_default("deals", deal.id, "contacts", contact.id)
    v4.create("deals", deal.id, "companies", company.id,
              [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 5}])

    # stored both ways: the company sees the contact, the contact sees the deal and the call
    page = v4.get_page("companies", company.id, "contacts")
    assert [r.to_object_id for r in page.results] == [contact.id]
    assert page.results[0].association_types[0].type_id == 280
    batch = hs.crm.associations.v4.batch_api.get_page(
        "contacts", "deals",
        BatchInputPublicFetchAssociationsBatchRequest(inputs=[PublicFetchAssociationsBatchRequest(id=contact.id)]))
    assert [t.to_object_id for t in batch.results[0].to] == [deal.id]
    alone = hs.crm.companies.basic_api.create(CompanyCreate(properties={"name": "Alone"}))
    lonely = api(sandbox_url, "POST", "/crm/v4/associations/companies/deals/batch/read", {"inputs": [{"id": alone.id}]})
    assert lonely.status_code == 207 and lonely.json()["errors"][0]["category"] == "OBJECT_NOT_FOUND"
    read = hs.crm.contacts.basic_api.get_by_id(contact.id, associations=["companies", "deals", "calls"])
    assert {k: [r.id for r in v.results] for k, v in read.associations.items()} == {
        "companies": [company.id], "deals": [deal.id], "calls": [call.id]}
    deal_read = hs.crm.deals.basic_api.get_by_id(deal.id, associations=["companies"])
    assert {r.type for r in deal_read.associations["companies"].results} == {"deal_to_company"}

    # v3 association batch create/read
    other = hs.crm.companies.basic_api.create(CompanyCreate(properties={"name": "Other"}))
    r = api(sandbox_url, "POST", "/crm/v3/associations/contacts/companies/batch/create",
            {"inputs": [{"from": {"id": contact.id}, "to": {"id": other.id}, "type": "contact_to_company"}]})
    assert r.status_code == 201, r.text
    r = api(sandbox_url, "POST", "/crm/v3/associations/contacts/companies/batch/read", {"inputs": [{"id": contact.id}]})
    assert sorted(t["id"] for t in r.json()["results"][0]["to"]) == sorted([company.id, other.id])

    # dealstage history, newest first
    time.sleep(0.01)
    hs.crm.deals.basic_api.update(deal.id, DealUpdate(properties={"dealstage": "closedwon"}))
    history = hs.crm.deals.basic_api.get_by_id(deal.id, properties_with_history=["dealstage"])
    assert [h.value for h in history.properties_with_history["dealstage"]] == ["closedwon", "appointmentscheduled"]
    assert history.properties["amount"] == "1250.50"
    assert history.properties["closedate"] == "2026-12-01T00:00:00.000Z"


def test_pagination_across_more_than_100_seeded_records(sandbox_url: str) -> None:
    base_ms = 1_767_225_600_000  # 2026-01-01
    contacts = [{"id": str(5000 + i), "properties": {"email": f"u{i}@ex.com", "customer_type": "retail",
                                                      "createdate": iso(base_ms + i * 1000),
                                                      "lastmodifieddate": iso(base_ms + i * 2000)},
                 "createdAt": iso(base_ms + i * 1000), "updatedAt": iso(base_ms + i * 2000), "archived": False}
                for i in range(250)]
    assert seed(sandbox_url, "contacts", contacts) == 250
    hs = client(sandbox_url)
    seen, after, pages = [], None, 0
    while True:
        page = hs.crm.contacts.basic_api.get_page(limit=100, after=after, properties=["email", "customer_type"])
        pages += 1
        seen += [c.id for c in page.results]
        if not page.paging:
            break
        after = page.paging.next.after
        assert page.paging.next.link.startswith(f"{sandbox_url}/hubspot/crm/v3/objects/contacts?")
    assert pages == 3 and seen == [str(5000 + i) for i in range(250)]
    first = hs.crm.contacts.basic_api.get_by_id("5007")
    assert first.properties["createdate"] == iso(base_ms + 7000)
    assert first.updated_at.timestamp() * 1000 == base_ms + 14000
    # ids created afterwards never collide with seeded ones
    new = hs.crm.contacts.basic_api.create(SimplePublicObjectInputForCreate(properties={"email": "new@ex.com"}))
    assert int(new.id) > 5249
    r = api(sandbox_url, "GET", "/crm/v3/objects/contacts", limit=101)
    assert r.status_code == 400 and r.json()["category"] == "VALIDATION_ERROR"


def test_search_by_lastmodifieddate_sorts_pages_and_caps(sandbox_url: str) -> None:
    hs = client(sandbox_url, retry=Retry(total=5, status_forcelist=[429], respect_retry_after_header=True,
                                         allowed_methods=None))
    batch = hs.crm.contacts.batch_api.create(BatchInputSimplePublicObjectBatchInputForCreate(inputs=[
        SimplePublicObjectBatchInputForCreate(properties={"email": f"s{i}@ex.com"}) for i in range(30)]))
    ids = sorted((r.id for r in batch.results), key=int)
    time.sleep(0.02)
    cursor = max(r.updated_at for r in batch.results)
    cursor_ms = int(cursor.timestamp() * 1000)
    time.sleep(0.02)
    changed = ids[3:8]
    for object_id in reversed(changed):
        hs.crm.contacts.basic_api.update(object_id, SimplePublicObjectInput(properties={"firstname": "X"}))
        time.sleep(0.002)

    def search(after=None, limit=2, operator="GT", value=str(cursor_ms), prop="lastmodifieddate"):
        return hs.crm.contacts.search_api.do_search(PublicObjectSearchRequest(
            filter_groups=[FilterGroup(filters=[Filter(property_name=prop, operator=operator, value=value)])],
            sorts=[{"propertyName": "lastmodifieddate", "direction": "ASCENDING"}], properties=["firstname"],
            limit=limit, after=after))

    found, after = [], None
    while True:
        page = search(after=after)
        assert page.total == len(changed)
        found += [(r.id, r.properties["firstname"]) for r in page.results]
        if not page.paging:
            break
        after = page.paging.next.after
    assert found == [(i, "X") for i in reversed(changed)]  # ascending by modification time
    assert search(prop="hs_lastmodifieddate", value=iso(cursor_ms), limit=10).total == len(changed)
    assert search(operator="LTE", limit=100).total == 30 - len(changed)
    assert search(prop="createdate", operator="GTE", value="0", limit=100).total == 30
    hs.crm.contacts.basic_api.update(ids[0], SimplePublicObjectInput(properties={"customer_type": "wholesale"}))
    wholesale = search(prop="customer_type", operator="EQ", value="wholesale", limit=10)
    assert [r.id for r in wholesale.results] == [ids[0]]

    # The search endpoints allow five requests per second: retried while limited, until a deadline.
    r = unlimited(lambda: api(sandbox_url, "POST", "/crm/v3/objects/contacts/search", {"limit": 201}))
    assert r.status_code == 400 and r.json()["category"] == "VALIDATION_ERROR"
    r = unlimited(lambda: api(sandbox_url, "POST", "/crm/v3/objects/contacts/search", {"limit": 10, "after": "10000"}))
    assert r.status_code == 400 and "10000" in r.json()["message"]


def test_archive_and_list_archived(sandbox_url: str) -> None:
    hs = client(sandbox_url)
    keep = hs.crm.contacts.basic_api.create(SimplePublicObjectInputForCreate(properties={"email": "keep@ex.com"}))
    gone = hs.crm.contacts.basic_api.create(SimplePublicObjectInputForCreate(properties={"email": "gone@ex.com"}))
    batch_gone = hs.crm.contacts.basic_api.create(SimplePublicObjectInputForCreate(properties={"email": "bg@ex.com"}))
    hs.crm.contacts.basic_api.archive(gone.id)
    hs.crm.contacts.batch_api.archive(BatchInputSimplePublicObjectId(inputs=[SimplePublicObjectId(id=batch_gone.id)]))
    with pytest.raises(ApiException) as missing:
        hs.crm.contacts.basic_api.get_by_id(gone.id)
    assert missing.value.status == 404
    assert [c.id for c in hs.crm.contacts.basic_api.get_page(limit=100).results] == [keep.id]
    archived = hs.crm.contacts.basic_api.get_page(limit=100, archived=True).results
    assert sorted(c.id for c in archived) == sorted([gone.id, batch_gone.id])
    assert all(c.archived and c.archived_at for c in archived)
    assert hs.crm.contacts.basic_api.get_by_id(gone.id, archived=True).archived is True
    # the archived email is free again
    hs.crm.contacts.basic_api.create(SimplePublicObjectInputForCreate(properties={"email": "gone@ex.com"}))


def test_undefined_property_and_invalid_option_are_rejected_without_writing(sandbox_url: str) -> None:
    hs = client(sandbox_url)
    with pytest.raises(ApiException) as undefined:
        hs.crm.contacts.basic_api.create(SimplePublicObjectInputForCreate(properties={"email": "u@ex.com",
                                                                                      "favourite_colour": "red"}))
    body = json.loads(undefined.value.body)
    assert undefined.value.status == 400 and body["category"] == "VALIDATION_ERROR"
    assert body["errors"][0]["code"] == "PROPERTY_DOESNT_EXIST"
    assert body["context"] == {"propertyName": ["favourite_colour"]}
    assert "PROPERTY_DOESNT_EXIST" in body["message"]

    with pytest.raises(ApiException) as option:
        hs.crm.contacts.batch_api.create(BatchInputSimplePublicObjectBatchInputForCreate(inputs=[
            SimplePublicObjectBatchInputForCreate(properties={"email": "ok@ex.com"}),
            SimplePublicObjectBatchInputForCreate(properties={"email": "v@ex.com", "customer_type": "reseller"})]))
    assert option.value.status == 400
    assert json.loads(option.value.body)["errors"][0]["code"] == "INVALID_OPTION"
    assert hs.crm.contacts.basic_api.get_page().results == []  # the whole batch was refused


def test_new_custom_property_becomes_writable_and_listed(sandbox_url: str) -> None:
    hs = client(sandbox_url)
    names = {p.name for p in hs.crm.properties.core_api.get_all("contacts").results}
    assert {"email", "date_of_birth", "customer_type", "lead_qualified", "lastmodifieddate"} <= names
    lead = hs.crm.properties.core_api.get_by_name("contacts", "lead_qualified")
    assert (lead.type, lead.field_type) == ("bool", "booleancheckbox")
    created = hs.crm.properties.core_api.create("contacts", PropertyCreate(
        name="loyalty_tier", label="Loyalty tier", type="enumeration", field_type="select",
        group_name="contactinformation",
        options=[OptionInput(label="Gold", value="gold", display_order=0, hidden=False),
                 OptionInput(label="Silver", value="silver", display_order=1, hidden=False)]))
    assert created.name == "loyalty_tier" and created.hubspot_defined is False
    assert "loyalty_tier" in {p.name for p in hs.crm.properties.core_api.get_all("contacts").results}
    contact = hs.crm.contacts.basic_api.create(SimplePublicObjectInputForCreate(properties={
        "email": "t@ex.com", "loyalty_tier": "gold"}))
    read = hs.crm.contacts.basic_api.get_by_id(contact.id, properties=["loyalty_tier"])
    assert read.properties["loyalty_tier"] == "gold"
    again = {"name": "loyalty_tier", "label": "again", "type": "string", "fieldType": "text",
             "groupName": "contactinformation"}
    r = api(sandbox_url, "POST", "/crm/v3/properties/contacts", again)
    assert r.status_code == 409

    # a sandbox reset forgets custom properties and keeps the defaults
    requests.post(f"{sandbox_url}/_admin/reset", timeout=10).raise_for_status()
    assert api(sandbox_url, "GET", "/crm/v3/properties/contacts/loyalty_tier").status_code == 404
    options = api(sandbox_url, "GET", "/crm/v3/properties/contacts/customer_type").json()["options"]
    assert [o["value"] for o in options] == ["retail", "wholesale"]


def test_wrong_token_is_hubspots_401(sandbox_url: str) -> None:
    with pytest.raises(ApiException) as denied:
        client(sandbox_url, token="pat-na1-wrong").crm.contacts.basic_api.get_page()
    body = json.loads(denied.value.body)
    assert denied.value.status == 401
    assert body["category"] == "INVALID_AUTHENTICATION" and body["status"] == "error" and body["correlationId"]
    assert requests.get(f"{sandbox_url}/hubspot/crm/v3/owners", timeout=10).status_code == 401


def test_batch_over_100_inputs_is_400(sandbox_url: str) -> None:
    r = api(sandbox_url, "POST", "/crm/v3/objects/contacts/batch/create",
            {"inputs": [{"properties": {"email": f"b{i}@ex.com"}} for i in range(101)]})
    assert r.status_code == 400
    assert r.json()["category"] == "VALIDATION_ERROR" and r.json()["status"] == "error"
    assert api(sandbox_url, "GET", "/crm/v3/objects/contacts").json()["results"] == []


def test_per_record_rejection_is_a_207_and_the_rest_succeed(sandbox_url: str) -> None:
    r = requests.post(f"{sandbox_url}/_admin/faults",
                      json={"prefix": "/hubspot", "kind": "reject", "match": "bad@", "count": -1}, timeout=10)
    assert r.status_code == 201
    hs = client(sandbox_url)
    result = hs.crm.contacts.batch_api.upsert(BatchInputSimplePublicObjectBatchInputUpsert(inputs=[
        SimplePublicObjectBatchInputUpsert(id="good@ex.com", id_property="email", properties={"firstname": "G"}),
        SimplePublicObjectBatchInputUpsert(id="bad@ex.com", id_property="email", properties={"firstname": "B"})]))
    assert [r.properties["email"] for r in result.results] == ["good@ex.com"]
    assert result.num_errors == 1 and result.errors[0].context == {"id": ["bad@ex.com"]}
    created = api(sandbox_url, "POST", "/crm/v3/objects/contacts/batch/create",
                  {"inputs": [{"properties": {"email": "bad@ex.org"}}, {"properties": {"email": "fine@ex.org"}}]})
    assert created.status_code == 207 and created.json()["numErrors"] == 1
    single = api(sandbox_url, "POST", "/crm/v3/objects/contacts", {"properties": {"email": "bad@single.io"}})
    assert single.status_code == 400 and single.json()["category"] == "VALIDATION_ERROR"
    listed = api(sandbox_url, "GET", "/crm/v3/objects/contacts").json()["results"]
    emails = sorted(c["properties"]["email"] for c in listed)
    assert emails == ["fine@ex.org", "good@ex.com"]


def test_injected_rate_limit_and_server_error(sandbox_url: str) -> None:
    requests.post(f"{sandbox_url}/_admin/faults", json={"prefix": "/hubspot/crm/v3/objects/deals",
                                                        "kind": "rate_limit", "retry_after": 2}, timeout=10)
    r = api(sandbox_url, "GET", "/crm/v3/objects/deals")
    assert r.status_code == 429
    assert r.json()["errorType"] == "RATE_LIMIT" and r.json()["policyName"] == "TEN_SECONDLY_ROLLING"
    assert r.headers["Retry-After"] == "2" and r.headers["X-HubSpot-RateLimit-Max"] == "190"
    assert api(sandbox_url, "GET", "/crm/v3/objects/deals").status_code == 200

    requests.post(f"{sandbox_url}/_admin/faults", json={"prefix": "/hubspot", "kind": "error", "status": 502},
                  timeout=10)
    hs = client(sandbox_url, retry=Retry(total=3, status_forcelist=[502], backoff_factor=0.01, allowed_methods=None))
    assert hs.crm.deals.basic_api.get_page().results == []  # the client's retry got past the injected 502
    requests.post(f"{sandbox_url}/_admin/faults", json={"prefix": "/hubspot", "kind": "error", "status": 503},
                  timeout=10)
    r = api(sandbox_url, "GET", "/crm/v3/objects/deals")
    assert r.status_code == 503 and r.json()["status"] == "error" and r.json()["correlationId"]


def test_published_rate_limit_answers_429_beyond_190_requests_per_rolling_10_seconds(sandbox_url: str) -> None:
    local = threading.local()

    def get(_: int) -> requests.Response:
        if not hasattr(local, "session"):
            local.session = requests.Session()
            local.session.headers["Authorization"] = f"Bearer {TOKEN}"
        return local.session.get(f"{sandbox_url}/hubspot/crm/v3/owners", timeout=30)

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=8) as pool:
        responses = list(pool.map(get, range(300)))
    elapsed = time.monotonic() - started
    ok = [r for r in responses if r.status_code == 200]
    limited = [r for r in responses if r.status_code == 429]
    assert len(ok) + len(limited) == 300
    # HubSpot's rolling window (Professional): 190 in any 10 s, and no second burst until the first ages out
    assert 190 <= len(ok) <= 190 * (1 + math.floor(elapsed / 10))
    assert limited, f"300 requests in {elapsed:.1f}s were never limited"
    assert limited[0].json()["policyName"] == "TEN_SECONDLY_ROLLING"
    assert limited[0].headers["X-HubSpot-RateLimit-Interval-Milliseconds"] == "10000"
    assert int(limited[0].headers["Retry-After"]) >= 1


def test_search_has_its_own_five_per_second_limit(sandbox_url: str) -> None:
    def search(_: int) -> requests.Response:
        return api(sandbox_url, "POST", "/crm/v3/objects/contacts/search", {"limit": 1})

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = [r.status_code for r in pool.map(search, range(30))]
    elapsed = time.monotonic() - started
    assert 5 <= statuses.count(200) <= 5 + math.ceil(5 * elapsed) + 1
    limited = search(0)
    if limited.status_code == 429:
        assert limited.json()["policyName"] == "SECONDLY"
    assert 429 in statuses


def test_a_seeded_record_dated_later_today_is_last_modified_no_later_than_now(sandbox_url: str) -> None:
    """HubSpot's last-modified time is its own: a record seeded with a later time (a simulated company's
    "today") is last modified when it was seeded, so a reader that stops at "now" finds it. Its createdate
    keeps the seeded value, as an import may set it."""
    before_ms = int(time.time() * 1000)
    later_ms = before_ms + 6 * 3600 * 1000
    assert seed(sandbox_url, "contacts", [{
        "id": "7100", "properties": {"email": "later@ex.com", "createdate": iso(later_ms), "lastmodifieddate": iso(later_ms)},
        "createdAt": iso(later_ms), "updatedAt": iso(later_ms), "archived": False}]) == 1
    after_ms = int(time.time() * 1000)
    contact = client(sandbox_url).crm.contacts.basic_api.get_by_id("7100", properties=["createdate", "lastmodifieddate"])
    assert before_ms - 1000 <= contact.updated_at.timestamp() * 1000 <= after_ms + 1000
    assert contact.properties["lastmodifieddate"] == iso(int(contact.updated_at.timestamp() * 1000))
    assert contact.properties["createdate"] == iso(later_ms)
    # the search on the last-modified time finds it at or before now
    found = api(sandbox_url, "POST", "/crm/v3/objects/contacts/search", {"filterGroups": [{"filters": [
        {"propertyName": "lastmodifieddate", "operator": "LTE", "value": str(after_ms + 1000)}]}], "limit": 100})
    assert "7100" in [r["id"] for r in found.json()["results"]]


def test_seeded_owners_deals_history_and_associations(sandbox_url: str) -> None:
    owners = [{"id": str(70 + i), "email": f"rep{i}@shop.io", "firstName": "Rep", "lastName": str(i),
               "userId": 900 + i, "createdAt": "2025-01-01T00:00:00Z", "updatedAt": "2025-01-02T00:00:00Z",
               "archived": False} for i in range(3)]
    assert seed(sandbox_url, "owners", owners) == 3
    def record(record_id: str, properties: dict, created: str, updated: str, **extra) -> dict:
        return {"id": record_id, "properties": properties, "createdAt": created, "updatedAt": updated,
                "archived": False, **extra}

    seed(sandbox_url, "companies", [record("300", {"name": "Wholesale Co"},
                                           "2025-02-01T00:00:00Z", "2025-02-01T00:00:00Z")])
    seed(sandbox_url, "contacts", [record(
        "200", {"email": "w@wholesale.co", "customer_type": "wholesale", "lead_qualified": "true",
                "date_of_birth": "1991-03-04"}, "2025-02-02T00:00:00Z", "2025-02-03T00:00:00Z",
        associations={"companies": ["300"]})])
    stages = [{"value": "closedwon", "timestamp": "2025-02-06T00:00:00Z", "sourceType": "CRM_UI"},
              {"value": "qualifiedtobuy", "timestamp": "2025-02-04T00:00:00Z", "sourceType": "CRM_UI"}]
    seed(sandbox_url, "deals", [record(
        "400", {"dealname": "Bulk", "dealstage": "closedwon", "amount": "900", "pipeline": "default"},
        "2025-02-04T00:00:00Z", "2025-02-06T00:00:00Z", associations={"contacts": ["200"], "companies": ["300"]},
        propertiesWithHistory={"dealstage": stages})])
    hs = client(sandbox_url)
    page = hs.crm.owners.owners_api.get_page(limit=2)
    assert [o.id for o in page.results] == ["70", "71"] and page.paging.next.after
    rest = hs.crm.owners.owners_api.get_page(limit=2, after=page.paging.next.after)
    assert [o.email for o in rest.results] == ["rep2@shop.io"] and rest.paging is None
    assert hs.crm.owners.owners_api.get_by_id(71).user_id == 901

    deal = hs.crm.deals.basic_api.get_by_id("400", properties_with_history=["dealstage"],
                                            associations=["contacts", "companies"])
    assert [h.value for h in deal.properties_with_history["dealstage"]] == ["closedwon", "qualifiedtobuy"]
    assert deal.associations["contacts"].results[0].id == "200"
    contact = hs.crm.contacts.basic_api.get_by_id("200", associations=["deals", "companies"],
                                                  properties=["customer_type", "date_of_birth"])
    assert contact.properties["customer_type"] == "wholesale" and contact.properties["date_of_birth"] == "1991-03-04"
    assert contact.properties["lastmodifieddate"] == "2025-02-03T00:00:00.000Z"
    assert [a.id for a in contact.associations["deals"].results] == ["400"]
    assert [a.id for a in contact.associations["companies"].results] == ["300"]
    # seeding the same id again replaces it
    seed(sandbox_url, "contacts", [record("200", {"email": "w@wholesale.co", "customer_type": "retail"},
                                          "2025-02-02T00:00:00Z", "2025-03-01T00:00:00Z")])
    again = hs.crm.contacts.basic_api.get_by_id("200", properties=["customer_type"])
    assert again.properties["customer_type"] == "retail"
    assert len(hs.crm.contacts.basic_api.get_page().results) == 1


def test_state_survives_a_sandbox_restart(gs_home: Path) -> None:
    env = {"GROWTH_STACK_HOME": str(gs_home)}
    with run_server("sandbox", "/_admin/health", env, log_path=gs_home / "sandbox.log") as (url, _):
        hs = client(url)
        contact = hs.crm.contacts.basic_api.create(SimplePublicObjectInputForCreate(properties={
            "email": "persist@ex.com", "customer_type": "wholesale"}))
        company = hs.crm.companies.basic_api.create(CompanyCreate(properties={"name": "Persist"}))
        hs.crm.associations.v4.basic_api.create_default("contacts", contact.id, "companies", company.id)
        hs.crm.properties.core_api.create("contacts", PropertyCreate(
            name="nps_score", label="NPS", type="number", field_type="number", group_name="contactinformation"))
    with run_server("sandbox", "/_admin/health", env, log_path=gs_home / "sandbox.log") as (url, _):
        hs = client(url)
        again = hs.crm.contacts.basic_api.get_by_id("persist@ex.com", id_property="email",
                                                    properties=["customer_type"], associations=["companies"])
        assert again.id == contact.id and again.properties["customer_type"] == "wholesale"
        assert [a.id for a in again.associations["companies"].results] == [company.id]
        hs.crm.contacts.basic_api.update(contact.id, SimplePublicObjectInput(properties={"nps_score": "9"}))
        newer = hs.crm.contacts.basic_api.create(SimplePublicObjectInputForCreate(properties={"email": "n@ex.com"}))
        assert int(newer.id) > int(company.id)


def test_a_unique_value_index_kept_in_buckets_by_an_earlier_sandbox_is_carried_over(gs_home: Path) -> None:
    # An earlier sandbox kept emails -> ids in JSON buckets (`unique_index`); its state must keep working.
    store = Store(gs_home / "sandbox" / "sandbox.sqlite3")
    record = {"id": "501", "properties": {"email": "old@ex.com", "firstname": "Old", "hs_object_id": "501",
                                          "createdate": "2026-01-02T03:04:05.000Z",
                                          "lastmodifieddate": "2026-01-02T03:04:05.000Z"},
              "createdAt": "2026-01-02T03:04:05.000Z", "updatedAt": "2026-01-02T03:04:05.000Z", "archived": False}
    store.put("hubspot", "contacts", "501", record)
    store.put("hubspot", "unique_index", "contacts:email:1234", {"old@ex.com": "501"})
    store.put("hubspot", "_meta", "id_floor", {"value": 501})
    del store
    with run_server("sandbox", "/_admin/health", {"GROWTH_STACK_HOME": str(gs_home)},
                    log_path=gs_home / "sandbox.log") as (url, _):
        hs = client(url)
        assert hs.crm.contacts.basic_api.get_by_id("OLD@ex.com", id_property="email").id == "501"
        upserted = hs.crm.contacts.batch_api.upsert(BatchInputSimplePublicObjectBatchInputUpsert(inputs=[
            SimplePublicObjectBatchInputUpsert(id="old@ex.com", id_property="email", properties={"firstname": "Kept"})]))
        assert [r.id for r in upserted.results] == ["501"]  # the same contact, not a duplicate
        with pytest.raises(ApiException) as conflict:
            hs.crm.contacts.basic_api.create(SimplePublicObjectInputForCreate(properties={"email": "old@ex.com"}))
        assert conflict.value.status == 409
        assert api(url, "GET", "/crm/v3/objects/contacts", limit=100).json()["results"][0]["id"] == "501"
    assert Store(gs_home / "sandbox" / "sandbox.sqlite3").count("hubspot", "unique_index") == 0


def _searching(sandbox_url: str):
    """POST a contacts search, waiting out the search endpoints' own 429s as HubSpot asks (Retry-After)."""
    session = requests.Session()
    session.mount("http://", requests.adapters.HTTPAdapter(max_retries=Retry(
        total=20, status_forcelist=[429], respect_retry_after_header=True, allowed_methods=None)))
    session.headers["Authorization"] = f"Bearer {TOKEN}"

    def search(body: dict, object_type: str = "contacts") -> requests.Response:
        return session.post(f"{sandbox_url}/hubspot/crm/v3/objects/{object_type}/search", json=body, timeout=30)
    return search


def test_search_filters_sorts_pages_and_limits_as_hubspot_does(sandbox_url: str) -> None:
    t0 = 1_772_323_200_000  # 2026-03-01T00:00:00Z in epoch ms
    # contact i modified at t0 + (i // 2) ms: pairs of ties; companies use hs_lastmodifieddate
    seed(sandbox_url, "contacts", [
        {"id": str(700 + i), "properties": {"email": f"t{i}@ex.com"}, "createdAt": iso(t0 - 1000),
         "updatedAt": iso(t0 + i // 2), "archived": False} for i in range(12)])
    seed(sandbox_url, "companies", [
        {"id": str(800 + i), "properties": {"name": f"Co {i}"}, "createdAt": iso(t0 - 1000),
         "updatedAt": iso(t0 + 10 * i), "archived": False} for i in range(3)])
    search = _searching(sandbox_url)

    def ids(body: dict, object_type: str = "contacts") -> list[str]:
        r = search(body, object_type)
        assert r.status_code == 200, r.text
        return [o["id"] for o in r.json()["results"]]

    def where(*filters: tuple[str, str, object], sort: str = "lastmodifieddate", direction: str = "ASCENDING",
              **extra) -> dict:
        return {"filterGroups": [{"filters": [
            {"propertyName": p, "operator": op, **({"highValue": v[1], "value": v[0]} if op == "BETWEEN" else
                                                    {"value": v})} for p, op, v in filters]}],
                "sorts": [{"propertyName": sort, "direction": direction}], "limit": 100, **extra}

    every = [str(700 + i) for i in range(12)]
    assert ids(where(("lastmodifieddate", "GTE", str(t0)))) == every  # ascending, ties by creation
    assert ids(where(("lastmodifieddate", "GT", str(t0 + 2)))) == every[6:]
    assert ids(where(("lastmodifieddate", "LT", str(t0 + 2)))) == every[:4]
    assert ids(where(("lastmodifieddate", "LTE", iso(t0 + 2)))) == every[:6]  # ISO values work too
    assert ids(where(("lastmodifieddate", "EQ", str(t0 + 3)))) == every[6:8]
    assert ids(where(("lastmodifieddate", "BETWEEN", (str(t0 + 1), str(t0 + 2))))) == every[2:6]
    assert ids(where(("lastmodifieddate", "GTE", str(t0)), ("lastmodifieddate", "LTE", str(t0 + 1)))) == every[:4]
    assert ids(where(("lastmodifieddate", "GTE", str(t0)), direction="DESCENDING"))[:2] == every[-2:][::-1]
    # within one instant, keyset on the id: the way past a tie larger than a page
    assert ids(where(("lastmodifieddate", "EQ", str(t0 + 4)), ("hs_object_id", "GT", "708"),
                     sort="hs_object_id")) == ["709"]
    assert ids(where(("hs_lastmodifieddate", "GT", str(t0 + 5)), sort="hs_lastmodifieddate"),
               "companies") == ["801", "802"]
    # paging with `after` (an offset) and `total`
    first = search(where(("lastmodifieddate", "GTE", str(t0)), limit=5)).json()
    assert first["total"] == 12 and first["paging"]["next"]["after"] == "5"
    second = search(where(("lastmodifieddate", "GTE", str(t0)), limit=5, after="5")).json()
    assert [o["id"] for o in second["results"]] == every[5:10]
    last = search(where(("lastmodifieddate", "GTE", str(t0)), limit=5, after="10")).json()
    assert [o["id"] for o in last["results"]] == every[10:] and "paging" not in last

    # HubSpot's limits since 2024: 5 groups, 10 filters per group, 25 in all, 200 per page, 10,000 results
    flt = {"propertyName": "lastmodifieddate", "operator": "GTE", "value": str(t0)}
    assert search({"filterGroups": [{"filters": [flt] * 5}] * 5, "limit": 1}).status_code == 200
    for body in ({"filterGroups": [{"filters": [flt]}] * 6},
                 {"filterGroups": [{"filters": [flt] * 11}]},
                 {"filterGroups": [{"filters": [flt] * 9}] * 3},
                 {"limit": 201},
                 {"after": "10000", "limit": 1}):
        r = search(body)
        assert r.status_code == 400 and r.json()["category"] == "VALIDATION_ERROR", body
    assert search({"filterGroups": [{"filters": [flt] * 10}], "limit": 1}).status_code == 200
