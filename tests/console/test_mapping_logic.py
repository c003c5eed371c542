"""The mapping page's logic without a browser: declaration files edited in place, choices turned into
declarations, field suggestions and type checks, and read-only queries."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import duckdb
import pytest

from growth_stack_dagster import config
from growth_stack_dagster.activation.declarations import DeclarationError
from growth_stack_dagster.activation.destinations.base import FieldSpec
from growth_stack_dagster.console import declaration_file, mapping
from growth_stack_dagster.console.readonly import QueryRefused, preview_query, single_select

PROJECT = config.dbt_project_dir()
SYNC_FILES = sorted((PROJECT / declaration_file.SYNC_DIR).glob("*.yml"))


def _models() -> dict[str, mapping.ModelInfo]:
    return {m.name: m for m in mapping.sync_models(mapping.manifest(PROJECT))}


@pytest.mark.parametrize("path", SYNC_FILES, ids=[p.stem for p in SYNC_FILES])
def test_opening_and_saving_every_declaration_unchanged_is_byte_identical(path: Path) -> None:
    manifest = mapping.manifest(PROJECT)
    text = path.read_text()
    for name in [e["name"] for e in declaration_file._yaml().load(text)["exposures"]]:
        existing = declaration_file.read_declaration(path, name)
        columns = list(_models()[existing["model"]].columns)
        choices = mapping.choices_from_declaration(name, existing["model"], existing["sync"], columns,
                                                   label=existing["label"])
        sync = mapping.declaration_from_choices(choices, existing["sync"])
        assert sync == existing["sync"]
        mapping.spec_for(name, existing["model"], sync, manifest, str(path))  # what the page checks before saving
        out = declaration_file.render_declaration(text, name=name, model=existing["model"], sync=sync,
                                                  label=existing["label"])
        assert out == text


def test_an_edit_changes_only_what_changed_and_keeps_hand_written_comments(tmp_path: Path) -> None:
    path = tmp_path / "hubspot_contacts_traits.yml"
    original = (PROJECT / declaration_file.SYNC_DIR / "hubspot_contacts_traits.yml").read_text()
    commented = original.replace("        mode: upsert\n", "        mode: upsert  # agreed with sales, 2026-11\n")
    commented = commented.replace("        mappings:\n", "        # the traits sales asked for\n        mappings:\n")
    path.write_text(commented)
    existing = declaration_file.read_declaration(path, "hubspot_contacts_traits")
    columns = list(_models()["sync_hubspot__contacts"].columns)
    choices = mapping.choices_from_declaration("hubspot_contacts_traits", existing["model"], existing["sync"], columns)
    for c in choices.columns:
        if c.column == "margin":
            c.field = ""  # stop sending margin
        if c.column == "customer_id":
            c.field, c.create_type, c.create_label = "gs_customer_id", "string", "Customer id"
    choices.trigger = "0 * * * *"
    sync = mapping.declaration_from_choices(choices, existing["sync"])
    out = declaration_file.render_declaration(commented, name="hubspot_contacts_traits", model=existing["model"],
                                              sync=sync)
    assert "# agreed with sales, 2026-11" in out and "# the traits sales asked for" in out
    margin_block = ("          - column: margin\n            field: gs_margin\n            null_policy: clear\n"
                    "            create: {type: number, label: Margin}\n")
    customer_block = ("          - column: customer_id\n            field: gs_customer_id\n"
                      "            create: {type: string, label: Customer id}\n")
    assert margin_block in commented
    expected = (commented.replace(margin_block, "")
                .replace("        on_removal: nothing\n", customer_block + "        on_removal: nothing\n")
                .replace("        trigger: on_model_update\n", "        trigger: 0 * * * *\n"))
    assert out == expected


def test_a_new_declaration_is_a_dbt_exposure_the_engine_reads(tmp_path: Path) -> None:
    manifest = mapping.manifest(PROJECT)
    columns = list(_models()["sync_hubspot__contacts"].columns)
    choices = mapping.Choices(name="hubspot_flag", model="sync_hubspot__contacts", destination="hubspot",
                              object="contacts", mode="upsert", primary_key="email", match_field="email",
                              on_removal="nothing", trigger="on_model_update",
                              columns=[mapping.ColumnChoice(column=c) for c in columns])
    for c in choices.columns:
        if c.column == "email":
            c.field = "email"
        if c.column == "is_high_value":
            c.field, c.create_type, c.create_label, c.null_policy = "gs_flag", "bool", "Flag", "clear"
    sync = mapping.declaration_from_choices(choices)
    assert sync == {"destination": "hubspot", "object": "contacts", "mode": "upsert", "primary_key": "email",
                    "match_field": "email",
                    "mappings": [{"column": "email", "field": "email"},
                                 {"column": "is_high_value", "field": "gs_flag", "null_policy": "clear",
                                  "create": {"type": "bool", "label": "Flag"}}]}
    spec = mapping.spec_for("hubspot_flag", "sync_hubspot__contacts", sync, manifest, "x.yml")
    assert [f.name for f in spec.custom_fields] == ["gs_flag"]
    text = declaration_file.render_declaration(None, name="hubspot_flag", model="sync_hubspot__contacts", sync=sync)
    path = tmp_path / "hubspot_flag.yml"
    path.write_text(text)
    assert declaration_file.read_declaration(path, "hubspot_flag")["sync"] == sync
    assert "depends_on:\n      - ref('sync_hubspot__contacts')" in text


def test_invalid_choices_fail_with_the_field_in_the_message() -> None:
    manifest = mapping.manifest(PROJECT)
    base = {"destination": "hubspot", "object": "contacts", "mode": "upsert", "primary_key": "email",
            "match_field": "email", "mappings": [{"column": "email", "field": "email"}]}
    with pytest.raises(DeclarationError, match=r"mappings\[1\]\.field.*no_such_property"):
        mapping.spec_for("x", "sync_hubspot__contacts", {**base, "mappings": [
            *base["mappings"], {"column": "margin", "field": "no_such_property"}]}, manifest, "x.yml")
    with pytest.raises(DeclarationError, match="primary_key.*no `unique` data test"):
        mapping.spec_for("x", "sync_hubspot__contacts", {**base, "primary_key": "first_name"}, manifest, "x.yml")
    with pytest.raises(DeclarationError, match="mode.*cannot do 'membership'"):
        mapping.spec_for("x", "sync_hubspot__contacts", {**base, "mode": "membership"}, manifest, "x.yml")


def test_suggestions_by_name_and_type_warnings() -> None:
    fields = {"firstname": FieldSpec("firstname", "string", "First Name"),
              "gs_is_high_value": FieldSpec("gs_is_high_value", "bool", "High value customer"),
              "amount": FieldSpec("amount", "number", "Amount")}
    assert mapping.suggest_field("first_name", fields) == "firstname"
    assert mapping.suggest_field("is_high_value", fields) == "gs_is_high_value"
    assert mapping.suggest_field("customer_id", fields) is None
    assert "text values but amount is a number field" in mapping.type_warning("email", "VARCHAR", fields["amount"])
    assert mapping.type_warning("margin", "DECIMAL(18,2)", fields["amount"]) is None
    assert mapping.type_warning("is_high_value", "BOOLEAN", fields["gs_is_high_value"]) is None
    assert mapping.type_warning("orders", "BIGINT", fields["gs_is_high_value"]) is not None


def test_model_files_from_a_query_refer_to_models_by_ref() -> None:
    manifest = mapping.manifest(PROJECT)
    sql, yaml_text = declaration_file.render_model_files(
        model="sync_hubspot__vips", key="email", description="VIP emails",
        sql="select c.email, t.is_high_value from marts.customers c join marts.customer_traits t using (customer_id);",
        columns=[("email", "VARCHAR"), ("is_high_value", "BOOLEAN")], manifest=manifest)
    assert "from {{ ref('customers') }} c join {{ ref('customer_traits') }} t" in sql
    assert "c.email" in sql and "t.is_high_value" in sql
    assert "data_tests:\n          - unique\n          - not_null" in yaml_text
    assert "contract: {enforced: true}" in yaml_text and "data_type: boolean" in yaml_text
    with pytest.raises(ValueError, match="does not start with sync_"):
        declaration_file.render_model_files(model="vips", key="email", description="", sql="select 1 as email",
                                            columns=[("email", "INTEGER")], manifest=manifest)


@pytest.fixture
def warehouse(tmp_path: Path) -> Path:
    path = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute("create schema marts")
        con.execute("create table marts.customers as select 'c' || i as customer_id, i % 2 = 0 as is_high_value "
                    "from range(1000) t(i)")
    return path


def test_a_query_is_previewed_with_its_row_count_and_a_row_limit(warehouse: Path) -> None:
    preview = preview_query(warehouse, "select * from marts.customers where is_high_value;", row_limit=7)
    assert preview.columns == [("customer_id", "VARCHAR"), ("is_high_value", "BOOLEAN")]
    assert len(preview.rows) == 7 and preview.total_rows == 500 and preview.truncated


@pytest.mark.parametrize("sql,message", [
    ("delete from marts.customers", "this is a delete statement"),
    ("create table marts.x as select 1", "this is a create statement"),
    ("select 1; drop table marts.customers", "several statements"),
    ("copy marts.customers to '/tmp/out.csv'", "this is a copy statement"),
    ("attach '/tmp/other.duckdb' as other", "this is a attach statement"),
    ("select * from read_csv('/etc/passwd')", "refused the query"),
    ("selec 1", "not valid SQL"),
    ("", "Type a query first"),
])
def test_queries_that_write_or_reach_outside_the_warehouse_are_refused(warehouse: Path, sql: str, message: str) -> None:
    with pytest.raises(QueryRefused, match=message):
        preview_query(warehouse, sql)
    with duckdb.connect(str(warehouse), read_only=True) as con:
        assert con.execute("select count(*) from marts.customers").fetchone()[0] == 1000


def test_a_slow_query_is_stopped_at_the_time_limit(warehouse: Path) -> None:
    started = time.monotonic()
    with pytest.raises(QueryRefused, match="longer than 0.5 seconds"):
        preview_query(warehouse, "select count(*) from range(100000000000) a", timeout=0.5)
    assert time.monotonic() - started < 10


def test_single_select_accepts_with_queries() -> None:
    assert single_select("with x as (select 1 as a) select * from x;\n") == "with x as (select 1 as a) select * from x"


def test_zendesk_user_fields_come_from_zendesk_itself(sandbox_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The mapping page offers the custom user fields the Zendesk account lists, with their types."""
    import requests

    monkeypatch.setenv("GROWTH_STACK_SANDBOX_URL", sandbox_url)
    auth = ("growth-stack@sandbox.example/token", config.DEFAULT_SANDBOX_TOKEN)
    created = requests.post(f"{sandbox_url}/zendesk/api/v2/user_fields.json", auth=auth, timeout=30, json={
        "user_field": {"type": "decimal", "key": "lifetime_value", "title": "Lifetime value"}})
    assert created.status_code in (200, 201), created.text
    fields, warning = mapping.live_fields("zendesk", "users")
    assert warning is None
    assert fields["user_fields.lifetime_value"].type == "number"
    assert fields["user_fields.lifetime_value"].label == "Lifetime value"
    assert "email" in fields and "external_id" in fields
    assert "text values but user_fields.lifetime_value is a number field" in mapping.type_warning(
        "email", "VARCHAR", fields["user_fields.lifetime_value"])
