"""The dlt sources against the sandbox on loopback, into a real DuckDB file."""

from __future__ import annotations

from typing import Any

import requests

from tests.ingest.conftest import auth, duplicate_keys, load, table_count, warehouse

API_SOURCES = ("hubspot", "stripe", "facebook_ads", "zendesk")


def test_every_table_loads_the_seeded_counts_and_a_rerun_adds_nothing(seeded: dict[str, Any]) -> None:
    for name in API_SOURCES:
        load(name)
    hs, st, fb, zd = seeded["hubspot"], seeded["stripe"], seeded["facebook"], seeded["zendesk"]
    expected = {
        ("hubspot", "contacts"): len(hs["contacts"]),
        ("hubspot", "companies"): len(hs["companies"]),
        ("hubspot", "deals"): len(hs["deals"]),
        ("hubspot", "calls"): len(hs["calls"]),
        ("hubspot", "owners"): len(hs["owners"]),
        ("hubspot", "contact_company_associations"): sum(1 for c in hs["contacts"] if not c["archived"]),
        ("hubspot", "deal_contact_associations"): len(hs["deals"]),
        # HubSpot drops the associations of archived records
        ("hubspot", "call_contact_associations"): sum(
            1 for call in hs["calls"] for contact in call["associations"]["contacts"]
            if contact not in {c["id"] for c in hs["contacts"] if c["archived"]}),
        ("hubspot", "deals__properties_with_history__dealstage"): 2 * len(hs["deals"]),
        ("stripe", "customers"): len(st["customers"]),
        ("stripe", "products"): len(st["products"]),
        ("stripe", "prices"): len(st["prices"]),
        ("stripe", "coupons"): len(st["coupons"]),
        ("stripe", "invoices"): len(st["invoices"]),
        ("stripe", "invoices__lines"): sum(len(i["lines"]["data"]) for i in st["invoices"]),
        ("stripe", "invoices__total_discount_amounts"): sum(len(i["total_discount_amounts"]) for i in st["invoices"]),
        ("stripe", "charges"): len(st["charges"]),
        ("facebook_ads", "campaigns"): len(fb["campaigns"]),
        ("facebook_ads", "campaign_insights"): len(fb["insights"]),
        ("zendesk", "tickets"): len(zd["tickets"]),
        ("zendesk", "users"): len(zd["users"]),
    }
    assert {k: table_count(*k) for k in expected} == expected

    with warehouse() as con:
        # archived HubSpot records are kept, flagged
        assert con.execute("select count(*) from hubspot.contacts where archived").fetchone()[0] == 2
        # every contact property is a column, custom ones included, typed as the API sends them
        columns = {r[0] for r in con.execute(
            "select column_name from information_schema.columns where table_schema='hubspot' and table_name='contacts'"
        ).fetchall()}
        assert {"properties__date_of_birth", "properties__customer_type", "properties__lead_qualified",
                "properties__email", "modified_at", "archived"} <= columns
        assert con.execute("select properties__date_of_birth from hubspot.contacts where id='1000'").fetchone() == ("1980-01-15",)
        assert con.execute("select sum(spend), sum(clicks) from facebook_ads.campaign_insights").fetchone() == (
            sum(float(i["spend"]) for i in fb["insights"]), sum(int(i["clicks"]) for i in fb["insights"]))
        assert con.execute("select count(*) from stripe.customers where deleted").fetchone()[0] == 0
        lines_with_invoice = con.execute(
            "select count(*) from stripe.invoices__lines l join stripe.invoices i on l._dlt_parent_id = i._dlt_id "
            "where l.invoice_id = i.id").fetchone()[0]
        assert lines_with_invoice == expected[("stripe", "invoices__lines")]
        assert con.execute("select json_extract_string(pricing__price_details, '$.product') from stripe.invoices__lines "
                           "where id = 'il_000000_1'").fetchone() == ("prod_SKU2",)
        assert con.execute("select h.value, h.source_type from hubspot.deals__properties_with_history__dealstage h "
                           "join hubspot.deals d on h._dlt_parent_id = d._dlt_id where d.id = '3000' "
                           "order by h.timestamp").fetchall() == [("appointmentscheduled", "CRM_UI"), ("closedwon", "CRM_UI")]
        # every raw table carries dlt's row and load ids, Arrow-loaded ones included
        assert con.execute("select count(distinct _dlt_id), count(_dlt_load_id) from hubspot.contacts").fetchone() == (
            len(hs["contacts"]), len(hs["contacts"]))

    # A second run with no change loads nothing new, except the Facebook attribution window,
    # which is read again by design (and merges onto the same rows).
    for name in API_SOURCES:
        loaded = load(name)
        if name == "facebook_ads":
            assert set(loaded) <= {"campaigns", "campaign_insights"}
        else:
            assert loaded == {}, name
    assert {k: table_count(*k) for k in expected} == expected
    assert duplicate_keys("facebook_ads", "campaign_insights", "campaign_id, date_start") == 0


def test_changes_made_through_the_apis_arrive_on_the_next_run(seeded: dict[str, Any], sandbox: str) -> None:
    for name in ("hubspot", "stripe", "zendesk"):
        load(name)
    hubspot, stripe, zendesk = f"{sandbox}/hubspot", f"{sandbox}/stripe", f"{sandbox}/zendesk"

    # HubSpot: a new custom property, a changed contact, an archived contact
    r = requests.post(f"{hubspot}/crm/v3/properties/contacts", headers=auth(), json={
        "name": "loyalty_tier", "label": "Loyalty tier", "type": "string", "fieldType": "text",
        "groupName": "contactinformation"})
    assert r.status_code in (200, 201), r.text
    r = requests.patch(f"{hubspot}/crm/v3/objects/contacts/1001", headers=auth(),
                       json={"properties": {"lastname": "Renamed", "loyalty_tier": "gold"}})
    assert r.status_code == 200, r.text
    assert requests.delete(f"{hubspot}/crm/v3/objects/contacts/1002", headers=auth()).status_code == 204
    # Stripe: a new customer, a changed customer, a deleted customer
    r = requests.post(f"{stripe}/v1/customers", headers=auth(), data={"email": "new@example.com"})
    assert r.status_code == 200, r.text
    new_customer = r.json()["id"]
    r = requests.post(f"{stripe}/v1/customers/cus_00001", headers=auth(), data={"name": "Changed Name"})
    assert r.status_code == 200, r.text
    assert requests.delete(f"{stripe}/v1/customers/cus_00002", headers=auth()).status_code == 200
    # Zendesk: a changed ticket
    r = requests.put(f"{zendesk}/api/v2/tickets/701.json", headers=auth(), json={"ticket": {"status": "solved"}})
    assert r.status_code == 200, r.text

    loaded = {name: load(name) for name in ("hubspot", "stripe", "zendesk")}
    assert loaded["hubspot"]["contacts"] == 2
    assert loaded["stripe"]["customers"] >= 3  # the new customer comes listed and as an event, merged to one row
    assert loaded["zendesk"]["tickets"] == 1

    with warehouse() as con:
        assert con.execute("select properties__lastname, properties__loyalty_tier, archived from hubspot.contacts "
                           "where id='1001'").fetchone() == ("Renamed", "gold", False)
        assert con.execute("select archived from hubspot.contacts where id='1002'").fetchone() == (True,)
        assert con.execute("select count(*) from hubspot.contacts").fetchone()[0] == len(seeded["hubspot"]["contacts"])
        assert con.execute("select name, deleted from stripe.customers where id='cus_00001'").fetchone() == (
            "Changed Name", False)
        assert con.execute("select deleted from stripe.customers where id='cus_00002'").fetchone() == (True,)
        assert con.execute(f"select email from stripe.customers where id='{new_customer}'").fetchone() == (
            "new@example.com",)
        assert con.execute("select status from zendesk.tickets where id=701").fetchone() == ("solved",)
    assert duplicate_keys("stripe", "customers", "id") == 0
    assert duplicate_keys("hubspot", "contacts", "id") == 0
    assert duplicate_keys("zendesk", "tickets", "id") == 0


def test_a_changed_value_type_does_not_break_the_load(sandbox: str) -> None:
    from tests.ingest.seed import seed

    t0 = 1767225600
    seed(sandbox, "stripe", "customers", [{"id": "cus_a", "object": "customer", "created": t0,
                                            "metadata": {"tier": 3}, "balance": 10}])
    load("stripe")
    # the same fields now arrive as text where they were numbers
    seed(sandbox, "stripe", "customers", [{"id": "cus_b", "object": "customer", "created": t0 + 10,
                                            "metadata": {"tier": "gold"}, "balance": "n/a"}])
    assert load("stripe")["customers"] == 1
    with warehouse() as con:
        cols = {r[0] for r in con.execute("select column_name from information_schema.columns "
                                          "where table_schema='stripe' and table_name='customers'").fetchall()}
        assert con.execute("select count(*) from stripe.customers").fetchone()[0] == 2
    # dlt keeps the new type in a variant column beside the original one
    assert {"metadata__tier", "balance"} <= cols
    assert any(c.startswith("metadata__tier__v_") for c in cols) and any(c.startswith("balance__v_") for c in cols)


def test_a_changed_object_replaces_its_child_rows(sandbox: str) -> None:
    stripe = f"{sandbox}/stripe"
    kept = requests.post(f"{stripe}/v1/customers", headers=auth(),
                         data={"email": "k@example.com", "preferred_locales[]": ["en", "fr"]}).json()["id"]
    changed = requests.post(f"{stripe}/v1/customers", headers=auth(),
                            data={"email": "c@example.com", "preferred_locales[]": ["de", "it"]}).json()["id"]
    cleared = requests.post(f"{stripe}/v1/customers", headers=auth(),
                            data={"email": "x@example.com", "preferred_locales[]": ["es"]}).json()["id"]
    load("stripe")
    assert requests.post(f"{stripe}/v1/customers/{changed}", headers=auth(),
                         data={"preferred_locales[]": ["nl"]}).status_code == 200
    assert requests.post(f"{stripe}/v1/customers/{cleared}", headers=auth(),
                         data={"preferred_locales": ""}).status_code == 200
    load("stripe")
    load("stripe")  # a rerun with no change keeps them as they are
    with warehouse() as con:
        locales = con.execute(
            "select c.id, l.value, l._dlt_parent_id = c._dlt_id from stripe.customers__preferred_locales l "
            "join stripe.customers c on c.id = l.customer_id order by 1, l._dlt_list_idx").fetchall()
        replaced_rows = con.execute("select count(*) from stripe.customers__preferred_locales "
                                    "where _replaced is not null").fetchone()[0]
    # the changed customer's old locales are gone, the cleared one has none, each row points at its customer row
    assert locales == sorted([(kept, "en", True), (kept, "fr", True), (changed, "nl", True)], key=lambda r: r[0])
    assert replaced_rows == 0
