"""The HTTP session every destination sends through, and the client-side rate limiter.

Retries are urllib3's `Retry`: `Retry-After` is honoured on 429/503, and 429 without it, 5xx and
timeouts back off exponentially with jitter. Where the destination is not idempotent, a request that
may have been applied (a 5xx or a read timeout after the body went out) is not sent again: only 429s
and connection failures are retried. Settings come from the environment:
`ACTIVATION__RETRIES` (6), `ACTIVATION__BACKOFF_FACTOR` (0.5 s), `ACTIVATION__BACKOFF_MAX` (30 s),
`ACTIVATION__CONNECT_TIMEOUT` (5 s), `ACTIVATION__READ_TIMEOUT` (60 s),
`ACTIVATION__RATE_HEADROOM` (0.99 of the declared requests per window).
"""

from __future__ import annotations

import os
import threading
import time

import requests
from limits import RateLimitItemPerSecond
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

RETRY_STATUSES = (429, 500, 502, 503, 504)


def _env_float(name: str, default: float) -> float:
    value = os.environ.get(name)
    try:
        return float(value) if value else default
    except ValueError:
        raise ValueError(f"{name}={value!r} is not a number; set it to e.g. {default}.") from None


class _TimeoutAdapter(HTTPAdapter):
    """An adapter that gives every request a (connect, read) timeout unless the caller set one."""

    def __init__(self, timeout: tuple[float, float], limiter: "RequestRateLimiter | None" = None, **kwargs):
        self.timeout = timeout
        self.limiter = limiter
        super().__init__(**kwargs)

    def send(self, request, **kwargs):  # noqa: D102 - requests' own signature
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.timeout
        if self.limiter is None:
            return super().send(request, **kwargs)
        self.limiter.acquire()
        try:
            return super().send(request, **kwargs)
        finally:
            self.limiter.release()


def retry_policy(idempotent: bool) -> Retry:
    """urllib3 Retry for a destination: everything transient when idempotent, else only what was not applied."""
    retries = int(_env_float("ACTIVATION__RETRIES", 6))
    common = dict(total=retries, connect=retries, backoff_factor=_env_float("ACTIVATION__BACKOFF_FACTOR", 0.5),
                  backoff_max=_env_float("ACTIVATION__BACKOFF_MAX", 30.0), backoff_jitter=0.5,
                  respect_retry_after_header=True, allowed_methods=None, raise_on_status=True)
    if idempotent:
        return Retry(read=retries, status=retries, status_forcelist=RETRY_STATUSES, **common)
    # A read timeout or 5xx may follow an applied write: sending again could double it.
    return Retry(read=0, status=retries, status_forcelist=(429,), **common)


def destination_session(idempotent: bool = True, limiter: "RequestRateLimiter | None" = None) -> requests.Session:
    """A requests.Session with retries, backoff, default timeouts and (optionally) the sync's rate limit."""
    session = requests.Session()
    timeout = (_env_float("ACTIVATION__CONNECT_TIMEOUT", 5.0), _env_float("ACTIVATION__READ_TIMEOUT", 60.0))
    adapter = _TimeoutAdapter(timeout, limiter, max_retries=retry_policy(idempotent), pool_maxsize=8)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.headers["User-Agent"] = "growth-stack-activation/0.1"
    return session


class RequestRateLimiter:
    """At most `requests` per rolling `per_seconds`, the way HubSpot counts (a moving window, kept by
    `limits`: a burst after idle never exceeds the limit, which a token bucket with a full burst would).
    `acquire` blocks until a request may go; `release` says it was answered.

    A request holds a place from the moment it leaves and is entered in the window when its answer comes
    back. The server counts a request when it arrives, after it left and before it answered, so however
    late the server counts it (latency, queueing behind other batches in flight) the server never sees
    more than the limit in any window; the cost is one request's latency per window, not a fixed margin."""

    def __init__(self, requests_: int, per_seconds: float, key: str = "destination"):
        # Headroom for what the window cannot see: a request urllib3 sends again after a 5xx or a 429.
        headroom = _env_float("ACTIVATION__RATE_HEADROOM", 0.99)
        self.item = RateLimitItemPerSecond(max(1, int(requests_ * headroom)), max(1, int(round(per_seconds))))
        self._window = MovingWindowRateLimiter(MemoryStorage())
        self._key = key
        self._in_flight = 0
        self._changed = threading.Condition()
        self.waited = 0.0

    def acquire(self) -> None:
        """Take one place in the window, sleeping until one is free."""
        with self._changed:
            while True:
                reset_at, remaining = self._window.get_window_stats(self.item, self._key)
                if remaining > self._in_flight:
                    self._in_flight += 1
                    return
                started = time.monotonic()
                # every free place is held by a request in flight: its answer frees nothing sooner than
                # the oldest entry leaving the window, but wakes us to look again
                self._changed.wait(max(0.001, reset_at - time.time()) if remaining == 0 else None)
                self.waited += time.monotonic() - started

    def release(self) -> None:
        """The request taken by `acquire` was answered (or failed): enter it in the window now."""
        with self._changed:
            self._window.hit(self.item, self._key)
            self._in_flight -= 1
            self._changed.notify_all()
