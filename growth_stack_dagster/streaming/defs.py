"""Streaming routes as assets: one observable asset per route of the routes file, downstream of the
event files of its sources, observed from the router's state file, with a lag check. Dagster does
not carry the messages (the `growth-stack router` process does); it shows and checks them."""

import os
import time
import warnings

import dagster as dg

from growth_stack_dagster.router.routes import Route, load_routes
from growth_stack_dagster.router.state import read_state
from growth_stack_dagster.streaming.status import lag_verdict, route_status

GROUP = "streaming"


def route_key(route: Route) -> dg.AssetKey:
    return dg.AssetKey(["streaming", route.name])


def event_files_key(source: str) -> dg.AssetKey:
    return dg.AssetKey(["event_files", source])


def build_defs(routes: list[Route]) -> dg.Definitions:
    """Assets, checks, a job and a schedule for `routes`."""
    sources = sorted({s for r in routes for s in (r.sources or ["all"])})
    event_files = [dg.AssetSpec(event_files_key(s), group_name=GROUP, kinds={"file"},
                                description=f"The collector's event files of source {s!r} (the routes' input).")
                   for s in sources]
    specs = [dg.AssetSpec(route_key(r), group_name=GROUP, kinds={r.destination},
                          deps=[event_files_key(s) for s in (r.sources or ["all"])],
                          description=f"Streaming route {r.name}: {', '.join(r.sources or ['every source'])} -> "
                                      f"{r.destination} {r.object} (transformation {r.transform}).",
                          metadata={"max_lag_seconds": r.options.max_lag_seconds,
                                    "batch_size": r.options.batch_size,
                                    "requests_per_second": r.options.requests_per_second})
             for r in routes]

    def observe(context: dg.AssetExecutionContext):
        """Observe each route from `$GROWTH_STACK_HOME/router/state.json`."""
        state, now = read_state(), time.time()
        for r in routes:
            if route_key(r) not in context.selected_asset_keys:
                continue
            status = route_status(state, r.name, now)
            metadata = {k: v for k, v in status.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
            metadata["router_running"] = bool(status.get("running"))
            yield dg.ObserveResult(asset_key=route_key(r), metadata=metadata)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.BetaWarning)  # the one decorator for observable assets with deps
        streaming_routes = dg.multi_observable_source_asset(name="streaming_routes", specs=specs,
                                                            can_subset=True)(observe)

    def lag_check(r: Route) -> dg.AssetChecksDefinition:
        @dg.asset_check(asset=route_key(r), name="lag_within_limit",
                        description=f"Fails when the route is more than {r.options.max_lag_seconds:.0f} s behind.")
        def _check() -> dg.AssetCheckResult:
            status = route_status(read_state(), r.name, time.time())
            passed, text = lag_verdict(status, r.options.max_lag_seconds)
            return dg.AssetCheckResult(passed=passed, description=text, metadata={
                "lag_seconds": float(status.get("lag_seconds", 0.0)),
                "max_lag_seconds": float(r.options.max_lag_seconds)})

        _check.__name__ = f"{r.name}_lag"
        return _check

    checks = [lag_check(r) for r in routes]
    job = dg.define_asset_job("streaming_observe_job", selection=dg.AssetSelection.keys(*[route_key(r) for r in routes])
                              .without_checks() | dg.AssetSelection.checks(*checks))
    schedule = dg.ScheduleDefinition(name="streaming_observe_schedule", job=job, cron_schedule="*/5 * * * *",
                                     default_status=dg.DefaultScheduleStatus.RUNNING)
    return dg.Definitions(assets=[*event_files, streaming_routes], asset_checks=checks, jobs=[job],
                          schedules=[schedule])


defs = build_defs(load_routes(os.environ.get("GROWTH_STACK_ROUTES") or None))
