"""The official browser SDKs, in headless Chromium, send to the collector on another origin.

Segment's analytics.js (`@segment/analytics-next`) and RudderStack's JavaScript SDK v3
(`@rudderstack/analytics-js`) are installed from npm (pinned, `scripts/test-sdks.sh`); their dist
bundles are served with the test pages by a static server of the test's own (one origin), the
collector runs on another port (another origin), and both SDKs load their settings from the
collector (`cdnURL`, `configUrl`): nothing reaches any other host, which the test checks.

Each SDK sends page, identify and track twice: as the page runs (through CORS), and held back until
the page is left (RudderStack: `navigator.sendBeacon`; Segment: its batching delivery, flushed with
`fetch(..., {keepalive: true})` on `pagehide`). The event files then load into a real DuckDB file.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import duckdb
import pytest

from growth_stack_dagster.capture import loader
from tests.browser import launch, new_page
from tests.collector.helpers import closed_lines, events_root, wait_lines
from tests.sdks.install import node_modules
from tests.servers import run_server

PAGES = Path(__file__).with_name("browser_sdks")
BUNDLES = {"segment": "@segment/analytics-next/dist/umd",
           "rudderstack": "@rudderstack/analytics-js/dist/npm/modern/bundled/umd"}
WRITE_KEYS = {"segment": ("segment-browser-key", "web_segment"), "rudderstack": ("rudder-browser-key", "web_rudder")}
LIBRARY = {"segment": "analytics.js", "rudderstack": "RudderLabs JavaScript SDK"}


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # the test reports what matters
        pass


@pytest.fixture(scope="module")
def static_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The test pages and the SDKs' dist bundles, served from one origin on a free port."""
    root = tmp_path_factory.mktemp("browser_static")
    for page in PAGES.glob("*.html"):
        (root / page.name).write_bytes(page.read_bytes())
    (root / "sdk").mkdir()
    for name, dist in BUNDLES.items():
        (root / "sdk" / name).symlink_to(node_modules() / dist, target_is_directory=True)
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def browser() -> Iterator:
    """Headless Chromium for this module only: Playwright's sync API keeps an event loop running in
    this thread while it is open, which makes asyncio.run() fail in every later test (test_writer.py)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = launch(p)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def collector(gs_home: Path) -> Iterator[str]:
    """A collector with a write key per browser SDK (source web_segment, web_rudder)."""
    keys = ",".join(f"{source}={key}" for key, source in WRITE_KEYS.values())
    with run_server("collector", "/health", {"GROWTH_STACK_HOME": str(gs_home), "GROWTH_STACK_WRITE_KEYS": keys},
                    log_path=gs_home / "collector.log") as (url, _):
        yield url


def _sent(page, console: list[str]) -> None:
    try:
        page.wait_for_function("document.getElementById('status').textContent !== 'loading'", timeout=90_000)
    except Exception as exc:
        raise AssertionError(f"the SDK page did not send; its console said: {console}") from exc
    status = page.text_content("#status")
    assert status == "sent", f"the SDK page says {status!r}; its console said: {console}"


@pytest.mark.parametrize("sdk", ["segment", "rudderstack"])
def test_browser_sdk_sends_through_cors_and_on_unload(sdk: str, browser, static_url: str, collector: str,
                                                       gs_home: Path) -> None:
    key, source = WRITE_KEYS[sdk]
    page = new_page(browser)
    page.context.add_init_script(path=str(PAGES / "record_sends.js"))
    seen: list[tuple[str, str]] = []  # (method, url) of every request the browser driver saw
    page.context.on("request", lambda r: seen.append((r.method, r.url)))
    console: list[str] = []
    page.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
    page.on("pageerror", lambda e: console.append(f"pageerror: {e}"))
    cors: list[str | None] = []
    page.context.on("response", lambda r: cors.append(r.headers.get("access-control-allow-origin"))
                    if r.url.startswith(collector) and r.request.method == "POST" else None)
    try:
        url = f"{static_url}/{sdk}.html?collector={collector}&writeKey={key}"
        page.goto(url + "&mode=live", wait_until="load")
        _sent(page, console)
        live = wait_lines(gs_home, 3, timeout=90)
        assert sorted(m["type"] for _, m in live) == ["identify", "page", "track"], live
        assert cors and set(cors) <= {static_url, "*"}, cors  # every answer allowed the page's origin (CORS)

        page.goto(url + "&mode=unload", wait_until="load")
        _sent(page, console)
        page.goto(f"{static_url}/bye.html", wait_until="load")  # leaving the page sends what was held
        lines = wait_lines(gs_home, 6, timeout=90)
        sends = page.evaluate("JSON.parse(localStorage.getItem('sends') || '[]')")
    finally:
        page.context.close()

    # The unload page sent nothing until it was hidden, then everything, the SDK's own way.
    unload = [s for s in sends if "mode=unload" in s["page"]]
    hidden = [i for i, s in enumerate(unload) if s["via"] == "pagehide"]
    assert hidden, sends
    before, after = unload[:hidden[0]], unload[hidden[0] + 1:]
    settings = ("/v1/projects/", "/sourceConfig")  # what the SDKs load before sending
    assert not [s for s in before if "url" in s and not any(x in s["url"] for x in settings)], before
    if sdk == "rudderstack":
        assert after and {(s["via"], urlsplit(s["url"]).path) for s in after} == {("sendBeacon", "/beacon/v1/batch")}
    else:
        assert after and {(s["via"], urlsplit(s["url"]).path, s["keepalive"]) for s in after} == {("fetch", "/v1/b", True)}
    reached = {urlsplit(u).netloc for _, u in seen} | {urlsplit(s["url"]).netloc for s in sends if "url" in s}
    outside = reached - {urlsplit(static_url).netloc, urlsplit(collector).netloc}
    assert not outside, f"the SDK reached other hosts: {outside}"
    assert {s for s, _ in lines} == {source} and len(lines) == 6 == len(closed_lines(gs_home))

    with duckdb.connect(str(gs_home / "warehouse.duckdb")) as con:
        for day in sorted({m["receivedAt"][:10] for _, m in lines}):
            loader.load_partition(con, events_root(gs_home), day)
        assert con.execute("SELECT count(*) FROM events._discards").fetchone() == (0,)
        # What each page sends (browser_sdks/<sdk>.html): `Plan` folds into the `plan` column.
        user, email, plan, term, product, price = {
            "segment": ("seg-user", "ada", "pro", "annual", "p", 12.5),
            "rudderstack": ("rud-user", "bo", "team", "monthly", "r", 7.25)}[sdk]
        # RudderStack's SDK sends identify traits in context.traits only: they are the identify's traits.
        assert con.execute("SELECT user_id, email, plan, plan_type, context_library_name FROM events.identifies "
                           "ORDER BY user_id").fetchall() == [
            (f"{user}-{tag}", f"{email}+{tag}@example.com", plan, term, LIBRARY[sdk]) for tag in ("live", "unload")]
        assert con.execute("SELECT id, email, plan FROM events.users ORDER BY id").fetchall() == [
            (f"{user}-{tag}", f"{email}+{tag}@example.com", plan) for tag in ("live", "unload")]
        pages = con.execute("SELECT name, category, section, context_page_url FROM events.pages ORDER BY name").fetchall()
        assert [(n, c, s) for n, c, s, _ in pages] == [("Home live", "Docs", "live"), ("Home unload", "Docs", "unload")]
        assert all(u.startswith(f"{static_url}/{sdk}.html") for *_, u in pages)
        assert con.execute("SELECT product_id, price, source FROM events.product_viewed ORDER BY product_id").fetchall() == [
            (f"{product}-{tag}", price, source) for tag in ("live", "unload")]
        assert con.execute("SELECT count(*) FROM events.tracks WHERE event = 'product_viewed'").fetchone() == (2,)
