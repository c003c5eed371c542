"""The router end to end: the sandbox, the collector and `growth-stack router` as real processes on
loopback, the repository's routes file, real event files."""

from __future__ import annotations

import datetime as dt
import gzip
import io
import json
import os
import signal
import statistics
import threading
import time
import uuid
import zipfile
from pathlib import Path

import duckdb
import pytest
import requests

from growth_stack_dagster.capture import loader
from growth_stack_dagster.collector.signatures import customerio_signature
from growth_stack_dagster import config
from tests.router.helpers import (
    TOKEN, RouterProcess, amplitude_events, clear_faults, customerio_webhook, faults, hubspot, router_state, routes_file,
    stack, wait_until,
)

AMPLITUDE_ROUTE = "customerio_email_to_amplitude"
LATENCY_GOAL = 5.0


def _today() -> str:
    return dt.datetime.now(dt.timezone.utc).date().isoformat()


def _route(home: Path, name: str) -> dict:
    return (router_state(home).get("routes") or {}).get(name) or {}


def _caught_up(home: Path, name: str) -> bool:
    r = _route(home, name)
    return bool(r) and r.get("backlog_bytes") == 0 and r.get("lag_seconds") == 0


def _post_webhook(collector: str, body: bytes, headers: dict[str, str], session=requests) -> None:
    r = session.post(f"{collector}/v1/webhook/customerio", data=body, headers=headers, timeout=10)
    assert r.status_code == 200, r.text


def _track(collector: str, kind: str, payload: dict) -> None:
    r = requests.post(f"{collector}/v1/{kind}", json=payload, auth=("web-dev-key", ""), timeout=10)
    assert r.status_code == 200, r.text


def test_email_open_signed_by_the_sandbox_reaches_amplitude_fast_and_a_replay_counts_once(gs_home: Path) -> None:
    with stack(gs_home) as urls, RouterProcess(gs_home, urls["sandbox"]):
        wait_until(lambda: _route(gs_home, AMPLITUDE_ROUTE), 30, "the router to start")
        started = time.monotonic()
        sent = requests.post(f"{urls['sandbox']}/customerio/_sandbox/messages", timeout=10, json={
            "customer_id": "cust-1001", "email": "ada@example.com", "events": ["opened"], "subject": "Hello"})
        assert sent.status_code == 202
        event_id = sent.json()["webhooks"][0]["event_id"]
        events = wait_until(lambda: amplitude_events(urls["sandbox"], "cust-1001"), 30, "the open in Amplitude")
        elapsed = time.monotonic() - started
        assert elapsed < LATENCY_GOAL, f"the open took {elapsed:.1f} s to reach Amplitude"
        assert [(e["event_type"], e["user_id"], e["$insert_id"]) for e in events] == [
            ("Email Opened", "cust-1001", f"customerio-{event_id}")]
        assert events[0]["event_properties"]["subject"] == "Hello"

        # Customer.io retries the same webhook, and an operator replays the whole day: still one open.
        body = json.dumps(sent.json()["webhooks"][0], separators=(",", ":")).encode()
        now = int(time.time())
        _post_webhook(urls["collector"], body, {
            "Content-Type": "application/json", "X-CIO-Timestamp": str(now),
            "X-CIO-Signature": customerio_signature(body, config.DEFAULT_CUSTOMERIO_WEBHOOK_SIGNING_KEY, now)})
        wait_until(lambda: _route(gs_home, AMPLITUDE_ROUTE).get("counts", {}).get("delivered", 0) >= 2, 30,
                   "the redelivered webhook to be routed")
        replayed = RouterProcess(gs_home, urls["sandbox"]).command("replay", AMPLITUDE_ROUTE, "--from", _today())
        assert replayed.returncode == 0, replayed.stderr
        assert "delivered=2" in replayed.stdout
        assert len(amplitude_events(urls["sandbox"], "cust-1001")) == 1


def test_quote_request_of_a_known_contact_reaches_hubspot_and_the_sales_webhook(gs_home: Path) -> None:
    with stack(gs_home) as urls, RouterProcess(gs_home, urls["sandbox"]):
        sandbox = urls["sandbox"]
        contact = hubspot(sandbox, "POST", "/crm/v3/objects/contacts",
                          {"properties": {"email": "grace@wholesale.example", "firstname": "Grace"}}).json()["id"]
        wait_until(lambda: _route(gs_home, "quote_intent_to_hubspot"), 30, "the router to start")
        started = time.monotonic()
        _track(urls["collector"], "identify", {"userId": "user-77", "anonymousId": "anon-77",
                                               "traits": {"email": "Grace@Wholesale.example"}})
        _track(urls["collector"], "track", {"userId": "user-77", "event": "Request a Quote",
                                            "properties": {"sku": "WH-CHAIR", "quantity": 48, "company": "Acme"}})
        _track(urls["collector"], "page", {"anonymousId": "anon-77", "name": "Pricing",
                                           "properties": {"path": "/pricing/wholesale"}})
        # Not for these routes: a stranger's quote, another page, another event of the contact.
        _track(urls["collector"], "track", {"userId": "stranger-1", "event": "Request a Quote", "properties": {}})
        _track(urls["collector"], "page", {"userId": "user-77", "name": "Home", "properties": {"path": "/"}})
        _track(urls["collector"], "track", {"userId": "user-77", "event": "Product Viewed", "properties": {}})

        def notes() -> list[str]:
            r = hubspot(sandbox, "GET", f"/crm/v4/objects/contacts/{contact}/associations/notes")
            return [str(x["toObjectId"]) for x in r.json().get("results", [])] if r.status_code == 200 else []

        def deliveries() -> list[dict]:
            return requests.get(f"{sandbox}/webhook/_sandbox/sales/messages", timeout=10).json()["data"]

        wait_until(lambda: len(notes()) == 2 and len(deliveries()) == 2, 30, "two notes and two webhooks")
        assert time.monotonic() - started < LATENCY_GOAL + 5  # the search API allows 5 requests per second
        bodies = sorted(hubspot(sandbox, "GET", f"/crm/v3/objects/notes/{n}?properties=hs_note_body")
                        .json()["properties"]["hs_note_body"] for n in notes())
        assert bodies == ["Requested a quote on the website (sku: WH-CHAIR, quantity: 48, company: Acme).",
                          "Viewed the pricing page /pricing/wholesale."]
        kinds = sorted((d["body"]["type"], d["body"]["data"]["email"], d["attempts"]) for d in deliveries())
        assert kinds == [("lead.pricing_viewed", "Grace@Wholesale.example", 1),
                         ("lead.quote_requested", "Grace@Wholesale.example", 1)]
        time.sleep(1)  # the stranger's quote was read in the same files: nothing more arrived
        assert len(deliveries()) == 2 and len(notes()) == 2
        assert _route(gs_home, "quote_intent_to_sales_webhook")["counts"]["filtered"] == 1


def test_hubspot_call_and_deal_stage_webhooks_become_events_in_the_warehouse(gs_home: Path) -> None:
    with stack(gs_home, {"GROWTH_STACK_COLLECTOR_FILE_SECONDS": "0.5"}) as urls:
        sandbox = urls["sandbox"]
        call = hubspot(sandbox, "POST", "/crm/v3/objects/calls", {"properties": {
            "hs_call_title": "Intro call", "hs_timestamp": "2026-12-01T10:00:00Z"}}).json()["id"]
        deal = hubspot(sandbox, "POST", "/crm/v3/objects/deals", {"properties": {
            "dealname": "Acme chairs", "dealstage": "appointmentscheduled"}}).json()["id"]
        assert hubspot(sandbox, "PATCH", f"/crm/v3/objects/deals/{deal}",
                       {"properties": {"dealstage": "closedwon"}}).status_code == 200
        assert hubspot(sandbox, "PATCH", f"/crm/v3/objects/deals/{deal}",
                       {"properties": {"dealname": "Acme chairs (renamed)"}}).status_code == 200
        requests.post(f"{sandbox}/_admin/webhooks/flush", timeout=60).raise_for_status()
        assert requests.get(f"{sandbox}/_admin/stats", timeout=10).json()["webhooks_delivered"] == 3
        events_dir = gs_home / "events"
        wait_until(lambda: len([ln for f in (events_dir / "source=hubspot").glob("*/*.jsonl")
                                for ln in f.read_text().splitlines()]) == 3, 30, "three closed webhook lines")
        con = duckdb.connect(str(gs_home / "warehouse.duckdb"))
        report = loader.load_partition(con, events_dir, _today())
        assert report.discards == 0
        calls = con.execute("select event_text, hubspot_call_id, anonymous_id from events.sales_call_logged").fetchall()
        stages = con.execute("select event_text, hubspot_deal_id, deal_stage from events.deal_stage_changed "
                             "order by timestamp").fetchall()
        assert calls == [("Sales Call Logged", call, f"hubspot-call-{call}")]
        assert stages == [("Deal Stage Changed", deal, "appointmentscheduled"),
                          ("Deal Stage Changed", deal, "closedwon")]

        # A HubSpot webhook that was tampered with, or is older than five minutes, is refused.
        url = f"{urls['collector']}/v1/webhook/hubspot"
        from growth_stack_dagster.collector.signatures import hubspot_signature_v3
        body = b'[{"eventId":99,"subscriptionType":"deal.propertyChange","objectId":1,"occurredAt":1}]'
        old = str(int((time.time() - 400) * 1000))
        signed = hubspot_signature_v3(body, config.DEFAULT_HUBSPOT_CLIENT_SECRET, "POST", url, old)
        stale = requests.post(url, data=body, timeout=10, headers={
            "X-HubSpot-Signature-v3": signed, "X-HubSpot-Request-Timestamp": old})
        assert stale.status_code == 401 and "old" in stale.json()["message"]
        fresh = str(int(time.time() * 1000))
        forged = requests.post(url, data=body.replace(b"99", b"98"), timeout=10, headers={
            "X-HubSpot-Signature-v3": hubspot_signature_v3(body, config.DEFAULT_HUBSPOT_CLIENT_SECRET, "POST",
                                                           url, fresh),
            "X-HubSpot-Request-Timestamp": fresh})
        assert forged.status_code == 401


def _send_opens(collector: str, users: list[str], count: int, seconds: float, stop: threading.Event) -> list[str]:
    """Post `count` signed open webhooks over about `seconds`; returns their event ids."""
    ids: list[str] = []
    session = requests.Session()
    for i in range(count):
        if stop.is_set():
            break
        event_id = uuid.uuid4().hex
        body, headers = customerio_webhook(users[i % len(users)], f"{users[i % len(users)]}@example.com",
                                           event_id=event_id)
        _post_webhook(collector, body, headers, session)
        ids.append(event_id)
        time.sleep(seconds / count)
    return ids


def _all_events(sandbox: str, users: list[str]) -> list[dict]:
    """Every event of `users` in Amplitude, read through its Export API (one request)."""
    hour = dt.datetime.now(dt.timezone.utc)
    r = requests.get(f"{sandbox}/amplitude/api/2/export", auth=(TOKEN, TOKEN), timeout=30, params={
        "start": (hour - dt.timedelta(hours=1)).strftime("%Y%m%dT%H"), "end": hour.strftime("%Y%m%dT%H")})
    if r.status_code == 404:
        return []
    r.raise_for_status()
    wanted = set(users)
    with zipfile.ZipFile(io.BytesIO(r.content)) as zf:
        events = [json.loads(line) for name in zf.namelist() for line in gzip.decompress(zf.read(name)).splitlines()]
    return [e for e in events if e["user_id"] in wanted]


def test_sigkill_under_load_loses_nothing_and_double_counts_nothing(gs_home: Path) -> None:
    users = [f"cust-kill-{i:03d}" for i in range(40)]
    with stack(gs_home) as urls:
        router = RouterProcess(gs_home, urls["sandbox"]).start()
        wait_until(lambda: _route(gs_home, AMPLITUDE_ROUTE), 30, "the router to start")
        stop = threading.Event()
        result: list[list[str]] = []
        sender = threading.Thread(target=lambda: result.append(_send_opens(urls["collector"], users, 400, 3.0, stop)))
        sender.start()
        try:
            for pause in (0.8, 1.0):
                time.sleep(pause)
                router.kill()  # SIGKILL: no chance to save anything
                router.start()
        finally:
            sender.join(timeout=60)
        ids = result[0]
        assert len(ids) == 400
        wait_until(lambda: len(_all_events(urls["sandbox"], users)) >= 400, 60, "every open in Amplitude", every=0.3)
        time.sleep(1.0)  # anything delivered twice would show now
        events = _all_events(urls["sandbox"], users)
        router.kill(15)
        assert sorted(e["$insert_id"] for e in events) == sorted(f"customerio-{i}" for i in ids)


@pytest.mark.parametrize("outage_seconds", [pytest.param(6, id="6s"), pytest.param(60, id="60s", marks=pytest.mark.slow)])
def test_amplitude_429_and_5xx_delay_but_lose_nothing(gs_home: Path, outage_seconds: int) -> None:
    users = [f"cust-out-{i:02d}" for i in range(20)]
    with stack(gs_home) as urls, RouterProcess(gs_home, urls["sandbox"]):
        sandbox = urls["sandbox"]
        wait_until(lambda: _route(gs_home, AMPLITUDE_ROUTE), 30, "the router to start")
        rate_limit = faults(sandbox, prefix="/amplitude/2/httpapi", kind="rate_limit", count=-1, retry_after=1)
        stop = threading.Event()
        ids = _send_opens(urls["collector"], users, 100, outage_seconds / 2, stop)
        # The 503s are in place before the 429s go: no request finds Amplitude up in between.
        faults(sandbox, prefix="/amplitude/2/httpapi", kind="error", status=503, count=-1)
        clear_faults(sandbox, rate_limit)
        time.sleep(outage_seconds / 2)
        assert _all_events(sandbox, users) == []
        assert _route(gs_home, AMPLITUDE_ROUTE)["lag_seconds"] > 0
        clear_faults(sandbox)
        wait_until(lambda: len(_all_events(sandbox, users)) >= 100, 60, "the backlog to drain", every=0.3)
        route = _route(gs_home, AMPLITUDE_ROUTE)
        assert sorted(e["$insert_id"] for e in _all_events(sandbox, users)) == sorted(f"customerio-{i}" for i in ids)
        assert route["counts"]["failed"] > 0 and route["counts"]["dead_lettered"] == 0
        assert not (gs_home / "router" / "dead_letters" / f"{AMPLITUDE_ROUTE}.jsonl").exists()


def _throughput(collector: str, seconds: float, threads: int = 4) -> float:
    """Acknowledged signed webhooks per second from `threads` clients over `seconds`."""
    done = [0] * threads
    deadline = time.monotonic() + seconds

    def client(slot: int) -> None:
        session = requests.Session()
        while time.monotonic() < deadline:
            body, headers = customerio_webhook(f"cust-tp-{slot}", "tp@example.com")
            _post_webhook(collector, body, headers, session)
            done[slot] += 1

    workers = [threading.Thread(target=client, args=(i,)) for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return sum(done) / seconds


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_the_router_stays_idle_while_a_destination_is_down_and_capture_goes_on(gs_home: Path) -> None:
    """The default suite's check of "capture never waits for a destination": while Amplitude answers
    503 and webhooks keep arriving, the collector acknowledges every one and the router, holding its
    backlog in the event files, uses almost no CPU (process CPU time, whatever else the machine runs).
    The throughput comparison itself is the slow test below."""
    with stack(gs_home) as urls:
        faults(urls["sandbox"], prefix="/amplitude/2/httpapi", kind="error", status=503, count=-1)
        with RouterProcess(gs_home, urls["sandbox"]) as router:
            wait_until(lambda: _route(gs_home, AMPLITUDE_ROUTE), 30, "the router to start")
            before, started = _cpu_seconds(router.proc.pid), time.monotonic()
            rate = _throughput(urls["collector"], 4.0)
            share = (_cpu_seconds(router.proc.pid) - before) / (time.monotonic() - started)
            route = _route(gs_home, AMPLITUDE_ROUTE)
        assert rate > 0 and route["counts"]["delivered"] == 0 and route["counts"]["failed"] > 0
        assert route["backlog_bytes"] > 0
        assert share < 0.05, f"the router used {share:.0%} of a CPU while its destination was down"


@pytest.mark.slow
def test_collector_throughput_during_a_destination_outage_stays_within_ten_percent(gs_home: Path) -> None:
    """Short windows alternate between the router paused (SIGSTOP: no routing work at all) and the
    router running against an Amplitude that answers 503, so other load on the machine hits both alike
    (ABBA order; the median of the ratios). Slow: on a shared machine it needs many windows."""
    with stack(gs_home) as urls:
        faults(urls["sandbox"], prefix="/amplitude/2/httpapi", kind="error", status=503, count=-1)
        router = RouterProcess(gs_home, urls["sandbox"]).start()
        try:
            wait_until(lambda: _route(gs_home, AMPLITUDE_ROUTE), 30, "the router to start")
            _throughput(urls["collector"], 1.0)  # warm up
            ratios = []
            for block in range(30):  # ABBA order, so a drift in the machine's load cancels out
                rates = {}
                for paused in ((True, False) if block % 2 == 0 else (False, True)):
                    router.proc.send_signal(signal.SIGSTOP if paused else signal.SIGCONT)
                    rates[paused] = _throughput(urls["collector"], 1.0)
                ratios.append(rates[False] / rates[True])
            route = _route(gs_home, AMPLITUDE_ROUTE)
            assert route["counts"]["delivered"] == 0 and route["counts"]["failed"] > 0  # it was trying, all along
        finally:
            router.proc.send_signal(signal.SIGCONT)
            router.kill(signal.SIGTERM)
        assert statistics.median(ratios) >= 0.9, ratios


def test_a_message_that_keeps_failing_is_dead_lettered_and_replayed_with_one_command(gs_home: Path, tmp_path: Path) -> None:
    routes = routes_file(tmp_path, quote_intent_to_sales_webhook={"max_attempts": 2})
    with stack(gs_home) as urls:
        sandbox = urls["sandbox"]
        faults(sandbox, prefix="/webhook/sales", kind="error", status=400, count=-1)
        router = RouterProcess(gs_home, sandbox, routes)
        with router:
            _track(urls["collector"], "identify", {"userId": "user-9", "traits": {"email": "lin@example.com"}})
            _track(urls["collector"], "track", {"userId": "user-9", "event": "Request a Quote", "properties": {}})
            wait_until(lambda: _route(gs_home, "quote_intent_to_sales_webhook").get("counts", {})
                       .get("dead_lettered") == 1, 30, "the quote to be dead-lettered")
            listing = router.command("dead-letters", "quote_intent_to_sales_webhook")
            assert "1 dead letter(s)" in listing.stdout and "HTTP 400" in listing.stdout
            clear_faults(sandbox)
            replayed = router.command("dead-letters", "quote_intent_to_sales_webhook", "--replay")
            assert replayed.returncode == 0, replayed.stderr
            assert "delivered=1" in replayed.stdout and "still_dead=0" in replayed.stdout
        inbox = requests.get(f"{sandbox}/webhook/_sandbox/sales/messages", timeout=10).json()["data"]
        assert [d["body"]["data"]["email"] for d in inbox] == ["lin@example.com"]
        assert router.command("dead-letters", "quote_intent_to_sales_webhook").stdout.startswith("0 dead letter(s)")
