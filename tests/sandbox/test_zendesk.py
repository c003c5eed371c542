"""The Zendesk Support API emulation, driven by plain `requests` as the Zendesk docs show (Basic auth
`<email>/token:<api_token>`), against a real `growth-stack sandbox` on loopback."""

from __future__ import annotations

import time

import pytest
import requests

AUTH = ("agent@example.com/token", "sk_test_sandbox")
N_TICKETS = 2_300


def tickets(n: int) -> list[dict]:
    return [{"id": i, "subject": f"Order {i} arrived damaged", "description": "The box was crushed",
             "status": "open", "priority": "normal", "requester_id": 1 + i % 50, "submitter_id": 1 + i % 50,
             "tags": ["damaged"], "created_at": "2026-01-01T09:00:00Z",
             "updated_at": f"2026-01-{1 + i % 28:02d}T10:00:00Z"} for i in range(1, n + 1)]


def users(n: int) -> list[dict]:
    return [{"id": i, "name": f"Customer {i}", "email": f"Customer{i}@Example.com", "external_id": f"u_{i}",
             "role": "end-user", "created_at": "2026-01-01T00:00:00Z",
             "updated_at": "2026-01-02T00:00:00Z"} for i in range(1, n + 1)]


def seed(base: str, collection: str, objects: list[dict]) -> None:
    r = requests.post(f"{base}/_admin/seed/zendesk/{collection}", json=objects, timeout=60)
    assert r.status_code == 200, r.text
    assert r.json() == {"seeded": len(objects)}


def api(base: str, path: str) -> str:
    return f"{base}/zendesk/api/v2/{path}"


def wait_job(url: str, timeout: float = 10.0) -> tuple[dict, list[str]]:
    """Poll a job status until it is completed or failed; returns it and the statuses seen on the way."""
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = requests.get(url, auth=AUTH, timeout=10).json()["job_status"]
        if not seen or seen[-1] != job["status"]:
            seen.append(job["status"])
        if job["status"] in ("completed", "failed"):
            return job, seen
        time.sleep(0.02)
    raise AssertionError(f"job {url} still {seen[-1]} after {timeout}s")


def export_all(first_url: str, params: dict, key: str = "tickets") -> tuple[list[dict], str, int]:
    """Follow `after_url` to `end_of_stream`: (records, last after_cursor, pages)."""
    r = requests.get(first_url, params=params, auth=AUTH, timeout=30)
    records, pages = [], 0
    while True:
        assert r.status_code == 200, r.text
        body = r.json()
        pages += 1
        records.extend(body[key])
        assert body["after_cursor"] and body["after_url"]
        if body["end_of_stream"]:
            return records, body["after_cursor"], pages
        r = requests.get(body["after_url"], auth=AUTH, timeout=30)


@pytest.fixture
def fast_export(monkeypatch: pytest.MonkeyPatch, gs_home) -> None:
    """No exclusion window and no rate limits, so a change shows up without waiting a minute."""
    monkeypatch.setenv("GROWTH_STACK_SANDBOX_ZENDESK_EXPORT_DELAY", "0")
    monkeypatch.setenv("GROWTH_STACK_SANDBOX_RATE_LIMIT_SCALE", "0")


def test_ticket_export_pages_to_end_and_resumes_from_the_saved_cursor(fast_export, sandbox_url: str) -> None:
    seed(sandbox_url, "tickets", tickets(N_TICKETS))
    records, cursor, pages = export_all(api(sandbox_url, "incremental/tickets/cursor.json"), {"start_time": 0})
    assert pages == 3  # 1000 per page
    assert sorted(t["id"] for t in records) == list(range(1, N_TICKETS + 1))
    stamps = [t["generated_timestamp"] for t in records]
    assert stamps == sorted(stamps)  # exported in the order they changed
    assert records[0]["subject"].startswith("Order") and records[0]["updated_at"].endswith("Z")

    r = requests.put(api(sandbox_url, "tickets/42.json"), auth=AUTH, timeout=10,
                     json={"ticket": {"status": "solved", "comment": {"body": "Refund sent", "public": True}}})
    assert r.status_code == 200, r.text
    changed = r.json()["ticket"]
    assert changed["status"] == "solved" and changed["updated_at"] > records[0]["updated_at"]

    again, _, _ = export_all(api(sandbox_url, "incremental/tickets/cursor.json"), {"cursor": cursor})
    assert [(t["id"], t["status"]) for t in again] == [(42, "solved")]
    assert requests.get(api(sandbox_url, "tickets/42.json"), auth=AUTH, timeout=10).json()["ticket"] == again[0]


def test_time_based_export_follows_next_page_without_splitting_a_second(fast_export, sandbox_url: str) -> None:
    burst = [{**t, "updated_at": "2026-02-01T12:00:00Z"} for t in tickets(1_500)]  # 1,500 in one second
    later = [{**t, "id": 2_000 + t["id"], "updated_at": "2026-02-02T12:00:00Z"} for t in tickets(10)]
    seed(sandbox_url, "tickets", burst + later)
    url, params, seen, pages = api(sandbox_url, "incremental/tickets.json"), {"start_time": 0}, [], 0
    while True:
        body = requests.get(url, params=params, auth=AUTH, timeout=30).json()
        pages += 1
        seen.extend(t["id"] for t in body["tickets"])
        assert body["count"] == len(body["tickets"])
        if body["end_of_stream"]:
            break
        url, params = body["next_page"], {}
    assert pages == 2 and len(seen) == len(set(seen)) == 1_510


def test_export_start_time_must_be_a_minute_old(sandbox_url: str) -> None:
    url = api(sandbox_url, "incremental/tickets/cursor.json")
    recent = requests.get(url, params={"start_time": int(time.time()) - 10}, auth=AUTH, timeout=10)
    assert recent.status_code == 422
    assert recent.json() == {"error": "InvalidValue",
                             "description": "Too recent start_time. Use a start_time older than 1 minute"}
    old = requests.get(url, params={"start_time": int(time.time()) - 120}, auth=AUTH, timeout=10)
    assert old.status_code == 200 and old.json()["tickets"] == [] and old.json()["end_of_stream"] is True
    missing = requests.get(url, auth=AUTH, timeout=10)
    assert missing.status_code == 400


def test_changes_from_the_last_minute_wait_for_a_later_export(sandbox_url: str) -> None:
    seed(sandbox_url, "tickets", tickets(5))
    records, cursor, _ = export_all(api(sandbox_url, "incremental/tickets/cursor.json"), {"start_time": 0})
    assert len(records) == 5
    r = requests.put(api(sandbox_url, "tickets/3.json"), auth=AUTH, timeout=10, json={"ticket": {"status": "pending"}})
    assert r.status_code == 200
    again, later_cursor, _ = export_all(api(sandbox_url, "incremental/tickets/cursor.json"), {"cursor": cursor})
    assert again == []  # changed seconds ago: inside Zendesk's one-minute exclusion window
    assert later_cursor


def test_create_or_update_many_returns_a_job_with_per_user_results(fast_export, sandbox_url: str) -> None:
    seed(sandbox_url, "users", users(3))
    r = requests.post(api(sandbox_url, "users/create_or_update_many.json"), auth=AUTH, timeout=10, json={"users": [
        {"name": "Customer One", "email": "customer1@example.com", "user_fields": {"lifetime_value": "120.50"}},
        {"name": "New Person", "email": "new.person@example.com", "external_id": "u_99"},
        {"name": "Broken", "email": "not-an-email"},
        {"external_id": "u_2", "tags": ["high_value"]},
    ]})
    assert r.status_code == 200, r.text
    job = r.json()["job_status"]
    assert job["status"] == "queued" and job["total"] == 4 and len(job["id"]) == 32

    done, seen = wait_job(job["url"])
    # Zendesk's jobs run in the background: queued, working, then completed
    assert seen[-1] == "completed" and set(seen) <= {"queued", "working", "completed"} and "working" in seen
    assert done["progress"] == 4
    results = done["results"]
    assert [x["status"] for x in results] == ["Updated", "Created", "Failed", "Updated"]
    assert results[0]["id"] == 1 and results[0]["action"] == "update"
    assert results[1]["action"] == "create" and results[1]["id"] not in (1, 2, 3)
    assert results[2] == {"index": 2, "email": "not-an-email", "error": "UserCreateError",
                          "details": "Email: not-an-email is not properly formatted", "status": "Failed"}
    assert results[3]["id"] == 2

    one = requests.get(api(sandbox_url, "users/1.json"), auth=AUTH, timeout=10).json()["user"]
    assert one["name"] == "Customer One" and one["user_fields"] == {"lifetime_value": "120.50"}
    assert requests.get(api(sandbox_url, "users/2.json"), auth=AUTH, timeout=10).json()["user"]["tags"] == [
        "high_value"]
    found = requests.get(api(sandbox_url, "users/search.json"), params={"external_id": "u_99"}, auth=AUTH,
                         timeout=10).json()
    assert found["count"] == 1 and found["users"][0]["email"] == "new.person@example.com"

    exported, _, _ = export_all(api(sandbox_url, "incremental/users/cursor.json"), {"start_time": 0}, key="users")
    assert len(exported) == 4  # three seeded, one created; the broken record was not stored
    # the newest change is one of the job's: users 1 and 2 updated (2 keeps its seeded "Customer2@Example.com")
    # or the one created; which one depends on whether the job crossed a second (CI saw user 2 last)
    assert exported[-1]["id"] in (1, 2, results[1]["id"])

    listed = requests.get(api(sandbox_url, "users.json"), params={"page[size]": 3}, auth=AUTH, timeout=10).json()
    assert len(listed["users"]) == 3 and listed["meta"]["has_more"] is True
    rest = requests.get(listed["links"]["next"], auth=AUTH, timeout=10).json()
    assert len(rest["users"]) == 1 and rest["meta"]["has_more"] is False


def test_more_than_100_users_is_refused(sandbox_url: str) -> None:
    r = requests.post(api(sandbox_url, "users/create_or_update_many.json"), auth=AUTH, timeout=10, json={
        "users": [{"name": f"P{i}", "email": f"p{i}@example.com"} for i in range(101)]})
    assert r.status_code == 400
    assert r.json()["error"] == "TooManyValues" and "100" in r.json()["description"]
    listed = requests.get(api(sandbox_url, "users.json"), auth=AUTH, timeout=10).json()
    assert listed["count"] == 0


def test_per_record_rejection_shows_in_the_job_results(sandbox_url: str) -> None:
    requests.post(f"{sandbox_url}/_admin/faults", timeout=10, json={
        "prefix": "/zendesk/api/v2/users/create_or_update_many", "kind": "reject", "match": "blocked",
        "count": -1}).raise_for_status()
    r = requests.post(api(sandbox_url, "users/create_or_update_many"), auth=AUTH, timeout=10, json={"users": [
        {"name": "Fine", "email": "fine@example.com"}, {"name": "Nope", "email": "blocked@example.com"}]})
    results = wait_job(r.json()["job_status"]["url"])[0]["results"]
    assert results[0]["status"] == "Created"
    assert results[1]["status"] == "Failed" and results[1]["index"] == 1
    assert results[1]["error"] == "UserCreateError" and "blocked@example.com" in results[1]["details"]
    search = requests.get(api(sandbox_url, "users/search.json"), params={"query": "email:blocked@example.com"},
                          auth=AUTH, timeout=10).json()
    assert search["count"] == 0


def test_bad_credentials_get_401(sandbox_url: str) -> None:
    url = api(sandbox_url, "tickets.json")
    for auth in [("agent@example.com/token", "wrong"), ("agent@example.com", "sk_test_sandbox"), None]:
        r = requests.get(url, auth=auth, timeout=10)
        assert r.status_code == 401
        assert r.json() == {"error": "Couldn't authenticate you"}
    assert requests.get(url, auth=AUTH, timeout=10).status_code == 200


def test_tickets_create_show_update(sandbox_url: str) -> None:
    r = requests.post(api(sandbox_url, "tickets.json"), auth=AUTH, timeout=10, json={"ticket": {
        "subject": "Where is my order?", "comment": {"body": "Ordered a week ago"}, "priority": "high",
        "requester": {"name": "Dana", "email": "dana@example.com"}, "tags": ["shipping"]}})
    assert r.status_code == 201, r.text
    ticket = r.json()["ticket"]
    assert ticket["status"] == "new" and ticket["description"] == "Ordered a week ago"
    requester = requests.get(api(sandbox_url, f"users/{ticket['requester_id']}.json"), auth=AUTH, timeout=10)
    assert requester.json()["user"]["email"] == "dana@example.com"

    blank = requests.post(api(sandbox_url, "tickets.json"), auth=AUTH, timeout=10, json={"ticket": {"subject": "x"}})
    assert blank.status_code == 422 and blank.json()["error"] == "RecordInvalid"
    bad = requests.put(api(sandbox_url, f"tickets/{ticket['id']}.json"), auth=AUTH, timeout=10,
                       json={"ticket": {"priority": "whenever"}})
    assert bad.status_code == 422
    missing = requests.get(api(sandbox_url, "tickets/999999.json"), auth=AUTH, timeout=10)
    assert missing.status_code == 404 and missing.json() == {"error": "RecordNotFound", "description": "Not found"}

    r = requests.put(api(sandbox_url, f"tickets/{ticket['id']}.json"), auth=AUTH, timeout=10,
                     json={"ticket": {"status": "closed", "additional_tags": ["vip"]}})
    assert r.json()["ticket"]["tags"] == ["shipping", "vip"]
    closed = requests.put(api(sandbox_url, f"tickets/{ticket['id']}.json"), auth=AUTH, timeout=10,
                          json={"ticket": {"status": "open"}})
    assert closed.status_code == 422


def test_export_limit_of_10_per_minute_answers_429_with_retry_after(sandbox_url: str) -> None:
    url = api(sandbox_url, "incremental/tickets/cursor.json")
    params = {"start_time": int(time.time()) - 3600}
    codes = [requests.get(url, params=params, auth=AUTH, timeout=10).status_code for _ in range(10)]
    assert codes == [200] * 10
    r = requests.get(url, params=params, auth=AUTH, timeout=10)
    assert r.status_code == 429
    assert 1 <= int(r.headers["Retry-After"]) <= 6
    assert r.json()["error"] == "APIRateLimitExceeded"
    # other endpoints keep their own, larger budget
    assert requests.get(api(sandbox_url, "tickets.json"), auth=AUTH, timeout=10).status_code == 200


@pytest.mark.slow
def test_100k_ticket_export_at_scale(fast_export, sandbox_url: str) -> None:
    seed(sandbox_url, "tickets", tickets(100_000))
    records, _, pages = export_all(api(sandbox_url, "incremental/tickets/cursor.json"), {"start_time": 0})
    assert pages == 100 and len({t["id"] for t in records}) == 100_000


# --------------------------------------------------------------------------- pure functions
def test_cursor_round_trips_and_user_validation() -> None:
    from growth_stack_dagster.sandbox.zendesk import (
        ZendeskError, decode_export_cursor, email_key, encode_export_cursor, user_problem,
    )

    assert decode_export_cursor(encode_export_cursor(1_767_225_600, 432)) == (1_767_225_600, 432)
    with pytest.raises(ZendeskError):
        decode_export_cursor("not-a-cursor")
    assert email_key("  Ann@Example.COM ") == "email:ann@example.com"
    assert user_problem({"name": "Ann", "email": "ann@example.com"}, creating=True) is None
    assert user_problem({"email": "ann@example.com"}, creating=True) == "Name:  is too short (minimum is 1 character)"
    assert user_problem({"email": "ann@"}, creating=False) == "Email: ann@ is not properly formatted"
    assert user_problem({"role": "owner"}, creating=False).startswith("Role: owner")
