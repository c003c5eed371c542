"""Every bad request gets the right status and a body naming the problem, and nothing reaches disk."""

from __future__ import annotations

import gzip
import time
from pathlib import Path

import orjson
import pytest
import requests

from tests.collector.helpers import all_files

AUTH = ("web-dev-key", "")
JSON = {"Content-Type": "application/json"}


def _deep(depth: int) -> bytes:
    return b'{"userId":"u","event":"E","properties":' + b'{"a":' * depth + b"1" + b"}" * depth + b"}"


def _batch(*items: dict) -> bytes:
    return orjson.dumps({"batch": list(items)})


TRACK = {"userId": "u", "event": "E"}
CASES = {
    # name: (path, body, headers, auth, status, code, field)
    "bad key": ("/v1/track", orjson.dumps(TRACK), JSON, ("nope", ""), 401, "unauthorized", None),
    "bad key in body": ("/v1/track", orjson.dumps({**TRACK, "writeKey": "nope"}), JSON, None, 401,
                        "unauthorized", None),
    "no key": ("/v1/track", orjson.dumps(TRACK), JSON, None, 401, "unauthorized", None),
    "malformed json": ("/v1/track", b'{"userId": "u", "event": ', JSON, AUTH, 400, "invalid_json", None),
    "not an object": ("/v1/track", b"[1, 2]", JSON, AUTH, 400, "invalid_body", None),
    "wrong content type": ("/v1/track", orjson.dumps(TRACK), {"Content-Type": "application/xml"},
                           AUTH, 415, "unsupported_media_type", None),
    "multipart content type": ("/v1/batch", orjson.dumps({"batch": [{"type": "track", **TRACK}]}),
                               {"Content-Type": "multipart/form-data; boundary=x"}, AUTH, 415,
                               "unsupported_media_type", None),
    "form-encoded but not JSON": ("/v1/track", b"userId=u&event=E", {"Content-Type": "application/x-www-form-urlencoded"},
                                  AUTH, 400, "invalid_json", None),
    "no content type": ("/v1/track", orjson.dumps(TRACK), {}, AUTH, 415, "unsupported_media_type", None),
    "message over 32 KB": ("/v1/track", orjson.dumps({**TRACK, "properties": {"x": "y" * 33_000}}), JSON, AUTH,
                           413, "message_too_large", None),
    "batch message over 32 KB": ("/v1/batch", _batch({"type": "track", **TRACK},
                                                     {"type": "track", **TRACK, "properties": {"x": "y" * 33_000}}),
                                 JSON, AUTH, 413, "message_too_large", None),
    "request over 500 KB": ("/v1/batch", _batch(*[{"type": "track", **TRACK, "properties": {"x": "y" * 20_000}}] * 30),
                            JSON, AUTH, 413, "request_too_large", None),
    "gzip over 500 KB inflated": ("/v1/batch", gzip.compress(_batch(*[{"type": "track", **TRACK,
                                                                       "properties": {"x": "y" * 20_000}}] * 30)),
                                  {**JSON, "Content-Encoding": "gzip"}, AUTH, 413, "request_too_large", None),
    "bad gzip": ("/v1/track", b"not gzip", {**JSON, "Content-Encoding": "gzip"}, AUTH, 400, "invalid_gzip", None),
    "no user or anonymous id": ("/v1/track", orjson.dumps({"event": "E"}), JSON, AUTH, 400, "missing_field", "userId"),
    "track without event": ("/v1/track", orjson.dumps({"userId": "u"}), JSON, AUTH, 400, "missing_field", "event"),
    "group without groupId": ("/v1/group", orjson.dumps({"userId": "u"}), JSON, AUTH, 400, "missing_field", "groupId"),
    "alias without previousId": ("/v1/alias", orjson.dumps({"userId": "u"}), JSON, AUTH, 400, "missing_field",
                                 "previousId"),
    "batch item without type": ("/v1/batch", _batch({"type": "track", **TRACK}, TRACK), JSON, AUTH, 400,
                                "missing_field", "type"),
    "batch item of unknown type": ("/v1/batch", _batch({"type": "purchase", **TRACK}), JSON, AUTH, 400,
                                   "invalid_field", "type"),
    "empty batch": ("/v1/batch", _batch(), JSON, AUTH, 400, "invalid_body", "batch"),
    "event not a string": ("/v1/track", orjson.dumps({"userId": "u", "event": 7}), JSON, AUTH, 400,
                           "invalid_field", "event"),
    "userId an object": ("/v1/identify", orjson.dumps({"userId": {"id": 1}}), JSON, AUTH, 400, "invalid_field",
                         "userId"),
    "properties not an object": ("/v1/track", orjson.dumps({**TRACK, "properties": "x"}), JSON, AUTH, 400,
                                 "invalid_field", "properties"),
    "traits a list": ("/v1/identify", orjson.dumps({"userId": "u", "traits": [1]}), JSON, AUTH, 400,
                      "invalid_field", "traits"),
    "field with an empty name": ("/v1/track", orjson.dumps({**TRACK, "": 1}), JSON, AUTH, 400, "invalid_field", ""),
    "timestamp not a date": ("/v1/track", orjson.dumps({**TRACK, "timestamp": "yesterday"}), JSON, AUTH, 400,
                             "invalid_field", "timestamp"),
    "sentAt a number": ("/v1/track", orjson.dumps({**TRACK, "sentAt": 12}), JSON, AUTH, 400, "invalid_field",
                        "sentAt"),
    "non-UTF-8": ("/v1/track", b'{"userId":"u","event":"caf\xe9"}', JSON, AUTH, 400, "invalid_encoding", None),
    "10,000-deep nesting": ("/v1/track", _deep(10_000), JSON, AUTH, 400, "too_deep", None),
    "300-deep nesting (parses, cannot be stored)": ("/v1/track", _deep(300), JSON, AUTH, 400, "invalid_message",
                                                    None),
}


@pytest.mark.parametrize("name", list(CASES))
def test_bad_request_is_refused_and_nothing_is_stored(name: str, shared_collector: tuple[str, Path]) -> None:
    collector_url, gs_home = shared_collector
    path, body, headers, auth, status, code, field = CASES[name]
    r = requests.post(collector_url + path, data=body, headers=headers, auth=auth, timeout=10)
    assert r.status_code == status, r.text
    payload = r.json()
    assert payload["success"] is False and payload["code"] == code and payload["message"]
    if field is not None:
        assert payload["field"] == field
    time.sleep(0.3)  # longer than the file age: anything written would be on disk by now
    assert all_files(gs_home) == []


def test_invalid_batch_names_index_and_field(shared_collector: tuple[str, Path]) -> None:
    collector_url, gs_home = shared_collector
    body = _batch({"type": "track", **TRACK}, {"type": "identify", "userId": "u"}, {"type": "track", "userId": "u"})
    r = requests.post(collector_url + "/v1/batch", data=body, headers=JSON, auth=AUTH, timeout=10)
    assert r.status_code == 400
    assert (r.json()["index"], r.json()["field"]) == (2, "event")
    assert "message 2" in r.json()["message"]
    time.sleep(0.3)
    assert all_files(gs_home) == []  # the two valid messages were not stored either


def test_wrong_method_and_unknown_path(shared_collector: tuple[str, Path]) -> None:
    collector_url, _ = shared_collector
    assert requests.get(collector_url + "/v1/track", timeout=10).status_code == 405
    assert requests.post(collector_url + "/v2/track", data=b"{}", headers=JSON, timeout=10).status_code == 404


def test_disk_nearly_full_is_503_with_retry_after(gs_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.servers import run_server

    monkeypatch.setenv("GROWTH_STACK_COLLECTOR_MIN_FREE_MB", str(1 << 40))  # more than any disk has
    with run_server("collector", "/health", {"GROWTH_STACK_HOME": str(gs_home)}) as (url, _):
        r = requests.post(url + "/v1/track", data=orjson.dumps(TRACK), headers=JSON, auth=AUTH, timeout=10)
    assert r.status_code == 503 and int(r.headers["Retry-After"]) > 0
    assert "full" in r.json()["message"]
    assert all_files(gs_home) == []
