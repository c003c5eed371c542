"""Safe defaults at the edge (issue 10 §5): no public listening with development credentials,
CORS without credentials, source names matched in full."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import orjson
import pytest
import requests
from click.testing import CliRunner

from tests.servers import CLI, REPO, free_port

COLLECTOR_SECRETS = ("GROWTH_STACK_WRITE_KEYS", "STRIPE_WEBHOOK_SECRET", "CUSTOMERIO_WEBHOOK_SIGNING_KEY",
                     "GROWTH_STACK_WEBHOOK_SECRET", "HUBSPOT_CLIENT_SECRET")
OWN_SECRETS = {"GROWTH_STACK_WRITE_KEYS": "web=7f3c-own-key", "STRIPE_WEBHOOK_SECRET": "whsec_own",
               "CUSTOMERIO_WEBHOOK_SIGNING_KEY": "own-cio-key",
               "GROWTH_STACK_WEBHOOK_SECRET": "whsec_b3duLXN0YW5kYXJkLXNlY3JldA==",
               "HUBSPOT_CLIENT_SECRET": "own-hubspot-app-secret"}


def _run_cli(args: list[str], home: Path, **env: str) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items()
            if k not in (*COLLECTOR_SECRETS, "GROWTH_STACK_SANDBOX_TOKEN")}
    return subprocess.run([*CLI, *args], cwd=REPO, capture_output=True, text=True, timeout=60,
                          env={**base, "GROWTH_STACK_HOME": str(home), **env})


def _nothing_listens(port: int) -> bool:
    try:
        requests.get(f"http://127.0.0.1:{port}/", timeout=1)
    except requests.ConnectionError:
        return True
    return False


@pytest.mark.parametrize("host", ["0.0.0.0", "10.1.2.3", "::"])
def test_collector_refuses_a_public_address_with_development_credentials(tmp_path: Path, host: str) -> None:
    port = free_port()
    out = _run_cli(["collector", "--host", host, "--port", str(port)], tmp_path)
    assert out.returncode == 2, out.stderr
    assert f"Refusing to listen on {host}" in out.stderr
    for name in COLLECTOR_SECRETS:
        assert name in out.stderr
    assert "--allow-development-keys" in out.stderr
    # refused before anything was created or bound
    assert not (tmp_path / "events").exists() and _nothing_listens(port)


def test_collector_names_only_the_credentials_still_at_their_development_value(tmp_path: Path) -> None:
    # one secret in rotation still holds the development value; the write keys keep one dev key
    env = {**OWN_SECRETS, "STRIPE_WEBHOOK_SECRET": "whsec_own,whsec_sandbox_stripe",
           "GROWTH_STACK_WRITE_KEYS": "web=7f3c-own-key,ios=ios-dev-key"}
    out = _run_cli(["collector", "--host", "0.0.0.0", "--port", str(free_port())], tmp_path, **env)
    assert out.returncode == 2
    message = out.stderr.split("Refusing", 1)[1]
    assert "GROWTH_STACK_WRITE_KEYS" in message and "STRIPE_WEBHOOK_SECRET" in message
    assert "CUSTOMERIO_WEBHOOK_SIGNING_KEY" not in message and "GROWTH_STACK_WEBHOOK_SECRET" not in message
    assert "whsec_own" not in out.stderr and "7f3c-own-key" not in out.stderr  # secrets never printed


def test_sandbox_refuses_a_public_address_with_the_development_token(tmp_path: Path) -> None:
    port = free_port()
    out = _run_cli(["sandbox", "--host", "0.0.0.0", "--port", str(port)], tmp_path)
    assert out.returncode == 2, out.stderr
    assert "GROWTH_STACK_SANDBOX_TOKEN" in out.stderr and "--allow-development-keys" in out.stderr
    assert not (tmp_path / "sandbox").exists() and _nothing_listens(port)


def _served(monkeypatch: pytest.MonkeyPatch, module, attr: str) -> list[tuple]:
    """Replace the function that would bind with one that records its arguments: a test never
    listens on a non-loopback address."""
    calls: list[tuple] = []
    monkeypatch.setattr(module, attr, lambda *a, **k: calls.append((a, k)))
    return calls


def test_own_credentials_or_the_explicit_flag_let_the_commands_start(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    import uvicorn

    from growth_stack_dagster.collector import command as collector
    from growth_stack_dagster.sandbox.command import sandbox_command

    monkeypatch.setenv("GROWTH_STACK_HOME", str(tmp_path))
    for name in (*COLLECTOR_SECRETS, "GROWTH_STACK_SANDBOX_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    served = _served(monkeypatch, collector, "serve")
    runner = CliRunner()
    refused = runner.invoke(collector.collector_command, ["--host", "0.0.0.0", "--port", "1"])
    assert refused.exit_code == 2 and served == []
    allowed = runner.invoke(collector.collector_command,
                            ["--host", "0.0.0.0", "--port", "1", "--allow-development-keys"])
    assert allowed.exit_code == 0, allowed.output
    for name, value in OWN_SECRETS.items():
        monkeypatch.setenv(name, value)
    own = runner.invoke(collector.collector_command, ["--host", "0.0.0.0", "--port", "1"])
    assert own.exit_code == 0, own.output
    assert [a[1] for a, _ in served] == ["0.0.0.0", "0.0.0.0"]

    ran = _served(monkeypatch, uvicorn, "run")
    assert runner.invoke(sandbox_command, ["--host", "0.0.0.0", "--port", "1"]).exit_code == 2 and ran == []
    assert runner.invoke(sandbox_command, ["--host", "0.0.0.0", "--port", "1",
                                           "--allow-development-keys"]).exit_code == 0
    monkeypatch.setenv("GROWTH_STACK_SANDBOX_TOKEN", "sk_own_token")
    assert runner.invoke(sandbox_command, ["--host", "0.0.0.0", "--port", "1"]).exit_code == 0
    assert [k["host"] for _, k in ran] == ["0.0.0.0", "0.0.0.0"]


def test_cors_answers_any_origin_without_credentials(shared_collector: tuple[str, Path]) -> None:
    url, _ = shared_collector
    origin = {"Origin": "https://shop.example.com"}
    body = orjson.dumps({"writeKey": "web-dev-key", "anonymousId": "a-1", "event": "Viewed"})
    answers = [
        requests.options(url + "/v1/track", headers={**origin, "Access-Control-Request-Method": "POST"}, timeout=10),
        requests.post(url + "/v1/t", data=body, headers={**origin, "Content-Type": "text/plain"}, timeout=10),
        requests.post(url + "/beacon/v1/batch?writeKey=web-dev-key", data=orjson.dumps({"batch": [{"type": "page", "anonymousId": "a-1"}]}),
                      headers={**origin, "Content-Type": "text/plain"}, timeout=10),
        requests.post(url + "/v1/track", data=body, headers={**origin, "Content-Type": "application/json",
                                                             "Authorization": "Basic bm9wZTo="}, timeout=10),
        requests.post(url + "/v1/webhook/stripe", data=b"{}", headers=origin, timeout=10),
    ]
    assert [r.status_code for r in answers] == [200, 200, 200, 401, 401]
    for r in answers:
        assert r.headers["Access-Control-Allow-Origin"] == "*", r.url
        assert "Access-Control-Allow-Credentials" not in r.headers, r.url


def test_a_source_name_with_a_trailing_newline_names_no_folder(collector_url: str, gs_home: Path) -> None:
    from growth_stack_dagster.eventfiles import check_source_name

    with pytest.raises(ValueError, match="lower-case"):
        check_source_name("web\n")
    assert check_source_name("web") == "web"
    r = requests.post(collector_url + "/v1/webhook/web%0A", data=b'{"id": "evt_1"}', timeout=10)
    assert r.status_code == 404 and r.json()["code"] == "unknown_source"
    r = requests.post(collector_url + "/v1/webhook/orders%0A", data=b'{"id": "evt_1"}', timeout=10)
    assert r.status_code == 404
    events = gs_home / "events"
    assert not events.exists() or not any("\n" in p.name for p in events.rglob("*"))


def test_a_write_key_whose_source_cannot_name_a_folder_stops_startup(tmp_path: Path) -> None:
    out = _run_cli(["collector", "--port", str(free_port())], tmp_path,
                   GROWTH_STACK_WRITE_KEYS="Web Shop=abc123")
    assert out.returncode == 1
    assert "GROWTH_STACK_WRITE_KEYS" in out.stderr and "'Web Shop'" in out.stderr
    assert "abc123" not in out.stderr


def test_every_built_in_secret_counts_as_a_development_credential() -> None:
    """The project's shipped defaults (config's DEFAULT_* credentials, and any whsec_ literal in the
    package) are all known as development values."""
    import re

    from growth_stack_dagster import config

    built_in = config.development_secret_values()
    credentials = {name: getattr(config, name) for name in dir(config)
                   if name.startswith("DEFAULT_") and re.search(r"SECRET|KEY|TOKEN", name)}
    assert {"DEFAULT_STANDARD_WEBHOOK_SECRET", "DEFAULT_HUBSPOT_CLIENT_SECRET"} <= set(credentials)
    for name, value in credentials.items():
        values = config.parse_write_keys(value) if name == "DEFAULT_WRITE_KEYS" else [value]
        assert set(values) <= built_in, name
    package = Path(REPO) / "growth_stack_dagster"
    literals = {m for f in package.rglob("*.py") for m in re.findall(r"[\"'](whsec_[A-Za-z0-9+/=]{16,})[\"']",
                                                                       f.read_text())}
    assert literals and literals <= built_in, literals - built_in


def test_a_built_in_secret_under_another_variable_is_still_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    from growth_stack_dagster import config
    from growth_stack_dagster.collector.command import development_credentials_in_use

    for name, value in OWN_SECRETS.items():
        monkeypatch.setenv(name, value)
    assert development_credentials_in_use() == []
    # the stack's Standard Webhooks secret as Stripe's webhook secret, the sandbox token as HubSpot's
    # client secret: both built into the project, so both still development credentials
    monkeypatch.setenv("STRIPE_WEBHOOK_SECRET", "whsec_own," + config.DEFAULT_STANDARD_WEBHOOK_SECRET)
    monkeypatch.setenv("HUBSPOT_CLIENT_SECRET", config.DEFAULT_SANDBOX_TOKEN)
    assert development_credentials_in_use() == ["STRIPE_WEBHOOK_SECRET", "HUBSPOT_CLIENT_SECRET"]
