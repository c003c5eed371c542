"""The Amplitude emulation, driven with the official `amplitude-analytics` SDK pointed at the
sandbox, and with plain HTTP for what the SDK hides (exact error bodies, Identify, Export)."""

from __future__ import annotations

import datetime as dt
import gzip
import io
import json
import threading
import time
import zipfile
from collections.abc import Iterator

import pytest
import requests
from amplitude import Amplitude, BaseEvent, Config, EventOptions, Identify

from growth_stack_dagster.sandbox.amplitude import AmplitudeError, apply_user_properties, validate_upload
from tests.servers import reset_sandbox, sandbox_server

TOKEN = "sk_test_sandbox"


@pytest.fixture(autouse=True)
def _sandbox_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("GROWTH_STACK_SANDBOX_TOKEN", "GROWTH_STACK_SANDBOX_RATE_LIMIT_SCALE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GROWTH_STACK_SANDBOX_WEBHOOK_URL", "")


@pytest.fixture(scope="module")
def _shared_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One `growth-stack sandbox` for the tests of this module that need no special environment
    (starting one takes seconds on a loaded machine); each test gets it reset."""
    home = tmp_path_factory.mktemp("gs_home")
    env = {"GROWTH_STACK_SANDBOX_WEBHOOK_URL": "",
           "GROWTH_STACK_SANDBOX_TOKEN": TOKEN, "GROWTH_STACK_SANDBOX_RATE_LIMIT_SCALE": "1"}
    with sandbox_server(home, env) as url:
        yield url


@pytest.fixture
def sandbox(_shared_sandbox: str) -> str:
    return reset_sandbox(_shared_sandbox)


class Callbacks:
    """Collects the SDK's per-event callbacks: {insert_id: [(code, message), ...]}."""

    def __init__(self) -> None:
        self.results: dict[str, list[tuple[int, str]]] = {}
        self._cv = threading.Condition()

    def __call__(self, event: BaseEvent, code: int, message: str | None = None) -> None:
        with self._cv:
            self.results.setdefault(event.insert_id, []).append((code, message or ""))
            self._cv.notify_all()

    def wait_final(self, insert_ids: list[str], timeout: float = 20) -> dict[str, tuple[int, str]]:
        """The last callback of each event once every one of them has had one."""
        deadline = time.monotonic() + timeout
        with self._cv:
            while not all(i in self.results for i in insert_ids):
                left = deadline - time.monotonic()
                assert left > 0, f"no callback for {[i for i in insert_ids if i not in self.results]}"
                self._cv.wait(left)
            return {i: self.results[i][-1] for i in insert_ids}


@pytest.fixture
def client_factory(sandbox: str) -> Iterator:
    clients = []

    def make(api_key: str = TOKEN, **config) -> tuple[Amplitude, Callbacks]:
        callbacks = Callbacks()
        config.setdefault("flush_interval_millis", 100)
        client = Amplitude(api_key, configuration=Config(
            server_url=f"{sandbox}/amplitude/2/httpapi", callback=callbacks, **config))
        clients.append(client)
        return client, callbacks

    yield make
    for client in clients:
        client.shutdown()


def export(base: str, start: str | None = None, end: str | None = None, auth=(TOKEN, TOKEN)) -> requests.Response:
    hour = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H")
    return requests.get(f"{base}/amplitude/api/2/export", params={"start": start or hour, "end": end or hour},
                        auth=auth, timeout=10)


def exported_events(base: str) -> list[dict]:
    """Every event of the last two hours, read from the Export API's zip of gzipped NDJSON."""
    now = dt.datetime.now(dt.timezone.utc)
    r = export(base, (now - dt.timedelta(hours=1)).strftime("%Y%m%dT%H"), now.strftime("%Y%m%dT%H"))
    if r.status_code == 404:
        return []
    assert r.status_code == 200 and r.headers["content-type"] == "application/zip", r.text
    out = []
    with zipfile.ZipFile(io.BytesIO(r.content)) as zf:
        for name in zf.namelist():
            assert name.startswith("100000/100000_") and name.endswith("#0.json.gz")
            out += [json.loads(line) for line in gzip.decompress(zf.read(name)).splitlines() if line]
    return out


def profile(base: str, user_id: str, key: str = TOKEN) -> requests.Response:
    return requests.get(f"{base}/amplitude/v1/userprofile", params={"user_id": user_id, "get_amp_props": "true"},
                        headers={"Authorization": f"Api-Key {key}"}, timeout=10)


def upload(base: str, events: list[dict], path: str = "2/httpapi", **extra) -> requests.Response:
    return requests.post(f"{base}/amplitude/{path}", json={"api_key": TOKEN, "events": events, **extra}, timeout=30)


# --------------------------------------------------------------------------- pure functions
def test_user_property_operations() -> None:
    props = apply_user_properties({}, {"plan": "pro", "tags": ["a"]})
    assert props == {"plan": "pro", "tags": ["a"]}
    props = apply_user_properties(props, {
        "$set": {"plan": "team"}, "$setOnce": {"plan": "ignored", "first": "2024-01-01"},
        "$add": {"logins": 2}, "$append": {"tags": "b"}, "$prepend": {"tags": "z"},
        "$postInsert": {"tags": ["a", "c"]}, "$unset": {"missing": "-"}})
    assert props == {"plan": "team", "first": "2024-01-01", "logins": 2, "tags": ["z", "a", "b", "c"]}
    props = apply_user_properties(props, {"$remove": {"tags": "a"}, "$add": {"logins": 3}, "$unset": {"first": "-"}})
    assert props == {"plan": "team", "logins": 5, "tags": ["z", "b", "c"]}
    assert apply_user_properties(props, {"$clearAll": "-"}) == {}


def test_upload_validation_reports_event_indexes() -> None:
    events = [{"event_type": "ok", "user_id": "user_0001"},
              {"user_id": "user_0002"},
              {"event_type": "short", "user_id": "u_1"},
              {"event_type": "no ids"},
              {"event_type": "bad time", "device_id": "device-1", "time": "2024-01-01T00:00:00Z"},
              {"event_type": "null id", "user_id": "null"},
              {"event_type": "short user, good device", "user_id": "u_1", "device_id": "device-2"}]
    with pytest.raises(AmplitudeError) as exc:
        validate_upload({"api_key": TOKEN, "events": events}, TOKEN)
    body = exc.value.body
    assert exc.value.status == 400 and body["code"] == 400
    assert body["events_with_missing_fields"] == {"event_type": [1], "user_id": [3], "device_id": [3]}
    assert body["events_with_invalid_fields"] == {"time": [4], "user_id": [5]}
    assert body["events_with_invalid_id_lengths"] == {"user_id": [2]}
    # options.min_id_length lowers the bar, and a short id next to a valid one is dropped, not refused
    accepted, _ = validate_upload({"api_key": TOKEN, "events": [events[2], events[6]],
                                   "options": {"min_id_length": 3}}, TOKEN)
    assert accepted[0]["user_id"] == "u_1"
    accepted, _ = validate_upload({"api_key": TOKEN, "events": [events[6]]}, TOKEN)
    assert "user_id" not in accepted[0] and accepted[0]["device_id"] == "device-2"


# --------------------------------------------------------------------------- SDK end to end
def test_sdk_track_then_export(sandbox: str, client_factory) -> None:
    client, callbacks = client_factory()
    for i in range(5):
        client.track(BaseEvent("Product Viewed", user_id="user_0001", device_id="device-0001",
                               insert_id=f"view-{i}", event_properties={"sku": f"sku-{i}", "price": 9.5},
                               time=1_700_000_000_000 + i))
    client.flush()
    results = callbacks.wait_final([f"view-{i}" for i in range(5)])
    assert {code for code, _ in results.values()} == {200}

    events = exported_events(sandbox)
    assert sorted(e["$insert_id"] for e in events) == [f"view-{i}" for i in range(5)]
    first = next(e for e in events if e["$insert_id"] == "view-0")
    assert first["event_type"] == "Product Viewed" and first["user_id"] == "user_0001"
    assert first["device_id"] == "device-0001" and first["event_properties"] == {"sku": "sku-0", "price": 9.5}
    assert first["event_time"] == "2023-11-14 22:13:20.000000" and first["app"] == 100000
    assert first["library"].startswith("amplitude-python/")
    assert len({e["uuid"] for e in events}) == 5 and len({e["amplitude_id"] for e in events}) == 1


def test_insert_id_deduplication(sandbox: str) -> None:
    event = {"event_type": "Order Completed", "user_id": "user_0002", "insert_id": "order-1"}
    for _ in range(2):
        r = upload(sandbox, [event, {**event, "insert_id": "order-2"}])
        assert r.status_code == 200 and r.json()["events_ingested"] == 2
    body = r.json()
    assert body["code"] == 200 and body["payload_size_bytes"] > 0 and body["server_upload_time"] > 1.6e12
    assert sorted(e["$insert_id"] for e in exported_events(sandbox)) == ["order-1", "order-2"]


def test_sdk_identify_and_identify_api_read_back(sandbox: str, client_factory) -> None:
    client, callbacks = client_factory()
    ident = Identify().set("plan", "pro").set_once("signup_source", "ads").add("logins", 2).append("tags", "vip")
    client.identify(ident, EventOptions(user_id="user_0003", insert_id="ident-1"))
    client.flush()
    assert callbacks.wait_final(["ident-1"])["ident-1"][0] == 200

    r = profile(sandbox, "user_0003")
    assert r.status_code == 200, r.text
    data = r.json()["userData"]
    assert data["user_id"] == "user_0003" and data["cohort_ids"] is None
    props = data["amp_props"]
    assert props["plan"] == "pro" and props["signup_source"] == "ads" and props["logins"] == 2
    assert props["tags"] == ["vip"] and props["library"].startswith("amplitude-python/")

    # the Identify API (form-encoded, no event) updates the same user
    r = requests.post(f"{sandbox}/amplitude/identify", timeout=10, data={
        "api_key": TOKEN, "identification": json.dumps([{"user_id": "user_0003", "user_properties": {
            "$set": {"plan": "team"}, "$setOnce": {"signup_source": "email"}, "$unset": {"tags": "-"}}}])})
    assert r.status_code == 200 and r.text == "success"
    props = profile(sandbox, "user_0003").json()["userData"]["amp_props"]
    assert props["plan"] == "team" and props["signup_source"] == "ads" and "tags" not in props
    # an identify is not an event: only the SDK's $identify event was exported
    assert [e["event_type"] for e in exported_events(sandbox)] == ["$identify"]

    assert requests.post(f"{sandbox}/amplitude/identify", data={"api_key": "bad", "identification": "{}"},
                         timeout=10).text == "invalid_api_key"
    r = requests.post(f"{sandbox}/amplitude/identify", data={"api_key": TOKEN}, timeout=10)
    assert r.status_code == 400 and r.text == "missing_event"
    r = profile(sandbox, "user_0003", key="wrong")
    assert r.status_code == 401 and r.text == "Invalid Api-Key"
    r = requests.get(f"{sandbox}/amplitude/v1/userprofile", params={"user_id": "user_0003"}, timeout=10)
    assert r.status_code == 401 and r.text == "Missing Api-Key in Authorization header"
    assert profile(sandbox, "user_never").json() == {"error": "User id and device id not seen before"}
    r = requests.get(f"{sandbox}/amplitude/v1/userprofile", params={"user_id": "user_0003"}, timeout=10,
                     headers={"Authorization": f"Api-Key {TOKEN}"})
    assert r.json()["userData"]["amp_props"] is None  # only with get_amp_props=true


def test_sdk_invalid_events_are_refused_and_valid_ones_retried(sandbox: str, client_factory) -> None:
    client, callbacks = client_factory()
    client.track(BaseEvent("Checkout Started", user_id="u_1", insert_id="short-id"))  # example-company id: 3 chars
    client.track(BaseEvent("Checkout Started", user_id="user_0004", insert_id="fine"))
    client.flush()
    results = callbacks.wait_final(["short-id", "fine"])
    assert results["short-id"][0] == 400  # refused: user ids need 5 characters unless min_id_length says less
    assert results["fine"][0] == 200  # the SDK resent the event the 400 did not name
    assert [e["$insert_id"] for e in exported_events(sandbox)] == ["fine"]

    client2, callbacks2 = client_factory(min_id_length=1)
    client2.track(BaseEvent("Checkout Started", user_id="u_1", insert_id="short-ok"))
    client2.flush()
    assert callbacks2.wait_final(["short-ok"])["short-ok"][0] == 200


def test_invalid_request_bodies(sandbox: str) -> None:
    r = upload(sandbox, [{"event_type": "a", "user_id": "user_0005"}, {"user_id": "user_0005"},
                             {"event_type": "b", "user_id": "user_0005", "time": 1.5}])
    assert r.status_code == 400
    assert r.json() == {"code": 400, "error": "Invalid field values on some events",
                        "events_with_missing_fields": {"event_type": [1]},
                        "events_with_invalid_fields": {"time": [2]}}
    r = requests.post(f"{sandbox}/amplitude/2/httpapi", json={"events": []}, timeout=10)
    assert r.json() == {"code": 400, "error": "Request missing required field", "missing_field": "api_key"}
    r = requests.post(f"{sandbox}/amplitude/2/httpapi", json={"api_key": TOKEN}, timeout=10)
    assert r.status_code == 400 and r.json()["missing_field"] == "events"
    r = requests.post(f"{sandbox}/amplitude/2/httpapi", data=b"{oops", timeout=10)
    assert r.status_code == 400 and r.json() == {"code": 400, "error": "Invalid JSON request body"}
    assert exported_events(sandbox) == []  # a refused upload stores nothing


def test_bad_api_key(sandbox: str, client_factory) -> None:
    r = requests.post(f"{sandbox}/amplitude/2/httpapi", timeout=10,
                      json={"api_key": "wrong-key", "events": [{"event_type": "a", "user_id": "user_0006"}]})
    assert r.status_code == 400 and r.json() == {"code": 400, "error": "Invalid API key: wrong-key"}
    client, callbacks = client_factory(api_key="wrong-key")
    client.track(BaseEvent("a", user_id="user_0006", insert_id="bad-key"))
    futures = client.flush()
    for future in futures:
        if future is not None:
            future.result(timeout=20)
    # the SDK recognises "Invalid API key:" and drops the batch without a success callback
    assert "bad-key" not in callbacks.results
    assert exported_events(sandbox) == []


def test_payload_too_large(sandbox: str, client_factory) -> None:
    big = {"event_type": "big", "user_id": "user_0007", "event_properties": {"blob": "x" * 1_100_000}}
    r = upload(sandbox, [big])
    assert r.status_code == 413 and r.json() == {"code": 413, "error": "Payload too large"}
    r = upload(sandbox, [{"event_type": "e", "user_id": "user_0007"}] * 2001)
    assert r.status_code == 413
    assert upload(sandbox, [big], path="batch").status_code == 200  # the Batch API takes up to 20 MB

    client, callbacks = client_factory()
    # the SDK cuts strings to 1024 characters, so make it big with many properties
    client.track(BaseEvent("big", user_id="user_0007", insert_id="too-big",
                           event_properties={f"p{i}": "x" * 1000 for i in range(1000)}))
    client.flush()
    assert callbacks.wait_final(["too-big"])["too-big"] == (413, "Payload too large")


def test_sdk_retries_injected_429_and_5xx(sandbox: str, client_factory) -> None:
    faults = f"{sandbox}/_admin/faults"
    requests.post(faults, json={"prefix": "/amplitude/2/httpapi", "kind": "rate_limit", "count": 2},
                  timeout=10).raise_for_status()
    requests.post(faults, json={"prefix": "/amplitude/2/httpapi", "kind": "error", "status": 503, "count": 1},
                  timeout=10).raise_for_status()
    r = upload(sandbox, [{"event_type": "probe", "user_id": "user_0008"}])
    assert r.status_code == 429 and r.json()["code"] == 429 and r.json()["eps_threshold"] == 30

    client, callbacks = client_factory()
    client.track(BaseEvent("Request a Quote", user_id="user_0008", insert_id="retried"))
    client.flush()
    assert callbacks.wait_final(["retried"])["retried"][0] == 200
    fired = {f["kind"]: f["fired"] for f in requests.get(faults, timeout=10).json()}
    assert fired == {"rate_limit": 2, "error": 1}
    assert [e["$insert_id"] for e in exported_events(sandbox)] == ["retried"]


def test_per_user_event_rate_429(sandbox: str) -> None:
    events = [{"event_type": "burst", "user_id": "user_0009", "insert_id": f"b{i}"} for i in range(301)]
    events.append({"event_type": "other", "device_id": "device-0009", "insert_id": "other"})
    r = upload(sandbox, events)
    assert r.status_code == 429
    body = r.json()
    assert body["code"] == 429 and body["eps_threshold"] == 30
    assert body["throttled_users"] == {"user_0009": 30} and body["throttled_devices"] == {}
    assert body["throttled_events"] == list(range(301))
    assert exported_events(sandbox) == []  # a throttled upload is refused whole
    # the Batch API allows 1000 events per second per user
    r = upload(sandbox, events, path="batch")
    assert r.status_code == 200 and r.json()["events_ingested"] == 302


def test_export_errors(sandbox: str) -> None:
    assert export(sandbox).status_code == 404  # nothing uploaded yet
    assert export(sandbox, auth=(TOKEN, "wrong")).status_code == 401
    r = export(sandbox, start="2024-01-01")
    assert r.status_code == 400 and "YYYYMMDDTHH" in r.json()["error"]
    assert export(sandbox, start="20240102T00", end="20240101T00").status_code == 400
    assert export(sandbox, start="20220101T00", end="20240101T00").status_code == 400


def test_anonymous_device_profile_becomes_the_users(sandbox: str) -> None:
    assert upload(sandbox, [{"event_type": "Page Viewed", "device_id": "anon-device-1",
                             "user_properties": {"utm_source": "facebook"}}]).status_code == 200
    r = requests.get(f"{sandbox}/amplitude/v1/userprofile", timeout=10, headers={"Authorization": f"Api-Key {TOKEN}"},
                     params={"device_id": "anon-device-1", "get_amp_props": "true"})
    assert r.json()["userData"]["amp_props"]["utm_source"] == "facebook"
    assert upload(sandbox, [{"event_type": "Signed Up", "device_id": "anon-device-1", "user_id": "user_0010",
                             "user_properties": {"$set": {"plan": "free"}}}], path="batch").status_code == 200
    props = profile(sandbox, "user_0010").json()["userData"]["amp_props"]
    assert props["utm_source"] == "facebook" and props["plan"] == "free"
    assert [e["amplitude_id"] for e in exported_events(sandbox)][0] == exported_events(sandbox)[1]["amplitude_id"]
