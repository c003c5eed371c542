"""The simulator end to end: event files, a real sandbox, and a real collector for today."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import orjson
import pytest
import requests

from growth_stack_dagster.sandbox.core import Store
from growth_stack_dagster.simulate.generator import SimParams
from growth_stack_dagster.simulate.runner import run_simulation
from growth_stack_dagster.simulate.sinks import SinkError
from tests.servers import REPO, run_server
from tests.simulate.helpers import read_event_lines, recompute_high_value

AS_OF = dt.date(2026, 11, 26)


def _run(tmp: Path, seed: int = 11, customers: int = 150, days: int = 40, sandbox_url: str | None = None) -> dict:
    return run_simulation(SimParams(customers, days, seed, AS_OF), sandbox_url=sandbox_url, collector_url=None,
                          events_root=tmp / "events", finance_dir=tmp / "finance", simulation_dir=tmp / "sim",
                          say=lambda _: None)


def _stored_objects(home: Path) -> dict[tuple[str, str], dict[str, bytes]]:
    """Every object in the sandbox's store as {(system, collection): {id: canonical JSON}}."""
    store = Store(home / "sandbox" / "sandbox.sqlite3")
    rows = store.query("SELECT system, collection, id, data FROM objects")
    out: dict[tuple[str, str], dict[str, bytes]] = {}
    for system, collection, obj_id, data in rows:
        out.setdefault((system, collection), {})[obj_id] = orjson.dumps(orjson.loads(data), option=orjson.OPT_SORT_KEYS)
    return out


def test_event_files_are_identical_for_a_seed_and_differ_for_another(tmp_path):
    a, b, c = (_run(tmp_path / name, seed=s) for name, s in (("a", 11), ("b", 11), ("c", 12)))
    lines_a, lines_b = read_event_lines(tmp_path / "a" / "events"), read_event_lines(tmp_path / "b" / "events")
    assert lines_a == lines_b and lines_a
    lines_c = read_event_lines(tmp_path / "c" / "events")
    assert set().union(*lines_a.values()).isdisjoint(set().union(*lines_c.values()))
    for name in ("ground_truth.jsonl",):
        assert (tmp_path / "a" / "sim" / name).read_bytes() == (tmp_path / "b" / "sim" / name).read_bytes()
    assert sorted(os.listdir(tmp_path / "a" / "finance")) == sorted(os.listdir(tmp_path / "b" / "finance"))
    for name in os.listdir(tmp_path / "a" / "finance"):
        assert (tmp_path / "a" / "finance" / name).read_bytes() == (tmp_path / "b" / "finance" / name).read_bytes()
    # The summary counts what is in the files; today's traffic went to as_of's files.
    per_source = Counter()
    for (source, _day), lines in lines_a.items():
        per_source[source] += len(lines)
    assert dict(per_source) == a["event_files"]["lines"]
    assert a["today"]["route"] == "event_files" and (a["today"]["messages"] > 0)
    assert any(day == AS_OF.isoformat() for _src, day in lines_a)
    assert not (tmp_path / "a" / "sim" / ".spool").exists()


def test_finance_exports_cover_every_stripe_sku(tmp_path):
    _run(tmp_path, customers=20)
    files = sorted((tmp_path / "finance").glob("sku_costs_*.csv"))
    assert [f.name for f in files] == [f"sku_costs_{(AS_OF - dt.timedelta(days=40 - k)).isoformat()}.csv" for k in (0, 30)]
    header, *rows = files[0].read_text().splitlines()
    assert header == "sku,unit_cost,currency,effective_date"
    assert len(rows) == 26 and all(r.split(",")[3] == files[0].stem[-10:] for r in rows)


def test_a_second_run_into_the_same_event_files_is_refused(tmp_path):
    _run(tmp_path, customers=10)
    with pytest.raises(SinkError, match="would duplicate them"):
        _run(tmp_path, customers=10)


def test_unreachable_sandbox_is_a_clear_error(tmp_path):
    with pytest.raises(SinkError, match="growth-stack sandbox"):
        _run(tmp_path, customers=5, sandbox_url="http://127.0.0.1:9")


def test_seeding_a_real_sandbox_matches_the_summary_and_is_deterministic(sandbox_url, gs_home, tmp_path):
    env = {**os.environ, "GROWTH_STACK_HOME": str(gs_home)}
    proc = subprocess.run(
        [sys.executable, "-m", "growth_stack_dagster.cli", "simulate", "--customers", "300", "--days", "60",
         "--seed", "5", "--as-of", AS_OF.isoformat(), "--sandbox-url", sandbox_url, "--no-collector"],
        env=env, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    summary = orjson.loads((gs_home / "simulation" / "summary.json").read_bytes())
    stats = requests.get(sandbox_url + "/_admin/stats", timeout=10).json()["objects"]
    assert summary["sandbox"]["seeded"] == summary["generated"]
    for system, collections in summary["generated"].items():
        for collection, count in collections.items():
            assert stats[system][collection] == count, (system, collection)
    assert summary["generated"]["hubspot"]["contacts"] > 50 and summary["generated"]["stripe"]["invoices"] > 50

    # The real API paths serve the seeded history (Stripe list pagination, as its clients page).
    auth = {"Authorization": "Bearer sk_test_sandbox"}
    invoices, after = [], None
    while True:
        page = requests.get(sandbox_url + "/stripe/v1/invoices", headers=auth, timeout=30,
                            params={"limit": 100, **({"starting_after": after} if after else {})}).json()
        invoices += page["data"]
        if not page["has_more"]:
            break
        after = page["data"][-1]["id"]
    assert len({i["id"] for i in invoices}) == summary["generated"]["stripe"]["invoices"]
    assert all(i["status"] == "paid" and i["lines"]["data"] for i in invoices)

    # The ground truth's high-value set follows from what the sandbox now serves and the event files.
    first = _stored_objects(gs_home)
    truth = [orjson.loads(line) for line in (gs_home / "simulation" / "ground_truth.jsonl").read_bytes().splitlines()]
    objects = {f"{s}/{c}": [orjson.loads(v) for v in objs.values()] for (s, c), objs in first.items()}
    web = [orjson.loads(line) for (src, _), lines in read_event_lines(gs_home / "events").items()
           if src == "web" for line in lines]
    recomputed = recompute_high_value(truth, objects, web, AS_OF)
    assert {t["person_key"] for t in truth if t["is_high_value"]} == {
        key for key, crit in recomputed.items() if all(crit.values())}
    assert any(t["is_high_value"] for t in truth)

    # Same seed again into a reset sandbox: the same objects, byte for byte, and the same event lines.
    requests.post(sandbox_url + "/_admin/reset", timeout=10).raise_for_status()
    run_simulation(SimParams(300, 60, 5, AS_OF), sandbox_url=sandbox_url, collector_url=None,
                   events_root=tmp_path / "events", finance_dir=tmp_path / "finance",
                   simulation_dir=tmp_path / "sim", say=lambda _: None)
    second = _stored_objects(gs_home)
    ours = set(first) & {(s, c) for s, cols in summary["generated"].items() for c in cols}
    assert {k: first[k] for k in ours} == {k: second[k] for k in ours}
    assert read_event_lines(tmp_path / "events") == read_event_lines(gs_home / "events")


def test_todays_traffic_goes_through_the_collector(collector_url, gs_home):
    today = dt.datetime.now(dt.timezone.utc).date()
    env = {"GROWTH_STACK_HOME": str(gs_home), "GROWTH_STACK_SANDBOX_WEBHOOK_URL": collector_url + "/v1/webhook"}
    with run_server("sandbox", "/_admin/health", env, log_path=gs_home / "sandbox2.log") as (sandbox, _):
        summary = run_simulation(SimParams(150, 40, 9, today), sandbox_url=sandbox, collector_url=collector_url,
                                 say=lambda _: None)
    live = summary["today"]
    assert live["route"] == "collector" and live["messages"] > 0
    assert sum(live["collector_sent"].values()) == live["messages"]
    assert live["emails_via_helper"] > 0
    deadline = time.monotonic() + 30  # the collector publishes its open files within seconds
    while True:
        found = read_event_lines(gs_home / "events")
        tracked = sum(len(v) for (src, day), v in found.items() if day == today.isoformat() and src in ("web", "ios"))
        emails = found.get(("customerio", today.isoformat()), [])
        if (tracked == live["messages"] and len(emails) >= live["emails_via_helper"]) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert tracked == live["messages"]
    assert len(emails) >= live["emails_via_helper"]
    stored = [orjson.loads(line) for (src, day), v in found.items() if day == today.isoformat() and src == "web" for line in v]
    assert all(m["receivedAt"][:10] == today.isoformat() for m in stored)
    assert {orjson.loads(orjson.loads(e)["body"])["metric"] for e in emails} >= {"delivered"}


def test_collector_batches_stay_under_the_request_limit(collector_url, gs_home):
    from growth_stack_dagster import config
    from growth_stack_dagster.simulate.sinks import CollectorSender

    sender = CollectorSender(collector_url, config.write_keys())
    for k in range(1500):  # ~1.5 MB in all: several requests, each under the collector's 500 KB
        sender.add("web", {"type": "track", "event": "Product Viewed", "anonymousId": f"a{k}",
                           "messageId": f"m{k}", "properties": {"pad": "x" * 900},
                           "originalTimestamp": "2026-11-26T10:00:00.000Z", "receivedAt": "ignored"})
    assert sender.close() == {"web": 1500}
    assert sender.requests >= 3
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        lines = [line for (src, _), v in read_event_lines(gs_home / "events").items() if src == "web" for line in v]
        if len(lines) == 1500:
            break
        time.sleep(0.5)
    stored = {orjson.loads(line)["messageId"]: orjson.loads(line) for line in lines}
    assert len(stored) == 1500
    assert stored["m0"]["originalTimestamp"] == "2026-11-26T10:00:00.000Z" and stored["m0"]["receivedAt"] != "ignored"
