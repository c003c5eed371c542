"""Run-failure alerts: a JSON message posted to a webhook URL from the environment, signed with
Standard Webhooks (`webhook-id`, `webhook-timestamp`, `webhook-signature`), so that any receiver
(a chat bridge, an incident tool, your own endpoint) can verify it came from this stack.

    GROWTH_STACK_ALERT_WEBHOOK_URL     where alerts go (unset: no alerts)
    GROWTH_STACK_ALERT_WEBHOOK_SECRET  the receiver's `whsec_...` signing secret (required with the URL)
    GROWTH_STACK_DAGSTER_URL           the UI's address, for the link to the run (default http://127.0.0.1:3000)
"""

from __future__ import annotations

import datetime as dt
import json
import os
import uuid
from collections.abc import Mapping
from typing import Any

from growth_stack_dagster.lib.tool_requests import check_webhook_secret, signed_webhook_headers

URL_ENV, SECRET_ENV, UI_ENV = "GROWTH_STACK_ALERT_WEBHOOK_URL", "GROWTH_STACK_ALERT_WEBHOOK_SECRET", "GROWTH_STACK_DAGSTER_URL"
DEFAULT_UI_URL = "http://127.0.0.1:3000"


class AlertConfigError(ValueError):
    """The alert settings in the environment are incomplete or malformed."""


def alert_settings(environ: Mapping[str, str] = os.environ) -> tuple[str, str] | None:
    """(url, secret) from the environment, None when alerts are off; raises AlertConfigError with
    what to set when the URL is there without a usable secret."""
    url = environ.get(URL_ENV, "").strip()
    if not url:
        return None
    secret = environ.get(SECRET_ENV, "").strip()
    if not secret:
        raise AlertConfigError(f"{URL_ENV} is set but {SECRET_ENV} is not: set it to the receiver's signing "
                               "secret (whsec_ followed by base64) so that alerts can be signed.")
    try:
        check_webhook_secret(secret, SECRET_ENV)
    except ValueError as exc:
        raise AlertConfigError(str(exc)) from None
    return url, secret


def run_failure_message(run_id: str, job_name: str, error: str, failed_steps: list[str],
                        ui_url: str = DEFAULT_UI_URL, when: dt.datetime | None = None) -> dict[str, Any]:
    """The alert body: what failed, where to look, and when."""
    when = when or dt.datetime.now(dt.timezone.utc)
    return {
        "type": "run.failed",
        "timestamp": when.isoformat(),
        "data": {
            "run_id": run_id,
            "job_name": job_name,
            "failed_steps": failed_steps,
            "error": error[:2000],
            "run_url": f"{ui_url.rstrip('/')}/runs/{run_id}",
            "text": f"Growth Stack: run of {job_name} failed"
                    + (f" at {', '.join(failed_steps)}" if failed_steps else "") + f". {ui_url.rstrip('/')}/runs/{run_id}",
        },
    }


def signed_request(message: dict[str, Any], secret: str, msg_id: str | None = None,
                   when: dt.datetime | None = None) -> tuple[bytes, dict[str, str]]:
    """(body, headers) of the message signed the Standard Webhooks way."""
    msg_id = msg_id or f"msg_{uuid.uuid4().hex}"
    when = when or dt.datetime.now(dt.timezone.utc)
    body = json.dumps(message, separators=(",", ":"), sort_keys=True).encode()
    return body, signed_webhook_headers(body, secret, msg_id, int(when.timestamp()))


def post_alert(url: str, secret: str, message: dict[str, Any], timeout: float = 10.0) -> int:
    """POST the signed message, retrying connection errors and 429/5xx answers with backoff.
    Returns the HTTP status; raises requests.HTTPError for a final non-2xx answer."""
    import requests
    from requests.adapters import HTTPAdapter
    from urllib3.util.retry import Retry

    body, headers = signed_request(message, secret)  # one id for every attempt: the receiver can deduplicate
    retry = Retry(total=3, backoff_factor=0.5, status_forcelist=(429, 500, 502, 503, 504),
                  allowed_methods=frozenset({"POST"}), respect_retry_after_header=True, raise_on_status=False)
    with requests.Session() as session:
        session.mount("http://", HTTPAdapter(max_retries=retry))
        session.mount("https://", HTTPAdapter(max_retries=retry))
        response = session.post(url, data=body, headers=headers, timeout=timeout)
    response.raise_for_status()
    return response.status_code
