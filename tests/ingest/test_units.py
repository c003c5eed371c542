"""Pure pieces of the ingest flow: row shaping, paginators, Arrow flattening, config defaults, keys."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import dlt
import pyarrow as pa
import pytest
from requests import Request, Response

from growth_stack_dagster.ingest.sources.defaults import SandboxDefaultsProvider, register_sandbox_defaults
from growth_stack_dagster.ingest.sources.facebook_ads import insight_row, is_transient_graph_error
from growth_stack_dagster.ingest.sources.hubspot import association_rows, objects_table
from growth_stack_dagster.ingest.sources.http import StripeListPaginator, ZendeskExportPaginator, batched_pages
from growth_stack_dagster.ingest.sources.stripe import as_row
from growth_stack_dagster.ingest.translator import raw_asset_key


def _response(body: dict, status: int = 200) -> Response:
    r = Response()
    r.status_code = status
    r._content = json.dumps(body).encode()
    return r


def test_stripe_paginator_follows_the_last_id_while_has_more() -> None:
    p = StripeListPaginator()
    p.update_state(_response({"has_more": True}), [{"id": "cus_1"}, {"id": "cus_2"}])
    request = Request("GET", "http://x/v1/customers", params={"limit": 2})
    p.update_request(request)
    assert p.has_next_page and request.params == {"limit": 2, "starting_after": "cus_2"}
    p.update_state(_response({"has_more": False}), [{"id": "cus_3"}])
    assert not p.has_next_page


def test_zendesk_paginator_swaps_start_time_for_cursor_and_stops_at_end_of_stream() -> None:
    p = ZendeskExportPaginator()
    p.update_state(_response({"after_cursor": "c1", "end_of_stream": False}), [{}])
    request = Request("GET", "http://x", params={"start_time": 0, "per_page": 5})
    p.update_request(request)
    assert p.has_next_page and request.params == {"per_page": 5, "cursor": "c1"}
    p.update_state(_response({"after_cursor": "c2", "end_of_stream": True}), [])
    assert not p.has_next_page and p.last_cursor == "c2"


def test_hubspot_objects_table_has_every_property_and_the_cursor() -> None:
    objects = [
        {"id": "1", "properties": {"email": "a@x", "never_set": None, "score": 5}, "createdAt": "2026-01-01T00:00:00Z",
         "updatedAt": "2026-01-02T00:00:00.000Z", "archived": False},
        {"id": "2", "properties": {"email": None}, "createdAt": "2026-01-01T00:00:00Z",
         "updatedAt": "2026-01-02T00:00:00Z", "archived": True, "archivedAt": "2026-01-05T00:00:00Z"},
    ]
    table = objects_table(objects, ["email", "never_set", "score"])
    assert {"properties__email", "properties__never_set", "properties__score", "modified_at"} <= set(table.column_names)
    assert table.column("properties__score").to_pylist() == ["5", None]  # a non-string value arrives as text
    assert table.schema.field("properties__never_set").type == pa.string()
    assert table.column("modified_at").to_pylist() == [datetime(2026, 1, 2, tzinfo=timezone.utc),
                                                       datetime(2026, 1, 5, tzinfo=timezone.utc)]
    assert table.column("archived").to_pylist() == [False, True]


def test_stripe_invoice_row_carries_every_line_and_the_flags() -> None:
    row = as_row({"id": "in_1", "lines": {"object": "list", "data": [{"id": "il_1"}]}}, 100, False,
                 lines=[{"id": "il_1"}, {"id": "il_2"}])
    assert row["lines"] == [{"id": "il_1", "invoice_id": "in_1"}, {"id": "il_2", "invoice_id": "in_1"}]
    assert (row["deleted"], row["_snapshot_at"]) == (False, 100)
    assert as_row({"id": "cus_1", "deleted": True}, 5, False)["deleted"] is True


def test_association_rows_one_per_type() -> None:
    result = {"from": {"id": "1"}, "to": [{"toObjectId": 9, "associationTypes": [
        {"category": "HUBSPOT_DEFINED", "typeId": 1, "label": None},
        {"category": "USER_DEFINED", "typeId": 7, "label": "Billing"}]}]}
    assert association_rows(result, "contact_id", "company_id") == [
        {"contact_id": "1", "company_id": "9", "type_id": 1, "category": "HUBSPOT_DEFINED", "label": None},
        {"contact_id": "1", "company_id": "9", "type_id": 7, "category": "USER_DEFINED", "label": "Billing"}]


def test_facebook_rows_and_transient_errors() -> None:
    row = insight_row({"campaign_id": "1", "date_start": "2026-01-02", "date_stop": "2026-01-02",
                       "spend": "12.34", "impressions": "1000", "clicks": "25"})
    assert (str(row["date_start"]), row["spend"], row["impressions"], row["clicks"]) == ("2026-01-02", 12.34, 1000, 25)
    assert is_transient_graph_error(_response({"error": {"code": 80004, "message": "too many"}}, 400), None)
    assert is_transient_graph_error(_response({"error": {"code": 2, "is_transient": True}}, 500), None)
    assert not is_transient_graph_error(_response({"error": {"code": 100, "message": "bad field"}}, 400), None)


def test_batched_pages_regroups() -> None:
    assert [len(b) for b in batched_pages([[1] * 3, [1] * 3, [1] * 3], 5)] == [6, 3]


def test_sandbox_defaults_yield_to_dlt_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GROWTH_STACK_SANDBOX_URL", "http://127.0.0.1:9")
    provider = SandboxDefaultsProvider()
    assert provider.get_value("base_url", str, None, "sources", "hubspot")[0] == "http://127.0.0.1:9/hubspot"
    assert provider.get_value("api_key", str, None, "sources", "stripe")[0] == "sk_test_sandbox"
    assert provider.get_value("api_key", str, None, "sources")[0] is None
    register_sandbox_defaults()
    register_sandbox_defaults()
    assert sum(isinstance(p, SandboxDefaultsProvider) for p in dlt.config.config_providers) == 1

    from growth_stack_dagster.ingest.pipelines import build_source

    monkeypatch.setenv("SOURCES__ZENDESK__BASE_URL", "https://acme.zendesk.com")
    monkeypatch.setenv("SOURCES__ZENDESK__API_KEY", "real-token")
    monkeypatch.setenv("SOURCES__ZENDESK__EMAIL", "ops@acme.com")
    source = build_source("zendesk")
    assert list(source.resources) == ["tickets", "users"]


def test_asset_key_is_the_dbt_source_key() -> None:
    assert raw_asset_key("stripe", "invoices").path == ["stripe", "invoices"]


def test_association_reads_go_in_batches_of_100_and_follow_paging() -> None:
    from growth_stack_dagster.ingest.sources.hubspot import _association_transformer

    class FakeClient:
        def __init__(self) -> None:
            self.calls: list[list[dict]] = []

        def post(self, path: str, json: dict) -> Response:
            self.calls.append(json["inputs"])
            results = [{"from": {"id": i["id"]}, "to": [{"toObjectId": 7 if "after" in i else 9,
                                                         "associationTypes": [{"typeId": 1}]}],
                        **({"paging": {"next": {"after": "p2"}}} if i["id"] == "0" and "after" not in i else {})}
                       for i in json["inputs"]]
            return _response({"status": "COMPLETE", "results": results})

    client = FakeClient()
    rows = [{"id": str(i), "archived": i == 5} for i in range(250)]
    transformer = _association_transformer(client, "contact_company_associations", "contacts", "companies")
    @dlt.resource(name="contacts")
    def contacts():
        yield rows

    out = list(contacts() | transformer)
    # 249 live contacts in batches of 100; contact 0's second association page joins the last batch
    assert [len(c) for c in client.calls] == [100, 100, 50]
    assert client.calls[-1][-1] == {"id": "0", "after": "p2"}
    assert len(out) == 250 and {"contact_id": "0", "company_id": "7", "type_id": 1, "category": None,
                                "label": None} in out
