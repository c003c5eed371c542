"""What each destination does beyond the shared fault tests: Meta's hashing and upload sessions, the
audience created if missing, Zendesk's asynchronous jobs and matching, Customer.io and Amplitude clearing
fields, and the webhook's Standard Webhooks signature and idempotency key. Real sandbox on loopback."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests
from facebook_business.adobjects.serverside.normalize import Normalize

from growth_stack_dagster.activation.destinations.base import DestinationUnavailable, Record
from growth_stack_dagster.activation.destinations.facebook import hash_email, normalize_email
from growth_stack_dagster.activation.destinations.webhook import message_id
from tests.activation.destination_cases import (
    CASES, TOKEN, ZENDESK_AUTH, add_fault, fb_audience, session, sha, writes, zendesk_user,
)
from tests.servers import reset_sandbox, sandbox_server


@pytest.fixture(scope="module")
def module_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    home = tmp_path_factory.mktemp("gs_home")
    env = {"GROWTH_STACK_SANDBOX_RATE_LIMIT_SCALE": "10",
           "GROWTH_STACK_SANDBOX_ZENDESK_JOB_SECONDS": "0.15"}
    with sandbox_server(home, env) as url:
        yield url


@pytest.fixture
def sandbox(module_sandbox: str) -> str:
    return reset_sandbox(module_sandbox)


# --------------------------------------------------------------------------- Facebook
# Meta's published example (Conversions API, customer information parameters: `em`)
META_EXAMPLES = {"John_Smith@gmail.com": "62a14e44f765419d10fea99367361a727c12365e2520f32218d505ed9aa0f62f"}


def test_email_hashing_matches_metas_published_examples() -> None:
    for email, digest in META_EXAMPLES.items():
        assert hash_email(email) == digest
        assert hash_email(f"  {email.upper()}\t") == digest  # surrounding space and case do not matter
    assert normalize_email("  John_Smith@Gmail.COM ") == "john_smith@gmail.com"
    # Meta's own SDK normalises the same way (facebook-business, the executable spec)
    for email in ("  Mary.Jones+ads@Example.co.UK", "ZOE@shop.IO "):
        assert hash_email(email) == Normalize.normalize_field("em", email)
    already = META_EXAMPLES["John_Smith@gmail.com"]
    assert hash_email(already.upper()) == already  # a hash is sent as it is, never hashed twice


def test_audience_is_created_once_and_the_token_never_rides_in_a_url(sandbox: str) -> None:
    case = CASES["facebook"]
    urls: list[str] = []
    sess = session(False)
    sess.hooks["response"].append(lambda r, *a, **k: urls.append(r.request.url))
    dest = case.destination(sandbox, sess)
    assert fb_audience(sandbox) is None
    dest.prepare(case.spec)
    audience = fb_audience(sandbox)
    assert audience is not None
    again = case.destination(sandbox)
    again.prepare(case.spec)
    assert again.audience_id(case.spec) == audience  # found by name, not created twice
    listed = requests.get(f"{sandbox}/facebook/v21.0/act_1000/customaudiences", params={"fields": "name"},
                          headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10).json()["data"]
    assert len(listed) == 1
    assert urls and not any("access_token" in u or TOKEN in u for u in urls)


def members(sandbox: str, audience: str) -> set[str]:
    r = requests.get(f"{sandbox}/facebook/_sandbox/customaudiences/{audience}/users", timeout=30)
    return {m["key"] for m in r.json()["data"]}


def test_more_than_10000_members_go_in_one_session_and_leavers_are_removed(sandbox: str) -> None:
    case = CASES["facebook"]
    dest = case.destination(sandbox)
    dest.prepare(case.spec)
    audience = dest.audience_id(case.spec)
    emails = [f"buyer{i}@shop.test" for i in range(23_000)]
    records = [Record(sha(e), "add", {"EMAIL_SHA256": sha(e)}) for e in emails]
    dest.open_session(case.spec, "add", len(records))
    for start in range(0, len(records), 10_000):  # the engine's batches, at most the batch size
        assert all(r.status == "accepted" for r in dest.send(case.spec, records[start:start + 10_000]))
    sessions = requests.get(f"{sandbox}/facebook/v21.0/{audience}/sessions",
                            headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10).json()["data"]
    assert len(sessions) == 1
    assert sessions[0]["batch_seqs"] == [1, 2, 3] and sessions[0]["stage"] == "completed"
    assert sessions[0]["num_received"] == 23_000
    assert members(sandbox, audience) == {sha(e) for e in emails}

    # two customers stop being high-value: they leave the audience, nobody else does
    leavers = [Record(sha(e), "remove", {"EMAIL_SHA256": sha(e)}) for e in emails[:2]]
    assert all(r.status == "accepted" for r in dest.send(case.spec, leavers))
    assert members(sandbox, audience) == {sha(e) for e in emails[2:]}
    counted = writes(sandbox, "facebook", "custom_audience_users")
    assert counted[f"{audience}:{sha(emails[0])}"] == 2 and counted[f"{audience}:{sha(emails[5])}"] == 1


def test_a_session_takes_no_batch_after_its_last(sandbox: str) -> None:
    case = CASES["facebook"]
    dest = case.destination(sandbox)
    audience = dest.audience_id(case.spec)
    url = f"{sandbox}/facebook/v21.0/{audience}/users"
    payload = '{"schema": "EMAIL_SHA256", "data": ["%s"]}' % sha("a@b.co")
    auth = {"Authorization": f"Bearer {TOKEN}"}
    last = requests.post(url, headers=auth, timeout=10, data={
        "payload": payload, "session": '{"session_id": 7, "batch_seq": 1, "last_batch_flag": true}'})
    assert last.status_code == 200 and last.json()["session_id"] == "7"
    late = requests.post(url, headers=auth, timeout=10, data={
        "payload": payload, "session": '{"session_id": 7, "batch_seq": 2, "last_batch_flag": false}'})
    assert late.status_code == 400 and "last batch" in late.json()["error"]["message"]
    bad = requests.post(url, headers=auth, timeout=10, data={
        "payload": payload, "session": '{"session_id": 8, "batch_seq": 0}'})
    assert bad.status_code == 400 and "batch_seq" in bad.json()["error"]["message"]


# --------------------------------------------------------------------------- Zendesk
def test_zendesk_matches_by_external_id_before_email_and_keeps_the_user_id(sandbox: str) -> None:
    requests.post(f"{sandbox}/_admin/seed/zendesk/users", timeout=10, json=[
        {"id": 501, "name": "Ann", "email": "ann.old@shop.test", "external_id": "c00001", "user_fields": {}},
        {"id": 502, "name": "Agent Bob", "email": "bob@shop.test", "role": "agent"},
    ]).raise_for_status()
    case = CASES["zendesk"]
    dest = case.destination(sandbox)
    # the customer's email changed in the warehouse: the user is found by external_id and keeps its id
    record = Record("c00001", "upsert", {"external_id": "c00001", "email": "ann.new@shop.test", "name": "Ann",
                                         "user_fields.is_high_value": True})
    created = Record("c00002", "upsert", {"external_id": "c00002", "email": "carl@shop.test", "name": "Carl",
                                          "user_fields.is_high_value": False})
    results = {r.key: r for r in dest.send(case.spec, [record, created])}
    assert results["c00001"].status == "accepted" and results["c00001"].destination_id == "501"
    user = zendesk_user(sandbox, "c00001")
    assert user["id"] == 501 and user["email"] == "ann.new@shop.test" and user["user_fields"]["is_high_value"] is True
    new_id = results["c00002"].destination_id
    assert new_id and int(new_id) not in (501, 502)
    # later updates carry the id Zendesk returned, so Zendesk matches on it first
    renamed = Record("c00002", "upsert", {"external_id": "c00002", "email": "carl@shop.test", "name": "Carl B."},
                     destination_id=new_id)
    assert dest.send(case.spec, [renamed])[0].destination_id == new_id
    assert zendesk_user(sandbox, "c00002")["name"] == "Carl B."
    assert requests.get(f"{sandbox}/zendesk/api/v2/users/502.json", auth=ZENDESK_AUTH,
                        timeout=10).json()["user"]["name"] == "Agent Bob"  # untouched


def test_a_failed_zendesk_job_leaves_its_users_for_a_retry(sandbox: str) -> None:
    case = CASES["zendesk"]
    dest = case.destination(sandbox)
    add_fault(sandbox, prefix=case.post_path, kind="job_failed", count=1, method="POST")
    records = [case.record(i, True) for i in range(3)]
    results = dest.send(case.spec, records)
    assert [r.status for r in results] == ["retry"] * 3 and "failed" in results[0].message
    assert all(zendesk_user(sandbox, r.key) is None for r in records)
    assert all(r.status == "accepted" for r in dest.send(case.spec, records))  # the next run
    assert all(case.holds(zendesk_user(sandbox, r.key), True) for r in records)


# --------------------------------------------------------------------------- Customer.io and Amplitude
def test_customerio_clears_a_field_and_update_mode_never_creates(sandbox: str) -> None:
    case = CASES["customerio"]
    dest = case.destination(sandbox)
    dest.send(case.spec, [case.record(1, True)])
    dest.send(case.spec, [Record("u_00001", "clear", {"lifetime_value": None, "is_high_value": True})])
    attrs = case.read(sandbox, "u_00001")
    assert "lifetime_value" not in attrs and attrs["is_high_value"] == "true"
    update_only = case.spec.__class__(**{**case.spec.__dict__, "mode": "update"})
    assert dest.send(update_only, [Record("u_09999", "update", {"is_high_value": True})])[0].status == "accepted"
    assert case.read(sandbox, "u_09999") is None


def test_amplitude_unsets_cleared_properties(sandbox: str) -> None:
    case = CASES["amplitude"]
    dest = case.destination(sandbox)
    dest.send(case.spec, [case.record(1, True)])
    assert case.read(sandbox, "u_00001")["lifetime_value"] == 101
    dest.send(case.spec, [Record("u_00001", "upsert", {"is_high_value": False, "lifetime_value": None})])
    props = case.read(sandbox, "u_00001")
    assert props["is_high_value"] is False and "lifetime_value" not in props
    short = dest.send(case.spec, [Record("u_1", "upsert", {"is_high_value": True})])[0]
    assert short.status == "rejected" and "min_id_length" in short.message


# --------------------------------------------------------------------------- webhook
def test_webhook_is_signed_and_a_resent_batch_carries_the_same_id(sandbox: str) -> None:
    case = CASES["webhook"]
    dest = case.destination(sandbox)
    records = [case.record(i, True) for i in range(3)]
    assert all(r.status == "accepted" for r in dest.send(case.spec, records))
    # the same records again (an unknown outcome retried): same webhook-id, the receiver drops the repeat
    assert message_id(case.spec, records) == message_id(case.spec, list(reversed(records)))
    assert all(r.status == "accepted" for r in dest.send(case.spec, records))
    msgs = requests.get(f"{sandbox}/webhook/_sandbox/webhook_records/messages", timeout=10).json()["data"]
    assert len(msgs) == 1 and msgs[0]["body"]["type"] == "growth_stack.sync.batch"
    assert set(writes(sandbox, "webhook", "records").values()) == {1}
    changed = [case.record(0, False)]
    assert message_id(case.spec, changed) != message_id(case.spec, records[:1])


def test_webhook_with_the_wrong_secret_is_refused(sandbox: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DESTINATIONS__WEBHOOK__SECRET", "whsec_" + "d3JvbmctaW4tZXZlcnktd2F5")
    case = CASES["webhook"]
    with pytest.raises(DestinationUnavailable, match="credential"):
        case.destination(sandbox).send(case.spec, [case.record(1, True)])
    assert requests.get(f"{sandbox}/webhook/_sandbox/webhook_records/records", timeout=10).json()["data"] == []


def test_zendesk_creates_the_declared_user_fields_it_lacks_once(sandbox: str) -> None:
    from growth_stack_dagster.activation import declarations

    spec = declarations.load_syncs()["zendesk_users_traits"]
    fields_url = f"{sandbox}/zendesk/api/v2/user_fields.json"
    made_by_admin = requests.post(fields_url, auth=ZENDESK_AUTH, timeout=10, json={"user_field": {
        "type": "text", "key": "customer_type", "title": "Segment (made by an admin)"}})
    assert made_by_admin.status_code == 201
    dest = CASES["zendesk"].destination(sandbox)
    dest.prepare(spec)
    dest.prepare(spec)  # idempotent
    fields = requests.get(fields_url, auth=ZENDESK_AUTH, timeout=10).json()["user_fields"]
    by_key = {f["key"]: f for f in fields}
    assert len(fields) == len(by_key) == 6
    assert by_key["is_high_value"]["type"] == "checkbox" and by_key["lifetime_value"]["type"] == "decimal"
    assert by_key["account_manager"]["title"] == "Account manager"
    assert by_key["customer_type"]["title"] == "Segment (made by an admin)"  # left as the admin made it
    taken = requests.post(fields_url, auth=ZENDESK_AUTH, timeout=10, json={"user_field": {
        "type": "text", "key": "account_manager", "title": "Again"}})
    assert taken.status_code == 422 and taken.json()["details"]["key"][0]["error"] == "DuplicateValue"
