"""The demo's short summary (from a real DuckDB file and the router's state file) and the live
simulation through a real collector."""

from __future__ import annotations

import json
import time
from pathlib import Path

import duckdb

from growth_stack_dagster import config, eventfiles
from growth_stack_dagster.run_all import summary_lines
from growth_stack_dagster.simulate.live import Shopper, run_live, shoppers


def test_summary_leaves_out_what_does_not_exist_yet(tmp_path: Path) -> None:
    warehouse = tmp_path / "w.duckdb"
    assert summary_lines(warehouse, tmp_path / "router") == []
    with duckdb.connect(str(warehouse)) as con:
        con.execute("create schema events; create table events._loaded_messages as select range as message_id from range(1234)")
    assert summary_lines(warehouse, tmp_path / "router") == ["Events captured: 1,234"]
    with duckdb.connect(str(warehouse)) as con:
        con.execute("create schema marts; create table marts.customers as select range as customer_id from range(10)")
        con.execute("create table marts.customer_identifiers as select range as id from range(25)")
        con.execute("create table marts.customer_traits as select range as customer_id, range < 3 as is_high_value from range(10)")
        con.execute("create schema activation_state; create table activation_state.records (sync varchar, record_key varchar, checksum varchar)")
        con.execute("insert into activation_state.records values ('hubspot__contacts', 'a', 'x'), "
                    "('hubspot__companies', 'b', 'y'), ('zendesk__users', 'c', 'z'), ('zendesk__users', 'd', null)")
    (tmp_path / "router").mkdir()
    (tmp_path / "router" / "state.json").write_text(json.dumps({"routes": {
        "email_opens_to_amplitude": {"counts": {"delivered": 40, "failed": 1}}, "quotes_to_hubspot": {"counts": {"delivered": 2}}}}))
    assert summary_lines(warehouse, tmp_path / "router") == [
        "Events captured: 1,234",
        "Customers stitched: 10 (from 25 identifiers)",
        "High-value customers: 3",
        "Records synced: hubspot 2, zendesk 1",
        "Routed events: 42 (email_opens_to_amplitude 40, quotes_to_hubspot 2)",
    ]


def test_live_simulation_sends_events_that_the_collector_writes(gs_home: Path, collector_url: str) -> None:
    truth = gs_home / "truth.jsonl"
    truth.write_text(json.dumps({"identifiers": {"user_id": "u-1"}, "devices": [{"source": "web", "anonymous_id": "a-1"}]})
                     + "\n" + json.dumps({"identifiers": {"user_id": None}, "devices": [{"source": "ios", "anonymous_id": "i-1"}]}) + "\n")
    people = shoppers(truth)
    assert people == [Shopper("a-1", "u-1")]
    from growth_stack_dagster.simulate.sinks import CollectorSender

    sender = CollectorSender(collector_url, config.write_keys())

    def send(batch):
        for message in batch:
            sender.add("web", message)
        sender.close()

    sent = run_live(send, people, events_per_minute=120, seed=1, tick_seconds=1.0, ticks=3, sleep=lambda s: None)
    assert sent == 6
    deadline = time.monotonic() + 20
    lines: list[dict] = []
    while time.monotonic() < deadline and len(lines) < sent:
        time.sleep(0.5)
        lines = [json.loads(line) for f in eventfiles.closed_files(config.events_dir()) for line in f.read_text().splitlines()]
    assert len(lines) == sent
    assert {m["type"] for m in lines} <= {"page", "track"} and all(m["anonymousId"] == "a-1" for m in lines)
    assert all(m["userId"] == "u-1" and m["receivedAt"] for m in lines)


def test_summary_states_the_moment_of_the_traits_and_the_simulators_ground_truth(tmp_path: Path) -> None:
    warehouse, simulation = tmp_path / "w.duckdb", tmp_path / "simulation"
    with duckdb.connect(str(warehouse)) as con:
        con.execute("create schema marts; create table marts.customer_traits as select range as customer_id, "
                    "range < 21 as is_high_value, timestamptz '2026-12-04 19:52:10+00' as as_of_at from range(100)")
    assert summary_lines(warehouse, tmp_path / "router", simulation) == [
        "High-value customers: 21 (traits as of 2026-12-04 19:52:10 UTC)"]  # no simulation: no ground truth line
    simulation.mkdir()
    (simulation / "summary.json").write_text(json.dumps({
        "params": {"as_of": "2026-12-04", "as_of_at": "2026-12-04T00:00:00+00:00"}, "people": {"high_value": 28}}))
    lines = summary_lines(warehouse, tmp_path / "router", simulation)
    assert lines[:2] == ["High-value customers: 21 (traits as of 2026-12-04 19:52:10 UTC)",
                         "Simulator's ground truth: 28 high-value as of 2026-12-04 00:00:00 UTC"]
    assert "GROWTH_STACK_AS_OF=2026-12-04T00:00:00Z" in lines[2] and "one year before" in lines[2]
    # a build at the ground truth's moment: the same moment, no explanation needed
    with duckdb.connect(str(warehouse)) as con:
        con.execute("update marts.customer_traits set as_of_at = timestamptz '2026-12-04 00:00:00+00'")
    assert summary_lines(warehouse, tmp_path / "router", simulation)[1:] == [
        "Simulator's ground truth: 28 high-value as of 2026-12-04 00:00:00 UTC"]
