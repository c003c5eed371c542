"""A property of the event loader over generated messages: nothing is lost silently.

Every leaf value a message carries in a bag its table stores (properties of tracks, pages and
screens; traits of identifies and groups; context of every type) either lands in its Segment column
of the message's row, or is in `events._discards` for that message with a reason. The generated keys
are drawn mostly from a small vocabulary of names that collide (case variants, snake_case twins,
reserved and empty names), and values mix kinds across messages so that columns refuse some.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import tempfile
import uuid
from pathlib import Path
from typing import Any

import duckdb
import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from growth_stack_dagster.capture import loader
from tests.capture.payloads import DAY1, stamp, write

KEYS = ["plan", "Plan", "PLAN", "planType", "plan_type", "PlanType", "a", "A", "a_b", "aB", "É", "é",
        "x y", "X-Y", "id", "name", "event", "context_x", "", "!!", "__", "1st", "total", "quantity", "when"]
EVENTS = ["Signed Up", "signed_up", "Order Completed", "tracks", "!!!"]
TABLE_OF_TYPE = {"track": "tracks", "page": "pages", "screen": "screens", "identify": "identifies",
                 "group": "groups", "alias": "aliases"}
BAG_OF_TYPE = {"track": "properties", "page": "properties", "screen": "properties", "identify": "traits",
               "group": "traits", "alias": None}

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**40), 2**40), st.integers(2**63, 2**64 - 1),
    st.floats(allow_nan=False, allow_infinity=False, width=32).map(float),
    st.text(max_size=6), st.sampled_from(["2026-11-20", "11-20-2026", "2026-12-02T10:00:00Z", "true", "12",
                                          str(uuid.UUID(int=5)), "1.5", "abc"]))
keys = st.one_of(st.sampled_from(KEYS), st.text(min_size=1, max_size=4))
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(keys, inner, max_size=4)), max_leaves=6)
bags = st.dictionaries(keys, values, max_size=6)


@st.composite
def messages(draw) -> list[dict]:
    out = []
    for i in range(draw(st.integers(1, 8))):
        mtype = draw(st.sampled_from(list(TABLE_OF_TYPE)))
        msg: dict[str, Any] = {"type": mtype, "messageId": f"m{i}", "userId": "u"}
        if mtype == "track":
            msg["event"] = draw(st.sampled_from(EVENTS))
        if mtype == "alias":
            msg["previousId"] = "p"
        if mtype == "group":
            msg["groupId"] = "g"
        if BAG_OF_TYPE[mtype] and draw(st.booleans()):
            msg[BAG_OF_TYPE[mtype]] = draw(bags)
        if draw(st.booleans()):
            msg["context"] = draw(bags)
        out.append(stamp(msg, DAY1, i))
    return out


def leaves(value: Any, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    """(path, value) of every non-null leaf: objects are descended, lists are leaves."""
    if isinstance(value, dict):
        return [leaf for k, v in value.items() for leaf in leaves(v, (*path, k))]
    return [] if value is None else [(path, value)]


def same(sent: Any, stored: Any, column_type: str) -> bool:
    """Whether a stored column value is the value sent (read through the column's type)."""
    if stored is None:
        return False
    t = column_type.upper()
    if t == "JSON" or (t == "VARCHAR" and not isinstance(sent, str)):
        return close(json.loads(stored), sent)
    if isinstance(stored, uuid.UUID):
        return str(stored) == sent.lower()
    if isinstance(stored, (dt.date, dt.datetime)):
        parsed = (dt.datetime.fromisoformat(sent.replace("Z", "+00:00")) if "T" in sent
                  else dt.date.fromisoformat(sent))
        return parsed == stored
    if isinstance(sent, str) and not isinstance(stored, str):  # text read as a number or a boolean
        try:
            return close(json.loads(sent.strip().lower()), stored)
        except ValueError:
            return False
    return close(sent, stored) or str(stored) == str(sent)


def close(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b or a == b and type(a) is type(b)
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-9)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(close(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):  # a key holding null is a key not sent
        a, b = ({k: v for k, v in d.items() if v is not None} for d in (a, b))
        return a.keys() == b.keys() and all(close(a[k], b[k]) for k in a)
    return a == b


def at(value: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return value


def accounted(bag: str, path: tuple[str, ...], value: Any, table: str, columns: dict[str, str], row: dict,
              discards: list[tuple]) -> bool:
    """Whether one leaf is in its column or in _discards; an object kept whole as JSON (in its own
    column or in a discard) holds its leaves."""
    if "" in path:  # the subtree under a key named "" is kept whole in _discards
        cut = path.index("") + 1
        pointer = loader.json_pointer(path[:cut])
        if any(r.endswith(f"(at JSON pointer {pointer})") and close(at(json.loads(v), path[cut:]), value)
               for _, _, v, r in discards):
            return True
    for n in range(len(path), 0, -1):
        column = loader.column_name(bag, path[:n])
        if any(t == table and c == column and close(at(json.loads(v), path[n:]), value) for t, c, v, _ in discards):
            return True
        if column not in columns:
            continue
        if n == len(path) and same(value, row[column], columns[column]):
            return True
        if n < len(path) and columns[column] == "JSON" and row[column] is not None and close(
                at(json.loads(row[column]), path[n:]), value):
            return True
    return False


def unaccounted(con: duckdb.DuckDBPyConnection, msgs: list[dict]) -> list[str]:
    """Every leaf that neither lands in its column nor is in _discards (empty when nothing was lost)."""
    discards: dict[str, list[tuple]] = {}
    for mid, table, column, value, reason in con.execute(
            'SELECT message_id, "table", "column", value, reason FROM events._discards').fetchall():
        discards.setdefault(mid, []).append((table, column, value, reason))
    lost = []
    for msg in msgs:
        mtype, mid = msg["type"], msg["messageId"]
        tables = [(TABLE_OF_TYPE[mtype], BAG_OF_TYPE[mtype] if mtype not in ("track", "alias") else None)]
        if mtype == "track":
            tables.append((loader.event_table_name(msg["event"]), "properties"))
        for table, bag in tables:
            columns = loader.table_columns(con, table)
            cur = con.execute(f"SELECT * FROM events.{loader.q(table)} WHERE id = ?", [mid])
            names = [d[0] for d in cur.description]
            [row] = [dict(zip(names, r)) for r in cur.fetchall()]
            for b in [x for x in (bag, "context") if x]:
                for path, value in leaves(msg.get(b)):
                    if not accounted(b, path, value, table, columns, row, discards.get(mid, [])):
                        lost.append(f"{mid} {table}.{loader.column_name(b, path)} <- {b}{list(path)} = {value!r} "
                                    f"(stored {row.get(loader.column_name(b, path))!r})")
    return lost


@settings(max_examples=int(os.environ.get("GROWTH_STACK_PROPERTY_EXAMPLES", "40")), deadline=None,
          database=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(messages())
def test_every_leaf_value_lands_in_a_column_or_in_discards(msgs: list[dict]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "events"
        write(root, "web", DAY1, [orjson.dumps(m) for m in msgs])
        con = duckdb.connect(str(Path(tmp) / "warehouse.duckdb"))
        try:
            report = loader.load_partition(con, root, DAY1)
            assert sum(n for t, n in report.rows_per_table.items() if t in TABLE_OF_TYPE.values()) == len(msgs)
            assert unaccounted(con, msgs) == []
        finally:
            con.close()
