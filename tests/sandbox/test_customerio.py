"""The Customer.io emulation, driven with plain `requests` the way Customer.io's docs show:
Track API v1/v2 with HTTP Basic `site_id:api_key`, App API read-back with a bearer key, and the
signed reporting webhooks received by a small HTTP server on loopback."""

from __future__ import annotations

import hashlib
import hmac
import http.server
import json
import threading
import time
from collections.abc import Iterator

import pytest
import requests

from growth_stack_dagster.sandbox.customerio import (
    TrackError,
    reporting_webhook_payload,
    sign_reporting_webhook,
    validate_attributes,
)
from tests.servers import reset_sandbox, sandbox_server

TOKEN = "sk_test_sandbox"
TRACK_AUTH = ("site_123", TOKEN)
APP_HEADERS = {"Authorization": f"Bearer {TOKEN}"}
SIGNING_KEY = "test-cio-signing-key"


@pytest.fixture(autouse=True)
def _sandbox_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("GROWTH_STACK_SANDBOX_TOKEN", "GROWTH_STACK_SANDBOX_RATE_LIMIT_SCALE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GROWTH_STACK_SANDBOX_WEBHOOK_URL", "")  # no deliveries unless a test asks
    monkeypatch.setenv("CUSTOMERIO_WEBHOOK_SIGNING_KEY", SIGNING_KEY)


@pytest.fixture(scope="module")
def _shared_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One `growth-stack sandbox` for the tests of this module that need no special environment
    (starting one takes seconds on a loaded machine); each test gets it reset."""
    home = tmp_path_factory.mktemp("gs_home")
    env = {"GROWTH_STACK_SANDBOX_WEBHOOK_URL": "",
           "CUSTOMERIO_WEBHOOK_SIGNING_KEY": SIGNING_KEY,
           "GROWTH_STACK_SANDBOX_TOKEN": TOKEN, "GROWTH_STACK_SANDBOX_RATE_LIMIT_SCALE": "10"}
    with sandbox_server(home, env) as url:
        yield url


@pytest.fixture
def sandbox(_shared_sandbox: str) -> str:
    return reset_sandbox(_shared_sandbox)


def put_customer(base: str, identifier: str, attrs: dict, auth=TRACK_AUTH) -> requests.Response:
    return requests.put(f"{base}/customerio/api/v1/customers/{identifier}", json=attrs, auth=auth, timeout=10)


def attributes(base: str, identifier: str) -> requests.Response:
    return requests.get(f"{base}/customerio/v1/customers/{identifier}/attributes", headers=APP_HEADERS, timeout=10)


def activities(base: str, identifier: str, **params) -> list[dict]:
    r = requests.get(f"{base}/customerio/v1/customers/{identifier}/activities", headers=APP_HEADERS,
                     params=params, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()["activities"]


# --------------------------------------------------------------------------- pure functions
def test_reporting_webhook_payload_shape_and_determinism() -> None:
    args = dict(customer_id="u_7", email="Ann@Example.com", delivery_id="RAECAAFwnUSneIa0ZXkmq8Ed",
                campaign_id=12, action_id=34, subject="Welcome", timestamp=1_700_000_000)
    clicked = reporting_webhook_payload("clicked", href="https://shop.example/p/1", **args)
    assert clicked == reporting_webhook_payload("clicked", href="https://shop.example/p/1", **args)
    assert clicked["metric"] == "clicked" and clicked["object_type"] == "email"
    assert clicked["timestamp"] == 1_700_000_000 and len(clicked["event_id"]) == 26
    data = clicked["data"]
    assert data["customer_id"] == "u_7" and data["identifiers"]["id"] == "u_7"
    assert data["identifiers"]["email"] == "Ann@Example.com" and data["recipient"] == "Ann@Example.com"
    assert data["delivery_id"] == "RAECAAFwnUSneIa0ZXkmq8Ed" and data["campaign_id"] == 12
    assert data["action_id"] == 34 and data["subject"] == "Welcome" and data["href"] == "https://shop.example/p/1"
    opened = reporting_webhook_payload("opened", **args)
    assert "href" not in opened["data"] and opened["event_id"] != clicked["event_id"]
    with pytest.raises(ValueError, match="href"):
        reporting_webhook_payload("clicked", **args)
    with pytest.raises(ValueError, match="metric"):
        reporting_webhook_payload("bounced", **args)


def test_signature_is_hmac_of_v0_timestamp_body() -> None:
    body = b'{"metric":"opened"}'
    expected = hmac.new(b"key", b"v0:1700000000:" + body, hashlib.sha256).hexdigest()
    assert sign_reporting_webhook(body, 1_700_000_000, "key") == expected


def test_attribute_limits() -> None:
    with pytest.raises(TrackError, match="1000 bytes"):
        validate_attributes({"bio": "x" * 1001})
    with pytest.raises(TrackError, match="at most 300"):
        validate_attributes({f"a{i}": i for i in range(301)})
    with pytest.raises(TrackError, match="created_at"):
        validate_attributes({"created_at": "yesterday"})
    assert validate_attributes({"created_at": "1700000000"}) == {"created_at": 1_700_000_000}


# --------------------------------------------------------------------------- Track API v1
def test_identify_update_delete_and_read_back(sandbox: str) -> None:
    r = put_customer(sandbox, "u_1", {"email": "ann@example.com", "created_at": 1_700_000_000,
                                          "plan": "pro", "seats": 3, "vip": True})
    assert r.status_code == 200 and r.json() == {}
    r = attributes(sandbox, "u_1")
    assert r.status_code == 200, r.text
    customer = r.json()["customer"]
    assert customer["id"] == "u_1" and customer["identifiers"]["email"] == "ann@example.com"
    # the App API returns attribute values as strings
    assert customer["attributes"]["plan"] == "pro" and customer["attributes"]["seats"] == "3"
    assert customer["attributes"]["created_at"] == "1700000000" and customer["attributes"]["vip"] == "true"

    # update: a changed value and an empty value (which removes the attribute)
    assert put_customer(sandbox, "u_1", {"plan": "team", "seats": ""}).status_code == 200
    attrs = attributes(sandbox, "u_1").json()["customer"]["attributes"]
    assert attrs["plan"] == "team" and "seats" not in attrs and attrs["email"] == "ann@example.com"
    changes = activities(sandbox, "u_1", type="attribute_change", name="plan")
    assert [(a["data"]["old_value"], a["data"]["new_value"]) for a in changes] == [("pro", "team"), (None, "pro")]

    # the email works as an identifier too, case-insensitively (App API id_type=email)
    r = requests.get(f"{sandbox}/customerio/v1/customers/ANN@example.com/attributes",
                     params={"id_type": "email"}, headers=APP_HEADERS, timeout=10)
    assert r.status_code == 200 and r.json()["customer"]["id"] == "u_1"

    r = requests.delete(f"{sandbox}/customerio/api/v1/customers/u_1", auth=TRACK_AUTH, timeout=10)
    assert r.status_code == 200 and r.json() == {}
    r = attributes(sandbox, "u_1")
    assert r.status_code == 404 and r.json() == {"meta": {"error": "Customer not found"}}


def test_form_encoded_identify_as_in_the_v1_curl_examples(sandbox: str) -> None:
    r = requests.put(f"{sandbox}/customerio/api/v1/customers/u_9", auth=TRACK_AUTH, timeout=10,
                     data={"email": "nine@example.com", "created_at": "1700000123"})
    assert r.status_code == 200, r.text
    attrs = attributes(sandbox, "u_9").json()["customer"]["attributes"]
    assert attrs["email"] == "nine@example.com" and attrs["created_at"] == "1700000123"


def test_events_and_anonymous_events(sandbox: str) -> None:
    put_customer(sandbox, "u_2", {"email": "bob@example.com"})
    r = requests.post(f"{sandbox}/customerio/api/v1/customers/u_2/events", auth=TRACK_AUTH, timeout=10,
                      json={"name": "  purchase ", "data": {"price": 23.45, "product": "socks"},
                            "timestamp": 1_700_000_500})
    assert r.status_code == 200 and r.json() == {}
    r = requests.post(f"{sandbox}/customerio/api/v1/customers/u_2/events", auth=TRACK_AUTH, timeout=10,
                      json={"name": "/pricing", "type": "page"})
    assert r.status_code == 200
    events = activities(sandbox, "u_2", type="event")
    assert len(events) == 1
    assert events[0]["name"] == "purchase"  # Customer.io trims event names
    assert events[0]["data"] == {"price": 23.45, "product": "socks"} and events[0]["timestamp"] == 1_700_000_500
    assert [a["name"] for a in activities(sandbox, "u_2", type="page")] == ["/pricing"]

    # an event for an unknown id creates the person, as Customer.io does
    r = requests.post(f"{sandbox}/customerio/api/v1/customers/u_new/events", auth=TRACK_AUTH, timeout=10,
                      json={"name": "signed_up"})
    assert r.status_code == 200 and attributes(sandbox, "u_new").status_code == 200

    r = requests.post(f"{sandbox}/customerio/api/v1/events", auth=TRACK_AUTH, timeout=10,
                      json={"name": "watched_video", "anonymous_id": "abc123", "data": {"video": "intro"}})
    assert r.status_code == 200 and r.json() == {}


def test_event_validation_errors(sandbox: str) -> None:
    url = f"{sandbox}/customerio/api/v1/customers/u_3/events"
    cases = [
        ({"data": {"a": 1}}, "event name is required"),
        ({"name": "x" * 101}, "longer than 100 bytes"),
        ({"name": "big", "data": {"blob": "x" * 100_001}}, "larger than 100000 bytes"),
        ({"name": "t", "timestamp": "2024-01-01"}, "timestamp"),
        ({"name": "t", "data": [1, 2]}, "JSON object"),
    ]
    for body, message in cases:
        r = requests.post(url, json=body, auth=TRACK_AUTH, timeout=10)
        assert r.status_code == 400, (body, r.text)
        errors = r.json()["meta"]["errors"]
        assert len(errors) == 1 and message in errors[0], (message, errors)
    r = requests.post(url, data=b"{not json", auth=TRACK_AUTH, timeout=10,
                      headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and "not valid JSON" in r.json()["meta"]["errors"][0]
    r = put_customer(sandbox, "x" * 151, {"email": "long@example.com"})
    assert r.status_code == 400 and "150 bytes" in r.json()["meta"]["errors"][0]
    # nothing was stored by the refused requests
    assert attributes(sandbox, "u_3").status_code == 404


def test_unauthorized(sandbox: str) -> None:
    url = f"{sandbox}/customerio/api/v1/customers/u_4"
    for auth in (None, ("site_123", "wrong-key"), ("", TOKEN)):
        r = requests.put(url, json={"email": "x@example.com"}, auth=auth, timeout=10)
        assert r.status_code == 401, auth
        assert r.json() == {"meta": {"error": "Unauthorized request"}}
    r = requests.post(f"{sandbox}/customerio/api/v2/batch", json={"batch": []}, auth=("s", "nope"), timeout=10)
    assert r.status_code == 401
    # the App API takes a bearer key, not the Track credentials
    r = requests.get(f"{sandbox}/customerio/v1/customers/u_4/attributes", auth=TRACK_AUTH, timeout=10)
    assert r.status_code == 401 and r.json() == {"meta": {"error": "Unauthorized request"}}
    assert attributes(sandbox, "u_4").status_code == 404  # the refused identify stored nothing


# --------------------------------------------------------------------------- Track API v2
def test_v2_entity_and_batch(sandbox: str) -> None:
    r = requests.post(f"{sandbox}/customerio/api/v2/entity", auth=TRACK_AUTH, timeout=10, json={
        "type": "person", "identifiers": {"id": "u_5"}, "action": "identify",
        "attributes": {"email": "cat@example.com", "plan": "premium"}})
    assert r.status_code == 200 and r.json() == {}

    batch = [
        {"type": "person", "identifiers": {"id": "u_6"}, "action": "identify",
         "attributes": {"email": "dan@example.com", "first_name": "Dan"}},
        {"type": "person", "identifiers": {"id": "u_5"}, "action": "event", "name": "purchase",
         "attributes": {"price": 9}},
        {"type": "person", "action": "event", "name": "no identifiers"},
        {"type": "person", "identifiers": {"id": "u_6"}, "action": "identify",
         "attributes": {"notes": "x" * 33_000}},
        {"type": "person", "identifiers": {"email": "dan@example.com"}, "action": "identify",
         "attributes": {"plan": "basic"}},
    ]
    r = requests.post(f"{sandbox}/customerio/api/v2/batch", json={"batch": batch}, auth=TRACK_AUTH, timeout=10)
    assert r.status_code == 207, r.text
    errors = r.json()["errors"]
    assert [e["batch_index"] for e in errors] == [2, 3]
    assert errors[0]["field"] == "identifiers" and "32kb" in errors[1]["message"]
    dan = attributes(sandbox, "u_6").json()["customer"]["attributes"]
    assert dan["first_name"] == "Dan" and dan["plan"] == "basic" and "notes" not in dan
    assert [a["data"] for a in activities(sandbox, "u_5", type="event")] == [{"price": 9}]

    r = requests.post(f"{sandbox}/customerio/api/v2/batch", auth=TRACK_AUTH, timeout=10, json={
        "batch": [{"type": "person", "identifiers": {"id": "u_7"}, "action": "delete"}]})
    assert r.status_code == 200 and r.json() == {}


def test_v2_size_limits(sandbox: str) -> None:
    big_entity = {"type": "person", "identifiers": {"id": "u_8"}, "action": "identify",
                  "attributes": {f"a{i}": "y" * 900 for i in range(40)}}
    r = requests.post(f"{sandbox}/customerio/api/v2/entity", json=big_entity, auth=TRACK_AUTH, timeout=10)
    assert r.status_code == 400 and "32kb" in r.json()["errors"][0]["message"]
    small = {"type": "person", "identifiers": {"id": "u_8"}, "action": "identify", "attributes": {"x": "y" * 900}}
    r = requests.post(f"{sandbox}/customerio/api/v2/batch", json={"batch": [small] * 600},
                      auth=TRACK_AUTH, timeout=10)
    assert r.status_code == 400 and "500kb" in r.json()["errors"][0]["message"]
    assert attributes(sandbox, "u_8").status_code == 404


# --------------------------------------------------------------------------- faults, rate limits, seeding
def test_injected_rate_limit_and_server_error(sandbox: str) -> None:
    faults = f"{sandbox}/_admin/faults"
    requests.post(faults, json={"prefix": "/customerio/api/v1", "kind": "rate_limit", "retry_after": 2},
                  timeout=10).raise_for_status()
    r = put_customer(sandbox, "u_10", {"email": "e@example.com"})
    assert r.status_code == 429 and r.headers["Retry-After"] == "2" and "error" in r.json()["meta"]
    requests.post(faults, json={"prefix": "/customerio/api/v1", "kind": "error", "status": 503},
                  timeout=10).raise_for_status()
    r = put_customer(sandbox, "u_10", {"email": "e@example.com"})
    assert r.status_code == 503 and "error" in r.json()["meta"]
    assert put_customer(sandbox, "u_10", {"email": "e@example.com"}).status_code == 200


def test_published_rate_limit(gs_home, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> None:
    # the fair-use 100 req/s scaled down to 5 req/s so a short burst crosses it
    monkeypatch.setenv("GROWTH_STACK_SANDBOX_RATE_LIMIT_SCALE", "0.05")
    base = request.getfixturevalue("sandbox_url")
    # Sent until one is limited (a loaded machine may send slower than planned; a deadline, no count).
    codes: list[requests.Response] = []
    deadline = time.monotonic() + 60
    with requests.Session() as session:
        while 429 not in [r.status_code for r in codes] and time.monotonic() < deadline:
            codes.append(session.put(f"{base}/customerio/api/v1/customers/u_rl", json={"n": len(codes)},
                                     auth=TRACK_AUTH, timeout=10))
    statuses = [r.status_code for r in codes]
    assert statuses[:5] == [200] * 5 and 429 in statuses, statuses
    limited = next(r for r in codes if r.status_code == 429)
    assert int(limited.headers["Retry-After"]) >= 1 and "error" in limited.json()["meta"]


def test_seeded_customers_are_served(sandbox: str) -> None:
    seed = [{"id": "u_100", "email": " Zoe@Example.com ", "created_at": 1_650_000_000, "plan": "pro"},
            {"id": "u_101", "email": "yan@example.com", "created_at": 1_660_000_000}]
    r = requests.post(f"{sandbox}/_admin/seed/customerio/customers", json=seed, timeout=10)
    assert r.status_code == 200 and r.json() == {"seeded": 2}
    requests.post(f"{sandbox}/_admin/seed/customerio/customers", json=seed[:1], timeout=10).raise_for_status()
    customer = attributes(sandbox, "u_100").json()["customer"]
    assert customer["attributes"]["email"] == " Zoe@Example.com " and customer["attributes"]["plan"] == "pro"
    assert customer["timestamps"]["created_at"] == 1_650_000_000
    assert activities(sandbox, "u_100") == []  # seeded history fires nothing
    stats = requests.get(f"{sandbox}/_admin/stats", timeout=10).json()
    assert stats["objects"]["customerio"]["customers"] == 2


# --------------------------------------------------------------------------- reporting webhooks
class _Receiver(http.server.BaseHTTPRequestHandler):
    received: list[tuple[str, dict[str, str], bytes]] = []

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append((self.path, dict(self.headers), body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def webhook_receiver(monkeypatch: pytest.MonkeyPatch) -> Iterator[list]:
    _Receiver.received = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("GROWTH_STACK_SANDBOX_WEBHOOK_URL", f"http://127.0.0.1:{server.server_port}/hooks")
    yield _Receiver.received
    server.shutdown()
    server.server_close()


def test_reporting_webhooks_are_signed_and_delivered(webhook_receiver: list, request: pytest.FixtureRequest) -> None:
    base = request.getfixturevalue("sandbox_url")  # started after the receiver's URL is in the environment
    put_customer(base, "u_20", {"email": "eve@example.com"})
    r = requests.post(f"{base}/customerio/_sandbox/messages", timeout=10, json={
        "customer_id": "u_20", "email": "eve@example.com", "campaign_id": 7, "subject": "Spring sale",
        "events": ["delivered", "opened", "clicked"], "href": "https://shop.example/sale",
        "timestamp": 1_700_000_000})
    assert r.status_code == 202, r.text
    sent = r.json()["webhooks"]
    assert [w["metric"] for w in sent] == ["delivered", "opened", "clicked"]
    assert requests.post(f"{base}/_admin/webhooks/flush", timeout=40).json() == {"flushed": True}

    assert len(webhook_receiver) == 3
    for (path, headers, body), expected in zip(webhook_receiver, sent):
        assert path == "/hooks/customerio"
        timestamp = headers["X-CIO-Timestamp"]
        assert abs(int(timestamp) - time.time()) < 120
        signature = hmac.new(SIGNING_KEY.encode(), f"v0:{timestamp}:".encode() + body, hashlib.sha256).hexdigest()
        assert hmac.compare_digest(headers["X-CIO-Signature"], signature)
        payload = json.loads(body)
        assert payload == expected
        assert payload["object_type"] == "email" and payload["data"]["campaign_id"] == 7
        assert payload["data"]["identifiers"] == {"id": "u_20", "email": "eve@example.com",
                                                  "cio_id": payload["data"]["identifiers"]["cio_id"]}
    delivered, opened, clicked = (json.loads(b) for _, _, b in webhook_receiver)
    assert delivered["data"]["delivery_id"] == opened["data"]["delivery_id"] == clicked["data"]["delivery_id"]
    assert clicked["data"]["href"] == "https://shop.example/sale"
    assert delivered["timestamp"] < opened["timestamp"] < clicked["timestamp"]
    assert len({delivered["event_id"], opened["event_id"], clicked["event_id"]}) == 3
    # the same payloads come from the pure function the simulator uses for history
    d = delivered["data"]
    assert reporting_webhook_payload("delivered", customer_id="u_20", email="eve@example.com",
                                     delivery_id=d["delivery_id"], campaign_id=7, action_id=d["action_id"],
                                     subject="Spring sale", timestamp=1_700_000_000) == delivered
    # and the App API shows the message activity on the person
    assert [a["type"] for a in activities(base, "u_20", name="Spring sale")] == [
        "clicked_email", "opened_email", "delivered_email"]

    r = requests.post(f"{base}/customerio/_sandbox/messages", json={"customer_id": "u_20", "events": ["opened"]},
                      timeout=10)
    assert r.status_code == 400 and r.json()["field"] == "email"
