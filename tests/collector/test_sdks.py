"""The official Segment and RudderStack Python SDKs work against the collector unchanged."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import rudderstack.analytics.client as rudder
import segment.analytics as segment

from tests.collector.helpers import wait_lines

CALLS = ("track", "identify", "page", "screen", "group", "alias")


def _send_all(client) -> dict[str, dict]:
    """One call of each type; returns the SDK's message by type."""
    sent = {}
    _, sent["track"] = client.track(user_id="u-1", event="Order Completed", properties={"revenue": 42.5},
                                    context={"ip": "10.0.0.1"})
    _, sent["identify"] = client.identify(user_id="u-1", traits={"email": "ada@example.com", "age": 36})
    _, sent["page"] = client.page(anonymous_id="anon-1", category="Docs", name="Pricing",
                                  properties={"path": "/pricing"})
    _, sent["screen"] = client.screen(user_id="u-1", name="Cart", properties={"items": 2})
    _, sent["group"] = client.group(user_id="u-1", group_id="acme", traits={"plan": "wholesale"})
    _, sent["alias"] = client.alias(previous_id="anon-1", user_id="u-1")
    return sent


def _check(lines: list[tuple[str, dict]], sent: dict[str, dict], source: str) -> None:
    by_id = {m["messageId"]: (s, m) for s, m in lines}
    assert len(by_id) == len(lines) == len(CALLS)
    for kind, msg in sent.items():
        line_source, stored = by_id[msg["messageId"]]
        assert line_source == source
        assert stored["type"] == kind
        assert "writeKey" not in stored
        assert stored["receivedAt"].endswith("Z") and stored["sentAt"]
        assert stored["originalTimestamp"] == msg["timestamp"]
        # client clock == collector clock here, so the corrected timestamp is within seconds of it
        corrected = dt.datetime.fromisoformat(stored["timestamp"])
        assert abs((corrected - dt.datetime.fromisoformat(msg["timestamp"])).total_seconds()) < 5
        assert stored["context"]["library"]["name"] == "analytics-python"
    stored = {m["type"]: m for _, m in lines}
    assert stored["track"]["event"] == "Order Completed" and stored["track"]["properties"] == {"revenue": 42.5}
    assert stored["track"]["context"]["ip"] == "10.0.0.1"
    assert stored["page"]["anonymousId"] == "anon-1" and stored["page"]["name"] == "Pricing"
    assert stored["screen"]["name"] == "Cart"
    assert stored["group"]["groupId"] == "acme"
    assert stored["alias"]["previousId"] == "anon-1" and stored["alias"]["userId"] == "u-1"


def test_segment_sdk_sync_mode(collector_url: str, gs_home: Path) -> None:
    client = segment.Client("server-dev-key", host=collector_url, sync_mode=True)
    sent = _send_all(client)
    _check(wait_lines(gs_home, len(CALLS)), sent, "server")


def test_segment_sdk_batched_gzip_flush(collector_url: str, gs_home: Path) -> None:
    errors = []
    client = segment.Client("web-dev-key", host=collector_url, gzip=True, upload_size=4,
                            on_error=lambda e, batch: errors.append(e))
    sent = _send_all(client)
    client.flush()
    client.join()
    assert not errors
    _check(wait_lines(gs_home, len(CALLS)), sent, "web")


def test_rudderstack_sdk(collector_url: str, gs_home: Path) -> None:
    client = rudder.Client("ios-dev-key", host=collector_url, sync_mode=True)  # gzip on by default
    sent = _send_all(client)
    _check(wait_lines(gs_home, len(CALLS)), sent, "ios")


def test_segment_sdk_bad_key_is_not_retried(collector_url: str, gs_home: Path) -> None:
    client = segment.Client("no-such-key", host=collector_url, sync_mode=True)
    try:
        client.track(user_id="u", event="E")
    except segment.request.APIError as exc:
        assert exc.status == 401 and exc.code == "unauthorized"
    else:
        raise AssertionError("a bad write key was accepted")
