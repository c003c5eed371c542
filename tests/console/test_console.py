"""`growth-stack console` as a real server on loopback: home page, scorecard, token, refusal to listen
publicly without one."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
from pathlib import Path

import requests

from growth_stack_dagster.console.app import NAV
from growth_stack_dagster.operate import scorecard

from tests.servers import CLI, REPO, run_server


def test_home_and_scorecard_pages(gs_home: Path) -> None:
    with run_server("console", "/health", {"GROWTH_STACK_HOME": str(gs_home)}) as (url, _):
        home = requests.get(url + "/", timeout=10)
        assert home.status_code == 200 and "Executive scorecard" in home.text and "Not built yet" in home.text
        missing = requests.get(url + "/scorecard", timeout=10)
        assert missing.status_code == 404 and "reports/executive_scorecard" in missing.text
        (gs_home / "scorecard").mkdir()
        (gs_home / "scorecard" / "index.html").write_text("<html><body>the charts</body></html>")
        page = requests.get(url + "/scorecard", timeout=10)
        assert page.status_code == 200 and "the charts" in page.text
        assert "Refreshed hourly" in requests.get(url + "/", timeout=10).text
        # a page the scorecard asset renders: shown under the console's header and navigation, once
        built_at = dt.datetime(2026, 11, 3, 8, tzinfo=dt.timezone.utc)
        (gs_home / "scorecard" / "index.html").write_text(
            scorecard.render_scorecard(scorecard.ScorecardData([], [], [], 7, [], high_value_history=[(dt.date(2026, 11, 3), 7)]),
                                       built_at))
        page = requests.get(url + "/scorecard", timeout=10)
        assert page.status_code == 200 and page.text.count("<html") == 1 and page.text.count("<body") == 1
        header = page.text.split("<main>", 1)[0]
        for path, label in NAV:
            assert f'href="{path}"' in header and label in header
        assert '<a href="/scorecard" class="active">Executive scorecard</a>' in header and "Dagster UI" in header
        main = page.text.split("<main>", 1)[1]
        assert '<div class="scorecard">' in main and "High-value customers" in main and "js-plotly" not in header
        assert ".scorecard .card" in header  # its styles, scoped to its own block, come along
        assert "margin: 24px" not in page.text  # but not the standalone page's body margin


def test_a_token_guards_every_page_but_health(gs_home: Path) -> None:
    env = {"GROWTH_STACK_HOME": str(gs_home), "GROWTH_STACK_CONSOLE_TOKEN": "s3cret-token-value"}
    with run_server("console", "/health", env) as (url, _):
        assert requests.get(url + "/", timeout=10).status_code == 401
        assert requests.get(url + "/", headers={"Authorization": "Bearer wrong"}, timeout=10).status_code == 401
        assert requests.get(url + "/", headers={"Authorization": "Bearer s3cret-token-value"}, timeout=10).ok
        with requests.Session() as s:
            first = s.get(url + "/?token=s3cret-token-value", timeout=10)
            assert first.ok and "growth_stack_console_token" in first.headers["set-cookie"]
            assert s.get(url + "/scorecard", timeout=10).status_code == 404  # the cookie carries the token on


def test_listening_beyond_loopback_needs_a_token(gs_home: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "GROWTH_STACK_CONSOLE_TOKEN"}
    result = subprocess.run([*CLI, "console", "--host", "0.0.0.0", "--port", "1"], env=env, cwd=REPO,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "GROWTH_STACK_CONSOLE_TOKEN" in result.stderr
