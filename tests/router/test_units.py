"""Unit tests of the router's plain functions: routes, filters, transformations, the file tail and
cursor, the HubSpot webhook signature and transformation, and the Dagster status functions."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml

from growth_stack_dagster import eventfiles
from growth_stack_dagster.capture.transforms import TransformError, hubspot_to_segment, transform_webhook
from growth_stack_dagster.collector import signatures
from growth_stack_dagster.router import tail
from growth_stack_dagster.router.destinations import RateGate
from growth_stack_dagster.router.routes import DEFAULT_ROUTES_FILE, RoutesError, load_routes, matches, parse_routes
from growth_stack_dagster.router.state import IdentityBook, StateStore
from growth_stack_dagster.router.transforms import (
    customerio_email_to_amplitude, quote_intent_to_hubspot_note, quote_intent_to_sales_webhook,
)
from growth_stack_dagster.sandbox.hubspot_webhooks import change_events, signature_v3
from growth_stack_dagster.streaming.status import lag_verdict, route_status
from tests.servers import REPO


class Book:
    def __init__(self, email: str | None = None):
        self.email = email

    def email_for(self, message: dict) -> str | None:
        return self.email


def _cio(metric: str, customer_id: str | None = "cust-1") -> dict:
    data = {"email_address": "a@example.com", "campaign_id": 4, "subject": "Hi"}
    if customer_id:
        data["customer_id"] = customer_id
    body = {"event_id": "01HX", "object_type": "email", "metric": metric, "timestamp": 1764806400, "data": data}
    return {"type": "webhook", "messageId": "m1", "receivedAt": "2026-12-04T00:00:01.000Z", "body": json.dumps(body)}


# ------------------------------------------------------------------ routes and filters
def test_the_repository_routes_file_declares_the_example_company_routes() -> None:
    routes = {r.name: r for r in load_routes()}
    assert set(routes) == {"customerio_email_to_amplitude", "quote_intent_to_hubspot", "quote_intent_to_sales_webhook"}
    assert routes["customerio_email_to_amplitude"].sources == ["customerio"]
    assert routes["quote_intent_to_hubspot"].sources == ["web"]
    assert routes["customerio_email_to_amplitude"].options.events_per_second == 1000


def test_filters_match_source_type_event_and_conditions() -> None:
    flt = yaml.safe_load(DEFAULT_ROUTES_FILE.read_text())["routes"][1]["filter"]
    quote = {"type": "track", "event": "Request a Quote"}
    assert matches(flt, "web", quote)
    assert not matches(flt, "ios", quote)
    assert not matches(flt, "web", {"type": "track", "event": "Product Viewed"})
    assert matches(flt, "web", {"type": "page", "properties": {"path": "/pricing/wholesale"}})
    assert not matches(flt, "web", {"type": "page", "properties": {"path": "/products/x"}})
    assert not matches(flt, "web", {"type": "page"})
    email = load_routes()[0].filter
    assert matches(email, "customerio", _cio("opened"))
    assert not matches(email, "customerio", _cio("sent"))
    assert matches({"where": [{"field": "properties.plan", "not_in": ["free"]}, {"field": "userId", "exists": True}]},
                   "web", {"userId": "u", "properties": {"plan": "pro"}})
    assert not matches({"where": [{"field": "userId", "exists": True}]}, "web", {"userId": None})


@pytest.mark.parametrize("change, message", [
    ({"destination": "slack"}, "destination must be one of"),
    ({"transform": "nope"}, "transform 'nope' is not a function"),
    ({"options": {"batch_sise": 5}}, "unknown options ['batch_sise']"),
    ({"filter": {"sources": "web"}}, "unknown filter keys ['sources']"),
    ({"filter": {"where": [{"field": "x", "like": "y"}]}}, "must use one of"),
    ({"options": {"batch_size": 100, "events_per_second": 10}}, "events_per_second must be at least batch_size"),
])
def test_a_bad_routes_file_is_refused_with_a_sentence(change: dict, message: str) -> None:
    data = yaml.safe_load(DEFAULT_ROUTES_FILE.read_text())
    data["routes"][0].update(change)
    with pytest.raises(RoutesError, match=message.replace("[", r"\[").replace("]", r"\]").replace("(", r"\(")):
        parse_routes(data)


def test_the_router_command_says_what_is_wrong_with_a_routes_file(tmp_path: Path) -> None:
    bad = tmp_path / "routes.yaml"
    bad.write_text("routes:\n  - name: x\n    destination: fax\n")
    out = subprocess.run([sys.executable, "-m", "growth_stack_dagster.cli", "router", "--routes", str(bad)],
                         cwd=REPO, capture_output=True, text=True, timeout=60,
                         env={**os.environ, "GROWTH_STACK_HOME": str(tmp_path)})
    assert out.returncode != 0 and "destination must be one of" in out.stderr


# ------------------------------------------------------------------ transformations
def test_customerio_email_becomes_an_amplitude_event_with_the_webhook_event_id_as_insert_id() -> None:
    event = customerio_email_to_amplitude(_cio("clicked"), "customerio", Book())
    assert event["user_id"] == "cust-1" and event["event_type"] == "Email Clicked"
    assert event["insert_id"] == "customerio-01HX" and event["time"] == 1764806400000
    assert event["event_properties"]["campaign_id"] == 4
    assert customerio_email_to_amplitude(_cio("sent"), "customerio", Book()) is None  # not an email metric
    assert customerio_email_to_amplitude(_cio("opened", customer_id=None), "customerio", Book()) is None
    with pytest.raises(Exception):
        customerio_email_to_amplitude({**_cio("opened"), "body": "[]"}, "customerio", Book())


def test_quote_intent_becomes_a_note_and_a_webhook_for_known_people_only() -> None:
    quote = {"type": "track", "event": "Request a Quote", "messageId": "q1", "userId": "u1",
             "timestamp": "2026-12-04T10:00:00Z", "receivedAt": "2026-12-04T10:00:01Z",
             "properties": {"sku": "WH-1", "quantity": 24}}
    note = quote_intent_to_hubspot_note(quote, "web", Book("b@example.com"))
    assert note == {"email": "b@example.com", "message_id": "q1", "timestamp": 1796378400000,
                    "body": "Requested a quote on the website (sku: WH-1, quantity: 24)."}
    hook = quote_intent_to_sales_webhook(quote, "web", Book("b@example.com"))
    assert hook["id"] == "q1" and hook["payload"]["type"] == "lead.quote_requested"
    assert hook["payload"]["data"]["email"] == "b@example.com"
    assert quote_intent_to_hubspot_note(quote, "web", Book(None)) is None
    assert quote_intent_to_sales_webhook(quote, "web", Book(None)) is None
    page = {"type": "page", "messageId": "p1", "receivedAt": "2026-12-04T10:00:01Z", "properties": {"path": "/pricing"}}
    assert quote_intent_to_hubspot_note(page, "web", Book("b@example.com"))["body"] == "Viewed the pricing page /pricing."


def test_the_identity_book_learns_emails_from_identify_calls(tmp_path: Path) -> None:
    book = IdentityBook(tmp_path)
    book.learn({"type": "identify", "userId": "u1", "anonymousId": "a1", "traits": {"email": "x@example.com"}})
    assert book.email_for({"userId": "u1"}) == "x@example.com"
    assert book.email_for({"anonymousId": "a1"}) == "x@example.com"
    assert book.email_for({"userId": "u2"}) is None
    assert book.email_for({"userId": "u2", "context": {"traits": {"email": "own@example.com"}}}) == "own@example.com"
    assert IdentityBook(tmp_path).email_for({"userId": "u1"}) == "x@example.com"  # kept across restarts


# ------------------------------------------------------------------ the tail and its cursor
def test_the_cursor_survives_the_rename_of_the_open_file_and_reads_only_whole_lines(tmp_path: Path) -> None:
    day = tail.today()
    directory = eventfiles.partition_dir(tmp_path, "web", day)
    directory.mkdir(parents=True)
    open_file = eventfiles.open_path(directory, "collector-1")
    open_file.write_bytes(b'{"n":1}\n{"n":2}\n{"n":')  # a line still being written
    files = tail.scan(tmp_path, ["web"], day)
    assert [(f.key, f.closed) for f in files] == [(f"web/{day}/collector-1", False)]
    lines = tail.read_lines(files[0], 0)
    assert [ln.raw for ln in lines] == [b'{"n":1}\n', b'{"n":2}\n']
    cursor = tail.Cursor(day, {files[0].key: lines[-1].end})
    with open(open_file, "ab") as fh:
        fh.write(b'3}\n')
    eventfiles.close_file(open_file)
    files = tail.scan(tmp_path, ["web"], day)
    assert [(f.key, f.closed) for f in files] == [(f"web/{day}/collector-1", True)]
    assert [ln.raw for ln in tail.read_lines(files[0], cursor.files[files[0].key])] == [b'{"n":3}\n']
    # A file opened before a rename is still read under its new name.
    stale = tail.FileState(files[0].key, "web", day, open_file, files[0].size, False)
    assert [ln.raw for ln in tail.read_lines(stale, 0)][0] == b'{"n":1}\n'


def test_compaction_forgets_finished_days_but_not_yesterday(tmp_path: Path) -> None:
    import datetime as dt

    today = dt.date.fromisoformat(tail.today())
    old, yesterday = (today - dt.timedelta(days=3)).isoformat(), (today - dt.timedelta(days=1)).isoformat()
    for day in (old, yesterday):
        eventfiles.write_closed_file(tmp_path, "web", day, [b'{"n":1}'])
    files = tail.scan(tmp_path, ["web"], "0000-00-00")
    cursor = tail.Cursor("0000-00-00", {f.key: f.size for f in files})
    tail.compact(cursor, files)
    assert cursor.since == (today - dt.timedelta(days=2)).isoformat()
    assert [k.split("/")[1] for k in cursor.files] == [yesterday]


def test_state_is_replaced_atomically_and_saved_only_when_it_changed(tmp_path: Path) -> None:
    store = StateStore(tmp_path)
    store.update("r", counts={"delivered": 1})
    store.save()
    first = (tmp_path / "state.json").stat().st_mtime_ns
    store.update("r", counts={"delivered": 1})
    time.sleep(0.01)
    store.save(heartbeat_every=60)
    assert (tmp_path / "state.json").stat().st_mtime_ns == first
    store.update("r", counts={"delivered": 2})
    store.save(heartbeat_every=60)
    assert json.loads((tmp_path / "state.json").read_text())["routes"]["r"]["counts"] == {"delivered": 2}
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]


def test_the_rate_gate_never_lets_more_than_the_limit_through_in_any_second() -> None:
    gate = RateGate(requests_per_second=50, events_per_second=200)
    times: list[float] = []
    started = time.monotonic()
    for _ in range(30):
        gate.acquire(events=10, stop=threading.Event())
        times.append(time.monotonic())
    # 200 events per second at 10 per request: 20 requests in the first second, the rest after it
    assert sum(1 for t in times if t - started < 0.95) <= 20
    assert times[-1] - started >= 1.0


# ------------------------------------------------------------------ HubSpot webhooks
SECRET = "app-secret"
URI = "https://collector.example.com/v1/webhook/hubspot?x=1"


def test_hubspot_v3_signature_is_checked_with_its_timestamp() -> None:
    body = b'[{"eventId":1}]'
    now = time.time()
    ts = int(now * 1000)
    signed = signatures.hubspot_signature_v3(body, SECRET, "POST", URI, ts)
    assert signed == signature_v3(SECRET, "POST", URI, body, ts)  # the sandbox signs as the collector checks
    signatures.verify_hubspot_v3(body, "POST", URI, signed, str(ts), [SECRET], now)
    signatures.verify_hubspot_v3(body, "POST", URI, signed, str(ts), ["old-secret", SECRET], now)  # rotation
    # HubSpot decodes some escapes of the URI before signing.
    signatures.verify_hubspot_v3(body, "POST", URI.replace("?", "%3F"), signed, str(ts), [SECRET], now)
    cases = [
        (body + b" ", signed, str(ts), now, "does not match"),
        (body, signed, str(ts), now + 301, "more than 300 s old"),
        (body, signed, str(ts), now - 301, "ahead"),
        (body, None, str(ts), now, "missing X-HubSpot-Signature-v3"),
        (body, signed, None, now, "missing X-HubSpot-Request-Timestamp"),
        (body, signed, "yesterday", now, "not a Unix timestamp"),
    ]
    for b, sig, stamp, clock, reason in cases:
        with pytest.raises(signatures.SignatureError, match=reason):
            signatures.verify_hubspot_v3(b, "POST", URI, sig, stamp, [SECRET], clock)
    with pytest.raises(signatures.SignatureError, match="HUBSPOT_CLIENT_SECRET"):
        signatures.verify_hubspot_v3(body, "POST", URI, signed, str(ts), [], now)


def test_the_sandbox_sends_hubspot_webhooks_for_new_calls_and_deal_stage_changes_only() -> None:
    call = {"id": "11", "properties": {}}
    assert [e["subscriptionType"] for e in change_events("calls", call, None, 5)] == ["object.creation"]
    assert change_events("calls", call, call, 5) == []  # an edited call is not a new one
    deal = {"id": "12", "properties": {"dealstage": "closedwon", "dealname": "x"}}
    assert change_events("deals", deal, {"properties": {"dealstage": "closedwon"}}, 5) == []
    [stage] = change_events("deals", deal, {"properties": {"dealstage": "contractsent"}}, 5)
    assert (stage["propertyName"], stage["propertyValue"], stage["objectId"]) == ("dealstage", "closedwon", 12)
    assert change_events("contacts", {"id": "1", "properties": {}}, None, 5) == []


def test_hubspot_webhooks_become_sales_call_and_deal_stage_events() -> None:
    body = [
        {"eventId": 7, "subscriptionType": "object.creation", "objectTypeId": "0-48", "objectId": 11,
         "occurredAt": 1764806400000, "portalId": 2, "changeSource": "CRM"},
        {"eventId": 8, "subscriptionType": "deal.propertyChange", "propertyName": "dealstage",
         "propertyValue": "closedwon", "objectId": 12, "occurredAt": 1764806401000},
        {"eventId": 9, "subscriptionType": "contact.propertyChange", "propertyName": "email", "objectId": 1,
         "occurredAt": 1764806401000},
        {"eventId": 10, "subscriptionType": "deal.propertyChange", "propertyName": "amount", "objectId": 12,
         "occurredAt": 1764806401000},
    ]
    envelope = {"type": "webhook", "messageId": "m", "receivedAt": "2026-12-04T00:00:02.000Z", "body": json.dumps(body)}
    call, stage = transform_webhook("hubspot", envelope)
    assert (call["event"], call["messageId"], call["anonymousId"], call["properties"]["hubspot_call_id"]) == (
        "Sales Call Logged", "hubspot-7", "hubspot-call-11", "11")
    assert call["timestamp"] == "2025-12-04T00:00:00.000Z"
    assert (stage["event"], stage["properties"]["deal_stage"], stage["properties"]["hubspot_deal_id"]) == (
        "Deal Stage Changed", "closedwon", "12")
    with pytest.raises(TransformError, match="eventId"):
        hubspot_to_segment([{"subscriptionType": "object.creation", "objectTypeId": "0-48", "objectId": 1,
                             "occurredAt": 1}], envelope)
    with pytest.raises(TransformError, match="not a JSON object"):
        transform_webhook("stripe", {**envelope, "body": "[]"})


# ------------------------------------------------------------------ what Dagster shows
def test_route_status_and_lag_verdict() -> None:
    now = 1000.0
    state = {"updated_at": 999.0, "routes": {"r": {"counts": {"delivered": 5, "dead_lettered": 1},
                                                   "lag_seconds": 2.5, "backlog_bytes": 10,
                                                   "latency_p95_seconds": 0.4}}}
    status = route_status(state, "r", now)
    assert (status["delivered"], status["dead_lettered"], status["lag_seconds"], status["running"]) == (5, 1, 2.5, True)
    assert lag_verdict(status, 60)[0] is True
    assert lag_verdict(status, 2)[0] is False
    stopped = route_status(state, "r", now + 100)  # the router stopped with a backlog: the lag grows
    assert stopped["running"] is False and stopped["lag_seconds"] > 100
    passed, text = lag_verdict(stopped, 60)
    assert not passed and "not running" in text
    assert lag_verdict(route_status({}, "r", now), 60) == (
        False, "The router has not run this route yet: start it with `growth-stack router`.")


def test_the_router_imports_no_warehouse_libraries() -> None:
    code = (
        "import sys\n"
        "from growth_stack_dagster.router.command import router_command\n"
        "from growth_stack_dagster.router.runner import Router, replay, redrive\n"
        "from growth_stack_dagster.router.routes import load_routes\n"
        "import tempfile, os\n"
        "os.environ['GROWTH_STACK_HOME'] = tempfile.mkdtemp()\n"
        "Router(load_routes())\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('dagster', 'dlt', 'duckdb', 'dbt'))\n"
        "print(heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_lines_of_concurrent_files_are_taken_in_received_order_and_identities_learned_first(tmp_path: Path) -> None:
    from growth_stack_dagster.router.runner import RouteWorker

    day = tail.today()
    directory = eventfiles.partition_dir(tmp_path / "events", "web", day)
    directory.mkdir(parents=True)
    quote = {"type": "track", "event": "Request a Quote", "userId": "u5", "messageId": "q5",
             "receivedAt": f"{day}T10:00:02.000Z", "properties": {}}
    other = {"type": "track", "event": "Product Viewed", "userId": "u5", "messageId": "v5",
             "receivedAt": f"{day}T10:00:03.000Z"}
    identify = {"type": "identify", "userId": "u5", "messageId": "i5", "traits": {"email": "u5@example.com"},
                "receivedAt": f"{day}T10:00:01.000Z"}
    # Two collector workers: the quote lands in the file that sorts first, the identify in the other.
    eventfiles.open_path(directory, "collector-a").write_bytes(
        (json.dumps(quote) + "\n" + json.dumps(other) + "\n").encode())
    eventfiles.open_path(directory, "collector-b").write_bytes((json.dumps(identify) + "\n").encode())
    route = next(r for r in load_routes() if r.name == "quote_intent_to_sales_webhook")
    route = type(route)(**{**route.__dict__, "options": type(route.options)(**{**route.options.__dict__,
                                                                                "batch_size": 1})})
    worker = RouteWorker(route, tmp_path / "events", StateStore(tmp_path / "router"),
                         IdentityBook(tmp_path / "router"), threading.Event())
    taken, _ = worker._next_batch()
    assert [ln.raw for ln, _ in taken] == [(json.dumps(identify) + "\n").encode(), (json.dumps(quote) + "\n").encode()]
    assert taken[1][1].item["payload"]["data"]["email"] == "u5@example.com"
    # The line read but not taken is kept for the next batch, not lost.
    for line, _ in taken:
        worker.cursor.files[line.key] = line.end
    again, _ = worker._next_batch()
    assert [json.loads(ln.raw)["messageId"] for ln, _ in again] == ["v5"]


def test_a_destination_that_cannot_be_reached_is_transient_and_its_url_secrets_stay_out_of_the_reason() -> None:
    from growth_stack_dagster.router.destinations import SignedWebhook, Transient
    from tests.servers import free_port

    url = f"http://127.0.0.1:{free_port()}/hooks/sales?token=s3cr3t-token"
    hook = SignedWebhook(url, "whsec_c2FuZGJveA==", RateGate(10))
    with pytest.raises(Transient) as caught:
        hook.send([{"id": "m1", "payload": {"type": "x"}}])
    assert "127.0.0.1" in caught.value.reason and "s3cr3t" not in caught.value.reason
    assert caught.value.done == [None]


def test_a_message_its_transformation_cannot_read_is_dead_lettered_at_once_with_the_reason(tmp_path: Path) -> None:
    from growth_stack_dagster.router.runner import Pipeline, build_destination
    from growth_stack_dagster.router.state import DeadLetters

    route = load_routes()[0]
    dead = DeadLetters(route.name, tmp_path)
    stop = threading.Event()
    pipeline = Pipeline(route, build_destination(route, stop), dead, None, stop)
    broken = {**_cio("opened"), "body": json.dumps({"metric": "opened", "object_type": "email"})}  # no event_id
    pending = pipeline.prepare("customerio", json.dumps(broken).encode(), "customerio/day/file@0")
    assert pending is not None and pending.item is None
    assert pipeline.deliver([pending]) == [pending]  # nothing was sent: no destination is running
    [entry] = dead.read()
    assert entry["reason"].startswith("the transformation customerio_email_to_amplitude failed")
    assert "event_id" in entry["reason"] and entry["position"] == "customerio/day/file@0"
    assert entry["message"]["messageId"] == "m1" and pipeline.counts["dead_lettered"] == 1


def test_a_damaged_state_file_stops_the_router_with_a_sentence(tmp_path: Path) -> None:
    (tmp_path / "router").mkdir()
    (tmp_path / "router" / "state.json").write_text('{"routes": {')
    out = subprocess.run([sys.executable, "-m", "growth_stack_dagster.cli", "router"], cwd=REPO, capture_output=True,
                         text=True, timeout=60, env={**os.environ, "GROWTH_STACK_HOME": str(tmp_path)})
    assert out.returncode == 1 and "is not valid JSON" in out.stderr and "Traceback" not in out.stderr
