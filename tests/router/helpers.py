"""Helpers for the router tests: the stack on loopback, a router process, signed webhooks, read-backs."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import requests
import yaml

from growth_stack_dagster import config
from growth_stack_dagster.collector.signatures import customerio_signature
from growth_stack_dagster.router.routes import DEFAULT_ROUTES_FILE
from tests.servers import CLI, REPO, free_port, run_server

TOKEN = config.DEFAULT_SANDBOX_TOKEN


@contextlib.contextmanager
def stack(home: Path, collector_env: dict[str, str] | None = None) -> Iterator[dict[str, str]]:
    """A collector and a sandbox whose webhooks go to that collector; yields their URLs."""
    collector_port = free_port()
    collector = f"http://127.0.0.1:{collector_port}"
    env = {"GROWTH_STACK_HOME": str(home), "GROWTH_STACK_COLLECTOR_URL": collector,
           "GROWTH_STACK_COLLECTOR_WORKERS": "2", **(collector_env or {})}
    with run_server("collector", "/health", env, port=collector_port, log_path=home / "collector.log"):
        with run_server("sandbox", "/_admin/health", env, log_path=home / "sandbox.log") as (sandbox, _):
            yield {"collector": collector, "sandbox": sandbox}


def routes_file(tmp: Path, **options: dict[str, Any]) -> Path:
    """The repository's routes file with some routes' options changed: {route name: {option: value}}."""
    data = yaml.safe_load(DEFAULT_ROUTES_FILE.read_text())
    for route in data["routes"]:
        route.setdefault("options", {}).update(options.get(route["name"], {}))
    path = tmp / "routes.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


class RouterProcess:
    """`growth-stack router` as a subprocess that tests can stop, SIGKILL and restart."""

    def __init__(self, home: Path, sandbox: str, routes: Path | None = None, extra_env: dict[str, str] | None = None):
        self.home, self.routes = home, routes
        self.env = {**os.environ, "GROWTH_STACK_HOME": str(home), "GROWTH_STACK_SANDBOX_URL": sandbox,
                    **(extra_env or {})}
        self.proc: subprocess.Popen | None = None

    def start(self) -> RouterProcess:
        args = [*CLI, "router"] + (["--routes", str(self.routes)] if self.routes else [])
        log = open(self.home / "router.log", "ab")
        self.proc = subprocess.Popen(args, env=self.env, cwd=REPO, stdout=log, stderr=log)
        log.close()
        return self

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=30)

    def command(self, *args: str) -> subprocess.CompletedProcess:
        """Run `growth-stack router <args>` to completion (replay, dead-letters)."""
        extra = ["--routes", str(self.routes)] if self.routes else []
        return subprocess.run([*CLI, "router", *args, *extra], env=self.env, cwd=REPO, capture_output=True,
                              text=True, timeout=120)

    def __enter__(self) -> RouterProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.kill(signal.SIGTERM)


def router_state(home: Path) -> dict[str, Any]:
    try:
        return json.loads((home / "router" / "state.json").read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def wait_until(predicate: Callable[[], Any], timeout: float, what: str, every: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def customerio_webhook(customer_id: str, email: str, metric: str = "opened", event_id: str | None = None,
                       timestamp: int | None = None) -> tuple[bytes, dict[str, str]]:
    """A Customer.io email reporting webhook body and its signed headers (the sandbox's key)."""
    ts = timestamp or int(time.time())
    body = json.dumps({
        "event_id": event_id or uuid.uuid4().hex, "object_type": "email", "metric": metric, "timestamp": ts,
        "data": {"customer_id": customer_id, "identifiers": {"id": customer_id, "email": email},
                 "email_address": email, "campaign_id": 7, "action_id": 3, "delivery_id": uuid.uuid4().hex,
                 "subject": "Spring sale"}}, separators=(",", ":")).encode()
    now = str(int(time.time()))
    return body, {"Content-Type": "application/json", "X-CIO-Timestamp": now,
                  "X-CIO-Signature": customerio_signature(body, config.DEFAULT_CUSTOMERIO_WEBHOOK_SIGNING_KEY, int(now))}


def amplitude_events(sandbox: str, user_id: str) -> list[dict[str, Any]]:
    """A user's events as Amplitude's Dashboard API returns them (user search, then user activity)."""
    auth = (TOKEN, TOKEN)
    found = requests.get(f"{sandbox}/amplitude/api/2/usersearch", params={"user": user_id}, auth=auth, timeout=10)
    found.raise_for_status()
    matches = found.json()["matches"]
    if not matches:
        return []
    activity = requests.get(f"{sandbox}/amplitude/api/2/useractivity", auth=auth, timeout=10,
                            params={"user": matches[0]["amplitude_id"], "limit": 1000})
    activity.raise_for_status()
    return activity.json()["events"]


def hubspot(sandbox: str, method: str, path: str, body: Any = None) -> requests.Response:
    return requests.request(method, f"{sandbox}/hubspot{path}", json=body, timeout=10,
                            headers={"Authorization": f"Bearer {TOKEN}"})


def faults(sandbox: str, **rule: Any) -> int:
    """Add a fault rule to the sandbox; returns its id."""
    response = requests.post(f"{sandbox}/_admin/faults", json=rule, timeout=10)
    response.raise_for_status()
    return response.json()["id"]


def clear_faults(sandbox: str, rule_id: int | None = None) -> None:
    """Remove every fault rule, or only `rule_id`."""
    params = {} if rule_id is None else {"id": rule_id}
    requests.delete(f"{sandbox}/_admin/faults", params=params, timeout=10).raise_for_status()
