"""The routes in Dagster: observed from the router's state file, with a lag check that fails."""

from __future__ import annotations

import json
import time
from pathlib import Path

import dagster as dg

from growth_stack_dagster.router.routes import load_routes
from growth_stack_dagster.streaming.defs import build_defs


def _run(defs: dg.Definitions) -> dg.ExecuteInProcessResult:
    job = defs.resolve_job_def("streaming_observe_job")
    return job.execute_in_process(instance=dg.DagsterInstance.ephemeral())


def test_each_route_is_an_asset_downstream_of_its_event_files_observed_from_the_router_state(gs_home: Path) -> None:
    routes = load_routes()
    defs = build_defs(routes)
    graph = defs.resolve_asset_graph()
    key = dg.AssetKey(["streaming", "customerio_email_to_amplitude"])
    assert graph.get(key).parent_keys == {dg.AssetKey(["event_files", "customerio"])}
    assert dg.Definitions.merge(defs).resolve_schedule_def("streaming_observe_schedule").cron_schedule == "*/5 * * * *"

    (gs_home / "router").mkdir()
    state = {"updated_at": time.time(), "routes": {
        "customerio_email_to_amplitude": {"counts": {"delivered": 12, "failed": 3, "dead_lettered": 1},
                                          "lag_seconds": 0.4, "backlog_bytes": 0, "latency_p95_seconds": 0.2},
        "quote_intent_to_hubspot": {"counts": {"delivered": 2}, "lag_seconds": 95.0, "backlog_bytes": 500},
        "quote_intent_to_sales_webhook": {"counts": {}, "lag_seconds": 0, "backlog_bytes": 0}}}
    (gs_home / "router" / "state.json").write_text(json.dumps(state))
    result = _run(defs)
    assert result.success
    observed = {e.asset_observation_data.asset_observation.asset_key.path[-1]:
                e.asset_observation_data.asset_observation.metadata
                for e in result.all_events if e.event_type_value == "ASSET_OBSERVATION"}
    amp = observed["customerio_email_to_amplitude"]
    assert (amp["delivered"].value, amp["failed"].value, amp["dead_lettered"].value, amp["lag_seconds"].value) == (
        12, 3, 1, 0.4)
    checks = {e.event_specific_data.asset_key.path[-1]: e.event_specific_data.passed
              for e in result.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"}
    assert checks == {"customerio_email_to_amplitude": True, "quote_intent_to_hubspot": False,
                      "quote_intent_to_sales_webhook": True}


def test_the_code_location_holds_the_streaming_routes() -> None:
    from growth_stack_dagster.definitions import defs

    keys = defs.resolve_asset_graph().get_all_asset_keys()
    assert {dg.AssetKey(["streaming", r.name]) for r in load_routes()} <= keys
