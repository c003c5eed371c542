"""Small delivery clients for the routes' destinations, and the rate gate every request passes.

`send(items) -> list[Outcome | None]` delivers a batch of transformed items: one Outcome per item
that is settled (accepted, already there, skipped by rule, or refused as invalid), None for an item
to send again. It raises `Transient` when the destination cannot take anything now (429, 5xx,
timeouts, connection errors), carrying the outcomes settled before the failure.

Item shapes (what the route transformations return):
* amplitude: an HTTP V2 event (`user_id`, `event_type`, `time`, `insert_id`, `event_properties`);
* hubspot: `{email, message_id, timestamp, body}`: a note associated with the contact found by email;
* webhook: `{id, payload}`: one Standard Webhooks message (`webhook-id` = id).
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import orjson
import requests
from limits import RateLimitItemPerSecond
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from growth_stack_dagster.lib.tool_requests import hubspot_property, signed_webhook_headers

log = logging.getLogger("growth_stack.router")

TIMEOUT = (5, 30)
NOTE_TO_CONTACT = 202  # HubSpot-defined association type: note -> contact
DEDUP_PROPERTY = "growth_stack_message_id"


@dataclasses.dataclass(frozen=True)
class Outcome:
    """What became of one item: ok, duplicate (already delivered), skipped (by rule) or rejected."""

    status: str
    reason: str = ""

    @property
    def settled(self) -> bool:
        """True unless the destination refused the item (a rejection is retried, then dead-lettered)."""
        return self.status != "rejected"


OK = Outcome("ok")
DUPLICATE = Outcome("duplicate")


class Transient(Exception):
    """The destination cannot accept now; retry after `retry_after` seconds (None: back off)."""

    def __init__(self, reason: str, retry_after: float | None = None, done: list[Outcome | None] | None = None):
        super().__init__(reason)
        self.reason, self.retry_after, self.done = reason, retry_after, done


class RateGate:
    """The destination's published limits, never exceeded over any one-second window.

    `requests_per_second` counts HTTP requests, `events_per_second` the events they carry (a
    moving window from the `limits` library, so a backlog drains at the limit, never above it).
    """

    def __init__(self, requests_per_second: float, events_per_second: float | None = None):
        self._limiter = MovingWindowRateLimiter(MemoryStorage())
        self._requests = RateLimitItemPerSecond(max(1, int(requests_per_second)))
        self._events = RateLimitItemPerSecond(int(events_per_second)) if events_per_second else None
        self._lock = threading.Lock()

    def acquire(self, events: int = 0, stop: threading.Event | None = None) -> None:
        """Block until one request carrying `events` events may go."""
        while True:
            with self._lock:
                if self._limiter.test(self._requests, "r") and (
                        self._events is None or not events or self._limiter.test(self._events, "e", cost=events)):
                    self._limiter.hit(self._requests, "r")
                    if self._events is not None and events:
                        self._limiter.hit(self._events, "e", cost=events)
                    return
                waits = [self._limiter.get_window_stats(self._requests, "r").reset_time]
                if self._events is not None and events:
                    waits.append(self._limiter.get_window_stats(self._events, "e").reset_time)
            delay = min(0.05, max(0.001, max(waits) - time.time()))
            if stop is not None and stop.wait(delay):
                return
            if stop is None:
                time.sleep(delay)


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _is_transient(status: int) -> bool:
    return status in (408, 429) or status >= 500


def _short(response: requests.Response) -> str:
    return f"HTTP {response.status_code}: {response.text[:300]}"


class Destination:
    """Base: a requests session and the rate gate."""

    def __init__(self, gate: RateGate, stop: threading.Event | None = None):
        self.gate, self.stop = gate, stop
        self.session = requests.Session()

    def request(self, method: str, url: str, events: int = 0, **kwargs: Any) -> requests.Response:
        """One rate-limited request; connection errors and timeouts become `Transient`."""
        self.gate.acquire(events, self.stop)
        try:
            return self.session.request(method, url, timeout=TIMEOUT, **kwargs)
        except requests.RequestException as exc:
            # Only the host: a webhook URL may carry a token in its path or query.
            raise Transient(f"{type(exc).__name__} reaching {urlsplit(url).netloc}") from None

    def send(self, items: list[dict[str, Any]]) -> list[Outcome | None]:  # pragma: no cover - interface
        raise NotImplementedError


class AmplitudeEvents(Destination):
    """Amplitude HTTP V2 (`POST /2/httpapi`): a batch of events in one request."""

    def __init__(self, base_url: str, api_key: str, gate: RateGate, stop: threading.Event | None = None):
        super().__init__(gate, stop)
        self.url, self.api_key = base_url.rstrip("/") + "/2/httpapi", api_key

    def send(self, items: list[dict[str, Any]]) -> list[Outcome | None]:
        body = orjson.dumps({"api_key": self.api_key, "events": items, "options": {"min_id_length": 1}})
        r = self.request("POST", self.url, events=len(items), data=body,
                         headers={"Content-Type": "application/json", "Accept": "*/*"})
        if r.status_code == 200:
            return [OK] * len(items)
        if _is_transient(r.status_code):
            raise Transient(_short(r), _retry_after(r))
        try:
            detail = r.json()
        except ValueError:
            detail = {}
        if str(detail.get("error", "")).startswith("Invalid API key"):
            # Amplitude echoes the key: never let it reach logs or dead letters.
            raise Transient("Amplitude refused the API key; set AMPLITUDE_API_KEY to the project's key.", 30)
        named: dict[int, list[str]] = {}
        for key in ("events_with_invalid_fields", "events_with_missing_fields", "events_with_invalid_id_lengths"):
            for field, indexes in (detail.get(key) or {}).items():
                for i in indexes:
                    if isinstance(i, int) and 0 <= i < len(items):
                        named.setdefault(i, []).append(field)
        if r.status_code == 400 and named:
            # Amplitude refused the request for these events only: the others go again at once.
            return [Outcome("rejected", f"Amplitude refused the event: {detail.get('error')} ({', '.join(named[i])})")
                    if i in named else None for i in range(len(items))]
        return [Outcome("rejected", _short(r))] * len(items)


class HubSpotNotes(Destination):
    """A HubSpot note per item, associated with the contact found by email (CRM search API).

    The note's unique property `growth_stack_message_id` (created on first use) makes a
    redelivery a 409 CONFLICT, counted as a duplicate. Items whose email names no contact are
    skipped: the route is for known contacts.
    """

    def __init__(self, base_url: str, token: str, gate: RateGate, stop: threading.Event | None = None,
                 contact_ttl: float = 300.0):
        super().__init__(gate, stop)
        self.base = base_url.rstrip("/")
        self.session.headers.update({"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
        self._property_ready = False
        self._contacts: dict[str, tuple[str | None, float]] = {}
        self.contact_ttl = contact_ttl

    def _check(self, r: requests.Response, what: str) -> None:
        if _is_transient(r.status_code):
            raise Transient(f"{what}: {_short(r)}", _retry_after(r))
        if r.status_code in (401, 403):
            # A credential problem is the configuration's, not the message's: keep the backlog.
            raise Transient(f"{what}: HubSpot refused the access token ({r.status_code}); "
                            "set HUBSPOT_ACCESS_TOKEN to a private app token with CRM scopes.", 30)

    def _ensure_property(self) -> None:
        if self._property_ready:
            return
        url = f"{self.base}/crm/v3/properties/notes/{DEDUP_PROPERTY}"
        r = self.request("GET", url)
        self._check(r, "reading the notes property")
        if r.status_code == 404:
            r = self.request("POST", f"{self.base}/crm/v3/properties/notes", data=orjson.dumps(hubspot_property(
                DEDUP_PROPERTY, "Growth Stack message id", "string", "text", "engagement",
                "The captured message a streaming route made this note from (dedup key).", unique=True)))
            self._check(r, "creating the notes property")
            if r.status_code not in (200, 201, 409):
                raise Transient(f"creating the notes property {DEDUP_PROPERTY}: {_short(r)}", 30)
        self._property_ready = True

    def contact_id(self, email: str) -> str | None:
        """The id of the contact whose email is `email` (cached for a few minutes), or None."""
        key = email.strip().lower()
        cached = self._contacts.get(key)
        if cached is not None and cached[1] > time.monotonic():
            return cached[0]
        r = self.request("POST", f"{self.base}/crm/v3/objects/contacts/search", data=orjson.dumps({
            "filterGroups": [{"filters": [{"propertyName": "email", "operator": "EQ", "value": key}]}],
            "properties": ["email"], "limit": 1}))
        self._check(r, "searching the contact")
        if r.status_code != 200:
            raise Transient(f"searching the contact: {_short(r)}", 5)
        results = r.json().get("results") or []
        found = str(results[0]["id"]) if results else None
        # A contact created later is found within a minute; one that exists is cached longer.
        self._contacts[key] = (found, time.monotonic() + (self.contact_ttl if found else min(60.0, self.contact_ttl)))
        return found

    def send(self, items: list[dict[str, Any]]) -> list[Outcome | None]:
        self._ensure_property()
        done: list[Outcome | None] = []
        for item in items:
            try:
                contact = self.contact_id(item["email"])
                if contact is None:
                    done.append(Outcome("skipped", "no HubSpot contact has this email"))
                    continue
                r = self.request("POST", f"{self.base}/crm/v3/objects/notes", data=orjson.dumps({
                    "properties": {"hs_timestamp": str(item["timestamp"]), "hs_note_body": item["body"],
                                   DEDUP_PROPERTY: item["message_id"]},
                    "associations": [{"to": {"id": contact}, "types": [
                        {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": NOTE_TO_CONTACT}]}]}))
                self._check(r, "creating the note")
            except Transient as exc:
                exc.done = done + [None] * (len(items) - len(done))
                raise
            if r.status_code in (200, 201):
                done.append(OK)
            elif r.status_code == 409:
                done.append(DUPLICATE)
            else:
                done.append(Outcome("rejected", f"HubSpot refused the note: {_short(r)}"))
        return done


class SignedWebhook(Destination):
    """One signed Standard Webhooks POST per item (`webhook-id` = the item's id, the receiver's dedup key)."""

    def __init__(self, url: str, secret: str, gate: RateGate, stop: threading.Event | None = None,
                 clock: Callable[[], float] = time.time):
        super().__init__(gate, stop)
        self.url, self.secret, self.clock = url, secret, clock

    def send(self, items: list[dict[str, Any]]) -> list[Outcome | None]:
        done: list[Outcome | None] = []
        for item in items:
            body = orjson.dumps(item["payload"])
            ts = int(self.clock())
            try:
                r = self.request("POST", self.url, data=body,
                                 headers=signed_webhook_headers(body, self.secret, item["id"], ts))
                if _is_transient(r.status_code):
                    raise Transient(_short(r), _retry_after(r))
            except Transient as exc:
                exc.done = done + [None] * (len(items) - len(done))
                raise
            done.append(OK if r.status_code < 300 else Outcome("rejected", f"the webhook receiver refused it: {_short(r)}"))
        return done
