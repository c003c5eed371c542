"""Issue 10 §5: the Facebook token travels in a header, so no request URL (which logs keep) holds it."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from tests.ingest.conftest import load, table_count


def test_no_request_url_carries_the_facebook_token(seeded: dict[str, Any], caplog: pytest.LogCaptureFixture) -> None:
    from growth_stack_dagster import config

    token = config.sandbox_token()
    # urllib3 logs every request line (method, path and query) at DEBUG: what an access log would keep
    caplog.set_level(logging.DEBUG, logger="urllib3.connectionpool")
    rows = load("facebook_ads")
    assert rows["campaigns"] == len(seeded["facebook"]["campaigns"]) > 0
    assert rows["campaign_insights"] == len(seeded["facebook"]["insights"]) > 0
    assert table_count("facebook_ads", "campaign_insights") == len(seeded["facebook"]["insights"])
    request_lines = [r.getMessage() for r in caplog.records
                     if r.name == "urllib3.connectionpool" and "/facebook/" in r.getMessage()]
    assert any("/insights?" in line for line in request_lines), request_lines  # the URLs were seen
    assert not any(token in line or "access_token" in line for line in request_lines), request_lines
    assert token not in caplog.text
