"""The settings the browser SDKs load first, served by the collector (sdk_settings.py)."""

from __future__ import annotations

import base64

import requests

ORIGIN = "https://shop.example.com"


def test_segment_cdn_settings_send_every_call_to_the_collector(shared_collector) -> None:
    url, _ = shared_collector
    r = requests.get(f"{url}/v1/projects/web-dev-key/settings", headers={"Origin": ORIGIN}, timeout=10)
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    assert r.headers["access-control-allow-origin"] in (ORIGIN, "*")
    io = r.json()["integrations"]["Segment.io"]
    host = url.removeprefix("http://")
    assert (io["apiKey"], io["apiHost"], io["protocol"]) == ("web-dev-key", f"{host}/v1", "http")
    assert list(r.json()["integrations"]) == ["Segment.io"] and r.json()["remotePlugins"] == []
    assert r.json()["metrics"]["sampleRate"] == 0  # the SDK's own metrics are never sent
    bad = requests.get(f"{url}/v1/projects/not-a-key/settings", timeout=10)
    assert bad.status_code == 404 and bad.json()["code"] == "unknown_write_key"


def test_rudderstack_source_config_by_query_or_basic_auth(shared_collector) -> None:
    url, _ = shared_collector
    by_query = requests.get(f"{url}/sourceConfig/?p=npm&v=3.34.1&writeKey=ios-dev-key", timeout=10)
    basic = "Basic " + base64.b64encode(b"ios-dev-key:").decode()
    pre = requests.options(f"{url}/sourceConfig/", headers={
        "Origin": ORIGIN, "Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "authorization"},
        timeout=10)
    assert pre.status_code == 200 and "authorization" in pre.headers["access-control-allow-headers"].lower()
    by_header = requests.get(f"{url}/sourceConfig", headers={"Authorization": basic, "Origin": ORIGIN}, timeout=10)
    for r in (by_query, by_header):
        assert r.status_code == 200
        source = r.json()["source"]
        assert (source["id"], source["writeKey"], source["enabled"], source["destinations"]) == (
            "ios", "ios-dev-key", True, [])
        assert source["config"]["statsCollection"] == {"errors": {"enabled": False}, "metrics": {"enabled": False}}
    for bad in (requests.get(f"{url}/sourceConfig/?writeKey=nope", timeout=10),
                requests.get(f"{url}/sourceConfig/", timeout=10)):
        assert bad.status_code == 401 and "write key" in bad.json()["message"]
