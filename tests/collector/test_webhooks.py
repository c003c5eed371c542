"""Signed webhooks through a real collector: verified on raw bytes, stored raw, or refused with 401."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import stripe

from growth_stack_dagster.collector import signatures as sig
from tests.collector.conftest import FAST_ENV
from tests.collector.helpers import all_files, wait_lines
from tests.servers import run_server

STRIPE_SECRETS = "whsec_old_rotating,whsec_current"
CIO_KEY = "cio-signing-key"
STD_SECRET = "whsec_" + base64.b64encode(b"growth-stack-test").decode()


@pytest.fixture(scope="module")
def collector(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    home = tmp_path_factory.mktemp("gs_home_webhooks")
    env = {**FAST_ENV, "GROWTH_STACK_HOME": str(home), "STRIPE_WEBHOOK_SECRET": STRIPE_SECRETS,
           "CUSTOMERIO_WEBHOOK_SIGNING_KEY": CIO_KEY, "GROWTH_STACK_WEBHOOK_SECRET": STD_SECRET,
           "GROWTH_STACK_WRITE_KEYS": "web=web-dev-key"}
    with run_server("collector", "/health", env, log_path=home / "collector.log") as (url, _):
        yield url, home


def _post(url: str, source: str, body: bytes, headers: dict[str, str]) -> requests.Response:
    return requests.post(f"{url}/v1/webhook/{source}", data=body, headers=headers, timeout=10)


def test_valid_webhooks_are_stored_raw(collector: tuple[str, Path]) -> None:
    url, home = collector
    now = int(time.time())
    # odd spacing and key order on purpose: the stored body must be byte-for-byte what was sent
    stripe_body = b'{ "id": "evt_123",  "type": "customer.created", "data": {"object": {"id": "cus_1"}} }'
    header = stripe.WebhookSignature.generate_signature_header(stripe_body.decode(), "whsec_current", now)
    assert _post(url, "stripe", stripe_body, {"Stripe-Signature": header}).status_code == 200
    # a rotation: Stripe signs with the old and the new secret
    old = sig.stripe_signature_header(stripe_body, "whsec_old_rotating", now).split(",")[1]
    rotated = sig.stripe_signature_header(stripe_body, "whsec_unknown", now) + "," + old
    assert _post(url, "stripe", stripe_body, {"Stripe-Signature": rotated}).status_code == 200

    cio_body = b'{"event_id":"01HX","metric":"opened","data":{"customer_id":"u-1"}}'
    cio = {"X-CIO-Timestamp": str(now), "X-CIO-Signature": sig.customerio_signature(cio_body, CIO_KEY, now)}
    assert _post(url, "customerio", cio_body, cio).status_code == 200

    std_body = "{\"type\":\"ticket.solved\",\"note\":\"café\"}".encode()
    std = {"webhook-id": "msg_abc", "webhook-timestamp": str(now),
           "webhook-signature": sig.standard_webhook_signature(std_body, STD_SECRET, "msg_abc", now)}
    assert _post(url, "zendesk", std_body, std).status_code == 200

    lines = wait_lines(home, 4)
    by_source: dict[str, list[dict]] = {}
    for source, line in lines:
        by_source.setdefault(source, []).append(line)
    assert sorted(by_source) == ["customerio", "stripe", "zendesk"]
    for line in by_source["stripe"]:
        assert line["type"] == "webhook" and line["body"] == stripe_body.decode()
        assert line["messageId"] == "evt_123" and line["receivedAt"].endswith("Z")
    assert len(by_source["stripe"]) == 2
    assert by_source["customerio"][0]["messageId"] == "01HX"
    assert by_source["customerio"][0]["body"].encode() == cio_body
    assert by_source["zendesk"][0] == {**by_source["zendesk"][0], "messageId": "msg_abc", "body": std_body.decode()}
    assert set(by_source["zendesk"][0]) == {"type", "messageId", "receivedAt", "body"}


def _stripe_cases(now: int) -> dict[str, tuple[bytes, dict[str, str], str]]:
    body = b'{"id":"evt_9","type":"charge.succeeded"}'
    good = sig.stripe_signature_header(body, "whsec_current", now)
    return {
        "tampered body": (body.replace(b"9", b"8"), {"Stripe-Signature": good}, "matches"),
        "wrong secret": (body, {"Stripe-Signature": sig.stripe_signature_header(body, "whsec_x", now)}, "matches"),
        "stale timestamp": (body, {"Stripe-Signature": sig.stripe_signature_header(body, "whsec_current", now - 400)},
                            "old"),
        "missing header": (body, {}, "missing Stripe-Signature"),
    }


@pytest.mark.parametrize("case", ["tampered body", "wrong secret", "stale timestamp", "missing header"])
def test_bad_stripe_signature_is_401(case: str, collector: tuple[str, Path]) -> None:
    url, _ = collector
    body, headers, reason = _stripe_cases(int(time.time()))[case]
    r = _post(url, "stripe", body, headers)
    assert r.status_code == 401 and r.json()["code"] == "invalid_signature"
    assert reason in r.json()["message"]


@pytest.mark.parametrize("case", ["tampered", "wrong key", "stale", "missing signature", "missing timestamp"])
def test_bad_customerio_signature_is_401(case: str, collector: tuple[str, Path]) -> None:
    url, _ = collector
    now = int(time.time())
    body = b'{"event_id":"e1","metric":"clicked"}'
    ts, key = now, CIO_KEY
    if case == "stale":
        ts = now - 400
    if case == "wrong key":
        key = "other"
    headers = {"X-CIO-Timestamp": str(ts), "X-CIO-Signature": sig.customerio_signature(body, key, ts)}
    if case == "tampered":
        body += b" "
    if case == "missing signature":
        del headers["X-CIO-Signature"]
    if case == "missing timestamp":
        del headers["X-CIO-Timestamp"]
    r = _post(url, "customerio", body, headers)
    assert r.status_code == 401, r.text
    assert r.json()["code"] == "invalid_signature"


@pytest.mark.parametrize("case", ["tampered", "wrong secret", "stale", "missing headers"])
def test_bad_standard_webhook_is_401(case: str, collector: tuple[str, Path]) -> None:
    url, _ = collector
    now = int(time.time())
    body = b'{"type":"ticket.created"}'
    ts, secret = now, STD_SECRET
    if case == "stale":
        ts = now - 400
    if case == "wrong secret":
        secret = "whsec_" + base64.b64encode(b"nope").decode()
    headers = {"webhook-id": "m1", "webhook-timestamp": str(ts),
               "webhook-signature": sig.standard_webhook_signature(body, secret, "m1", ts)}
    if case == "tampered":
        body = b'{"type":"ticket.deleted"}'
    if case == "missing headers":
        headers = {}
    r = _post(url, "zendesk", body, headers)
    assert r.status_code == 401 and r.json()["code"] == "invalid_signature"


def test_webhook_source_names(collector: tuple[str, Path]) -> None:
    url, _ = collector
    assert _post(url, "Bad.Name", b"{}", {}).status_code == 404
    # an event source's folder holds Segment messages only
    assert _post(url, "web", b"{}", {}).status_code == 404


def test_rejected_webhooks_leave_nothing(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = {**FAST_ENV, "GROWTH_STACK_HOME": str(home), "STRIPE_WEBHOOK_SECRET": "whsec_current"}
    with run_server("collector", "/health", env) as (url, _):
        now = int(time.time())
        for body, headers, _reason in _stripe_cases(now).values():
            assert _post(url, "stripe", body, headers).status_code == 401
        body = b'\xff\xfe'
        ok = {"Stripe-Signature": sig.stripe_signature_header(body, "whsec_current", now)}
        r = _post(url, "stripe", body, ok)
        assert r.status_code == 400 and r.json()["code"] == "invalid_encoding"
        time.sleep(0.3)
    assert all_files(home) == []
