"""Signature checks as pure functions, cross-checked against the official helpers."""

from __future__ import annotations

import base64
import datetime as dt
import time

import pytest
import standardwebhooks
import stripe

from growth_stack_dagster.collector import signatures as sig

BODY = b'{"id":"evt_1","type":"invoice.paid","data":{"object":{"amount_paid":4200}}}'
STRIPE_SECRET = "whsec_test_secret"
STD_SECRET = "whsec_" + base64.b64encode(b"standard-webhooks-test-key").decode()


def test_stripe_header_matches_official_library_both_ways() -> None:
    now = int(time.time())
    ours = sig.stripe_signature_header(BODY, STRIPE_SECRET, now)
    assert ours == stripe.WebhookSignature.generate_signature_header(BODY.decode(), STRIPE_SECRET, now)
    official = stripe.WebhookSignature.generate_signature_header(BODY.decode(), STRIPE_SECRET, now)
    sig.verify_stripe(BODY, official, [STRIPE_SECRET], now)
    assert stripe.WebhookSignature.verify_header(BODY, ours, STRIPE_SECRET, tolerance=300)


@pytest.mark.parametrize("case", ["tampered", "wrong secret", "stale", "missing", "no v1", "no t"])
def test_stripe_rejections_agree_with_official_library(case: str) -> None:
    now = int(time.time())
    body, secret, header = BODY, STRIPE_SECRET, sig.stripe_signature_header(BODY, STRIPE_SECRET, now)
    if case == "tampered":
        body = BODY.replace(b"4200", b"1")
    elif case == "wrong secret":
        secret = "whsec_other"
    elif case == "stale":
        header = sig.stripe_signature_header(BODY, STRIPE_SECRET, now - 301)
    elif case == "missing":
        header = ""
    elif case == "no v1":
        header = f"t={now},v0=abc"
    elif case == "no t":
        header = header.split(",", 1)[1]
    with pytest.raises(sig.SignatureError):
        sig.verify_stripe(body, header, [secret], now)
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.WebhookSignature.verify_header(body.decode(), header, secret, tolerance=300)


def test_stripe_stale_reason_and_rotation() -> None:
    now = int(time.time())
    with pytest.raises(sig.SignatureError, match="old"):
        sig.verify_stripe(BODY, sig.stripe_signature_header(BODY, STRIPE_SECRET, now - 600), [STRIPE_SECRET], now)
    # Stripe sends one v1 per active secret during a rotation: any match is enough.
    old = sig.stripe_signature_header(BODY, "whsec_old", now)
    new = sig.stripe_signature_header(BODY, "whsec_new", now)
    both = old + "," + new.split(",", 1)[1]
    sig.verify_stripe(BODY, both, ["whsec_new"], now)
    sig.verify_stripe(BODY, both, ["whsec_old"], now)
    # and the collector may be configured with several secrets
    sig.verify_stripe(BODY, new, sig.split_secrets("whsec_old, whsec_new"), now)
    with pytest.raises(sig.SignatureError, match="matches"):
        sig.verify_stripe(BODY, both, ["whsec_third"], now)


def test_customerio_signature() -> None:
    now = int(time.time())
    good = sig.customerio_signature(BODY, "cio-key", now)
    sig.verify_customerio(BODY, str(now), good, ["cio-key"], now)
    sig.verify_customerio(BODY, str(now), good.upper(), ["old-key", "cio-key"], now)
    with pytest.raises(sig.SignatureError, match="does not match"):
        sig.verify_customerio(BODY + b" ", str(now), good, ["cio-key"], now)
    with pytest.raises(sig.SignatureError, match="does not match"):
        sig.verify_customerio(BODY, str(now), good, ["other"], now)
    with pytest.raises(sig.SignatureError, match="X-CIO-Timestamp"):
        sig.verify_customerio(BODY, str(now - 301), sig.customerio_signature(BODY, "cio-key", now - 301),
                              ["cio-key"], now)
    with pytest.raises(sig.SignatureError, match="missing X-CIO-Signature"):
        sig.verify_customerio(BODY, str(now), None, ["cio-key"], now)
    with pytest.raises(sig.SignatureError, match="missing X-CIO-Timestamp"):
        sig.verify_customerio(BODY, None, good, ["cio-key"], now)


def _std_headers(secret: str, body: bytes, ts: int, msg_id: str = "msg_1") -> dict[str, str]:
    wh = standardwebhooks.Webhook(secret)
    signature = wh.sign(msg_id, dt.datetime.fromtimestamp(ts, tz=dt.timezone.utc), body.decode())
    return {"webhook-id": msg_id, "webhook-timestamp": str(ts), "webhook-signature": signature}


def test_standard_webhooks_agrees_with_official_package() -> None:
    now = int(time.time())
    headers = _std_headers(STD_SECRET, BODY, now)
    assert headers["webhook-signature"] == sig.standard_webhook_signature(BODY, STD_SECRET, "msg_1", now)
    sig.verify_standard_webhook(BODY, headers, [STD_SECRET], now)
    ours = {**headers, "webhook-signature": sig.standard_webhook_signature(BODY, STD_SECRET, "msg_1", now)}
    standardwebhooks.Webhook(STD_SECRET).verify(BODY, ours)


@pytest.mark.parametrize("case", ["tampered", "wrong secret", "stale", "future", "missing id",
                                  "missing signature", "garbage signature"])
def test_standard_webhooks_rejections_agree_with_official_package(case: str) -> None:
    now = int(time.time())
    body, secret, headers = BODY, STD_SECRET, _std_headers(STD_SECRET, BODY, now)
    if case == "tampered":
        body = BODY + b"\n"
    elif case == "wrong secret":
        secret = "whsec_" + base64.b64encode(b"another").decode()
    elif case == "stale":
        headers = _std_headers(STD_SECRET, BODY, now - 301)
    elif case == "future":
        headers = _std_headers(STD_SECRET, BODY, now + 301)
    elif case == "missing id":
        del headers["webhook-id"]
    elif case == "missing signature":
        del headers["webhook-signature"]
    elif case == "garbage signature":
        headers["webhook-signature"] = "v1,bm90IGl0"
    with pytest.raises(sig.SignatureError):
        sig.verify_standard_webhook(body, headers, [secret], now)
    with pytest.raises(standardwebhooks.webhooks.WebhookVerificationError):
        standardwebhooks.Webhook(secret).verify(body, headers)


def test_standard_webhooks_rotation() -> None:
    now = int(time.time())
    other = "whsec_" + base64.b64encode(b"next-key").decode()
    headers = _std_headers(STD_SECRET, BODY, now)
    headers["webhook-signature"] = sig.standard_webhook_signature(BODY, other, "msg_1", now) + " " + \
        headers["webhook-signature"]
    sig.verify_standard_webhook(BODY, headers, [STD_SECRET], now)
    sig.verify_standard_webhook(BODY, headers, [other], now)


def test_bad_standard_secret_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="base64"):
        sig.standard_webhook_key("whsec_***")
