"""The sandbox's HubSpot batch upsert and property creation, driven by the official hubspot-api-client
(an executable spec of HubSpot's API): upsert by `idProperty` creates or updates, answers `new`, and
counts one write per record."""

from __future__ import annotations

from hubspot import HubSpot
from hubspot.crm.contacts import BatchInputSimplePublicObjectBatchInputUpsert, SimplePublicObjectBatchInputUpsert
from hubspot.crm.properties import PropertyCreate

from tests.activation.helpers import write_counts


def test_batch_upsert_by_email_and_property_creation_with_the_official_client(sandbox_url):
    client = HubSpot(access_token="sk_test_sandbox", host=f"{sandbox_url}/hubspot")
    client.crm.properties.core_api.create(object_type="contacts", property_create=PropertyCreate(
        name="gs_is_high_value", label="High value", type="bool", field_type="booleancheckbox",
        group_name="contactinformation", options=[{"label": "Yes", "value": "true", "displayOrder": 0},
                                                  {"label": "No", "value": "false", "displayOrder": 1}]))
    prop = client.crm.properties.core_api.get_by_name(object_type="contacts", property_name="gs_is_high_value")
    assert (prop.type, prop.field_type) == ("bool", "booleancheckbox")

    def upsert(values: dict[str, str]):
        inputs = [SimplePublicObjectBatchInputUpsert(id_property="email", id=email,
                                                     properties={"email": email, "gs_is_high_value": v})
                  for email, v in values.items()]
        return client.crm.contacts.batch_api.upsert(
            BatchInputSimplePublicObjectBatchInputUpsert(inputs=inputs)).results

    first = upsert({"ann@shop.test": "true"})
    assert [(r.properties["email"], r.new) for r in first] == [("ann@shop.test", True)]
    second = {r.properties["email"]: r for r in upsert({"ann@shop.test": "false", "bob@shop.test": "true"})}
    assert (second["ann@shop.test"].new, second["ann@shop.test"].id) == (False, first[0].id)
    assert second["bob@shop.test"].new is True
    contact = client.crm.contacts.basic_api.get_by_id("ann@shop.test", id_property="email",
                                                       properties=["gs_is_high_value"])
    assert contact.properties["gs_is_high_value"] == "false"
    assert write_counts(sandbox_url)["writes"] == {first[0].id: 2, second["bob@shop.test"].id: 1}
