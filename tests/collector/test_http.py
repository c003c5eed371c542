"""The tracking API over HTTP: browser paths and CORS, write key in the body, batches, clock skew."""

from __future__ import annotations

import datetime as dt
import gzip
from pathlib import Path

import orjson
import requests

from tests.collector.helpers import wait_lines

ORIGIN = "https://shop.example.com"


def test_cors_preflight_and_simple_request(collector_url: str, gs_home: Path) -> None:
    pre = requests.options(collector_url + "/v1/batch", headers={
        "Origin": ORIGIN, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type, anonymousid"}, timeout=10)
    assert pre.status_code == 200
    # any origin, and no credentials: write keys are not cookies (issue 10 §5 corrected the echo + credentials)
    assert pre.headers["Access-Control-Allow-Origin"] == "*"
    assert "Access-Control-Allow-Credentials" not in pre.headers
    assert "POST" in pre.headers["Access-Control-Allow-Methods"]
    allowed = pre.headers["Access-Control-Allow-Headers"].lower()
    assert "authorization" in allowed and "content-type" in allowed
    assert int(pre.headers["Access-Control-Max-Age"]) > 0
    # analytics.js posts text/plain (no preflight) to one-letter paths with writeKey in the body
    body = orjson.dumps({"writeKey": "web-dev-key", "anonymousId": "a-1", "event": "Viewed Product"})
    r = requests.post(collector_url + "/v1/t", data=body,
                      headers={"Origin": ORIGIN, "Content-Type": "text/plain"}, timeout=10)
    assert r.status_code == 200 and r.json() == {"success": True}
    assert r.headers["Access-Control-Allow-Origin"] == "*"
    assert "Access-Control-Allow-Credentials" not in r.headers
    [(source, line)] = wait_lines(gs_home, 1)
    assert source == "web" and line["type"] == "track" and "writeKey" not in line


def test_batch_merges_context_stamps_and_corrects_skew(collector_url: str, gs_home: Path) -> None:
    now = dt.datetime.now(dt.timezone.utc)
    skew = dt.timedelta(hours=3)  # the device clock runs 3 h fast
    client_now = now + skew
    event_time = client_now - dt.timedelta(minutes=10)
    body = {
        "writeKey": "ios-dev-key",
        "sentAt": client_now.isoformat(),
        "context": {"app": {"version": "2.1"}, "device": {"type": "ios"}},
        "integrations": {"All": True},
        "batch": [
            {"type": "screen", "anonymousId": "a-9", "name": "Home", "timestamp": event_time.isoformat(),
             "context": {"device": {"type": "ipad"}}},
            {"type": "identify", "userId": 42, "traits": {"age": 30}, "messageId": "fixed-id",
             "integrations": {"Amplitude": False}},
        ],
    }
    r = requests.post(collector_url + "/v1/batch", data=gzip.compress(orjson.dumps(body)),
                      headers={"Content-Type": "application/json", "Content-Encoding": "gzip"}, timeout=10)
    assert r.status_code == 200, r.text
    lines = {m["type"]: m for _, m in wait_lines(gs_home, 2)}
    screen, identify = lines["screen"], lines["identify"]
    # own context keys win over the batch's; the batch's fill in the rest
    assert screen["context"] == {"app": {"version": "2.1"}, "device": {"type": "ipad"}}
    assert identify["context"] == body["context"]
    assert identify["integrations"] == {"All": True, "Amplitude": False}
    assert identify["userId"] == "42" and identify["messageId"] == "fixed-id"
    assert screen["messageId"] and screen["messageId"] != "fixed-id"
    assert screen["sentAt"] == body["sentAt"] and screen["originalTimestamp"] == event_time.isoformat()
    corrected = dt.datetime.fromisoformat(screen["timestamp"])
    received = dt.datetime.fromisoformat(screen["receivedAt"])
    assert abs((corrected - (now - dt.timedelta(minutes=10))).total_seconds()) < 5
    assert corrected == received - (client_now - event_time) or \
        abs((corrected - (received - (client_now - event_time))).total_seconds()) < 0.002
    assert identify["timestamp"] == identify["receivedAt"]  # no client time: received time


def test_health(collector_url: str) -> None:
    r = requests.get(collector_url + "/health", timeout=10)
    assert r.status_code == 200 and r.json()["ok"] is True


def test_rudderstack_node_sdk_request_shape(collector_url: str, gs_home: Path) -> None:
    # What @rudderstack/rudder-sdk-node 3.x sends (seen on the wire): gzipped JSON, axios' default
    # form-urlencoded Content-Type, Basic auth, top-level sentAt and timestamp.
    body = {"batch": [{"type": "track", "userId": "r1", "event": "Node Event", "messageId": "node-1",
                       "context": {"library": {"name": "analytics-node", "version": "3.0.13"}},
                       "timestamp": "2026-11-26T12:00:00.000Z", "sentAt": "2026-11-26T12:00:00.100Z"}],
            "timestamp": "2026-11-26T12:00:00.100Z", "sentAt": "2026-11-26T12:00:00.100Z"}
    r = requests.post(collector_url + "/v1/batch", data=gzip.compress(orjson.dumps(body)), auth=("ios-dev-key", ""),
                      headers={"Content-Type": "application/x-www-form-urlencoded", "Content-Encoding": "gzip",
                               "Accept": "application/json, text/plain, */*"}, timeout=10)
    assert r.status_code == 200, r.text
    [(source, line)] = wait_lines(gs_home, 1)
    assert source == "ios" and line["messageId"] == "node-1" and line["event"] == "Node Event"


def test_rudderstack_js_beacon_path(collector_url: str, gs_home: Path) -> None:
    # @rudderstack/analytics-js with useBeacon: sendBeacon(<dataplane>/beacon/v1/batch?writeKey=..., text/plain blob)
    body = orjson.dumps({"batch": [{"type": "page", "anonymousId": "a-7", "name": "Landing", "messageId": "b-1"}],
                         "sentAt": "2026-11-26T12:00:00.000Z"})
    bad = requests.post(collector_url + "/beacon/v1/batch?writeKey=nope", data=body,
                        headers={"Content-Type": "text/plain;charset=UTF-8"}, timeout=10)
    assert bad.status_code == 401
    r = requests.post(collector_url + "/beacon/v1/batch?writeKey=web-dev-key", data=body,
                      headers={"Content-Type": "text/plain;charset=UTF-8", "Origin": ORIGIN}, timeout=10)
    assert r.status_code == 200, r.text
    [(source, line)] = wait_lines(gs_home, 1)
    assert source == "web" and line["messageId"] == "b-1" and line["type"] == "page"
