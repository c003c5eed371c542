"""The sandbox's HubSpot counts requests in a rolling 10-second window (190 for Professional private
apps) as HubSpot does, so a burst after idle never gets twice the limit; the engine's client-side
limiter keeps a sync inside it without a single 429."""

from __future__ import annotations

import time

import pytest
import requests

from growth_stack_dagster.activation import engine
from tests.activation.helpers import contact_row, hubspot_contacts, write_contacts, write_counts
from tests.servers import run_server

TOKEN = {"Authorization": "Bearer sk_test_sandbox"}


@pytest.fixture
def slow_hubspot(gs_home, monkeypatch):
    """A sandbox whose limits are scaled to a tenth: 19 requests per rolling 10 s."""
    env = {"GROWTH_STACK_HOME": str(gs_home), "GROWTH_STACK_SANDBOX_RATE_LIMIT_SCALE": "0.1"}
    with run_server("sandbox", "/_admin/health", env, log_path=gs_home / "sandbox.log") as (url, _):
        monkeypatch.setenv("GROWTH_STACK_SANDBOX_URL", url)
        yield url


def test_the_window_allows_its_limit_then_answers_hubspots_429_with_retry_after(slow_hubspot):
    time.sleep(1)  # idle first: a token bucket would now allow a double burst, a rolling window does not
    url = f"{slow_hubspot}/hubspot/crm/v3/objects/contacts"
    statuses = [requests.get(url, headers=TOKEN, timeout=10).status_code for _ in range(25)]
    assert statuses[:19] == [200] * 19 and set(statuses[19:]) == {429}
    refused = requests.get(url, headers=TOKEN, timeout=10)
    body = refused.json()
    assert (body["errorType"], body["policyName"]) == ("RATE_LIMIT", "TEN_SECONDLY_ROLLING")
    assert 1 <= int(refused.headers["Retry-After"]) <= 10
    assert write_counts(slow_hubspot)["rate_limited"] == 7


@pytest.mark.slow  # waits out a 10-second window on purpose
def test_a_sync_at_the_declared_rate_causes_no_429(slow_hubspot, gs_home):
    import dataclasses

    spec = dataclasses.replace(engine.resolve("hubspot_contacts_traits"), rate_limit=(19, 10.0), batch_size=10)
    rows = [contact_row(i) for i in range(230)]  # 23 upserts + 2 property requests: more than one window
    write_contacts(rows)
    started = time.monotonic()
    result = engine.run_sync(spec)
    elapsed = time.monotonic() - started
    assert (result.status, result.accepted) == ("success", 230)
    assert write_counts(slow_hubspot)["rate_limited"] == 0
    assert elapsed >= 10  # the limiter waited for the window instead of provoking 429s
    assert len(hubspot_contacts(slow_hubspot)) == 230


@pytest.mark.slow  # waits out a 10-second window on purpose
def test_requests_the_server_counts_late_still_draw_no_429(slow_hubspot, gs_home):
    import dataclasses

    # The first upserts are held 2 s before HubSpot counts them (queued behind other traffic): a client
    # that entered them in its window when they left would send their successors into a full window.
    upsert = "/hubspot/crm/v3/objects/contacts/batch/upsert"
    requests.post(f"{slow_hubspot}/_admin/faults", json={"prefix": upsert, "method": "POST", "kind": "slow",
                                                          "delay": 2.0, "count": 8}, timeout=10).raise_for_status()
    spec = dataclasses.replace(engine.resolve("hubspot_contacts_traits"), rate_limit=(19, 10.0), batch_size=10)
    rows = [contact_row(i) for i in range(300)]  # 30 upserts + 2 property requests: more than one window
    write_contacts(rows)
    result = engine.run_sync(spec)
    assert (result.status, result.accepted) == ("success", 300)
    assert write_counts(slow_hubspot)["rate_limited"] == 0
    assert len(hubspot_contacts(slow_hubspot)) == 300
