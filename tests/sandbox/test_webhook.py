"""The sandbox's one Standard Webhooks receiver (`/webhook/<endpoint>`), as webhook syncs and the router's
sales route use it: signatures checked against the official library's, the stack's and the sales team's
secrets both accepted, repeated message ids counted and not stored twice, sync batches' records kept, and
everything read back the one way. A real sandbox on loopback."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator

import pytest
import requests
from standardwebhooks import Webhook

from growth_stack_dagster import config
from tests.servers import reset_sandbox, sandbox_server

SALES_SECRET = "whsec_c2FsZXMtdGVhbS1zZWNyZXQtZm9yLXRlc3Rz"
STACK_SECRET = config.standard_webhook_secret().split(",")[0]  # the sandbox runs with this environment


@pytest.fixture(scope="module")
def module_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    home = tmp_path_factory.mktemp("gs_home")
    env = {"GROWTH_STACK_SALES_WEBHOOK_SECRET": SALES_SECRET}
    with sandbox_server(home, env) as url:
        yield url


@pytest.fixture
def sandbox(module_sandbox: str) -> str:
    return reset_sandbox(module_sandbox)


def post(sandbox: str, endpoint: str, payload: object, msg_id: str, secret: str = STACK_SECRET,
         when: dt.datetime | None = None, body: bytes | None = None) -> requests.Response:
    """POST one message signed by the official library (an independent signer)."""
    body = body if body is not None else json.dumps(payload).encode()
    when = when or dt.datetime.now(dt.timezone.utc)
    headers = {"Content-Type": "application/json", "webhook-id": msg_id,
               "webhook-timestamp": str(int(when.timestamp())),
               "webhook-signature": Webhook(secret).sign(msg_id, when, body)}
    return requests.post(f"{sandbox}/webhook/{endpoint}", data=body, headers=headers, timeout=10)


def messages(sandbox: str, endpoint: str) -> list[dict]:
    return requests.get(f"{sandbox}/webhook/_sandbox/{endpoint}/messages", timeout=10).json()["data"]


def records(sandbox: str, endpoint: str) -> list[dict]:
    return requests.get(f"{sandbox}/webhook/_sandbox/{endpoint}/records", timeout=10).json()["data"]


def test_a_message_is_stored_once_and_a_redelivery_is_counted(sandbox: str) -> None:
    lead = {"type": "lead.quote_requested", "data": {"email": "grace@example.com"}}
    first = post(sandbox, "sales", lead, "msg_1", secret=SALES_SECRET)
    assert first.status_code == 200 and first.json()["attempts"] == 1
    again = post(sandbox, "sales", lead, "msg_1", secret=SALES_SECRET)
    assert again.status_code == 200 and again.json()["duplicate"] is True and again.json()["attempts"] == 2
    assert post(sandbox, "sales", lead, "msg_2").status_code == 200  # the stack's secret is accepted too
    got = messages(sandbox, "sales")
    assert [(m["id"], m["attempts"], m["body"]) for m in got] == [("msg_1", 2, lead), ("msg_2", 1, lead)]
    assert records(sandbox, "sales") == []  # not a sync batch: nothing to keep by key
    assert messages(sandbox, "other") == []


def test_a_sync_batch_keeps_its_records_and_a_malformed_one_is_refused_whole(sandbox: str) -> None:
    batch = {"type": "growth_stack.sync.batch", "data": {"records": [
        {"key": "c1", "operation": "upsert", "fields": {"tier": "gold"}},
        {"key": "c2", "operation": "upsert", "fields": {"tier": "silver"}}]}}
    assert post(sandbox, "vip_sync", batch, "msg_b1").json()["rejected"] == []
    assert [(r["key"], r["fields"]) for r in records(sandbox, "vip_sync")] == [
        ("c1", {"tier": "gold"}), ("c2", {"tier": "silver"})]
    bad = post(sandbox, "vip_sync", {"data": {"records": [{"fields": {}}]}}, "msg_b2")
    assert bad.status_code == 400 and "records" in bad.json()["error"]
    assert [m["id"] for m in messages(sandbox, "vip_sync")] == ["msg_b1"]


def test_bad_signatures_stale_timestamps_and_bodies_that_are_not_json_are_refused(sandbox: str) -> None:
    other = "whsec_" + "bm90LXRoZS1yZWNlaXZlcnMtc2VjcmV0"
    wrong = post(sandbox, "sales", {"x": 1}, "msg_w", secret=other)
    assert wrong.status_code == 401 and "signature" in wrong.json()["error"]
    stale = post(sandbox, "sales", {"x": 1}, "msg_s", when=dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=10))
    assert stale.status_code == 401 and "webhook-timestamp" in stale.json()["error"]
    unsigned = requests.post(f"{sandbox}/webhook/sales", json={"x": 1}, timeout=10)
    assert unsigned.status_code == 401 and "webhook-id" in unsigned.json()["error"]
    not_json = post(sandbox, "sales", None, "msg_j", body=b"{oops")
    assert not_json.status_code == 400 and "not JSON" in not_json.json()["error"]
    assert messages(sandbox, "sales") == []
