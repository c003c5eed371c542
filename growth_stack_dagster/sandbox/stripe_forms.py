"""Stripe's request parameter encoding: `application/x-www-form-urlencoded` pairs whose keys use
bracket notation (`metadata[sku]=A1`, `expand[]=customer`, `expand[0]=customer`,
`discounts[0][coupon]=SPRING`, `created[gte]=1700000000`), decoded into nested dicts and lists.
Pure functions; the emulation turns `ParamError` into Stripe's `invalid_request_error`."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qsl

_KEY = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")
_PART = re.compile(r"\[([^\[\]]*)\]")


class ParamError(ValueError):
    """A malformed or invalid parameter; `param` is its bracketed name (e.g. `created[gte]`)."""

    def __init__(self, message: str, param: str | None = None):
        super().__init__(message)
        self.message = message
        self.param = param


def split_key(key: str) -> list[str]:
    """`discounts[0][coupon]` -> ['discounts', '0', 'coupon']; `expand[]` -> ['expand', '']."""
    m = _KEY.match(key)
    if not m:
        raise ParamError(f"Invalid parameter name: {key}", key)
    return [m.group(1), *_PART.findall(m.group(2))]


def decode_pairs(pairs: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """Nest form pairs by their bracketed keys; dicts keyed only by indexes become lists."""
    root: dict[str, Any] = {}
    for key, value in pairs:
        parts = split_key(key)
        node: Any = root
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            if isinstance(node, list):  # reached through `name[]`: append a fresh element
                if last:
                    node.append(value)
                    break
                node.append({})
                node = node[-1]
                continue
            if not isinstance(node, dict):
                raise ParamError(f"Invalid parameter: {key} mixes a value and nested keys.", key)
            if part == "" and i > 0:
                raise ParamError(f"Invalid parameter name: {key}", key)
            nxt = parts[i + 1] if not last else None
            if last:
                if part in node and isinstance(node[part], (dict, list)):
                    raise ParamError(f"Invalid parameter: {key} mixes a value and nested keys.", key)
                node[part] = value
            elif nxt == "":
                existing = node.setdefault(part, [])
                if not isinstance(existing, list):
                    raise ParamError(f"Invalid array: {parts[0]}", parts[0])
                if i + 1 == len(parts) - 1:
                    existing.append(value)
                    break
                node = existing
            else:
                child = node.setdefault(part, {})
                if not isinstance(child, (dict, list)):
                    raise ParamError(f"Invalid parameter: {key} mixes a value and nested keys.", key)
                node = child
    return _listify(root)


def _listify(value: Any) -> Any:
    if isinstance(value, list):
        return [_listify(v) for v in value]
    if not isinstance(value, dict):
        return value
    out = {k: _listify(v) for k, v in value.items()}
    if out and all(k.isdigit() for k in out):
        return [out[k] for k in sorted(out, key=int)]
    return out


def decode(query: str = "", body: bytes | str = b"") -> dict[str, Any]:
    """Decode a query string plus a form body (body wins on repeated top-level keys)."""
    if isinstance(body, bytes):
        try:
            body = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ParamError("Request body is not valid UTF-8.") from exc
    pairs = parse_qsl(query, keep_blank_values=True) + parse_qsl(body, keep_blank_values=True)
    return decode_pairs(pairs)


def as_int(value: Any, param: str) -> int:
    """Stripe's integer parameter: a base-10 string."""
    if isinstance(value, bool) or isinstance(value, (dict, list)):
        raise ParamError(f"Invalid integer: {value}", param)
    try:
        return int(str(value).strip())
    except ValueError:
        raise ParamError(f"Invalid integer: {value}", param) from None


def as_float(value: Any, param: str) -> float:
    try:
        return float(str(value).strip())
    except ValueError:
        raise ParamError(f"Invalid decimal: {value}", param) from None


def as_bool(value: Any, param: str) -> bool:
    text = str(value).strip().lower()
    if text in ("true", "1"):
        return True
    if text in ("false", "0"):
        return False
    raise ParamError(f"Invalid boolean: {value}", param)


def as_str(value: Any, param: str) -> str:
    if isinstance(value, (dict, list)):
        raise ParamError(f"Invalid string: {value}", param)
    return str(value)


def as_list(value: Any, param: str) -> list[Any]:
    """An array parameter (`x[]=` or `x[0]=`); a lone string counts as a one-element array."""
    if isinstance(value, list):
        return value
    if isinstance(value, str):
        return [value] if value != "" else []
    raise ParamError("Invalid array", param)


def as_dict(value: Any, param: str) -> dict[str, Any]:
    if value == "":
        return {}
    if not isinstance(value, dict):
        raise ParamError("Invalid object", param)
    return value
