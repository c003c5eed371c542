"""Validation and stamping of Segment tracking-API requests: pure functions, no I/O.

A request is accepted or rejected whole: the first invalid message raises `Rejected` naming its
index and field, so a client never has to guess which part of a batch was stored.

Each stored line is the message as sent, plus:
* `type` (from the endpoint for single calls), `messageId` (generated when missing),
* `receivedAt` (collector clock), `sentAt` (message's, else the batch's),
* `originalTimestamp` (the client's `originalTimestamp`, else its `timestamp`) and
  `timestamp = receivedAt - (sentAt - originalTimestamp)`, which corrects a skewed client clock
  (as Segment does); without `sentAt` it is `originalTimestamp`, without either `receivedAt`,
* the batch's top-level `context` and `integrations` merged under each message's own.
`writeKey` is removed (a credential never reaches event files). The `source` is *not* written
into the line: the file's `source=<name>` folder is its one record, so the two cannot disagree.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import itertools
import os
import uuid
import zlib
from typing import Any

import orjson

MAX_MESSAGE_BYTES = 32 * 1024
MAX_REQUEST_BYTES = 500 * 1024
MESSAGE_TYPES = ("track", "identify", "page", "screen", "group", "alias")
_UTC = dt.timezone.utc
_OPTIONAL_OBJECTS = ("properties", "traits", "context", "integrations")


class Rejected(Exception):
    """A request that must not be stored; `status` and a JSON body the SDKs can read."""

    def __init__(self, status: int, code: str, message: str,
                 index: int | None = None, field: str | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.index, self.field = status, code, message, index, field

    def body(self) -> bytes:
        """`{"success": false, "code", "message"[, "index", "field"]}` (the SDKs read code+message)."""
        out: dict[str, Any] = {"success": False, "code": self.code, "message": self.message}
        if self.index is not None:
            out["index"] = self.index
        if self.field is not None:
            out["field"] = self.field
        return orjson.dumps(out)


# JSON, text/plain (analytics.js posts it to skip a CORS preflight) and form-urlencoded (the
# RudderStack Node SDK's gzipped JSON goes out with axios' default type); the body must be JSON.
_ACCEPTED_MEDIA_TYPES = ("application/json", "text/plain", "application/x-www-form-urlencoded")


def check_content_type(value: str | None) -> None:
    """Refuse (415) a body that declares itself as something other than JSON or plain text."""
    media = (value or "").split(";", 1)[0].strip().lower()
    if media not in _ACCEPTED_MEDIA_TYPES and not media.endswith("+json"):
        raise Rejected(415, "unsupported_media_type",
                       f"Content-Type {value or '(none)'!r} is not accepted; send application/json.")


def too_large(size: int, limit: int = MAX_REQUEST_BYTES) -> Rejected:
    return Rejected(413, "request_too_large",
                    f"request body is over the limit of {limit // 1024} KB per request; "
                    "split it into smaller batches.")


def decode_body(raw: bytes, content_encoding: str | None, limit: int = MAX_REQUEST_BYTES) -> bytes:
    """The request body after `Content-Encoding` (identity or gzip), at most `limit` bytes."""
    encoding = (content_encoding or "identity").strip().lower()
    if encoding in ("", "identity"):
        if len(raw) > limit:
            raise too_large(len(raw), limit)
        return raw
    if encoding not in ("gzip", "x-gzip"):
        raise Rejected(415, "unsupported_encoding",
                       f"Content-Encoding {content_encoding!r} is not supported; send gzip or none.")
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(raw, limit + 1)
    except zlib.error:
        raise Rejected(400, "invalid_gzip", "the body is not valid gzip data.") from None
    if len(out) > limit or inflater.unconsumed_tail:
        raise too_large(len(out), limit)
    if not inflater.eof:
        raise Rejected(400, "invalid_gzip", "the gzip body is truncated.")
    return out


def parse_json(raw: bytes) -> Any:
    """Parse a JSON body, saying precisely why when it cannot be parsed."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as uexc:
            raise Rejected(400, "invalid_encoding",
                           f"the body is not valid UTF-8 (byte {uexc.start}).") from None
        reason = str(exc)
        if "depth" in reason.lower() or "recursion" in reason.lower():
            raise Rejected(400, "too_deep", "the JSON nests deeper than 1024 levels.") from None
        raise Rejected(400, "invalid_json", f"the body is not valid JSON: {reason}.") from None


def write_key_from_basic(header: str) -> str | None:
    """The write key from `Authorization: Basic base64(key:)`; None if the header is not Basic."""
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "basic" or not token.strip():
        return None
    try:
        decoded = base64.b64decode(token.strip(), validate=True).decode("utf-8")
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return None
    return decoded.partition(":")[0] or None


_fromisoformat = dt.datetime.fromisoformat
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=_UTC)
_MILLISECOND = dt.timedelta(milliseconds=1)
_second_prefix: dict[int, str] = {}  # epoch second -> "YYYY-MM-DDTHH:MM:SS" (formatting is the hot spot)


def iso_utc(value: dt.datetime) -> str:
    """`2026-11-26T17:01:02.123Z` (UTC, milliseconds, truncated), the format Segment stamps."""
    second, milli = divmod((value - _EPOCH) // _MILLISECOND, 1000)
    prefix = _second_prefix.get(second)
    if prefix is None:
        if len(_second_prefix) > 8192:
            _second_prefix.clear()
        moment = (_EPOCH + dt.timedelta(seconds=second)).replace(tzinfo=None)
        prefix = _second_prefix[second] = moment.isoformat(timespec="seconds")
    return f"{prefix}.{milli:03d}Z"


class _MessageIds:
    """UUID-shaped message ids: a random v4 prefix per process plus a counter (unique, cheap)."""

    def __init__(self) -> None:
        self.reset()
        os.register_at_fork(after_in_child=self.reset)  # a forked worker must not repeat ids

    def reset(self) -> None:
        self._prefix = str(uuid.uuid4())[:24]
        self._counter = itertools.count(int.from_bytes(os.urandom(4), "big"))

    def next(self) -> str:
        return f"{self._prefix}{next(self._counter) & 0xFFFFFFFFFFFF:012x}"


new_message_id = _MessageIds().next


def _parse_ts(value: Any, index: int, field: str) -> dt.datetime:
    if not isinstance(value, str):
        raise Rejected(400, "invalid_field", f"message {index}: {field} must be an ISO-8601 string.",
                       index, field)
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        raise Rejected(400, "invalid_field",
                       f"message {index}: {field} {value[:40]!r} is not an ISO-8601 date-time.",
                       index, field) from None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=_UTC)


def _identifier(value: Any, index: int, field: str, required: bool) -> str | None:
    """A non-empty string id; integers are accepted and stored as strings (as the SDKs do)."""
    if value is None or value == "":
        if required:
            raise Rejected(400, "missing_field", f"message {index}: {field} is required.", index, field)
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise Rejected(400, "invalid_field", f"message {index}: {field} must be a string.", index, field)


def _invalid(index: int, field: str, what: str) -> Rejected:
    return Rejected(400, "invalid_field", f"message {index}: {field} must be {what}.", index, field)


def prepare_message(
    item: Any, index: int, forced_type: str | None, received: dt.datetime, received_iso: str,
    batch_sent_at: dt.datetime | None, batch_sent_at_raw: str | None,
    batch_context: dict | None, batch_integrations: dict | None,
) -> bytes:
    """Validate one message and return its stored JSON line (ending in a newline)."""
    if type(item) is not dict:
        raise Rejected(400, "invalid_message", f"message {index} is not a JSON object.", index)
    if "" in item:  # a field without a name cannot become a column; the warehouse would not load it
        raise Rejected(400, "invalid_field", f"message {index} has a field with an empty name.", index, "")
    get = item.get
    out = dict(item)
    if "writeKey" in out:
        del out["writeKey"]
    if forced_type is not None:
        out["type"] = kind = forced_type
    else:
        kind = get("type")
        if kind not in MESSAGE_TYPES:
            if kind is None:
                raise Rejected(400, "missing_field", f"message {index}: type is required.", index, "type")
            raise Rejected(400, "invalid_field",
                           f"message {index}: type {str(kind)[:40]!r} is not one of {', '.join(MESSAGE_TYPES)}.",
                           index, "type")

    user_id = get("userId")
    if type(user_id) is not str or not user_id:
        user_id = _identifier(user_id, index, "userId", False)
        if user_id is None:
            out.pop("userId", None)
        else:
            out["userId"] = user_id
    anonymous_id = get("anonymousId")
    if type(anonymous_id) is not str or not anonymous_id:
        anonymous_id = _identifier(anonymous_id, index, "anonymousId", False)
        if anonymous_id is None:
            out.pop("anonymousId", None)
        else:
            out["anonymousId"] = anonymous_id
    if user_id is None and anonymous_id is None:
        raise Rejected(400, "missing_field", f"message {index}: userId or anonymousId is required.",
                       index, "userId")

    if kind == "track":
        event = get("event")
        if type(event) is not str or not event:
            if event is None or event == "":
                raise Rejected(400, "missing_field", f"message {index}: event is required for track.",
                               index, "event")
            raise _invalid(index, "event", "a string")
    elif kind == "group":
        out["groupId"] = _identifier(get("groupId"), index, "groupId", True)
    elif kind == "alias":
        out["previousId"] = _identifier(get("previousId"), index, "previousId", True)
    elif kind == "page" or kind == "screen":
        for field in ("name", "category"):
            value = get(field)
            if value is not None and type(value) is not str:
                raise _invalid(index, field, "a string")

    properties, traits, context, integrations = get("properties"), get("traits"), get("context"), get("integrations")
    if not ((properties is None or type(properties) is dict) and (traits is None or type(traits) is dict)
            and (context is None or type(context) is dict) and (integrations is None or type(integrations) is dict)):
        for field in _OPTIONAL_OBJECTS:
            value = get(field)
            if value is not None and type(value) is not dict:
                raise _invalid(index, field, "a JSON object")
    if batch_context:
        out["context"] = {**batch_context, **context} if context else batch_context
    if batch_integrations:
        out["integrations"] = {**batch_integrations, **integrations} if integrations else batch_integrations

    message_id = get("messageId")
    if message_id is None:
        out["messageId"] = new_message_id()
    elif type(message_id) is not str or not message_id:
        message_id = _identifier(message_id, index, "messageId", False)
        out["messageId"] = message_id if message_id is not None else new_message_id()

    sent_raw = get("sentAt")
    if sent_raw is not None:
        sent_at: dt.datetime | None = _parse_ts(sent_raw, index, "sentAt")
    else:
        sent_at, sent_raw = batch_sent_at, batch_sent_at_raw
        if sent_raw is not None:
            out["sentAt"] = sent_raw
    original_raw = get("originalTimestamp")
    original_field = "originalTimestamp"
    if original_raw is None:
        original_raw = get("timestamp")
        original_field = "timestamp"
    if original_raw is not None:
        try:  # fast path: a well-formed string with an offset
            original = _fromisoformat(original_raw)
            if original.tzinfo is None:
                original = original.replace(tzinfo=_UTC)
        except (TypeError, ValueError):
            original = _parse_ts(original_raw, index, original_field)
        out["originalTimestamp"] = original_raw
        try:
            out["timestamp"] = iso_utc(original + (received - sent_at) if sent_at is not None else original)
        except (OverflowError, ValueError):
            raise _invalid(index, original_field, "a date-time within years 1-9999") from None
    else:
        out["timestamp"] = received_iso
    out["receivedAt"] = received_iso

    try:
        line = orjson.dumps(out, option=orjson.OPT_APPEND_NEWLINE)
    except orjson.JSONEncodeError as exc:
        raise Rejected(400, "invalid_message", f"message {index} cannot be stored as JSON: {exc}.",
                       index) from None
    if len(line) > MAX_MESSAGE_BYTES + 1 and len(orjson.dumps(item)) > MAX_MESSAGE_BYTES:
        raise Rejected(413, "message_too_large",
                       f"message {index} is over the limit of {MAX_MESSAGE_BYTES // 1024} KB per message.",
                       index)
    return line


def build_lines(kind: str, payload: Any, received: dt.datetime) -> list[bytes]:
    """Validate a request body for endpoint `kind` (a message type or `batch`); its lines (with newlines).

    Raises `Rejected` for the whole request at the first invalid message.
    """
    if not isinstance(payload, dict):
        raise Rejected(400, "invalid_body", "the body must be a JSON object.")
    received_iso = iso_utc(received)
    if kind != "batch":
        return [prepare_message(payload, 0, kind, received, received_iso, None, None, None, None)]
    batch = payload.get("batch")
    if not isinstance(batch, list) or not batch:
        raise Rejected(400, "invalid_body", "batch must be a non-empty array of messages.", field="batch")
    sent_raw = payload.get("sentAt")
    sent_at = None
    if sent_raw is not None:
        try:
            sent_at = _parse_ts(sent_raw, 0, "sentAt")
        except Rejected:
            raise Rejected(400, "invalid_field", "the batch's sentAt must be an ISO-8601 date-time.",
                           field="sentAt") from None
    context = payload.get("context")
    integrations = payload.get("integrations")
    if context is not None and not isinstance(context, dict):
        raise Rejected(400, "invalid_field", "context must be a JSON object.", field="context")
    if integrations is not None and not isinstance(integrations, dict):
        raise Rejected(400, "invalid_field", "integrations must be a JSON object.", field="integrations")
    return [
        prepare_message(item, i, None, received, received_iso, sent_at, sent_raw, context, integrations)
        for i, item in enumerate(batch)
    ]
