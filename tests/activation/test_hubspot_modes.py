"""HubSpot's `archive` and `mirror` modes through the real sandbox, read back with the official
`hubspot-api-client`: archive archives exactly the contacts its model lists (whoever made them), mirror
archives the contacts it created when their rows leave the model and never touches one it did not create."""

from __future__ import annotations

import dataclasses

import duckdb
import pytest
import requests
from hubspot import HubSpot
from hubspot.crm.contacts import SimplePublicObjectInputForCreate
from hubspot.crm.contacts.exceptions import NotFoundException

from growth_stack_dagster import config
from growth_stack_dagster.activation import engine, journal, state
from tests.activation.helpers import contact_row, expected_properties, write_contacts, write_counts

SYNC = "hubspot_contacts_traits"


def client(sandbox_url: str) -> HubSpot:
    return HubSpot(access_token=config.DEFAULT_SANDBOX_TOKEN, host=f"{sandbox_url}/hubspot")


def made_by_hand(hs: HubSpot, email: str, firstname: str) -> str:
    """A contact someone made in HubSpot before any sync ran; its id."""
    return hs.crm.contacts.basic_api.create(SimplePublicObjectInputForCreate(
        properties={"email": email, "firstname": firstname})).id


def live(hs: HubSpot) -> dict[str, object]:
    """Live contacts by email (the API's own listing, every page)."""
    return {c.properties["email"]: c for c in hs.crm.contacts.get_all(properties=["email", "firstname"])}


def archived_ids(hs: HubSpot) -> set[str]:
    """Ids of archived contacts (the API's `archived=true` listing, every page)."""
    return {c.id for c in hs.crm.contacts.get_all(archived=True)}


def test_archive_mode_archives_exactly_the_listed_contacts_and_forgets_rows_that_leave(hubspot, gs_home):
    hs = client(hubspot)
    rows = [contact_row(i) for i in range(6)]
    ids = {r["email"]: made_by_hand(hs, r["email"], f"Hand{i}") for i, r in enumerate(rows[:5])}
    keeper = made_by_hand(hs, "keep.me@shop.test", "Keep")
    spec = dataclasses.replace(engine.resolve(SYNC), name="hubspot_contacts_archive", mode="archive")
    writes_by_hand = write_counts(hubspot)["writes"]

    # the model lists person0..2 and person5 (whom HubSpot does not have)
    write_contacts(rows[:3] + rows[5:])
    plan = engine.plan_sync(spec)
    assert plan.operations == {"archive": 4}
    first = engine.run_sync(spec)
    assert (first.status, first.accepted, first.rejected) == ("success", 4, 0)
    assert archived_ids(hs) == {ids[r["email"]] for r in rows[:3]}
    for r in rows[:3]:
        got = hs.crm.contacts.basic_api.get_by_id(ids[r["email"]], archived=True)
        assert got.archived and got.archived_at is not None
        with pytest.raises(NotFoundException):
            hs.crm.contacts.basic_api.get_by_id(ids[r["email"]])
    assert set(live(hs)) == {rows[3]["email"], rows[4]["email"], "keep.me@shop.test"}
    assert live(hs)["keep.me@shop.test"].id == keeper
    assert rows[5]["email"] not in live(hs)  # archive never creates what it cannot find
    # the sync wrote to no contact (an archive is not a write) and drew no 429
    assert write_counts(hubspot)["writes"] == writes_by_hand and write_counts(hubspot)["rate_limited"] == 0

    # nothing changed: nothing is sent
    assert engine.run_sync(spec).sent == 0

    # person0 leaves the model (forgotten, stays archived); person3 joins it (archived on this run)
    write_contacts(rows[1:4] + rows[5:])
    second = engine.run_sync(spec)
    assert (second.counts["added"], second.counts["removed"], second.sent, second.accepted) == (1, 1, 1, 1)
    assert archived_ids(hs) == {ids[r["email"]] for r in rows[:4]}
    assert set(live(hs)) == {rows[4]["email"], "keep.me@shop.test"}
    assert engine.run_sync(spec).sent == 0


def test_mirror_archives_only_the_contacts_it_created_and_never_one_made_beforehand(hubspot, gs_home):
    hs = client(hubspot)
    rows = [contact_row(i) for i in range(6)]
    # person0 is in the model but was made in HubSpot by hand; stranger is not in the model
    own_id = made_by_hand(hs, rows[0]["email"], "Hand")
    stranger = made_by_hand(hs, "made.by.hand@shop.test", "Stranger")
    # the warehouse even knows person0's HubSpot id (as after an ETL run): knowing it is not owning it
    rows[0]["hubspot_contact_id"] = own_id
    spec = dataclasses.replace(engine.resolve(SYNC), name="hubspot_contacts_mirror", mode="mirror",
                               on_removal="delete", destination_id_column="hubspot_contact_id")

    write_contacts(rows)
    first = engine.run_sync(spec)
    # a mirror creates only new contacts: person0 exists, so HubSpot refuses its create and nothing changes
    assert (first.accepted, first.rejected) == (5, 1)
    got = live(hs)
    assert got[rows[0]["email"]].id == own_id and got[rows[0]["email"]].properties["firstname"] == "Hand"
    created = {r["email"]: got[r["email"]].id for r in rows[1:]}
    # one create each for the sync's contacts; the two made by hand were written once, by hand
    assert write_counts(hubspot)["writes"] == {i: 1 for i in [own_id, stranger, *created.values()]}
    everything = hs.crm.contacts.get_all(properties=list(expected_properties(rows[1])))
    by_email = {c.properties["email"]: c.properties for c in everything}
    for r in rows[1:]:
        assert {k: by_email[r["email"]].get(k) for k in expected_properties(r)} == expected_properties(r)

    # person0 (made by hand), person1 and person2 (made by the sync) leave the model
    write_contacts(rows[3:])
    second = engine.run_sync(spec)
    assert second.counts["removed"] == 3
    assert archived_ids(hs) == {created[rows[1]["email"]], created[rows[2]["email"]]}
    got = live(hs)
    assert set(got) == {rows[0]["email"], "made.by.hand@shop.test"} | {r["email"] for r in rows[3:]}
    assert got[rows[0]["email"]].id == own_id and got["made.by.hand@shop.test"].id == stranger
    assert got[rows[0]["email"]].properties["firstname"] == "Hand"
    assert engine.run_sync(spec).sent == 0

    # every row leaves: the mirror archives the rest of what it created, and only that
    write_contacts([])
    engine.run_sync(spec)
    assert archived_ids(hs) == set(created.values())
    assert {e: c.id for e, c in live(hs).items()} == {rows[0]["email"]: own_id, "made.by.hand@shop.test": stranger}


def test_journal_folded_beside_the_sending_keeps_every_result(hubspot, gs_home, monkeypatch):
    # Folding after every batch, in the background while the next batches go out, loses and repeats nothing.
    folded: list[int] = []
    fold = state.fold_journal
    monkeypatch.setattr(state, "fold_journal", lambda *a, **k: folded.append(fold(*a, **k)) or folded[-1])
    rows = [contact_row(i) for i in range(1200)]
    write_contacts(rows)
    bad = rows[250]["email"]
    requests.post(f"{hubspot}/_admin/faults", json={"prefix": "/hubspot/crm/v3/objects/contacts/batch/upsert",
                                                    "kind": "reject", "match": bad, "count": 1}, timeout=10)
    # 60 batches of 20 at 20 requests a second: three seconds of sending for the folds to run beside
    spec = dataclasses.replace(engine.resolve(SYNC), batch_size=20, rate_limit=(20, 1.0))
    result = engine.run_sync(spec, fold_every_seconds=0)
    assert (result.status, result.accepted, result.rejected) == ("success", 1199, 1)
    assert len([n for n in folded if n]) > 2 and sum(folded) == 1200, folded  # in parts, each result once
    assert not journal.segments(SYNC, gs_home)
    with duckdb.connect(str(gs_home / "warehouse.duckdb"), read_only=True) as con:
        accepted, failed = con.execute(
            "select count(checksum), count(failed_checksum) from activation_state.records where sync = ?",
            [SYNC]).fetchone()
    assert (accepted, failed) == (1199, 1)
    again = engine.run_sync(spec)
    assert (again.counts["retried"], again.sent, again.accepted) == (1, 1, 1)
    assert engine.run_sync(spec).sent == 0
