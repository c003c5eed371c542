"""The declared Customer.io, Amplitude, Facebook and Zendesk syncs run by the engine against the sandbox,
on a small warehouse whose `activation.sync_*` tables are written directly (so the engine's diffing is
what is tested): the traits read back through the sandbox, a changed trait is sent once and only once, a
second run sends nothing, the audience holds exactly the high-value hashes and leavers leave it, and a
Zendesk mirror never deletes a user it did not create."""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import signal
import subprocess
import time
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest
import requests

from growth_stack_dagster import config
from growth_stack_dagster.activation import declarations, engine
from growth_stack_dagster.activation.destinations.zendesk import Zendesk
from tests.activation.destination_cases import (
    CASES, ZENDESK_AUTH, add_fault, fb_audience, sha, writes, zendesk_user,
)
from tests.servers import CLI, REPO


@pytest.fixture
def sandbox(gs_home, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> str:
    monkeypatch.setenv("GROWTH_STACK_SANDBOX_RATE_LIMIT_SCALE", "10")
    monkeypatch.setenv("GROWTH_STACK_SANDBOX_ZENDESK_JOB_SECONDS", "0.1")
    url = request.getfixturevalue("sandbox_url")
    monkeypatch.setenv("GROWTH_STACK_SANDBOX_URL", url)
    monkeypatch.setenv("ACTIVATION__BACKOFF_FACTOR", "0.05")
    monkeypatch.setenv("ACTIVATION__BACKOFF_MAX", "1")
    return url


def write_table(model: str, rows: list[dict], types: dict[str, str], warehouse: Path | None = None) -> None:
    """Replace activation.<model> with `rows` (columns typed as in `types`)."""
    with duckdb.connect(str(warehouse or config.warehouse_path())) as con:
        con.execute("create schema if not exists activation")
        con.execute(f"create or replace table activation.{model} ({', '.join(f'{c} {t}' for c, t in types.items())})")
        if rows:
            con.executemany(f"insert into activation.{model} ({', '.join(types)}) values ({', '.join('?' * len(types))})",
                            [[r.get(c) for c in types] for r in rows])


TRAITS = {"is_high_value": "boolean", "lead_qualified": "boolean", "customer_type": "varchar",
          "lifetime_value": "decimal(18,2)", "coupon_usage_rate": "decimal(18,4)", "orders_last_365d": "bigint",
          "last_seen_date": "date"}
CIO = {"customerio_id": "varchar", "customer_id": "varchar", "email": "varchar", "first_name": "varchar",
       "last_name": "varchar", **TRAITS}
AMP = {"user_id": "varchar", "customer_id": "varchar", **TRAITS, "margin": "decimal(18,2)"}
ZD = {"customer_id": "varchar", "zendesk_user_id": "varchar", "external_id": "varchar", "email": "varchar",
      "name": "varchar", "phone": "varchar", "is_high_value": "boolean", "customer_type": "varchar",
      "lifetime_value": "decimal(18,2)", "orders_last_365d": "bigint", "account_manager_name": "varchar",
      "account_manager_email": "varchar"}


def people(n: int) -> list[dict]:
    return [{"i": i, "customer_id": f"c{i:05d}", "user_id": f"u_{i:05d}", "email": f"person{i}@shop.test",
             "first_name": f"P{i}", "last_name": "Test", "is_high_value": i % 3 == 0, "lead_qualified": None,
             "customer_type": "retail", "lifetime_value": Decimal(f"{100 + i}.50"),
             "coupon_usage_rate": Decimal("0.2500"), "orders_last_365d": i % 7,
             "last_seen_date": dt.date(2026, 11, 1), "margin": Decimal("3.10"),
             "account_manager_name": "Sal Es", "account_manager_email": "sales@shop.test"} for i in range(n)]


def write_models(rows: list[dict]) -> None:
    write_table("sync_customerio__people", [{**r, "customerio_id": r["user_id"]} for r in rows], CIO)
    write_table("sync_amplitude__user_properties", rows, AMP)
    write_table("sync_zendesk__users", [{**r, "external_id": r["user_id"], "name": f"P{r['i']} Test"} for r in rows], ZD)
    write_table("sync_facebook__high_value_audience",
                [{"email_sha256": sha(r["email"]), "customer_id": r["customer_id"]} for r in rows if r["is_high_value"]],
                {"email_sha256": "varchar", "customer_id": "varchar"})


SYNCS = ("customerio_people_traits", "amplitude_user_traits", "zendesk_users_traits", "facebook_high_value_audience")


def holds(sandbox: str, rows: list[dict]) -> dict[str, list[str]]:
    """The records each destination holds wrongly (empty lists when everything matches the model)."""
    audience = fb_audience(sandbox)
    members = {m["key"] for m in requests.get(f"{sandbox}/facebook/_sandbox/customaudiences/{audience}/users",
                                              timeout=30).json()["data"]} if audience else set()
    wrong: dict[str, list[str]] = {"customerio": [], "amplitude": [], "zendesk": [], "facebook": []}
    for r in rows:
        high = r["is_high_value"]
        if not CASES["customerio"].holds(CASES["customerio"].read(sandbox, r["user_id"]), high):
            wrong["customerio"].append(r["user_id"])
        if not CASES["amplitude"].holds(CASES["amplitude"].read(sandbox, r["user_id"]), high):
            wrong["amplitude"].append(r["user_id"])
        user = zendesk_user(sandbox, r["user_id"])
        if not (user and user["user_fields"].get("is_high_value") is high
                and user["user_fields"].get("account_manager") == "Sal Es"):
            wrong["zendesk"].append(r["user_id"])
    if members != {sha(r["email"]) for r in rows if r["is_high_value"]}:
        wrong["facebook"] = sorted(members ^ {sha(r["email"]) for r in rows if r["is_high_value"]})
    return wrong


def test_traits_are_sent_once_and_only_once_and_leavers_leave_the_audience(sandbox: str) -> None:
    rows = people(24)
    write_models(rows)
    first = {name: engine.run_sync(name) for name in SYNCS}
    assert {n: (r.status, r.rejected) for n, r in first.items()} == dict.fromkeys(SYNCS, ("success", 0))
    assert first["customerio_people_traits"].sent == 24 and first["facebook_high_value_audience"].sent == 8
    assert holds(sandbox, rows) == {"customerio": [], "amplitude": [], "zendesk": [], "facebook": []}
    assert {n: engine.run_sync(n).sent for n in SYNCS} == dict.fromkeys(SYNCS, 0)  # nothing changed

    # customer 3 stops being high-value, customer 4 becomes one
    rows[3]["is_high_value"], rows[4]["is_high_value"] = False, True
    write_models(rows)
    plans = {n: engine.plan_sync(n) for n in SYNCS}
    assert plans["customerio_people_traits"].operations == {"upsert": 2}
    assert plans["facebook_high_value_audience"].operations == {"add": 1, "remove": 1}
    assert {n: engine.run_sync(n).sent for n in SYNCS} == {
        "customerio_people_traits": 2, "amplitude_user_traits": 2, "zendesk_users_traits": 2,
        "facebook_high_value_audience": 2}
    assert holds(sandbox, rows) == {"customerio": [], "amplitude": [], "zendesk": [], "facebook": []}
    assert {n: engine.run_sync(n).sent for n in SYNCS} == dict.fromkeys(SYNCS, 0)

    # written once each, and the two changed customers once more: no double send anywhere
    changed = {"u_00003", "u_00004"}
    cio = writes(sandbox, "customerio", "customers")
    assert {k: cio[k] for k in changed} == dict.fromkeys(changed, 2)
    assert {v for k, v in cio.items() if k not in changed} == {1}
    amp = writes(sandbox, "amplitude", "users")
    assert {v for k, v in amp.items() if k.removeprefix("user:") not in changed} == {1}
    audience = fb_audience(sandbox)
    fb = writes(sandbox, "facebook", "custom_audience_users")
    assert fb[f"{audience}:{sha(rows[3]['email'])}"] == 2 and fb[f"{audience}:{sha(rows[4]['email'])}"] == 1
    assert set(fb.values()) <= {1, 2} and sum(fb.values()) == 8 + 2


def test_zendesk_mirror_never_deletes_a_user_it_did_not_create(sandbox: str) -> None:
    requests.post(f"{sandbox}/_admin/seed/zendesk/users", timeout=10, json=[
        {"id": 9001, "name": "Made by support", "email": "person0@shop.test"},
        {"id": 9002, "name": "Unrelated", "email": "someone@else.test"},
    ]).raise_for_status()
    rows = people(4)
    write_models(rows)
    spec = dataclasses.replace(declarations.load_syncs()["zendesk_users_traits"], mode="mirror", on_removal="delete")
    first = engine.run_sync(spec)
    # person0 already existed in Zendesk: a mirror creates only new users, so that one is refused, untouched
    assert (first.accepted, first.rejected) == (3, 1)
    pre = requests.get(f"{sandbox}/zendesk/api/v2/users/9001.json", auth=ZENDESK_AUTH, timeout=10).json()["user"]
    assert pre["name"] == "Made by support" and pre.get("user_fields") in ({}, None)
    created = {r["user_id"]: zendesk_user(sandbox, r["user_id"])["id"] for r in rows[1:]}
    with duckdb.connect(str(config.warehouse_path()), read_only=True) as con:
        [(error,)] = con.execute("select last_error from activation_state.records where sync = ? and "
                                 "last_error is not null", [spec.name]).fetchall()
    assert "already being used" in error and "@" not in error  # the reason, never the person's email

    write_models([])  # everyone leaves the model
    second = engine.run_sync(spec)
    assert second.status == "success" and second.accepted == 3
    assert all(zendesk_user(sandbox, u) is None for u in created)
    for user_id in (9001, 9002):  # made in Zendesk beforehand: never deleted
        assert requests.get(f"{sandbox}/zendesk/api/v2/users/{user_id}.json", auth=ZENDESK_AUTH,
                            timeout=10).status_code == 200
    assert writes(sandbox, "zendesk", "users") == {str(i): 2 for i in created.values()}  # create, delete


@pytest.mark.slow  # about 20 s: the engine's own SIGKILL test (HubSpot) runs in the default suite
def test_a_zendesk_sync_killed_mid_run_resumes_without_losing_or_resending_accepted_users(sandbox: str, gs_home) -> None:
    rows = people(700)
    write_models(rows)
    # each bulk request takes a while, so the process dies with some jobs accepted and one in flight
    add_fault(sandbox, prefix="/zendesk/api/v2/users/create_or_update_many", method="POST", kind="slow", delay=0.4,
              count=-1)
    proc = subprocess.Popen([*CLI, "sync", "run", "zendesk_users_traits"], cwd=REPO,
                            env={**os.environ, "GROWTH_STACK_HOME": str(gs_home)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(writes(sandbox, "zendesk", "users")) < 100:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = writes(sandbox, "zendesk", "users")
    assert 100 <= len(before) < 700
    requests.delete(f"{sandbox}/_admin/faults", timeout=10).raise_for_status()

    result = engine.run_sync("zendesk_users_traits")
    assert (result.status, result.rejected) == ("success", 0)
    time.sleep(0.5)  # a job the killed run queued may still be finishing
    after = writes(sandbox, "zendesk", "users")
    assert len(after) == 700 and all(zendesk_user(sandbox, r["user_id"]) for r in rows[::50])
    # only the batches in flight at the kill (max_concurrency jobs of 100) may have been written twice
    in_flight = Zendesk.max_concurrency * 100
    assert max(after.values()) <= 2 and sum(1 for n in after.values() if n == 2) <= in_flight
    assert result.sent <= 700 - len(before) + in_flight
    assert engine.run_sync("zendesk_users_traits").sent == 0
