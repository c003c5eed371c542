"""The sync engine against the sandbox's HubSpot, on a small warehouse built directly: changes are sent
once and only once, and every fault ends with HubSpot holding exactly the model's state."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import time
from decimal import Decimal

import duckdb
import pytest
import requests

from growth_stack_dagster.activation import engine, journal
from growth_stack_dagster.activation.destinations.base import FieldMapping, FieldSpec
from growth_stack_dagster.activation.destinations.hubspot import HubSpot
from tests.activation.helpers import (
    add_fault, contact_row, expected_properties, hubspot_contacts, write_contacts, write_counts,
)
from tests.servers import CLI, REPO

SYNC = "hubspot_contacts_traits"


def assert_hubspot_holds(sandbox_url: str, rows: list[dict]) -> None:
    """Every model row is a contact with exactly the model's values."""
    got = hubspot_contacts(sandbox_url)
    wrong = [r["email"] for r in rows
             if {k: got.get(r["email"], {}).get(k) for k in expected_properties(r)} != expected_properties(r)]
    assert not wrong, (len(wrong), wrong[:3], got.get(wrong[0]), expected_properties(
        next(r for r in rows if r["email"] == wrong[0])))


def state_rows(gs_home) -> dict[str, tuple]:
    with duckdb.connect(str(gs_home / "warehouse.duckdb"), read_only=True) as con:
        return {r[0]: r[1:] for r in con.execute(
            "select record_key, checksum, failed_checksum, attempts, last_error from activation_state.records "
            "where sync = ?", [SYNC]).fetchall()}


def test_a_changed_trait_is_sent_once_and_a_second_run_sends_nothing(hubspot, gs_home):
    rows = [contact_row(i, high=i % 4 == 0) for i in range(150)]
    write_contacts(rows)
    first = engine.run_sync(SYNC)
    assert (first.counts["added"], first.sent, first.accepted, first.rejected) == (150, 150, 150, 0)
    assert_hubspot_holds(hubspot, rows)
    # the traits were created as typed properties on the first sync
    props = requests.get(f"{hubspot}/hubspot/crm/v3/properties/contacts/gs_is_high_value",
                         headers={"Authorization": "Bearer sk_test_sandbox"}, timeout=10).json()
    assert (props["type"], props["fieldType"]) == ("bool", "booleancheckbox")

    for i in (3, 77, 149):
        rows[i]["is_high_value"] = not rows[i]["is_high_value"]
    rows[10]["lifetime_value"] = Decimal("12.34")
    write_contacts(rows)
    plan = engine.plan_sync(SYNC)
    assert (plan.counts["changed"], plan.counts["unchanged"], plan.operations) == (4, 146, {"upsert": 4})
    second = engine.run_sync(SYNC)
    assert (second.counts["changed"], second.sent, second.accepted) == (4, 4, 4)
    assert_hubspot_holds(hubspot, rows)
    third = engine.run_sync(SYNC)
    assert (third.sent, third.counts["unchanged"]) == (0, 150)

    contacts = hubspot_contacts(hubspot)
    writes = write_counts(hubspot)["writes"]
    changed = {rows[i]["email"] for i in (3, 77, 149, 10)}
    assert {email: writes[contacts[email]["id"]] for email in changed} == dict.fromkeys(changed, 2)
    assert {writes[c["id"]] for e, c in contacts.items() if e not in changed} == {1}


def test_dry_run_shows_the_requests_exactly_as_sent_and_sends_nothing(hubspot, gs_home):
    rows = [contact_row(i) for i in range(5)]
    write_contacts(rows)
    plan = engine.plan_sync(SYNC, sample=2)
    assert plan.operations == {"upsert": 5}
    [sample] = plan.samples
    [request] = sample["request"]
    assert request["path"] == "/crm/v3/objects/contacts/batch/upsert"
    assert request["body"]["inputs"][0] == {
        "id": rows[0]["email"], "idProperty": "email",
        "properties": {**expected_properties(rows[0])}}
    assert hubspot_contacts(hubspot) == {}
    assert write_counts(hubspot)["writes"] == {}


def test_429s_with_and_without_retry_after_5xx_and_timeouts_end_in_the_model_state(hubspot, gs_home, monkeypatch):
    monkeypatch.setenv("ACTIVATION__READ_TIMEOUT", "1")
    rows = [contact_row(i) for i in range(450)]
    write_contacts(rows)
    upsert = "/hubspot/crm/v3/objects/contacts/batch/upsert"
    add_fault(hubspot, prefix=upsert, kind="rate_limit", count=2, retry_after=1)  # HubSpot's 429 with Retry-After
    add_fault(hubspot, prefix=upsert, kind="error", status=429, count=2, skip=1)  # a 429 without Retry-After
    add_fault(hubspot, prefix=upsert, kind="error", status=503, count=2, skip=2)
    add_fault(hubspot, prefix=upsert, kind="slow", delay=2.5, count=1, skip=3)  # the write lands after the timeout
    result = engine.run_sync(SYNC)
    assert (result.status, result.accepted, result.rejected) == ("success", 450, 0)
    assert_hubspot_holds(hubspot, rows)
    faults = requests.get(f"{hubspot}/_admin/faults", timeout=10).json()
    assert all(f["count"] == 0 for f in faults), faults
    assert engine.run_sync(SYNC).sent == 0


def test_per_record_400s_are_kept_with_their_reason_and_retried_until_accepted(hubspot, gs_home):
    rows = [contact_row(i) for i in range(120)]
    write_contacts(rows)
    bad = rows[7]["email"]
    add_fault(hubspot, prefix="/hubspot/crm/v3/objects/contacts/batch/upsert", kind="reject", match=bad, count=2)
    first = engine.run_sync(SYNC)
    assert (first.accepted, first.rejected) == (119, 1)
    key_state = state_rows(gs_home)[bad]
    assert key_state[0] is None and key_state[2] == 1 and "VALIDATION_ERROR" in key_state[3]
    second = engine.run_sync(SYNC)  # retried: rejected again (the fault fires twice)
    assert (second.counts["retried"], second.sent, second.rejected) == (1, 1, 1)
    assert state_rows(gs_home)[bad][2] == 2
    third = engine.run_sync(SYNC)
    assert (third.counts["retried"], third.accepted) == (1, 1)
    assert_hubspot_holds(hubspot, rows)
    assert state_rows(gs_home)[bad][1:3] == (None, 0)
    with duckdb.connect(str(gs_home / "warehouse.duckdb"), read_only=True) as con:
        log = con.execute("select status, count(*) from activation_state.row_log where sync = ? and record_key = ? "
                          "group by 1 order by 1", [SYNC, bad]).fetchall()
    assert log == [("accepted", 1), ("rejected", 2)]


def test_a_record_that_keeps_failing_stops_being_sent_after_max_attempts(hubspot, gs_home):
    spec = dataclasses.replace(engine.resolve(SYNC), max_attempts=2)
    rows = [contact_row(i) for i in range(3)]
    write_contacts(rows)
    add_fault(hubspot, prefix="/hubspot/crm/v3/objects/contacts/batch/upsert", kind="reject",
              match=rows[1]["email"], count=-1)
    assert engine.run_sync(spec).rejected == 1
    assert engine.run_sync(spec).rejected == 1
    third = engine.run_sync(spec)
    assert (third.sent, third.counts["failed"]) == (0, 1)


def test_a_batch_refused_whole_is_split_to_isolate_the_bad_record(hubspot, gs_home):
    # last_name into a number property: HubSpot refuses the whole batch for one invalid number.
    base = engine.resolve(SYNC)
    spec = dataclasses.replace(
        base, name="hubspot_contacts_numbers",
        mappings=(FieldMapping("email", "email"), FieldMapping("last_name", "gs_number")),
        custom_fields=(FieldSpec("gs_number", "number", "A number", custom=True),))
    rows = [contact_row(i) for i in range(100)]
    for i, row in enumerate(rows):
        row["last_name"] = str(i)
    rows[42]["last_name"] = "not a number"
    write_contacts(rows)
    result = engine.run_sync(spec)
    assert (result.accepted, result.rejected) == (99, 1)
    got = hubspot_contacts(hubspot)
    assert rows[42]["email"] not in got and len(got) == 99
    assert "INVALID_FLOAT" in "".join(result.rejection_reasons) or result.rejection_reasons


def test_applied_then_5xx_and_dropped_connections_end_in_the_model_state(hubspot, gs_home):
    rows = [contact_row(i) for i in range(300)]
    write_contacts(rows)
    upsert = "/hubspot/crm/v3/objects/contacts/batch/upsert"
    add_fault(hubspot, prefix=upsert, method="POST", kind="apply_then_error", status=502, count=1)
    add_fault(hubspot, prefix=upsert, method="POST", kind="apply_then_drop", count=1, skip=1)
    result = engine.run_sync(SYNC)
    assert (result.status, result.accepted) == ("success", 300), result.message
    assert_hubspot_holds(hubspot, rows)
    # Upsert by email is idempotent: the re-sent batches changed nothing and created no duplicate. Each
    # fault applied one request of 100 that was then sent again, and nothing else was re-sent: 200 extra
    # writes. (With batches in flight at once, which request meets the second fault depends on arrival
    # order: a retry of the first batch may, so one batch can be written three times.)
    writes = write_counts(hubspot)["writes"]
    assert len(writes) == 300 and sum(writes.values()) == 500
    assert sum(1 for n in writes.values() if n >= 2) in (100, 200)


def test_a_run_killed_mid_sync_resumes_without_losing_or_resending_accepted_rows(hubspot, gs_home):
    rows = [contact_row(i, high=i % 2 == 0) for i in range(700)]
    write_contacts(rows)
    # every batch takes a while, so the process is killed with some batches accepted and one in flight
    add_fault(hubspot, prefix="/hubspot/crm/v3/objects/contacts/batch/upsert", kind="slow", delay=0.4, count=-1)
    env = {**os.environ, "GROWTH_STACK_HOME": str(gs_home)}
    proc = subprocess.Popen([*CLI, "sync", "run", SYNC], cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(write_counts(hubspot)["writes"]) < 250:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    written_before = write_counts(hubspot)["writes"]
    assert 250 <= len(written_before) < 700
    assert journal.segments(SYNC, gs_home), "the killed run left its journal"
    requests.delete(f"{hubspot}/_admin/faults", timeout=10)

    result = engine.run_sync(SYNC)
    assert result.status == "success"
    assert_hubspot_holds(hubspot, rows)
    writes = write_counts(hubspot)["writes"]
    twice = [i for i, n in writes.items() if n > 1]
    # only the batches in flight at the kill (at most max_concurrency batches of 100) may be sent again
    in_flight = HubSpot.max_concurrency * 100
    assert max(writes.values()) <= 2 and len(twice) <= in_flight
    assert result.sent <= 700 - len(written_before) + in_flight
    assert not journal.segments(SYNC, gs_home)
    assert engine.run_sync(SYNC).sent == 0


def test_mirror_deletes_only_what_it_created(hubspot, gs_home):
    token = {"Authorization": "Bearer sk_test_sandbox"}
    existing = requests.post(f"{hubspot}/hubspot/crm/v3/objects/contacts", headers=token, timeout=10,
                             json={"properties": {"email": "made.by.hand@shop.test", "firstname": "Hand"}}).json()
    spec = dataclasses.replace(engine.resolve(SYNC), name="hubspot_contacts_mirror", mode="mirror",
                               on_removal="delete")
    rows = [contact_row(i) for i in range(5)]
    write_contacts(rows)
    assert engine.run_sync(spec).accepted == 5
    write_contacts(rows[:3])
    result = engine.run_sync(spec)
    assert (result.counts["removed"], result.accepted) == (2, 2)
    got = hubspot_contacts(hubspot)
    assert set(got) == {r["email"] for r in rows[:3]} | {"made.by.hand@shop.test"}
    assert got["made.by.hand@shop.test"]["id"] == existing["id"]


def test_insert_only_never_sends_a_create_twice_after_applied_then_5xx(hubspot, gs_home):
    # Creates are not idempotent: a batch whose answer was lost is reported, never sent again.
    spec = dataclasses.replace(engine.resolve(SYNC), name="hubspot_contacts_insert", mode="insert")
    rows = [contact_row(i) for i in range(150)]
    write_contacts(rows)
    add_fault(hubspot, prefix="/hubspot/crm/v3/objects/contacts/batch/create", method="POST",
              kind="apply_then_error", status=502, count=1)
    first = engine.run_sync(spec)
    assert first.status == "stopped"
    second = engine.run_sync(spec)
    assert second.status == "success"
    writes = write_counts(hubspot)["writes"]
    assert len(hubspot_contacts(hubspot)) == 150 and set(writes.values()) == {1}
    assert second.counts["failed"] == 100  # the batch whose outcome was unknown, reported with what to do
    with duckdb.connect(str(gs_home / "warehouse.duckdb"), read_only=True) as con:
        errors = con.execute("select distinct last_error from activation_state.records where sync = ? "
                             "and failed_checksum is not null", [spec.name]).fetchall()
    assert len(errors) == 1 and "not sent again" in errors[0][0] and "sync reset" in errors[0][0]
    third = engine.run_sync(spec)
    assert third.sent == 0


def test_a_model_without_a_mapped_column_gets_a_sentence_saying_what_to_do(hubspot, gs_home):
    warehouse = write_contacts([contact_row(1)])
    with duckdb.connect(str(warehouse)) as con:
        con.execute("alter table activation.sync_hubspot__contacts drop column margin")
    with pytest.raises(LookupError, match=r"does not match the declaration .*dbt build -s sync_hubspot__contacts"):
        engine.plan_sync(SYNC)


def test_a_retried_step_with_the_same_run_id_loses_nothing(hubspot, gs_home):
    # Dagster retries a step under the same run id: its journal must not be mistaken for the folded one.
    rows = [contact_row(i) for i in range(30)]
    write_contacts(rows)
    assert engine.run_sync(SYNC, run_id="dagster-run-1").accepted == 30
    rows[0]["is_high_value"] = True
    write_contacts(rows)
    assert engine.run_sync(SYNC, run_id="dagster-run-1").accepted == 1
    assert engine.plan_sync(SYNC).counts["unchanged"] == 30
