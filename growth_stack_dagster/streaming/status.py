"""What Dagster shows of a route: plain functions over the router's state file (no Dagster here)."""

from __future__ import annotations

from typing import Any

# The router saves its state several times a second; older than this it is not running.
STALE_AFTER_SECONDS = 30.0
NUMERIC_FIELDS = ("delivered", "duplicates", "skipped", "filtered", "failed", "dead_lettered")


def route_status(state: dict[str, Any], name: str, now: float) -> dict[str, Any]:
    """A route's numbers from the router's state: counts, lag (seconds), backlog, latency, and
    whether the router is running. The lag keeps growing while a stopped router leaves a backlog."""
    route = (state.get("routes") or {}).get(name)
    if route is None:
        return {"running": False, "known": False}
    counts = route.get("counts") or {}
    updated = float(state.get("updated_at") or 0)
    age = max(0.0, now - updated)
    running = age <= STALE_AFTER_SECONDS
    lag = float(route.get("lag_seconds") or 0.0)
    backlog = int(route.get("backlog_bytes") or 0)
    if not running and (lag > 0 or backlog > 0):
        lag += age
    out: dict[str, Any] = {"known": True, "running": running, "state_age_seconds": round(age, 1),
                           "lag_seconds": round(lag, 3), "backlog_bytes": backlog}
    out.update({k: int(counts.get(k, 0)) for k in NUMERIC_FIELDS})
    for key in ("latency_p50_seconds", "latency_p95_seconds"):
        if route.get(key) is not None:
            out[key] = float(route[key])
    if route.get("error"):
        out["error"] = str(route["error"])
    return out


def lag_verdict(status: dict[str, Any], max_lag_seconds: float) -> tuple[bool, str]:
    """(passed, a sentence) for the lag check of one route."""
    if not status.get("known"):
        return False, "The router has not run this route yet: start it with `growth-stack router`."
    if status.get("error"):
        return False, f"The route stopped: {status['error']}. Fix it and restart `growth-stack router`."
    lag = status["lag_seconds"]
    if lag > max_lag_seconds:
        hint = "" if status["running"] else " The router is not running: start `growth-stack router`."
        return False, f"The route is {lag:.0f} s behind (limit {max_lag_seconds:.0f} s).{hint}"
    return True, f"The route is {lag:.1f} s behind (limit {max_lag_seconds:.0f} s)."
