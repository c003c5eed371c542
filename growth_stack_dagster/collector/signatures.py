"""Webhook signature checks: pure functions over the raw body bytes, headers, secrets and a clock.

Each `verify_*` returns None when the request is authentic and raises `SignatureError` whose
message says why it is not (missing header, stale timestamp, no matching signature). Every
comparison is constant-time (`hmac.compare_digest`). Secrets may be given as a list so that
a rotation (old and new secret both valid for a while) needs no downtime.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Iterable, Mapping

DEFAULT_TOLERANCE_SECONDS = 300


class SignatureError(ValueError):
    """The webhook is not authentic or not fresh; the message says why (never the secret)."""


def split_secrets(value: str) -> list[str]:
    """A configured secret, or several separated by commas (rotation), as a list."""
    return [s.strip() for s in value.split(",") if s.strip()]


def _hmac_sha256(key: bytes, data: bytes) -> bytes:
    return hmac.new(key, data, hashlib.sha256).digest()


def _parse_timestamp(value: str | None, header: str) -> int:
    if value is None or not value.strip():
        raise SignatureError(f"missing {header} header")
    try:
        return int(value.strip())
    except ValueError:
        raise SignatureError(f"{header} header is not a Unix timestamp in seconds") from None


def stripe_signature_header(body: bytes, secret: str, timestamp: int) -> str:
    """A `Stripe-Signature` header value for `body` (what Stripe sends; used by tests and senders)."""
    sig = _hmac_sha256(secret.encode(), f"{timestamp}.".encode() + body).hex()
    return f"t={timestamp},v1={sig}"


def verify_stripe(
    body: bytes, header: str | None, secrets: Iterable[str], now: float,
    tolerance: int = DEFAULT_TOLERANCE_SECONDS,
) -> None:
    """Check a `Stripe-Signature: t=<ts>,v1=<hex>[,v1=<hex>...]` header against any of `secrets`.

    Stripe signs `<ts>.<raw body>` with HMAC-SHA256; during a secret rotation it sends several
    `v1` entries, and any one matching any configured secret is enough. Like Stripe's own
    library, a timestamp older than `tolerance` seconds is refused (replay protection).
    """
    if not header or not header.strip():
        raise SignatureError("missing Stripe-Signature header")
    timestamp: int | None = None
    candidates: list[str] = []
    for item in header.split(","):
        key, sep, value = item.strip().partition("=")
        if not sep:
            continue
        if key == "t":
            try:
                timestamp = int(value)
            except ValueError:
                raise SignatureError("Stripe-Signature timestamp t= is not an integer") from None
        elif key == "v1":
            candidates.append(value)
    if timestamp is None:
        raise SignatureError("Stripe-Signature header has no t= timestamp")
    if not candidates:
        raise SignatureError("Stripe-Signature header has no v1= signature")
    signed = f"{timestamp}.".encode() + body
    keys = [s.encode() for s in secrets]
    if not keys:
        raise SignatureError("no Stripe webhook secret is configured (STRIPE_WEBHOOK_SECRET)")
    expected = [_hmac_sha256(k, signed).hex().encode() for k in keys]
    if not any(hmac.compare_digest(e, c.encode()) for e in expected for c in candidates):
        raise SignatureError("no Stripe-Signature v1 signature matches the body and secret")
    if timestamp < now - tolerance:
        raise SignatureError(f"Stripe-Signature timestamp is more than {tolerance} s old")


def customerio_signature(body: bytes, key: str, timestamp: int) -> str:
    """Customer.io's `X-CIO-Signature`: hex HMAC-SHA256 of `v0:<timestamp>:<raw body>`."""
    return _hmac_sha256(key.encode(), f"v0:{timestamp}:".encode() + body).hex()


def verify_customerio(
    body: bytes, timestamp_header: str | None, signature_header: str | None,
    keys: Iterable[str], now: float, tolerance: int = DEFAULT_TOLERANCE_SECONDS,
) -> None:
    """Check Customer.io reporting-webhook headers `X-CIO-Timestamp` and `X-CIO-Signature`.

    The signature is the hex HMAC-SHA256 of `v0:<timestamp>:<raw body>` with the webhook
    signing key. Timestamps further than `tolerance` seconds from `now` are refused.
    """
    if not signature_header or not signature_header.strip():
        raise SignatureError("missing X-CIO-Signature header")
    timestamp = _parse_timestamp(timestamp_header, "X-CIO-Timestamp")
    keys = list(keys)
    if not keys:
        raise SignatureError("no Customer.io signing key is configured (CUSTOMERIO_WEBHOOK_SIGNING_KEY)")
    given = signature_header.strip().lower().encode()
    if not any(hmac.compare_digest(customerio_signature(body, k, timestamp).encode(), given) for k in keys):
        raise SignatureError("X-CIO-Signature does not match the body and signing key")
    if abs(now - timestamp) > tolerance:
        raise SignatureError(f"X-CIO-Timestamp is more than {tolerance} s away from the collector's clock")


def standard_webhook_key(secret: str) -> bytes:
    """The HMAC key of a Standard Webhooks secret `whsec_<base64>` (the prefix is optional)."""
    raw = secret[len("whsec_"):] if secret.startswith("whsec_") else secret
    try:
        key = base64.b64decode(raw + "=" * (-len(raw) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("a Standard Webhooks secret must be 'whsec_' followed by base64") from None
    if not key:
        raise ValueError("a Standard Webhooks secret must not be empty")
    return key


def standard_webhook_signature(body: bytes, secret: str, msg_id: str, timestamp: int) -> str:
    """The `webhook-signature` value (`v1,<base64>`) for one message."""
    sig = _hmac_sha256(standard_webhook_key(secret), f"{msg_id}.{timestamp}.".encode() + body)
    return "v1," + base64.b64encode(sig).decode()


def verify_standard_webhook(
    body: bytes, headers: Mapping[str, str], secrets: Iterable[str], now: float,
    tolerance: int = DEFAULT_TOLERANCE_SECONDS,
) -> None:
    """Check Standard Webhooks headers `webhook-id`, `webhook-timestamp`, `webhook-signature`.

    The signature list is space-separated `v1,<base64>` entries (several during a rotation); the
    signed content is `<id>.<timestamp>.<raw body>`; `headers` must have lower-case keys.
    """
    msg_id = headers.get("webhook-id")
    if not msg_id:
        raise SignatureError("missing webhook-id header")
    timestamp = _parse_timestamp(headers.get("webhook-timestamp"), "webhook-timestamp")
    signature_header = headers.get("webhook-signature")
    if not signature_header or not signature_header.strip():
        raise SignatureError("missing webhook-signature header")
    if abs(now - timestamp) > tolerance:
        raise SignatureError(f"webhook-timestamp is more than {tolerance} s away from the collector's clock")
    candidates: list[bytes] = []
    for entry in signature_header.split():
        version, sep, value = entry.partition(",")
        if sep and version == "v1":
            try:
                candidates.append(base64.b64decode(value, validate=True))
            except (binascii.Error, ValueError):
                continue
    if not candidates:
        raise SignatureError("webhook-signature has no v1,<base64> entry")
    signed = f"{msg_id}.{timestamp}.".encode() + body
    keys = [standard_webhook_key(s) for s in secrets]
    if not keys:
        raise SignatureError("no Standard Webhooks secret is configured (GROWTH_STACK_WEBHOOK_SECRET)")
    expected = [_hmac_sha256(k, signed) for k in keys]
    if not any(hmac.compare_digest(e, c) for e in expected for c in candidates):
        raise SignatureError("no webhook-signature v1 signature matches the body and secret")


# HubSpot decodes these percent-escapes in the URI before signing (its request-validation guide).
_HUBSPOT_URI_DECODES = {"%3A": ":", "%2F": "/", "%3F": "?", "%40": "@", "%21": "!", "%24": "$", "%27": "'",
                        "%28": "(", "%29": ")", "%2A": "*", "%2C": ",", "%3B": ";"}


def hubspot_uri(uri: str) -> str:
    """The request URI as HubSpot signs it: the escapes it lists decoded (upper or lower case)."""
    out, i = [], 0
    while i < len(uri):
        chunk = uri[i:i + 3].upper()
        if uri[i] == "%" and chunk in _HUBSPOT_URI_DECODES:
            out.append(_HUBSPOT_URI_DECODES[chunk])
            i += 3
        else:
            out.append(uri[i])
            i += 1
    return "".join(out)


def hubspot_signature_v3(body: bytes, secret: str, method: str, uri: str, timestamp_ms: int | str) -> str:
    """`X-HubSpot-Signature-v3`: base64 HMAC-SHA256 of method + URI + body + timestamp (ms)."""
    signed = f"{method.upper()}{hubspot_uri(uri)}".encode() + body + str(timestamp_ms).encode()
    return base64.b64encode(_hmac_sha256(secret.encode(), signed)).decode()


def verify_hubspot_v3(
    body: bytes, method: str, uri: str, signature_header: str | None, timestamp_header: str | None,
    secrets: Iterable[str], now: float, tolerance: int = DEFAULT_TOLERANCE_SECONDS,
) -> None:
    """Check HubSpot's `X-HubSpot-Signature-v3` and `X-HubSpot-Request-Timestamp` (milliseconds).

    The signature is the base64 HMAC-SHA256, keyed with the app's client secret, of the method,
    the full URI the request was sent to, the raw body and the timestamp, concatenated. A
    timestamp more than `tolerance` seconds old (HubSpot: five minutes) is refused (replay).
    """
    if not signature_header or not signature_header.strip():
        raise SignatureError("missing X-HubSpot-Signature-v3 header")
    timestamp = _parse_timestamp(timestamp_header, "X-HubSpot-Request-Timestamp")
    keys = list(secrets)
    if not keys:
        raise SignatureError("no HubSpot client secret is configured (HUBSPOT_CLIENT_SECRET)")
    given = signature_header.strip().encode()
    if not any(hmac.compare_digest(hubspot_signature_v3(body, k, method, uri, timestamp).encode(), given)
               for k in keys):
        raise SignatureError("X-HubSpot-Signature-v3 does not match the request and client secret")
    age = now - timestamp / 1000
    if age > tolerance:
        raise SignatureError(f"X-HubSpot-Request-Timestamp is more than {tolerance} s old")
    if age < -tolerance:
        raise SignatureError(f"X-HubSpot-Request-Timestamp is more than {tolerance} s ahead of the collector's clock")
