"""Sync declarations are read from dbt's manifest (written by `dbt parse`), and an invalid one fails
when the code location loads, naming its file and the field at fault."""

from __future__ import annotations

import copy

import pytest

from growth_stack_dagster.activation.declarations import DeclarationError, load_manifest, load_syncs

EXPOSURE = "exposure.growth_stack.hubspot_contacts_traits"
FILE = "dbt_project/models/activation/syncs/hubspot_contacts_traits.yml"


@pytest.fixture(scope="module")
def manifest():
    return load_manifest()


def _broken(manifest, edit) -> dict:
    out = copy.deepcopy(manifest)
    exposure = out["exposures"][EXPOSURE]
    for meta in (exposure["meta"], exposure["config"]["meta"]):
        edit(meta["sync"])
    return out


def test_the_hubspot_declarations_load_as_sync_specs(manifest):
    syncs = load_syncs(manifest)
    contacts = syncs["hubspot_contacts_traits"]
    assert (contacts.model, contacts.destination, contacts.object, contacts.mode) == (
        "sync_hubspot__contacts", "hubspot", "contacts", "upsert")
    assert (contacts.primary_key, contacts.match_field, contacts.source_file) == ("email", "email", FILE)
    assert {f.name: f.type for f in contacts.custom_fields}["gs_is_high_value"] == "bool"
    companies = syncs["hubspot_companies_rollup"]
    assert (companies.match_field, companies.destination_id_column, companies.trigger) == (
        "gs_company_domain", "hubspot_company_id", "0 * * * *")
    assert [f.unique for f in companies.custom_fields if f.name == "gs_company_domain"] == [True]


@pytest.mark.parametrize(("edit", "field", "words"), [
    (lambda d: d["mappings"].append({"column": "lifetime_valu", "field": "gs_x", "create": {"type": "number"}}),
     "meta.sync.mappings[9].column", "'lifetime_valu' is not a column of sync_hubspot__contacts"),
    (lambda d: d["mappings"].append({"column": "margin", "field": "hs_margin_typo"}),
     "meta.sync.mappings[9].field", "'hs_margin_typo' is not a field of hubspot contacts"),
    (lambda d: d.update(primary_key="first_name"),
     "meta.sync.primary_key", "has no `unique` data test"),
    (lambda d: d.update(mode="membership"),
     "meta.sync.mode", "hubspot contacts cannot do 'membership'"),
    (lambda d: d.update(mode="sometimes"), "meta.sync.mode", "'sometimes' is not a mode"),
    (lambda d: d.update(batch_size=500), "meta.sync.batch_size", "between 1 and 100"),
    (lambda d: d.update(trigger="every hour"), "meta.sync.trigger", "neither `on_model_update` nor a cron"),
    (lambda d: d.update(destination="salesforce"), "meta.sync.destination", "Unknown destination 'salesforce'"),
    (lambda d: d["mappings"][3].update(null_policy="ignore"), "meta.sync.mappings[3].null_policy", "'ignore'"),
])
def test_an_invalid_declaration_fails_at_load_with_file_and_field(manifest, edit, field, words):
    with pytest.raises(DeclarationError) as caught:
        load_syncs(_broken(manifest, edit))
    message = str(caught.value)
    assert message.startswith(f"{FILE}: `{field}`:"), message
    assert words in message


def test_loading_reads_the_manifest_dbt_parse_wrote_and_refuses_an_invalid_declaration(manifest, tmp_path,
                                                                                         monkeypatch):
    # activation/defs.py calls load_syncs() at import, so this error stops the code location from loading.
    import json

    import growth_stack_dagster.activation.declarations as declarations

    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(_broken(manifest, lambda d: d.update(primary_key="last_name"))))
    monkeypatch.setattr(declarations, "manifest_path", lambda: path)
    with pytest.raises(DeclarationError, match=r"hubspot_contacts_traits.yml: `meta.sync.primary_key`"):
        declarations.load_syncs()
    path.unlink()
    with pytest.raises(DeclarationError, match="run `make dbt-parse`"):
        declarations.load_syncs()
