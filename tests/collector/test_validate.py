"""Pure validation and stamping rules."""

from __future__ import annotations

import datetime as dt
import gzip

import orjson
import pytest

from growth_stack_dagster.collector.validate import (
    MAX_REQUEST_BYTES, Rejected, build_lines, decode_body, write_key_from_basic,
)

RECEIVED = dt.datetime(2026, 11, 26, 12, 0, 0, 500_000, tzinfo=dt.timezone.utc)


def _one(kind: str, msg: dict) -> dict:
    [line] = build_lines(kind, msg, RECEIVED)
    return orjson.loads(line)


def test_skewed_client_clock_is_corrected() -> None:
    # device clock 1 h behind: sent "10:59:59", event "10:59:00" -> really 59 s before receipt
    out = _one("track", {"userId": "u", "event": "E", "sentAt": "2026-11-26T10:59:59Z",
                         "timestamp": "2026-11-26T10:59:00Z"})
    assert out["timestamp"] == "2026-11-26T11:59:01.500Z"
    assert out["originalTimestamp"] == "2026-11-26T10:59:00Z"
    assert out["receivedAt"] == "2026-11-26T12:00:00.500Z"


def test_original_timestamp_wins_and_offsets_are_normalised() -> None:
    out = _one("page", {"anonymousId": "a", "originalTimestamp": "2026-11-26T13:00:00+02:00",
                        "timestamp": "2026-01-01T00:00:00Z"})
    assert out["originalTimestamp"] == "2026-11-26T13:00:00+02:00"
    assert out["timestamp"] == "2026-11-26T11:00:00.000Z"  # no sentAt: the client's time, in UTC


def test_write_key_never_stored_and_type_from_endpoint() -> None:
    out = _one("identify", {"userId": "u", "writeKey": "secret", "type": "track"})
    assert "writeKey" not in out and out["type"] == "identify"


def test_basic_auth_key() -> None:
    assert write_key_from_basic("Basic d2ViLWRldi1rZXk6") == "web-dev-key"
    assert write_key_from_basic("Bearer abc") is None
    assert write_key_from_basic("Basic %%%") is None


def test_gzip_bomb_is_refused_without_inflating_it_all() -> None:
    bomb = gzip.compress(b" " * (50 * MAX_REQUEST_BYTES))
    with pytest.raises(Rejected) as exc:
        decode_body(bomb, "gzip")
    assert exc.value.status == 413
    with pytest.raises(Rejected) as exc:
        decode_body(b"{}", "br")
    assert exc.value.status == 415


def test_message_of_exactly_32_kb_is_accepted() -> None:
    msg = {"userId": "u", "event": "E", "properties": {"x": ""}}
    pad = 32 * 1024 - len(orjson.dumps(msg))
    msg["properties"]["x"] = "y" * pad
    assert len(orjson.dumps(msg)) == 32 * 1024
    assert _one("track", msg)["properties"]["x"] == "y" * pad
    msg["properties"]["x"] += "y"
    with pytest.raises(Rejected) as exc:
        _one("track", msg)
    assert exc.value.status == 413 and "32 KB per message" in exc.value.message
