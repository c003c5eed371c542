"""The Facebook Marketing API emulation, driven by plain `requests` as the Graph API docs show and by
the official `facebook-business` SDK, against a real `growth-stack sandbox` on loopback."""

from __future__ import annotations

import hashlib
import json

import pytest
import requests

TOKEN = "sk_test_sandbox"
VERSION = "v21.0"
CAMPAIGNS = [
    {"id": str(120_210_000 + i), "account_id": "1000", "name": f"spring_sale_{i}", "status": "ACTIVE",
     "objective": "OUTCOME_SALES", "created_time": "2026-01-01T00:00:00+0000",
     "updated_time": "2026-01-02T08:30:00+0000"}
    for i in range(3)
]


def insight_rows() -> list[dict]:
    rows = []
    for n, campaign in enumerate(CAMPAIGNS):
        for day in range(1, 11):
            date = f"2026-03-{day:02d}"
            rows.append({"id": f"{campaign['id']}:{date}", "account_id": "1000", "campaign_id": campaign["id"],
                         "campaign_name": campaign["name"], "date_start": date, "date_stop": date,
                         "spend": f"{10 + n}.{day:02d}", "impressions": str(1000 * (n + 1) + day),
                         "clicks": str(20 + day)})
    return rows


def sha256(email: str) -> str:
    return hashlib.sha256(email.strip().lower().encode()).hexdigest()


def seed(base: str, collection: str, objects: list[dict]) -> None:
    r = requests.post(f"{base}/_admin/seed/facebook/{collection}", json=objects, timeout=30)
    assert r.status_code == 200, r.text
    assert r.json() == {"seeded": len(objects)}


def graph(base: str) -> str:
    return f"{base}/facebook/{VERSION}"


def follow_pages(first: requests.Response) -> list[dict]:
    """Every row of a Graph edge, following `paging.next` as the docs describe."""
    rows, response = [], first
    while True:
        assert response.status_code == 200, response.text
        body = response.json()
        rows.extend(body["data"])
        nxt = body.get("paging", {}).get("next")
        if not nxt:
            return rows
        response = requests.get(nxt, timeout=10)


def create_audience(base: str, name: str = "high_value_customers") -> str:
    r = requests.post(f"{graph(base)}/act_1000/customaudiences", timeout=10, data={
        "name": name, "subtype": "CUSTOM", "description": "Computed in the warehouse",
        "customer_file_source": "USER_PROVIDED_ONLY", "access_token": TOKEN})
    assert r.status_code == 200, r.text
    return r.json()["id"]


def audience_count(base: str, audience_id: str) -> int:
    r = requests.get(f"{graph(base)}/{audience_id}", timeout=10, params={
        "fields": "approximate_count_lower_bound,approximate_count_upper_bound", "access_token": TOKEN})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["approximate_count_lower_bound"] == body["approximate_count_upper_bound"]
    return body["approximate_count_lower_bound"]


def test_campaigns_and_daily_insights_page_through_a_date_range(sandbox_url: str) -> None:
    seed(sandbox_url, "campaigns", CAMPAIGNS)
    seed(sandbox_url, "insights", insight_rows())

    campaigns = follow_pages(requests.get(f"{graph(sandbox_url)}/act_1000/campaigns", timeout=10, params={
        "fields": "id,name,status,objective,created_time", "limit": 2, "access_token": TOKEN}))
    assert [c["id"] for c in campaigns] == [c["id"] for c in CAMPAIGNS]
    assert campaigns[0] == {k: CAMPAIGNS[0][k] for k in ("id", "name", "status", "objective", "created_time")}

    first = requests.get(f"{graph(sandbox_url)}/act_1000/insights", timeout=10, params={
        "level": "campaign", "time_increment": 1,
        "time_range": json.dumps({"since": "2026-03-03", "until": "2026-03-06"}),
        "fields": "campaign_id,campaign_name,spend,impressions,clicks", "limit": 5, "access_token": TOKEN})
    body = first.json()
    assert len(body["data"]) == 5 and set(body["paging"]["cursors"]) == {"before", "after"}
    rows = follow_pages(first)
    expected = [r for r in insight_rows() if "2026-03-03" <= r["date_start"] <= "2026-03-06"]
    assert len(rows) == len(expected) == 12
    key = lambda r: (r["date_start"], r["campaign_id"])  # noqa: E731
    assert sorted(rows, key=key) == sorted(
        ({k: r[k] for k in ("campaign_id", "campaign_name", "spend", "impressions", "clicks",
                            "date_start", "date_stop")} for r in expected), key=key)
    assert all(isinstance(r["spend"], str) and r["date_start"] == r["date_stop"] for r in rows)


def test_insights_for_one_campaign_and_whole_range_totals(sandbox_url: str) -> None:
    seed(sandbox_url, "campaigns", CAMPAIGNS)
    seed(sandbox_url, "insights", insight_rows())
    campaign = CAMPAIGNS[1]["id"]
    r = requests.get(f"{graph(sandbox_url)}/{campaign}/insights", timeout=10, params={
        "time_range": json.dumps({"since": "2026-03-01", "until": "2026-03-31"}),
        "fields": "campaign_id,spend,impressions,clicks", "access_token": TOKEN})
    assert r.status_code == 200, r.text
    (row,) = r.json()["data"]
    mine = [x for x in insight_rows() if x["campaign_id"] == campaign]
    assert row["campaign_id"] == campaign
    assert row["impressions"] == str(sum(int(x["impressions"]) for x in mine))
    assert row["clicks"] == str(sum(int(x["clicks"]) for x in mine))
    assert row["spend"] == f"{sum(float(x['spend']) for x in mine):.2f}"
    assert (row["date_start"], row["date_stop"]) == ("2026-03-01", "2026-03-31")

    bad = requests.get(f"{graph(sandbox_url)}/act_1000/insights", timeout=10, params={
        "time_range": json.dumps({"since": "2026-03-09", "until": "2026-03-01"}), "access_token": TOKEN})
    assert bad.status_code == 400 and bad.json()["error"]["code"] == 100


def test_async_insights_report_run(sandbox_url: str) -> None:
    seed(sandbox_url, "campaigns", CAMPAIGNS)
    seed(sandbox_url, "insights", insight_rows())
    started = requests.post(f"{graph(sandbox_url)}/act_1000/insights", timeout=10, data={
        "level": "campaign", "time_increment": "1", "fields": "campaign_id,spend",
        "time_range": json.dumps({"since": "2026-03-01", "until": "2026-03-04"}), "access_token": TOKEN})
    assert started.status_code == 200, started.text
    report_id = started.json()["report_run_id"]
    run = requests.get(f"{graph(sandbox_url)}/{report_id}", params={"access_token": TOKEN}, timeout=10).json()
    assert run["async_status"] == "Job Completed" and run["async_percent_completion"] == 100
    rows = follow_pages(requests.get(f"{graph(sandbox_url)}/{report_id}/insights", timeout=10,
                                     params={"limit": 5, "access_token": TOKEN}))
    assert len(rows) == 12 and set(rows[0]) == {"campaign_id", "spend", "date_start", "date_stop"}

    refused = requests.post(f"{graph(sandbox_url)}/act_1000/insights", timeout=10, data={
        "level": "ad", "access_token": TOKEN})
    assert refused.status_code == 400 and refused.json()["error"]["code"] == 100


def test_custom_audience_add_and_remove_hashed_users(sandbox_url: str) -> None:
    audience = create_audience(sandbox_url)
    emails = ["alice@example.com", "bob@example.com", "carol@example.com"]
    users_url = f"{graph(sandbox_url)}/{audience}/users"
    r = requests.post(users_url, timeout=10, data={
        "payload": json.dumps({"schema": "EMAIL_SHA256", "data": [sha256(e) for e in emails]}),
        "access_token": TOKEN})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["audience_id"] == audience and body["num_received"] == 3 and body["num_invalid_entries"] == 0
    assert body["invalid_entry_samples"] == {} and body["session_id"]
    assert audience_count(sandbox_url, audience) == 3

    # the same person written differently hashes to the same member; list-form schema works too
    r = requests.post(users_url, timeout=10, data={
        "payload": json.dumps({"schema": ["EMAIL_SHA256"], "data": [[sha256("  Alice@Example.COM ")]]}),
        "access_token": TOKEN})
    assert r.json()["num_received"] == 1
    assert audience_count(sandbox_url, audience) == 3

    r = requests.delete(users_url, timeout=10, params={"access_token": TOKEN}, data={
        "payload": json.dumps({"schema": "EMAIL_SHA256", "data": [sha256("bob@example.com")]})})
    assert r.status_code == 200, r.text
    assert r.json()["num_received"] == 1
    assert audience_count(sandbox_url, audience) == 2

    listed = requests.get(f"{graph(sandbox_url)}/act_1000/customaudiences", timeout=10, params={
        "fields": "id,name,approximate_count_lower_bound", "access_token": TOKEN}).json()["data"]
    assert listed == [{"id": audience, "name": "high_value_customers", "approximate_count_lower_bound": 2}]


def test_unhashed_values_are_rejected_and_not_added(sandbox_url: str) -> None:
    audience = create_audience(sandbox_url)
    r = requests.post(f"{graph(sandbox_url)}/{audience}/users", timeout=10, data={
        "payload": json.dumps({"schema": "EMAIL_SHA256",
                               "data": ["dave@example.com", sha256("erin@example.com"), "abc123"]}),
        "access_token": TOKEN})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["num_received"] == 3 and body["num_invalid_entries"] == 2
    assert set(body["invalid_entry_samples"]) == {"dave@example.com", "abc123"}
    assert audience_count(sandbox_url, audience) == 1


def test_more_than_10000_users_is_refused_whole(sandbox_url: str) -> None:
    audience = create_audience(sandbox_url)
    hashes = [hashlib.sha256(f"user{i}@example.com".encode()).hexdigest() for i in range(10_001)]
    r = requests.post(f"{graph(sandbox_url)}/{audience}/users", timeout=30, data={
        "payload": json.dumps({"schema": "EMAIL_SHA256", "data": hashes}), "access_token": TOKEN})
    assert r.status_code == 400
    error = r.json()["error"]
    assert error["type"] == "OAuthException" and error["code"] == 100 and error["fbtrace_id"]
    assert "10000" in error["message"]
    assert audience_count(sandbox_url, audience) == 0

    ok = requests.post(f"{graph(sandbox_url)}/{audience}/users", timeout=30, data={
        "payload": json.dumps({"schema": "EMAIL_SHA256", "data": hashes[:10_000]}), "access_token": TOKEN})
    assert ok.status_code == 200 and ok.json()["num_received"] == 10_000
    assert audience_count(sandbox_url, audience) == 10_000


def test_auth_and_graph_errors(sandbox_url: str) -> None:
    url = f"{graph(sandbox_url)}/act_1000/campaigns"
    missing = requests.get(url, timeout=10)
    assert missing.status_code == 400 and missing.json()["error"]["code"] == 104
    wrong = requests.get(url, params={"access_token": "EAAB-not-it"}, timeout=10)
    assert wrong.status_code == 400
    assert wrong.json()["error"]["type"] == "OAuthException" and wrong.json()["error"]["code"] == 190
    bearer = requests.get(url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
    assert bearer.status_code == 200 and bearer.json() == {"data": []}
    unknown = requests.get(f"{graph(sandbox_url)}/987654321", params={"access_token": TOKEN}, timeout=10)
    assert unknown.status_code == 400 and unknown.json()["error"]["error_subcode"] == 33
    field = requests.get(url, params={"access_token": TOKEN, "fields": "name,not_a_field"}, timeout=10)
    assert field.json()["error"]["message"] == \
        "(#100) Tried accessing nonexisting field (not_a_field) on node type (Campaign)"


def test_server_errors_and_throttling_look_like_facebook(sandbox_url: str) -> None:
    requests.post(f"{sandbox_url}/_admin/faults", json={
        "prefix": "/facebook/", "kind": "error", "status": 500, "count": 1}, timeout=10).raise_for_status()
    r = requests.get(f"{graph(sandbox_url)}/act_1000/campaigns", params={"access_token": TOKEN}, timeout=10)
    assert r.status_code == 500
    assert r.json()["error"]["code"] == 2 and r.json()["error"]["is_transient"] is True

    requests.post(f"{sandbox_url}/_admin/faults", json={
        "prefix": "/facebook/", "kind": "rate_limit", "retry_after": 90, "count": 1}, timeout=10).raise_for_status()
    r = requests.get(f"{graph(sandbox_url)}/act_1000/campaigns", params={"access_token": TOKEN}, timeout=10)
    assert r.status_code == 400 and r.json()["error"]["code"] == 80004
    usage = json.loads(r.headers["x-business-use-case-usage"])
    assert usage["1000"][0]["type"] == "ads_management"
    assert usage["1000"][0]["estimated_time_to_regain_access"] == 2  # minutes, rounded up

    ok = requests.get(f"{graph(sandbox_url)}/act_1000/campaigns", params={"access_token": TOKEN}, timeout=10)
    assert ok.status_code == 200 and "x-business-use-case-usage" in ok.headers


def test_published_rate_limit_throttles(sandbox_url_scaled: str) -> None:
    # scale 0.001 leaves a bucket of 9 calls refilled at 0.03/s: the tenth call in a row is throttled
    codes = [requests.get(f"{graph(sandbox_url_scaled)}/act_1000", params={"access_token": TOKEN},
                          timeout=10).status_code for _ in range(12)]
    assert codes[:9] == [200] * 9 and codes[-1] == 400


@pytest.fixture
def sandbox_url_scaled(monkeypatch: pytest.MonkeyPatch, gs_home, request) -> str:
    monkeypatch.setenv("GROWTH_STACK_SANDBOX_RATE_LIMIT_SCALE", "0.001")
    return request.getfixturevalue("sandbox_url")


def test_official_sdk_reads_campaigns_insights_and_manages_an_audience(sandbox_url: str) -> None:
    pytest.importorskip("facebook_business")
    from facebook_business.adobjects.adaccount import AdAccount
    from facebook_business.adobjects.customaudience import CustomAudience
    from facebook_business.api import FacebookAdsApi
    from facebook_business.exceptions import FacebookRequestError
    from facebook_business.session import FacebookSession

    seed(sandbox_url, "campaigns", CAMPAIGNS)
    seed(sandbox_url, "insights", insight_rows())
    session = FacebookSession(access_token=TOKEN)
    session.GRAPH = f"{sandbox_url}/facebook"  # the SDK's only host setting
    api = FacebookAdsApi(session)
    account = AdAccount("act_1000", api=api)

    campaigns = list(account.get_campaigns(fields=["name", "status"], params={"limit": 2}))
    assert [c["name"] for c in campaigns] == [c["name"] for c in CAMPAIGNS]
    insights = list(account.get_insights(fields=["campaign_id", "spend", "clicks"], params={
        "level": "campaign", "time_increment": 1, "time_range": {"since": "2026-03-01", "until": "2026-03-02"},
        "limit": 4}))
    assert len(insights) == 6 and {i["date_start"] for i in insights} == {"2026-03-01", "2026-03-02"}
    job = account.get_insights(fields=["campaign_id", "impressions"], is_async=True, params={
        "level": "campaign", "time_range": {"since": "2026-03-01", "until": "2026-03-10"}})
    assert job.api_get()["async_status"] == "Job Completed"
    totals = {r["campaign_id"]: r["impressions"] for r in job.get_result(params={"limit": 2})}
    assert totals == {c["id"]: str(sum(int(r["impressions"]) for r in insight_rows() if r["campaign_id"] == c["id"]))
                      for c in CAMPAIGNS}

    audience = account.create_custom_audience(params={
        "name": "sdk_audience", "subtype": "CUSTOM", "customer_file_source": "USER_PROVIDED_ONLY"})
    # the SDK normalises (trim, lower-case) and hashes emails itself
    added = audience.add_users(CustomAudience.Schema.email_hash,
                               [" Alice@Example.COM ", "alice@example.com", "bob@example.com"]).json()
    assert added["num_received"] == 3 and added["num_invalid_entries"] == 0
    assert audience.api_get(fields=["approximate_count_lower_bound"])["approximate_count_lower_bound"] == 2
    audience.remove_users(CustomAudience.Schema.email_hash, ["bob@example.com"])
    assert audience.api_get(fields=["approximate_count_lower_bound"])["approximate_count_lower_bound"] == 1

    with pytest.raises(FacebookRequestError) as err:
        audience.add_users(CustomAudience.Schema.email_hash, [f"u{i}@example.com" for i in range(10_001)])
    assert err.value.api_error_code() == 100


# --------------------------------------------------------------------------- pure functions
def test_time_buckets_and_ranges() -> None:
    import datetime as dt

    from growth_stack_dagster.sandbox.facebook import GraphError, bucket_of, resolve_time_range

    d = dt.date.fromisoformat
    assert bucket_of(d("2026-03-05"), d("2026-03-01"), d("2026-03-31"), "1") == (d("2026-03-05"), d("2026-03-05"))
    assert bucket_of(d("2026-03-09"), d("2026-03-01"), d("2026-03-10"), "7") == (d("2026-03-08"), d("2026-03-10"))
    assert bucket_of(d("2026-02-20"), d("2026-02-10"), d("2026-03-05"), "monthly") == (
        d("2026-02-10"), d("2026-02-28"))
    assert resolve_time_range({}, d("2026-04-01")) == (d("2026-03-02"), d("2026-03-31"))  # last_30d, not today
    assert resolve_time_range({"date_preset": "last_month"}, d("2026-04-15")) == (d("2026-03-01"), d("2026-03-31"))
    with pytest.raises(GraphError, match="time_range must be"):
        resolve_time_range({"time_range": '{"since": "2026-01-01"}'}, d("2026-04-01"))


def test_user_payload_validation() -> None:
    from growth_stack_dagster.sandbox.facebook import GraphError, member_key, validate_user_payload

    keys, rows = validate_user_payload({"schema": "EMAIL_SHA256", "data": [sha256("a@x.com")]})
    assert keys == ["EMAIL_SHA256"] and rows == [[sha256("a@x.com")]]
    assert member_key(keys, rows[0]) == (sha256("a@x.com"), "")
    assert member_key(keys, ["a@x.com"])[0] is None
    assert member_key(["EMAIL", "EXTERN_ID"], [sha256("a@x.com").upper(), "u_1"]) == (f"{sha256('a@x.com')}|u_1", "")
    with pytest.raises(GraphError, match="at most 10000"):
        validate_user_payload({"schema": "EMAIL_SHA256", "data": ["0" * 64] * 10_001})
    with pytest.raises(GraphError, match="unsupported keys"):
        validate_user_payload({"schema": "EMAIL_PLAIN", "data": ["x"]})


def test_the_token_in_an_authorization_header_pages_without_any_url_holding_it(sandbox_url: str) -> None:
    seed(sandbox_url, "campaigns", CAMPAIGNS)
    url = f"{graph(sandbox_url)}/act_1000/campaigns"
    for scheme in ("Bearer", "OAuth"):  # the Graph API takes either scheme
        headers = {"Authorization": f"{scheme} {TOKEN}"}
        first = requests.get(url, params={"fields": "id,name", "limit": 1}, headers=headers, timeout=10)
        assert first.status_code == 200, first.text
        rows, nexts, body = list(first.json()["data"]), [], first.json()
        while body.get("paging", {}).get("next"):
            nexts.append(body["paging"]["next"])
            body = requests.get(nexts[-1], headers=headers, timeout=10).json()
            rows += body["data"]
        assert [r["id"] for r in rows] == [c["id"] for c in CAMPAIGNS]
        assert len(nexts) == 2 and not any(TOKEN in n or "access_token" in n for n in nexts)
    wrong = requests.get(url, headers={"Authorization": "Bearer EAAB-not-it"}, timeout=10)
    assert wrong.status_code == 400 and wrong.json()["error"]["code"] == 190
    basic = requests.get(url, headers={"Authorization": f"Basic {TOKEN}"}, timeout=10)
    assert basic.status_code == 400 and basic.json()["error"]["code"] == 104
