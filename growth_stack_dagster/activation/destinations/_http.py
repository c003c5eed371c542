"""What the Customer.io, Amplitude, Facebook, Zendesk and webhook destinations share: one request
that turns exhausted retries into `DestinationUnavailable`, and error text that is safe to store."""

from __future__ import annotations

import re

import requests

from growth_stack_dagster.activation.destinations.base import DestinationUnavailable

class AnswerLost(DestinationUnavailable, requests.exceptions.ConnectionError):
    """The connection broke or timed out before the answer: the batch may or may not have landed. It is
    also a requests ConnectionError, so the engine may send an idempotent batch again at once."""


# (connect, read) seconds: a destination that does not answer in time is retried by the session's Retry.
DEFAULT_TIMEOUT = (10.0, 60.0)


def request(session: requests.Session, method: str, url: str, destination: str,
            timeout: tuple[float, float] | None = None, credential_hint: str = "", **kwargs) -> requests.Response:
    """One HTTP request through the engine's session (whose urllib3 `Retry` handles 429, 5xx and
    timeouts). A 429 or 5xx left after those retries, a timeout, a broken connection or a refused
    credential (401/403) raise `DestinationUnavailable` naming the destination; any other answer is
    returned to the caller. `credential_hint` names the variable to fix when the credential is refused."""
    if timeout is None and not any(hasattr(a, "timeout") for a in session.adapters.values()):
        timeout = DEFAULT_TIMEOUT  # the engine's adapters carry their own; a bare session gets ours
    try:
        response = session.request(method, url, timeout=timeout, **kwargs)
    except requests.exceptions.RetryError as exc:
        raise DestinationUnavailable(
            f"{destination} kept answering with errors or rate limits after every retry ({_reason(exc)}); "
            "the unsent records stay pending for the next run.") from exc
    except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError) as exc:
        # a dropped connection or a timeout leaves the outcome unknown: the records are sent again next run
        raise AnswerLost(
            f"{destination} did not answer ({type(exc).__name__}); whether the last batch landed is unknown, "
            "so its records stay pending and are sent again on the next run.") from exc
    if response.status_code in (401, 403):
        raise DestinationUnavailable(
            f"{destination} refused the credential (HTTP {response.status_code}); set "
            f"{credential_hint or 'its credential variable'} to a valid key and run the sync again.")
    if response.status_code == 429 or response.status_code >= 500:
        raise DestinationUnavailable(
            f"{destination} answered HTTP {response.status_code} after every retry: {snippet(response)}; "
            "the unsent records stay pending for the next run.")
    return response


EMAIL = re.compile(r"[^\s@'\"<>(),;:]+@[^\s@'\"<>(),;:]+\.[A-Za-z]{2,}")


def redact(text: str) -> str:
    """`text` with email addresses replaced, so an API's error message can be logged and stored in the
    row log without the record's personal data."""
    return EMAIL.sub("<email>", text)


def snippet(response: requests.Response, limit: int = 300) -> str:
    """The start of an error answer, emails redacted, for messages (APIs echo no credential in their errors)."""
    text = redact(response.text.strip().replace("\n", " "))
    return text[:limit] + ("..." if len(text) > limit else "")


def _reason(exc: Exception) -> str:
    # urllib3's message names the URL and the last status; keep only the part after the URL's path
    text = str(exc)
    marker = "Caused by "
    return text[text.find(marker) + len(marker):][:200] if marker in text else type(exc).__name__
