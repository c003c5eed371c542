"""Load one received date of event files into the warehouse `events` schema (Segment's shape).

This is the one module holding capture's warehouse-specific (DuckDB) SQL. `load_partition` is a
pure function of (connection, event-file root, day): Dagster assets call it, tests call it.

How a day is loaded, in one transaction:
1. the day's previous load is deleted (its rows, found through the ledger `events._loaded_messages`,
   and its discards), so a re-run produces the same tables;
2. webhook files (first line `{"type": "webhook", ...}`) are transformed in Python
   (`transforms.transform_webhook`) into Segment messages written to temporary NDJSON files;
3. meanwhile one `read_json` reads every event file into the temp table `_stage`: the message
   fields (type, messageId, event, ids, timestamps, name...) as text and the bags (properties, traits,
   context) as JSON text, computing each row's routing fields (`_k_*`: messageId, type, event, source,
   why it is invalid, the parsed standard timestamps) in the same pass; the transformed webhooks are
   added to it. A line read_json cannot read as a message (not JSON, not an object, neither type nor
   messageId) becomes an all-NULL row (`ignore_errors`); only the files holding such rows are cleaned
   in Python, where each line is either kept or copied exactly into `events._discards`, and read again:
   nothing is dropped silently. Top-level keys other than the message fields are not loaded;
4. messages without messageId, with an unknown type, or tracks without event go to `_discards` as
   their exact line; duplicates within the day and messages already loaded on another day are
   dropped and counted (marked in `_k_invalid`, which every insert filters on);
5. each bag's schema is what read_json infers over all its values in the messages loaded
   (`sample_size=-1`, so no key is missed), inferred over its distinct values only (most messages
   repeat another's context and properties; one file holds the three bags' values, a column per
   bag, read once); a bag value that is no object goes to `_discards`.
   Strings inferred as dates or uuids stay text and are cast when flattened (a date form the cast
   refuses, e.g. 11-20-2026, makes a text column). read_json merges keys that differ only in case
   (`Plan`, `plan`) and reads one spelling: the keys of every object are listed, and each spelling of
   such a key is typed and read on its own (`_split_case_variants`);
6. per target table (`tracks`, `pages`, ..., one per track event) properties / traits / context
   are typed with the leaves the table stores (json_transform) and flattened into columns in SQL with
   Segment's names; a column's type is chosen when it is created (Segment e-commerce spec types
   first, else the type DuckDB inferred) and never changes; new columns are added with ALTER TABLE;
   values that do not fit their column's type go to `_discards` (the row is still loaded, with NULL
   there), found for all the day's tables in one scan of the stage (each message paired with the
   tables it went to; standard timestamps only on a day that has a bad one). Keys with one
   column name (`Plan`/`plan`, `userAgent`/`user_agent`) fold into that column as in Segment's
   warehouses: the last non-null value of the message wins, the others go to `_discards`;
7. `users` is rebuilt from `identifies` (latest non-null value of each trait per user).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import json
import re
import shutil
import tempfile
import time
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

import duckdb
import orjson

from growth_stack_dagster import eventfiles
from growth_stack_dagster.capture import transforms

SCHEMA = "events"
DISCARDS = "_discards"
LEDGER = "_loaded_messages"
TYPE_TABLES = {"track": "tracks", "page": "pages", "screen": "screens", "identify": "identifies",
               "group": "groups", "alias": "aliases"}
FIXED_TABLES = (*TYPE_TABLES.values(), "users")
# The example company's track events, declared as assets (other event tables are still created).
KNOWN_EVENT_TABLES = ("product_viewed", "product_added", "checkout_started", "order_completed",
                      "request_a_quote", "email_delivered", "email_opened", "email_clicked")
TIMESTAMP_FIELDS = {"timestamp": "timestamp", "receivedAt": "received_at", "sentAt": "sent_at",
                    "originalTimestamp": "original_timestamp"}
STAMP_TYPE = "TIMESTAMP WITH TIME ZONE"
# `load_days` runs a day whose event files hold fewer bytes than this with one DuckDB thread.
SMALL_DAY_BYTES = 4 << 20
# From this many distinct bag values on, each bag's values are typed from a file of their own, read
# in parallel (below it, one file for the three bags: fewer statements).
SEPARATE_VALUES = 20_000
DUPLICATE = "duplicate"  # `_k_invalid` of a message dropped as a duplicate (not a discard)
# Types Segment's specs give to well-known properties: a new column with one of these names gets
# this type whatever the first batch held, so e.g. `total: "abc"` is a discard, not a VARCHAR column.
SPEC_TYPES = {name: "DOUBLE" for name in (
    "total", "revenue", "subtotal", "tax", "shipping", "discount", "price", "value")} | {
    "quantity": "BIGINT", "position": "BIGINT"}
_NUMERIC = {"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER",
            "UBIGINT", "UHUGEINT"}
_TEMPORAL = {"DATE", "TIMESTAMP", "TIMESTAMP WITH TIME ZONE", "TIME"}


@dataclasses.dataclass
class LoadReport:
    """What one `load_partition` did (becomes the materialization metadata)."""

    day: str
    files: int = 0
    messages_read: int = 0
    rows_per_table: dict[str, int] = dataclasses.field(default_factory=dict)
    duplicates_in_day: int = 0
    duplicates_across_days: int = 0
    discards: int = 0
    discards_by_reason: dict[str, int] = dataclasses.field(default_factory=dict)
    webhooks_transformed: int = 0
    webhooks_skipped: int = 0
    new_columns: list[str] = dataclasses.field(default_factory=list)
    seconds: dict[str, float] = dataclasses.field(default_factory=dict)

    def lap(self, phase: str, since: float) -> float:
        """Record the seconds spent in `phase` since `since`; returns now."""
        now = time.perf_counter()
        self.seconds[phase] = round(self.seconds.get(phase, 0.0) + now - since, 3)
        return now

    @property
    def duplicates_dropped(self) -> int:
        return self.duplicates_in_day + self.duplicates_across_days


# --------------------------------------------------------------------------- names

@functools.lru_cache(maxsize=65536)  # the same keys come back every day: named once
def snake_case(name: str) -> str:
    """Segment's column/table naming: `Order Completed` -> `order_completed`, `userAgent` -> `user_agent`.

    Names outside ASCII keep what tells them apart (see `_ascii`): `Größe` -> `grosse`, `Café` -> `cafe`,
    `名前` -> `u540d_u524d`."""
    s = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", _ascii(str(name)))
    s = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", s)
    s = re.sub(r"[^0-9A-Za-z]+", "_", s).strip("_").lower()
    s = re.sub(r"_+", "_", s)
    if s and s[0].isdigit():
        s = "_" + s
    return s[:120]


def _ascii(name: str) -> str:
    """`name` in ASCII letters, digits and separators, so that names in any script keep distinct
    columns and tables (and valid Dagster asset keys). Per character: one that is ASCII without its
    accents or in its compatibility form takes that form (`é` -> `e`, `ﬁ` -> `fi`), or its lower case
    when that is ASCII (`ß` -> `ss`); any other letter or digit becomes its lower case's code point as
    a word of its own (`名` -> `_u540d_`, `И` and `и` -> `_u0438_`, `プ` -> `_u30d7_`); the rest a space."""
    if name.isascii():
        return name
    out = []
    for ch in unicodedata.normalize("NFC", name):
        plain = "".join(c for c in unicodedata.normalize("NFKD", ch) if not unicodedata.combining(c))
        lower = ch.casefold()
        if plain and plain.isascii():
            out.append(plain)
        elif lower.isascii():
            out.append(lower)
        elif ch.isalnum():
            out.append("".join(f"_u{ord(c):04x}_" for c in lower))
        else:
            out.append(" ")
    return "".join(out)


def event_table_name(event: str) -> str:
    """Table of a track event: snake_case, never one of the fixed tables nor a `_` system table."""
    name = snake_case(event)
    if not name:
        return "unnamed_event"  # e.g. "!!!": still gets a table, so its properties are kept
    if name in FIXED_TABLES or name.startswith("_"):
        return f"event_{name.lstrip('_')}"
    return name


def q(identifier: str) -> str:
    """Quote an SQL identifier."""
    return '"' + identifier.replace('"', '""') + '"'


def lit(value: str) -> str:
    """Quote an SQL string literal."""
    return "'" + value.replace("'", "''") + "'"


# --------------------------------------------------------------------------- schema

COMMON_COLUMNS = {
    "id": "VARCHAR", "anonymous_id": "VARCHAR", "user_id": "VARCHAR", "timestamp": "TIMESTAMPTZ",
    "received_at": "TIMESTAMPTZ", "sent_at": "TIMESTAMPTZ", "original_timestamp": "TIMESTAMPTZ",
    "uuid_ts": "TIMESTAMPTZ", "source": "VARCHAR",
}
EXTRA_COLUMNS = {
    "tracks": {"event": "VARCHAR", "event_text": "VARCHAR"},
    "pages": {"name": "VARCHAR", "category": "VARCHAR"},
    "screens": {"name": "VARCHAR", "category": "VARCHAR"},
    "identifies": {},
    "groups": {"group_id": "VARCHAR"},
    "aliases": {"previous_id": "VARCHAR"},
}
EVENT_TABLE_EXTRA = {"event": "VARCHAR", "event_text": "VARCHAR"}
# Which struct of the message is flattened un-prefixed into each table (context always, prefixed).
BAG_OF_TABLE = {"pages": "properties", "screens": "properties", "identifies": "traits", "groups": "traits"}


def base_columns(table: str) -> dict[str, str]:
    extra = EXTRA_COLUMNS.get(table, EVENT_TABLE_EXTRA)
    return {**COMMON_COLUMNS, **extra}


def ensure_system_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Create the `events` schema, `_discards` and the load ledger if missing."""
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
    con.execute(f"""CREATE TABLE IF NOT EXISTS {SCHEMA}.{DISCARDS} (
        partition_date DATE, source VARCHAR, source_file VARCHAR, message_id VARCHAR,
        "table" VARCHAR, "column" VARCHAR, value VARCHAR, reason VARCHAR, discarded_at TIMESTAMPTZ)""")
    # The ledger of loaded messageIds: cross-day dedup and the per-day delete on re-runs use it.
    con.execute(f"""CREATE TABLE IF NOT EXISTS {SCHEMA}.{LEDGER} (
        message_id VARCHAR, partition_date DATE, source VARCHAR, type VARCHAR)""")


def table_columns(con: duckdb.DuckDBPyConnection, table: str) -> dict[str, str]:
    """{column: type} of `events.<table>` ({} if it does not exist)."""
    rows = con.execute(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = ? AND table_name = ? ORDER BY ordinal_position", [SCHEMA, table]).fetchall()
    return {name: typ for name, typ in rows}


def schema_columns(con: duckdb.DuckDBPyConnection) -> dict[str, dict[str, str]]:
    """{table: {column: type}} of every table of `events`, in one catalog query (each costs milliseconds)."""
    out: dict[str, dict[str, str]] = {}
    for table, name, typ in con.execute(
            "SELECT table_name, column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = ? ORDER BY table_name, ordinal_position", [SCHEMA]).fetchall():
        out.setdefault(table, {})[name] = typ
    return out


def events_tables(con: duckdb.DuckDBPyConnection) -> list[str]:
    rows = con.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = ? "
                       "AND table_type = 'BASE TABLE'", [SCHEMA]).fetchall()
    return sorted(r[0] for r in rows)


def _norm_type(t: str) -> str:
    t = t.upper()
    return {"TIMESTAMPTZ": "TIMESTAMP WITH TIME ZONE", "INT": "INTEGER", "INT8": "BIGINT", "FLOAT8": "DOUBLE",
            "STRING": "VARCHAR", "TEXT": "VARCHAR", "BOOL": "BOOLEAN"}.get(t, t)


# --------------------------------------------------------------------------- value conversion

def convert(expr: str, src: str, dst: str) -> tuple[str, bool]:
    """SQL turning `expr` (of DuckDB type `src`) into `dst`; and whether it can fail (NULL for a value).

    Never rounds or truncates: an integer column refuses 1.5 and "1.5"; a boolean refuses "yes".
    """
    src, dst = _norm_type(src), _norm_type(dst)
    nested = src.startswith(("STRUCT", "MAP")) or src.endswith("]")
    if src == dst and not nested:
        return expr, False
    text = f"json_extract_string({expr}, '$')" if src == "JSON" else f"CAST({expr} AS VARCHAR)"
    if dst == "JSON":
        return (f"to_json({expr})" if src != "JSON" else expr), False
    if dst == "VARCHAR":
        return (f"CAST(to_json({expr}) AS VARCHAR)" if nested else text), False
    if nested:
        return f"CAST(NULL AS {dst})", True
    if dst in _NUMERIC:
        if src in _NUMERIC:
            return f"TRY_CAST({expr} AS {dst})", True
        if src in ("DOUBLE", "FLOAT", "DECIMAL") or src.startswith("DECIMAL"):
            return f"CASE WHEN {expr} = trunc({expr}) THEN TRY_CAST({expr} AS {dst}) END", True
        if src in ("VARCHAR", "JSON"):
            return (f"CASE WHEN regexp_full_match(trim({text}), '[+-]?[0-9]+') "
                    f"THEN TRY_CAST(trim({text}) AS {dst}) END"), True
        return f"CAST(NULL AS {dst})", True
    if dst in ("DOUBLE", "FLOAT"):
        if src in _NUMERIC or src in ("DOUBLE", "FLOAT") or src.startswith("DECIMAL"):
            return f"CAST({expr} AS {dst})", src in ("HUGEINT", "UHUGEINT")
        if src in ("VARCHAR", "JSON"):
            return f"TRY_CAST({text} AS {dst})", True
        return f"CAST(NULL AS {dst})", True
    if dst == "BOOLEAN":
        if src in ("VARCHAR", "JSON"):
            return f"CASE lower(trim({text})) WHEN 'true' THEN true WHEN 'false' THEN false END", True
        return "CAST(NULL AS BOOLEAN)", True
    if dst in _TEMPORAL:
        if src in _TEMPORAL or src in ("VARCHAR", "JSON"):
            return f"TRY_CAST({text if src == 'JSON' else expr} AS {dst})", True
        return f"CAST(NULL AS {dst})", True
    return f"TRY_CAST({text if src == 'JSON' else expr} AS {dst})", True


def new_column_type(name: str, src: str) -> str | None:
    """Type of a column created for values of DuckDB type `src` (None: nothing storable)."""
    src = _norm_type(src)
    if name in SPEC_TYPES:
        return SPEC_TYPES[name]
    if src == '"NULL"' or src == "NULL":
        return None
    if src.startswith(("STRUCT", "MAP")) or src.endswith("]") or src == "JSON":
        return "JSON"
    if src in _NUMERIC:
        return src if src in ("UBIGINT", "HUGEINT", "UHUGEINT") else "BIGINT"  # never round big ids
    if src in ("FLOAT", "DECIMAL") or src.startswith("DECIMAL"):
        return "DOUBLE"
    return src


# --------------------------------------------------------------------------- flattening plan

@dataclasses.dataclass
class Leaf:
    expr: str          # SQL reaching the value in the stage row
    src_type: str      # its DuckDB type in the stage
    path: tuple[str, ...]
    inferred: str = ""  # the type read_json inferred for it (the stage may hold it as text); "" = src_type
    spelled: bool = False  # read from the raw bag by its exact spelling (a key sent in several spellings)


def structure_type(structure: Any) -> str:
    """The DuckDB type json_transform gives a value of this structure."""
    if isinstance(structure, dict):
        return "STRUCT(" + ", ".join(f"{q(k)} {structure_type(c)}" for k, c in structure.items()) + ")"
    if isinstance(structure, list):
        return structure_type(structure[0]) + "[]"
    return structure


def structure_leaves(expr: str, structure: Any, path: tuple[str, ...] = ()) -> list[Leaf]:
    """Every leaf of a (possibly nested) structure: objects are descended, lists are leaves."""
    if isinstance(structure, dict):
        out: list[Leaf] = []
        for key, child in structure.items():
            out += structure_leaves(f"struct_extract({expr}, {lit(key)})", child, (*path, key))
        return out
    return [Leaf(expr, structure_type(structure), path)]


def _restrict(structure: dict, paths: Iterable[tuple[str, ...]]) -> dict:
    """The part of a structure holding only these leaf paths (what one table reads of a bag)."""
    out: dict = {}
    for path in paths:
        src, dst = structure, out
        for key in path[:-1]:
            src, dst = src[key], dst.setdefault(key, {})
        dst[path[-1]] = src[path[-1]]
    return out


def json_pointer(path: tuple[str, ...]) -> str:
    """The JSON pointer of a key path (`$` for the root), as DuckDB's json functions take it."""
    return "".join("/" + k.replace("~", "~0").replace("/", "~1") for k in path) or "$"


def raw_bag_column(bag: str) -> str:
    """Column of a typed stage row holding the bag as read (JSON text): keys read_json's struct misses."""
    return f"_raw_{bag}"


def spelled_leaf(bag: str, path: tuple[str, ...], structure: Any, inferred: str) -> Leaf:
    """A leaf under a key sent in several spellings (`Plan` beside `plan`): read from the raw bag by
    its exact spelling (see `_split_case_variants`)."""
    expr = (f"json_transform(json_extract(s.{q(raw_bag_column(bag))}, {lit(json_pointer(path))}), "
            f"{lit(json.dumps(structure))})")
    return Leaf(expr, structure_type(structure), path, inferred, spelled=True)


def column_name(bag: str, path: tuple[str, ...]) -> str:
    """Segment's column for a bag leaf: snake_case parts joined by `_` (context ones prefixed)."""
    return ("context_" if bag == "context" else "") + "_".join(snake_case(p) or "_" for p in path)


def merged_type(types: list[str]) -> str:
    """One column type for values inferred as several types (keys folded into one column), as
    read_json merges them: numbers widen, text stays text, anything else mixed is JSON."""
    kinds = {_norm_type(t) for t in types if _norm_type(t) not in _NULL_TYPES}
    if not kinds:
        return "NULL"
    if len(kinds) == 1:
        return kinds.pop()
    if kinds <= _NUMERIC:  # integers only: a type that holds them all without rounding
        if kinds <= {"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "UTINYINT", "USMALLINT", "UINTEGER"}:
            return "BIGINT"
        return "DOUBLE" if "UHUGEINT" in kinds else "HUGEINT"
    if all(_json_kind(("scalar", k)) == "number" for k in kinds):
        return "DOUBLE"
    if all(_json_kind(("scalar", k)) == "string" for k in kinds):
        return "VARCHAR"
    return "JSON"


@dataclasses.dataclass
class Column:
    name: str
    expr: str            # SQL of the stored value
    fallible: bool       # a non-NULL source value may fail to convert -> discard
    raw: str             # SQL of the source value (for the discard)
    reserved_of: str | None = None  # when set: a property colliding with this standard column
    sources: tuple[tuple[str, Leaf], ...] = ()  # the bag leaves it reads (none for a standard column)


# --------------------------------------------------------------------------- reading files

def _first_line_is_webhook(path: Path) -> bool:
    with open(path, "rb") as fh:
        for line in fh:
            if line.strip():
                try:
                    obj = orjson.loads(line)
                except orjson.JSONDecodeError:
                    return False
                return isinstance(obj, dict) and obj.get("type") == "webhook"
    return False


def _classify_line(line: bytes) -> tuple[dict | None, str | None]:
    """(message, None) for a JSON object naming a message, else (None, why it cannot be loaded)."""
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        return None, f"invalid JSON line: {exc}"
    if not isinstance(obj, dict):
        return None, "line is not a JSON object"
    if obj.get("type") is None and obj.get("messageId") is None:
        return None, "message has neither type nor messageId"
    return obj, None


def _lines(path: Path) -> Iterable[bytes]:
    """Non-blank lines of `path`, without their line ending."""
    with open(path, "rb") as fh:
        for raw in fh:
            line = raw.rstrip(b"\r\n")
            if line.strip():
                yield line


@dataclasses.dataclass
class _Prepared:
    read_paths: list[str]            # files handed to read_json
    original_of: dict[str, str]      # temporary file -> event file it came from
    discards: list[tuple]            # (source_file, message_id, value, reason)
    webhooks_transformed: int = 0
    webhooks_skipped: int = 0


def _rewrite_file(src: Path, out_dir: Path, source: str, prep: _Prepared,
                  transform: Callable[[str, dict], list[dict]]) -> None:
    """Write `src` as clean NDJSON: webhooks transformed, invalid lines to discards, others as-is."""
    # Same source=/date= layout as the event files, so the source is read from the path alike.
    folder = out_dir / f"source={source}" / "date=x"
    folder.mkdir(parents=True, exist_ok=True)
    out = folder / f"{len(prep.original_of):06d}.jsonl"
    with open(out, "wb") as dst:
        for line in _lines(src):
            obj, reason = _classify_line(line)
            if obj is None:
                prep.discards.append((str(src), None, line.decode("utf-8", "replace"), reason))
                continue
            if obj.get("type") != "webhook":
                dst.write(orjson.dumps(obj) + b"\n")  # as orjson read it, so read_json reads it alike
                continue
            try:
                messages = transform(source, obj)
            except Exception as exc:  # noqa: BLE001 - any failure of a transform is data, kept in _discards
                prep.discards.append((str(src), obj.get("messageId"), obj.get("body") or line.decode(),
                                      f"webhook transform failed: {type(exc).__name__}: {exc}"))
                continue
            if not messages:
                prep.webhooks_skipped += 1
            prep.webhooks_transformed += bool(messages)
            for m in messages:
                dst.write(orjson.dumps(m) + b"\n")
    prep.original_of[str(out)] = str(src)
    prep.read_paths.append(str(out))


_READ_OPTIONS = "format='newline_delimited', records=true, hive_partitioning=false"
# Infer over every value (sample_size=-1) so that a key seen only once still becomes a column.
_INFER_OPTIONS = "sample_size=-1, field_appearance_threshold=0, map_inference_threshold=-1"
# The top-level message fields the loader stores (Segment's common and per-type fields), read as
# text; other top-level keys are not loaded, as in Segment's warehouses.
MESSAGE_FIELDS = ("type", "messageId", "event", "anonymousId", "userId", "timestamp", "receivedAt", "sentAt",
                  "originalTimestamp", "name", "category", "groupId", "previousId")
# The objects flattened into columns: read as JSON text, typed once their schema is known.
BAGS = ("properties", "traits", "context")
_NULL_TYPES = ('"NULL"', "NULL")
# A type as a tree: ("struct", ((key, tree), ...)), ("list", tree) or ("scalar", "BIGINT").
TypeTree = tuple


def _type_tree(t: duckdb.typing.DuckDBPyType) -> TypeTree:
    if t.id == "struct":
        return ("struct", tuple((k, _type_tree(c)) for k, c in t.children))
    if t.id == "list":
        return ("list", _type_tree(t.child))
    return ("scalar", str(t))


def _json_kind(tree: TypeTree) -> str:
    """The JSON value kind a DuckDB type was inferred from (string, number, bool, null, json, ...)."""
    if tree[0] != "scalar":
        return tree[0]
    t = _norm_type(tree[1])
    if t in _NULL_TYPES:
        return "null"
    if t in _NUMERIC or t in ("DOUBLE", "FLOAT") or t.startswith("DECIMAL"):
        return "number"
    if t in ("VARCHAR", "UUID") or t in _TEMPORAL or t.startswith(("TIMESTAMP", "TIME")):
        return "string"
    return {"BOOLEAN": "bool", "JSON": "json"}.get(t, t)


def transform_structure(tree: TypeTree) -> Any:
    """The json_transform structure the stage types an inferred type with: strings (dates, uuids...)
    stay text, keys never seen with a value, empty objects and lists stay JSON.

    Inference also accepts dates such as 11-20-2026 that a cast refuses: keeping text lets the
    flattening cast them and keep as text what does not fit.
    """
    kind = _json_kind(tree)
    if kind == "struct":
        return {k: transform_structure(c) for k, c in tree[1]} if tree[1] else "JSON"
    if kind == "list":  # stored as JSON text as sent: typed, its objects would lose keys differing in case
        return "JSON"
    if kind == "null":
        return "JSON"
    if kind == "string":
        return "VARCHAR"
    return tree[1]


def _structure_tree(structure: Any) -> TypeTree:
    """A json_group_structure result as a type tree. Keys differing only in case become one field
    named as first seen, as in read_json's structs (a struct cannot hold both); kinds that differ
    between them make it JSON."""
    if isinstance(structure, dict):
        fields: dict[str, tuple[str, TypeTree]] = {}
        for key, child in structure.items():
            tree, seen = _structure_tree(child), fields.get(key.lower())
            fields[key.lower()] = (key, tree) if seen is None else \
                (seen[0], seen[1] if seen[1] == tree else ("scalar", "JSON"))
        return ("struct", tuple(fields.values()))
    if isinstance(structure, list):
        return ("list", _structure_tree(structure[0]) if structure else ("scalar", "JSON"))
    return ("scalar", structure)


def inferred_scalars(tree: TypeTree, path: tuple[str, ...] = ()) -> dict[tuple[str, ...], str]:
    """{path of every scalar leaf of a struct: its inferred type} (e.g. a date read as text)."""
    if tree[0] == "struct":
        out: dict[tuple[str, ...], str] = {}
        for key, child in tree[1]:
            out.update(inferred_scalars(child, (*path, key)))
        return out
    return {path: tree[1]} if tree[0] == "scalar" else {}


def _describe_file(con: duckdb.DuckDBPyConnection, path: str) -> dict[str, TypeTree]:
    """{column: the type read_json infers over all its values} of an NDJSON file of objects."""
    return {name: _type_tree(con.type(typ)) for name, typ, *_ in con.execute(
        f"DESCRIBE SELECT * FROM read_json({lit(path)}, {_READ_OPTIONS}, {_INFER_OPTIONS}, "
        "ignore_errors=true)").fetchall()}


def _describe_values(con: duckdb.DuckDBPyConnection, path: str) -> TypeTree:
    """The type read_json infers over every value of an NDJSON file of `{"v": ...}` lines."""
    cur = con.cursor()
    try:
        [(_, typ, *_)] = cur.execute(f"DESCRIBE SELECT v FROM read_json({lit(path)}, {_READ_OPTIONS}, "
                                     f"{_INFER_OPTIONS}, ignore_errors=true)").fetchall()
        return _type_tree(cur.type(typ))
    finally:
        cur.close()


def _stage_select(paths: list[str], ignore_errors: bool, original_of: dict[str, str] | None = None) -> str:
    """read_json of `paths`: message fields as text, bags as JSON, and the routing fields `_k_*`
    (messageId, type, event, source, why the message is invalid, parsed standard timestamps).
    `original_of`: the event file each of `paths` was written from, stored as their `_file`."""
    files = "[" + ", ".join(lit(p) for p in paths) + "]"
    spec = "{" + ", ".join([f"{lit(f)}: 'VARCHAR'" for f in MESSAGE_FIELDS] + [f"{lit(b)}: 'JSON'" for b in BAGS]) + "}"
    # The standard timestamps, parsed once here: every table they go to stores this value.
    stamps = "".join(f", TRY_CAST({q(f)} AS {STAMP_TYPE}) AS {stamp_column(c)}" for f, c in TIMESTAMP_FIELDS.items())
    # RudderStack's JavaScript SDK sends identify traits in context.traits only: they are the
    # identify's traits too (those sent as `traits` win a key both hold).
    traits = """CASE WHEN "type" = 'identify' AND json_type("context", '$.traits') = 'OBJECT'
                 THEN CASE WHEN "traits" IS NULL THEN json_extract("context", '$.traits')
                           ELSE json_merge_patch(json_extract("context", '$.traits'), "traits") END
                 ELSE "traits" END AS traits"""
    replaced = traits
    if original_of:  # the source is still read from the path read (same source=/date= layout)
        replaced += (", CASE _file " + " ".join(f"WHEN {lit(p)} THEN {lit(original_of[p])}" for p in paths)
                     + " END AS _file")
    return f"""SELECT * REPLACE ({replaced}){stamps}, "messageId" AS _k_message_id, "type" AS _k_type, "event" AS _k_event_text,
        regexp_extract(_file, 'source=([^/]+)/date=', 1) AS _k_source,
        {_invalid_reason_sql('"messageId"', '"type"', '"event"')} AS _k_invalid
        FROM read_json({files}, {_READ_OPTIONS}, columns={spec}, filename='_file',
                       ignore_errors={'true' if ignore_errors else 'false'})"""


def _invalid_reason_sql(mid: str, typ: str, event: str) -> str:
    """SQL of why a message (its messageId, type and event as text) cannot be loaded; NULL if it can."""
    valid_types = ", ".join(lit(t) for t in TYPE_TABLES)
    return f"""CASE WHEN {mid} IS NULL OR {mid} = '' THEN 'message has no messageId'
             WHEN {typ} = 'webhook' THEN 'webhook envelope in an event-source file'
             WHEN {typ} IS NULL OR {typ} NOT IN ({valid_types}) THEN 'unknown message type'
             WHEN {typ} = 'track' AND ({event} IS NULL OR trim({event}) = '') THEN 'track without event'
        END"""


def _read_event_files(con: duckdb.DuckDBPyConnection, paths: list[str]) -> None:
    """Create `_stage` from the event files (runs while Python transforms the webhook files)."""
    if paths:
        con.execute(f"CREATE OR REPLACE TEMP TABLE _stage AS {_stage_select(paths, True)}")


# --------------------------------------------------------------------------- the load

def load_days(con: duckdb.DuckDBPyConnection, events_root: Path, days: Iterable[str],
              transform: Callable[[str, dict], list[dict]] = transforms.transform_webhook,
              now: dt.datetime | None = None) -> list[LoadReport]:
    """Load several received dates in order, as `load_partition` day by day does, with `users`
    rebuilt once, with the last day, instead of after every day (it is derived from all of
    `identifies`, so the tables end up the same). Returns one `LoadReport` per day, in order.

    Each day is still its own transaction: should a day fail, the days before it stay loaded and
    `users` is rebuilt by the next load. What the days before committed of the `events` schema is
    handed to the next day (`_Catalog`), so that a day does not ask the catalog again.
    """
    days = sorted(days)
    for day in days:
        dt.date.fromisoformat(day)
    # What a day learns of the `events` schema is handed to the next day (a catalog query costs
    # milliseconds, and most days change nothing); which days were loaded before is asked once.
    catalog = _Catalog(loaded_days=_loaded_days(con))
    threads = int(con.execute("SELECT current_setting('threads')").fetchone()[0])
    catalog.threads = catalog.max_threads = threads
    try:
        return [load_partition(con, events_root, day, transform, now, rebuild_users=i == len(days) - 1,
                               _catalog=catalog)
                for i, day in enumerate(days)]
    finally:
        if catalog.threads != threads:  # the database's own setting again
            con.execute(f"SET threads = {threads}")


def _loaded_days(con: duckdb.DuckDBPyConnection) -> set[dt.date] | None:
    """The days with rows in the ledger or in _discards: none when neither table exists, None (each day
    asks for itself) when only one does (e.g. _discards was dropped to clear it)."""
    present = {LEDGER, DISCARDS} & set(events_tables(con))
    if not present:
        return set()
    if len(present) == 1:
        return None
    return {d for (d,) in con.execute(f"SELECT partition_date FROM {SCHEMA}.{LEDGER} UNION "
                                      f"SELECT partition_date FROM {SCHEMA}.{DISCARDS}").fetchall()}


@dataclasses.dataclass
class _Catalog:
    """What `load_days` knows of the `events` schema between its days, as the last day committed it.

    `columns` is `schema_columns()` (None: read it from the catalog); `system_tables`: the schema,
    `_discards` and the ledger exist. Only committed days update it, and a day that creates or
    alters a table sets `columns` back to None (the next day reads the catalog again).
    `loaded_days`: the days loaded before the run (None: ask); a day loaded by the run is asked
    again (`loaded_now`). `configured`: the connection's settings are made.
    """

    columns: dict[str, dict[str, str]] | None = None
    system_tables: bool = False
    loaded_days: set[dt.date] | None = None
    loaded_now: set[dt.date] = dataclasses.field(default_factory=set)
    configured: bool = False
    threads: int | None = None  # DuckDB threads now (None: not managed, see SMALL_DAY_BYTES)
    max_threads: int | None = None  # the database's setting, given back to large days and at the end

    def loaded_before(self, day: str) -> bool | None:
        """Whether `day` has rows from an earlier load (None: not known, to be asked)."""
        date = dt.date.fromisoformat(day)
        if self.loaded_days is None or date in self.loaded_now:
            return None
        return date in self.loaded_days


def load_partition(con: duckdb.DuckDBPyConnection, events_root: Path, day: str,
                   transform: Callable[[str, dict], list[dict]] = transforms.transform_webhook,
                   now: dt.datetime | None = None, rebuild_users: bool = True,
                   _catalog: _Catalog | None = None) -> LoadReport:
    """Load the closed event files received on `day` (YYYY-MM-DD) under `events_root` into `events.*`.

    Idempotent: the day's earlier load is replaced, in one transaction. Returns a `LoadReport`.
    Raises ValueError for a malformed `day`; data problems never raise, they go to `_discards`.
    `transform` runs while `con` reads the event files in another thread: it must not use `con`.
    `rebuild_users=False` leaves `users` as it was (`load_days` rebuilds it after its last day).
    `_catalog` (from `load_days` only) is what the days before learnt of the schema; it is updated.
    """
    catalog = _catalog or _Catalog()
    dt.date.fromisoformat(day)
    uuid_ts = (now or dt.datetime.now(dt.timezone.utc)).isoformat()
    files = eventfiles.closed_files(Path(events_root), day)
    report = LoadReport(day=day, files=len(files))
    if catalog.threads is not None:
        # A small day is many statements over a few hundred rows each: one thread runs them faster
        # than several (no work to share, only the hand-overs); a large day gets the threads back.
        small = sum(f.stat().st_size for f in files) < SMALL_DAY_BYTES
        wanted = 1 if small else catalog.max_threads
        if wanted != catalog.threads:
            con.execute(f"SET threads = {wanted}")
            catalog.threads = wanted
    tmp = Path(tempfile.mkdtemp(prefix=f"gs_load_{day}_"))
    if not catalog.configured:
        con.execute("SET TimeZone = 'UTC'")
        # Row order inside a table carries no meaning here; dropping it lets DuckDB insert in parallel.
        con.execute("SET preserve_insertion_order = false")
        catalog.configured = True
    t0 = time.perf_counter()
    try:
        # Reading and transforming touch only temp tables: done before the write transaction, whose
        # first failing statement would otherwise abort it.
        prep = _Prepared(read_paths=[], original_of={}, discards=[])
        with ThreadPoolExecutor(2) as pool:
            webhook_files = [f for f in files if _first_line_is_webhook(f)]
            event_files = [str(f) for f in files if f not in webhook_files and f.stat().st_size > 0]
            reading = pool.submit(_read_event_files, con, event_files)  # DuckDB reads while Python does webhooks
            try:
                for f in webhook_files:
                    parsed = eventfiles.parse_closed_path(f)
                    _rewrite_file(f, tmp, parsed[0] if parsed else "unknown", prep, transform)
            finally:
                wait([reading])
            report.webhooks_transformed = prep.webhooks_transformed
            report.webhooks_skipped = prep.webhooks_skipped
            t = report.lap("webhooks", t0)
            staged = _stage(con, prep, tmp, transform, event_files, reading, day, report, catalog)
        t = report.lap("read", t)
        con.execute("BEGIN TRANSACTION")
        try:
            if not catalog.system_tables:
                ensure_system_tables(con)
            _delete_partition(con, day, catalog.loaded_before(day))
            discarded = len(prep.discards)  # the rows the day put in _discards (its earlier load deleted)
            _insert_discards(con, day, uuid_ts, [(sf, mid, None, None, v, r) for sf, mid, v, r in prep.discards])
            columns = None
            if staged is not None:
                n, columns = _load_stage(con, day, uuid_ts, report, staged, catalog.columns)
                discarded += n
            t = report.lap("write", t)
            if rebuild_users:
                _rebuild_users(con, report)
                t = report.lap("users", t)
            if discarded:  # no query when the day discarded nothing
                for name, n in con.execute(f"SELECT reason, count(*) FROM {SCHEMA}.{DISCARDS} "
                                           "WHERE partition_date = ? GROUP BY 1", [day]).fetchall():
                    key = name.split(":")[0]
                    report.discards_by_reason[key] = report.discards_by_reason.get(key, 0) + n
            report.discards = sum(report.discards_by_reason.values())
            con.execute("COMMIT")
            report.lap("commit", t)
        except BaseException:
            con.execute("ROLLBACK")
            raise
        catalog.system_tables = True
        catalog.loaded_now.add(dt.date.fromisoformat(day))
        if staged is not None:
            catalog.columns = columns  # None when the day created or altered a table
    finally:
        con.execute(f"DROP TABLE IF EXISTS _stage; DROP TABLE IF EXISTS _evt; DROP TABLE IF EXISTS {VALUES}")
        shutil.rmtree(tmp, ignore_errors=True)
    return report


def _delete_partition(con: duckdb.DuckDBPyConnection, day: str, loaded_before: bool | None = None) -> None:
    """Delete the rows of the day's earlier load, if any (`loaded_before`: known, else asked)."""
    if loaded_before is False:
        return
    ids = f"(SELECT message_id FROM {SCHEMA}.{LEDGER} WHERE partition_date = DATE {lit(day)})"
    if loaded_before is None:
        loaded_before = con.execute(f"SELECT (SELECT count(*) FROM {ids}) + (SELECT count(*) FROM "
                                    f"{SCHEMA}.{DISCARDS} WHERE partition_date = ?)", [day]).fetchone()[0] > 0
    if not loaded_before:  # a first load of the day: nothing to delete in any table
        return
    for table in events_tables(con):
        if table in (DISCARDS, LEDGER, "users"):
            continue
        con.execute(f"DELETE FROM {SCHEMA}.{q(table)} WHERE id IN {ids}")
    con.execute(f"DELETE FROM {SCHEMA}.{DISCARDS} WHERE partition_date = ?", [day])
    con.execute(f"DELETE FROM {SCHEMA}.{LEDGER} WHERE partition_date = ?", [day])


def _insert_discards(con: duckdb.DuckDBPyConnection, day: str, uuid_ts: str, rows: list[tuple]) -> None:
    """rows: (source_file, message_id, table, column, value, reason)."""
    if not rows:
        return
    con.executemany(
        f"INSERT INTO {SCHEMA}.{DISCARDS} VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [(day, (eventfiles.parse_closed_path(sf) or ("unknown",))[0], sf, mid, table, column, value, reason,
          uuid_ts) for sf, mid, table, column, value, reason in rows])


def _stage(con: duckdb.DuckDBPyConnection, prep: _Prepared, tmp: Path,
           transform: Callable[[str, dict], list[dict]], event_files: list[str], reading: Future,
           day: str, report: LoadReport, catalog: _Catalog) -> _Bags | None:
    """Fill the temp table `_stage` (one row per message, plus routing columns `_k_*`, bags as JSON).

    `reading` is `_read_event_files(event_files)`, started before the webhooks were transformed.
    Messages that cannot be loaded go to `prep.discards` with their exact line, duplicates are
    marked. Returns the bags' schemas; None when there is nothing to read.
    """
    exists = bool(event_files)
    try:
        reading.result()
    except duckdb.Error:  # read_json refused the files outright: clean them all in Python
        con.execute("DROP TABLE IF EXISTS _stage")
        exists = False
        for p in event_files:
            parsed = eventfiles.parse_closed_path(p)
            _rewrite_file(Path(p), tmp, parsed[0] if parsed else "unknown", prep, transform)
    read = 0  # files of prep.read_paths already in the stage
    per_file: list[tuple] = []
    while True:
        # Files written in Python (transformed webhooks, cleaned files) hold one JSON object per line.
        clean = [p for p in prep.read_paths[read:] if Path(p).stat().st_size > 0]
        read = len(prep.read_paths)
        if clean:
            verb = "INSERT INTO _stage" if exists else "CREATE OR REPLACE TEMP TABLE _stage AS"
            con.execute(f"{verb} {_stage_select(clean, False, prep.original_of)}")
            exists = True
        if not exists:
            return None
        per_file = _per_file(con)
        # A line read_json cannot read as a message (not JSON, not an object, neither type nor
        # messageId) became an all-NULL row: its file is cleaned in Python, where every line is
        # either kept or discarded with its exact text, and read again (then counted again).
        unreadable = sorted({f for f, *_, blank in per_file if blank and f in event_files})
        if not unreadable:
            break
        con.execute(f"DELETE FROM _stage WHERE _file IN ({', '.join(lit(f) for f in unreadable)})")
        for p in unreadable:
            parsed = eventfiles.parse_closed_path(p)
            _rewrite_file(Path(p), tmp, parsed[0] if parsed else "unknown", prep, transform)
    report.messages_read = sum(n for _, _, n, *_ in per_file)
    repeated = any(r for _, _, _, r, _, _ in per_file)
    kept_invalid = _discard_invalid_messages(con, prep, {(f, why): n for f, why, n, *_ in per_file if why is not None})
    _mark_duplicates(con, day, report, ledger_exists=catalog.system_tables, repeated=repeated)
    bags = _type_bags(con, prep, tmp)
    bags.kept_invalid = kept_invalid
    bags.bad_stamps = any(n for _, _, _, _, n, _ in per_file)
    return bags


def _per_file(con: duckdb.DuckDBPyConnection) -> list[tuple]:
    """(file, why its messages cannot be loaded (NULL: they can), messages, loadable messages
    repeating a messageId, messages whose standard timestamp is no timestamp, all-NULL rows) of the
    stage, by file and reason; the two day counts are the same on every row (one statement)."""
    bad_stamp = " OR ".join(f"({q(f)} IS NOT NULL AND {stamp_column(c)} IS NULL)" for f, c in TIMESTAMP_FIELDS.items())
    return con.execute(f"""WITH d AS (
            SELECT count(*) FILTER (WHERE _k_invalid IS NULL) - count(DISTINCT _k_message_id)
                       FILTER (WHERE _k_invalid IS NULL) AS repeated,
                   count(*) FILTER (WHERE {bad_stamp}) AS bad_stamps FROM _stage)
        SELECT _file, _k_invalid, count(*), any_value(d.repeated), any_value(d.bad_stamps),
               count(*) FILTER (WHERE "type" IS NULL AND "messageId" IS NULL)
        FROM _stage, d GROUP BY _file, _k_invalid""").fetchall()


def _discard_invalid_messages(con: duckdb.DuckDBPyConnection, prep: _Prepared,
                              counts: dict[tuple[str, str], int]) -> bool:
    """Messages that cannot be loaded (no messageId, unknown type, ...) go to _discards as their line.

    `counts`: the stage's {(file, why): messages}. The lines are found again with the same rule on
    the raw JSON (`read_ndjson_objects`) of the file read (for a file written in Python, the one
    written); when a file's count of them differs from the stage's (which it should not), its
    messages stay in the stage and are kept as read instead (`_load_stage`).
    Returns whether any such message stayed in the stage.
    """
    if not counts:
        return False
    files = sorted({f for f, _ in counts})
    written_from = {original: written for written, original in prep.original_of.items()}
    fields = {f: f"json_extract_string(json, {lit('$.' + f)})" for f in ("messageId", "type", "event")}
    found: dict[str, list[tuple]] = {f: [] for f in files}
    for read, line, mid, why in con.execute(f"""SELECT filename, json, mid, why FROM (
            SELECT filename, json, {fields['messageId']} AS mid, {fields['type']} AS typ,
                   {_invalid_reason_sql(fields['messageId'], fields['type'], fields['event'])} AS why
            FROM read_ndjson_objects([{', '.join(lit(written_from.get(f, f)) for f in files)}], filename=true,
                                     ignore_errors=true)
            WHERE json_type(json) = 'OBJECT')
        WHERE why IS NOT NULL AND NOT (mid IS NULL AND typ IS NULL)""").fetchall():
        found[prep.original_of.get(read, read)].append((mid, line, why))
    kept = False
    for f in files:
        lines = found[f]
        if Counter(why for *_, why in lines) != Counter({why: n for (file, why), n in counts.items() if file == f}):
            kept = True
            continue
        prep.discards += [(f, mid, line, why) for mid, line, why in lines]
        con.execute(f"DELETE FROM _stage WHERE _file = {lit(f)} AND _k_invalid IS NOT NULL")
    return kept


def _mark_duplicates(con: duckdb.DuckDBPyConnection, day: str, report: LoadReport,
                     ledger_exists: bool = False, repeated: bool = True) -> None:
    """Mark `_k_invalid = 'duplicate'`: within the day all but the earliest received copy of a
    messageId, and the messages loaded on another day (the ledger, less this day's earlier load).
    `ledger_exists`: known to exist (else the catalog is asked); `repeated`: whether loadable
    messages may share a messageId (else none is looked for within the day)."""
    row_json = _stage_row_json(con.table("_stage").columns)
    keep = "s._k_invalid IS NULL"
    # Each UPDATE returns the rows it marked; few as a rule (cheaper than joining every insert).
    report.duplicates_in_day = 0 if not repeated else con.execute(f"""
        UPDATE _stage SET _k_invalid = {lit(DUPLICATE)} WHERE rowid IN (
        WITH dup AS (SELECT _k_message_id FROM _stage s WHERE {keep} GROUP BY 1 HAVING count(*) > 1),
        ranked AS (
            SELECT s.rowid AS rid, row_number() OVER (PARTITION BY s._k_message_id
                       ORDER BY s."receivedAt" NULLS LAST, s._file, md5({row_json})) AS rn
            FROM _stage s WHERE {keep} AND s._k_message_id IN (SELECT _k_message_id FROM dup))
        SELECT rid FROM ranked WHERE rn > 1)""").fetchone()[0]
    report.duplicates_across_days = 0
    if ledger_exists or LEDGER in events_tables(con):
        # Those just marked are not counted again (`keep`).
        report.duplicates_across_days = con.execute(f"""UPDATE _stage s SET _k_invalid = {lit(DUPLICATE)}
            WHERE {keep} AND s._k_message_id IN (SELECT message_id FROM {SCHEMA}.{LEDGER}
                                                 WHERE partition_date <> DATE {lit(day)})""").fetchone()[0]


@dataclasses.dataclass
class _Bags:
    """What the bags hold: a json_transform structure per bag and the inferred type of each leaf."""

    structures: dict[str, dict]
    inferred: dict[tuple[str, ...], str]
    # per bag: (path, structure, inferred type) of leaves under keys sent in several spellings (read apart)
    spellings: dict[str, list[tuple[tuple[str, ...], Any, str]]] = dataclasses.field(default_factory=dict)
    # whether messages that cannot be loaded stayed in the stage (see _discard_invalid_messages)
    kept_invalid: bool = True
    bad_stamps: bool = True  # whether a message has a standard timestamp that is no timestamp


VALUES = "_values"  # temp table of the distinct bag values: (bag, t = message type, ev = track event, v)


def _values_table(bag: str) -> str:
    """The distinct values of one bag (t, ev, v), as a subquery."""
    return f"(SELECT t, ev, v FROM {VALUES} WHERE bag = {lit(bag)})"


def _type_bags(con: duckdb.DuckDBPyConnection, prep: _Prepared, tmp: Path) -> _Bags:
    """The schema of every bag: each key any valid message sent, typed as read_json would type it.

    The stage keeps the bags as JSON text; a value that is no object goes to _discards. Each bag's
    type is what read_json infers over all its values (sample_size=-1), inferred over its distinct
    values (`_values`, per message type and event): most messages repeat another's properties
    and context, so that is a fraction of the rows. A key with an empty name (which json_transform
    refuses) keeps its values in _discards.
    """
    structures: dict[str, dict] = {}
    inferred: dict[tuple[str, ...], str] = {}
    spellings: dict[str, list[tuple[tuple[str, ...], Any, str]]] = {}
    odd = {b: f"left({q(b)}, 1) <> '{{'" for b in BAGS}  # read_json writes JSON text without blanks
    not_objects: set[str] = set()
    for f, m, *values in con.execute(f"SELECT _file, _k_message_id, {', '.join(q(b) for b in BAGS)} FROM _stage "
                                     f"WHERE {' OR '.join(odd.values())}").fetchall():
        for b, v in zip(BAGS, values):
            if v is not None and not v.startswith("{"):
                prep.discards.append((f, m, v, f"{b} is not a JSON object"))
                not_objects.add(b)
    for b in BAGS:
        if b in not_objects:
            con.execute(f"UPDATE _stage SET {q(b)} = NULL WHERE {odd[b]}")
    values = con.execute(f"CREATE OR REPLACE TEMP TABLE {VALUES} AS " + " UNION ALL ".join(
        f"""SELECT DISTINCT {lit(b)} AS bag, _k_type AS t, CASE WHEN _k_type = 'track' THEN _k_event_text END AS ev,
                   {q(b)} AS v FROM _stage WHERE _k_invalid IS NULL AND {q(b)} IS NOT NULL""" for b in BAGS)).fetchone()[0]
    no_value: TypeTree = ("scalar", '"NULL"')
    trees: dict[str, TypeTree | None] = dict.fromkeys(BAGS, no_value)
    alone: set[str] = set()  # bags described from a file of their own
    if values >= SEPARATE_VALUES:
        # Many values: a file per bag, each read by read_json in a thread while the next is written.
        with ThreadPoolExecutor(len(BAGS)) as pool:
            described: dict[str, Future] = {}
            for b in BAGS:
                bag_path = tmp / f"{b}.values.jsonl"
                if con.execute(f"COPY (SELECT DISTINCT v FROM {_values_table(b)} ORDER BY v) TO "
                               f"{lit(str(bag_path))} (FORMAT json)").fetchone()[0]:
                    described[b] = pool.submit(_describe_values, con, str(bag_path))
            trees.update({b: future.result() for b, future in described.items()})
            alone = set(BAGS)
    elif values:
        # One file for every bag, a line per distinct value of a bag: {"<bag>": value, <other bags>:
        # null}. read_json types each bag's column over that bag's values only (a null adds no type),
        # as a file per bag would, in one pass (few values: the statements are most of the time).
        path = tmp / "values.jsonl"
        columns = ", ".join(f"CASE WHEN bag = {lit(b)} THEN v END AS {q(b)}" for b in BAGS)
        con.execute(f"COPY (SELECT {columns} FROM (SELECT DISTINCT bag, v FROM {VALUES}) ORDER BY bag, v) "
                    f"TO {lit(str(path))} (FORMAT json)")
        found = _describe_file(con, str(path))
        # Should read_json give up on the lines as objects, each bag is described on its own.
        trees = found if set(found) == set(BAGS) else dict.fromkeys(BAGS)
    shapes: dict[str, tuple[TypeTree, Any]] = {}  # bag: (type tree, json_transform structure)
    for b in BAGS:
        tree = trees[b]
        if tree == no_value:
            continue  # the bag holds no value
        if b not in alone and (tree is None or tree[0] != "struct"):
            # read_json gave up on the file or on this bag in it: the bag is described on its own.
            bag_path = tmp / f"{b}.values.jsonl"
            if not con.execute(f"COPY (SELECT DISTINCT v FROM {_values_table(b)} ORDER BY v) TO "
                               f"{lit(str(bag_path))} (FORMAT json)").fetchone()[0]:
                continue  # the bag holds no value
            tree = _describe_values(con, str(bag_path))
        if tree[0] != "struct":
            # read_json gives up on objects it cannot make a struct of (a key with an empty name):
            # json_group_structure still describes them (rare path).
            tree = _structure_tree(json.loads(con.execute(
                f"SELECT json_group_structure(v) FROM {_values_table(b)}").fetchone()[0]))
        shapes[b] = (tree, transform_structure(tree))
    # The keys of every object of every bag, listed in one query (see _split_case_variants).
    objects = {b: [at for at, _ in _struct_nodes(structure)] for b, (_, structure) in shapes.items()
               if isinstance(structure, dict) and structure}
    keys_of = _object_keys(con, objects) if objects else {}
    for b, (tree, structure) in shapes.items():
        units: list[tuple[tuple[str, ...], Any, TypeTree]] = []
        if isinstance(structure, dict) and structure:
            structure, units = _split_case_variants(con, b, structure, tmp / f"{b}.spellings.jsonl", keys_of[b])
        structure, empty_named = _without_empty_keys(structure)
        for spelled, unit, unit_tree in units:
            unit, more = _without_empty_keys(unit, json_pointer(spelled))
            empty_named += more
            for path, leaf_structure in _structure_paths(unit):
                spellings.setdefault(b, []).append(
                    ((*spelled, *path), leaf_structure, inferred_scalars(unit_tree).get(path, "")))
        for pointer in empty_named:  # json_transform refuses a key "": keep those values as discards
            for f, m, v in con.execute(f"SELECT _file, _k_message_id, CAST({q(b)} -> {lit(pointer)} AS VARCHAR) "
                                       f"FROM _stage WHERE ({q(b)} -> {lit(pointer)}) IS NOT NULL").fetchall():
                prep.discards.append((f, m, v, f"{b} key with an empty name (at JSON pointer {pointer})"))
        if isinstance(structure, dict) and (structure or b in spellings):
            structures[b] = structure
            inferred.update({(b, *path): t for path, t in inferred_scalars(tree).items()})
    return _Bags(structures, inferred, spellings)


def _structure_paths(structure: Any, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    """(path, structure) of every leaf of a json_transform structure (objects descended)."""
    if isinstance(structure, dict):
        return [leaf for key, child in structure.items() for leaf in _structure_paths(child, (*path, key))]
    return [(path, structure)]


def _object_keys(con: duckdb.DuckDBPyConnection,
                 objects_of: dict[str, list[tuple[str, ...]]]) -> dict[str, dict[int, set[str]]]:
    """{bag: {i: the keys its distinct values hold in the object at its i-th path}}, in one query."""
    parts = []
    for bag, paths in objects_of.items():
        pointers = "[" + ", ".join(lit(json_pointer(at)) for at in paths) + "]"
        parts.append(f"""SELECT DISTINCT {lit(bag)}, unnest(flatten(list_transform(json_keys(v, {pointers}),
                lambda ks, i: list_transform(coalesce(ks, []), lambda k: {{'at': i, 'k': k}}))))
            FROM {_values_table(bag)}""")
    out: dict[str, dict[int, set[str]]] = {bag: {} for bag in objects_of}
    for bag, row in con.execute(" UNION ALL ".join(parts)).fetchall():
        out[bag].setdefault(row["at"] - 1, set()).add(row["k"])
    return out


def _split_case_variants(con: duckdb.DuckDBPyConnection, bag: str, structure: dict, path: Path,
                         first_keys: dict[int, set[str]] | None = None
                         ) -> tuple[dict, list[tuple[tuple[str, ...], Any, TypeTree]]]:
    """The bag's structure without keys that differ only in case, and those keys read apart.

    read_json merges keys that differ only in case (`Plan`, `plan`) into one struct field named as
    first seen, types it from the values it happened to read, and json_transform then reads only
    that spelling (duckdb/duckdb#23143). So the keys of every object of the bag's distinct values
    are listed; each spelling of a key sent in more than one spelling is removed from the struct and
    becomes a unit of its own: (spelled path, json_transform structure, type tree) inferred by
    read_json over that spelling's values alone (its own objects are split alike, level by level).
    `first_keys`: the keys at the structure's objects (`_struct_nodes` order), when already listed.
    """
    units: list[tuple[tuple[str, ...], Any, TypeTree]] = []
    pending: list[tuple[tuple[str, ...], dict]] = [((), structure)]  # objects whose keys to list
    while pending:
        objects = [((*spelled, *rel), node) for spelled, unit in pending for rel, node in _struct_nodes(unit)]
        if first_keys is not None:
            keys, first_keys = first_keys, None
        else:
            keys = _object_keys(con, {bag: [at for at, _ in objects]})[bag]
        conflicts: list[tuple[tuple[str, ...], dict, str, set[str]]] = []
        for i, found in sorted(keys.items()):
            at, node = objects[i]
            by_name: dict[str, set[str]] = {}
            for key in found - {""}:  # a key with an empty name is kept in _discards
                by_name.setdefault(key.lower(), set()).add(key)
            conflicts += [(at, node, lower, spellings) for lower, spellings in by_name.items() if len(spellings) > 1]
        # Under a key split in this round, the merged object is gone: its own keys are listed next round.
        gone = {tuple(k.lower() for k in (*at, lower)) for at, _, lower, _ in conflicts}
        split: list[tuple[str, ...]] = []
        for at, node, lower, spellings in conflicts:
            if any(tuple(k.lower() for k in at[:n]) in gone for n in range(1, len(at) + 1)):
                continue
            for field in [f for f in node if f.lower() == lower]:
                del node[field]
            split += [(*at, key) for key in sorted(spellings)]
        if not split:
            break
        pending = []
        for spelled, tree in zip(split, _describe_units(con, bag, split, path)):
            unit = transform_structure(tree)
            units.append((spelled, unit, tree))
            if isinstance(unit, dict):
                pending.append((spelled, unit))
    _prune(structure)
    return structure, [(s, u, t) for s, u, t in units if not isinstance(u, dict) or _prune(u)]


def _struct_nodes(structure: dict, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], dict]]:
    """(path, object) of every object in a json_transform structure, the root first ("" keys skipped)."""
    out = [(path, structure)]
    for key, child in structure.items():
        if isinstance(child, dict) and key != "":
            out += _struct_nodes(child, (*path, key))
    return out


def _prune(structure: dict) -> bool:
    """Remove the objects left empty by removing split keys; whether anything is left."""
    for key in [k for k, c in structure.items() if isinstance(c, dict) and not _prune(c)]:
        del structure[key]
    return bool(structure)


def _describe_units(con: duckdb.DuckDBPyConnection, bag: str, spelled: list[tuple[str, ...]],
                    path: Path) -> list[TypeTree]:
    """The type read_json infers over the values of each key path (exact spelling) of the bag."""
    fields = ", ".join(f"{lit(str(i))}: json_extract(v, {lit(json_pointer(p))})" for i, p in enumerate(spelled))
    con.execute(f"COPY (SELECT {{{fields}}} AS v FROM {_values_table(bag)}) TO {lit(str(path))} (FORMAT json)")
    tree = _describe_values(con, str(path))
    if tree[0] != "struct":  # a key with an empty name inside: see _type_bags
        tree = _structure_tree(json.loads(con.execute(
            f"SELECT json_group_structure(v) FROM read_json({lit(str(path))}, columns={{'v': 'JSON'}})").fetchone()[0]))
    fields_of = dict(tree[1])
    return [fields_of.get(str(i), ("scalar", '"NULL"')) for i in range(len(spelled))]


def _without_empty_keys(structure: Any, pointer: str = "") -> tuple[Any, list[str]]:
    """A json_structure without keys named "" (JSON pointers of those removed); a list holding one is JSON."""
    pointer = "" if pointer == "$" else pointer
    if isinstance(structure, dict):
        out, removed = {}, []
        for key, child in structure.items():
            at = pointer + "/" + key.replace("~", "~0").replace("/", "~1")
            if key == "":
                removed.append(at)
                continue
            kept, more = _without_empty_keys(child, at)
            removed += more
            if kept != {}:  # an object that held only "" keys: its values are all in the discards
                out[key] = kept
        return out, removed
    if isinstance(structure, list) and structure and _without_empty_keys(structure[0])[1]:
        return "JSON", []  # lists are stored as JSON text anyway: kept whole
    return structure, []


def stamp_column(column: str) -> str:
    """Stage column holding a standard timestamp (e.g. `received_at`) already parsed."""
    return f"_k_ts_{column}"


def _stage_row_json(stage_columns: list[str]) -> str:
    """SQL of a stage row as JSON text, as read (routing columns left out)."""
    fields = ", ".join(f"{lit(c)}: s.{q(c)}" for c in stage_columns if not c.startswith("_k_"))
    return f"CAST(to_json({{{fields}}}) AS VARCHAR)"


def _load_stage(con: duckdb.DuckDBPyConnection, day: str, uuid_ts: str, report: LoadReport, bags: _Bags,
                known_columns: dict[str, dict[str, str]] | None = None) -> tuple[int, dict[str, dict[str, str]] | None]:
    """Insert the stage into the ledger and every table it goes to, and its values that cannot be
    stored into _discards. `known_columns`: `schema_columns()` when the caller knows it (else read).
    Returns the rows put in _discards, and `schema_columns()` after the load (None if a table was
    created or altered: then it is to be read again)."""
    rel = con.table("_stage")
    stage_types = {n: str(t) for n, t in zip(rel.columns, rel.dtypes)}
    row_json = _stage_row_json(rel.columns)
    keep = "s._k_invalid IS NULL"
    discarded = 0

    # 1. messages that cannot be loaded and were not found again as lines (see _discard_invalid_messages)
    if bags.kept_invalid:
        discarded += con.execute(f"""INSERT INTO {SCHEMA}.{DISCARDS}
            SELECT DATE {lit(day)}, s._k_source, s._file, s._k_message_id, NULL, NULL, {row_json},
                   s._k_invalid, TIMESTAMPTZ {lit(uuid_ts)}
            FROM _stage s WHERE s._k_invalid IS NOT NULL AND s._k_invalid <> {lit(DUPLICATE)}""").fetchone()[0]

    # 2. the ledger of loaded messageIds (duplicates were marked by _mark_duplicates)
    con.execute(f"""INSERT INTO {SCHEMA}.{LEDGER}
        SELECT s._k_message_id, DATE {lit(day)}, s._k_source, s._k_type FROM _stage s WHERE {keep}""")

    # 3. which bag leaves hold values, per message type and event (over the distinct bag values)
    all_leaves = [(b, leaf) for b in BAGS if b in bags.structures
                  for leaf in structure_leaves(f"s.{q(b)}", bags.structures[b])]
    for b, leaf in all_leaves:
        leaf.inferred = bags.inferred.get((b, *leaf.path), "")
    all_leaves += [(b, spelled_leaf(b, *spelling)) for b in BAGS for spelling in bags.spellings.get(b, [])]
    # Dates read as text: inference also knew non-ISO forms (11-20-2026) that a cast refuses; such a
    # leaf is typed as text, as if it had been a plain string, so that none of its values is refused.
    dated = {i for i, (_, leaf) in enumerate(all_leaves) if leaf.inferred
             and _json_kind(("scalar", leaf.inferred)) == "string"
             and _norm_type(leaf.inferred) not in ("VARCHAR", "UUID") and _norm_type(leaf.src_type) == "VARCHAR"}
    # One statement for every bag, and the (type, event) groups of the day's messages (bag NULL):
    # per group and bag, how many values each leaf holds (then how many dated ones a cast refuses).
    parts = [f"""SELECT NULL AS bag, s._k_type AS t, CASE WHEN s._k_type = 'track' THEN s._k_event_text END AS ev,
                 CAST(NULL AS BIGINT[]) AS n FROM _stage s WHERE {keep} GROUP BY ALL"""]
    counted: dict[str, list[tuple[int, bool]]] = {}  # per bag: (leaf, refused?) of each count, in order
    for b, structure in bags.structures.items():
        part, counted[b] = _leaf_counts(b, structure, all_leaves, dated)
        parts.append(part)
    found_by_bag = con.execute(" UNION ALL ".join(parts)).fetchall()
    groups = [(t, ev) for b, t, ev, _ in found_by_bag if b is None]
    present: dict[tuple, set[int]] = {g: set() for g in groups}
    for b, t, ev, found in found_by_bag:
        if b is None:
            continue
        if len(found) != len(counted[b]):  # a bug, never the data: stop before loading anything wrong
            raise RuntimeError(f"{len(found)} counts for the {len(counted[b])} leaves of {b}")
        for (i, refused), n in zip(counted[b], found):
            if n and refused:  # a dated leaf with a value its cast refuses: typed as text
                all_leaves[i][1].inferred = "VARCHAR"
            elif n:
                present.setdefault((t, ev), set()).add(i)
    event_texts = sorted({ev for t, ev in groups if t == "track"})
    if event_texts:  # one statement (executemany would run one per row)
        rows = ", ".join(f"({lit(e)}, {lit(snake_case(e))}, {lit(event_table_name(e))})" for e in event_texts)
        con.execute("CREATE OR REPLACE TEMP TABLE _evt AS "
                    f"SELECT * FROM (VALUES {rows}) v(event_text, event, event_table)")
    else:
        con.execute("CREATE OR REPLACE TEMP TABLE _evt (event_text VARCHAR, event VARCHAR, event_table VARCHAR)")

    targets: dict[str, dict[str, Any]] = {}
    for mtype, event_text in groups:
        etable = event_table_name(event_text) if mtype == "track" else None
        for table, bag in ((TYPE_TABLES[mtype], BAG_OF_TABLE.get(TYPE_TABLES[mtype])),
                           (etable, "properties") if etable else (None, None)):
            if table is None:
                continue
            t = targets.setdefault(table, {"type": mtype, "is_event": table == etable, "leaves": set(),
                                           "bag": bag, "event_texts": set(), "stamped": set()})
            if table == etable:
                t["event_texts"].add(event_text)
            for i in present[(mtype, event_text)]:
                b, _ = all_leaves[i]
                if b == "context" or b == bag:
                    t["leaves"].add(i)
    columns_of = schema_columns(con) if known_columns is None else known_columns
    changed = any(table not in columns_of for table in targets)  # tables created now
    checks_of: dict[str, _Checks] = {}  # the values that cannot be stored, found in one statement
    for table in sorted(targets):
        spec = targets[table]
        n, checks_of[table] = _insert_table(con, day, uuid_ts, table, spec,
                                            [all_leaves[i] for i in sorted(spec["leaves"])],
                                            stage_types, bags.structures, report, columns_of.get(table, {}))
        report.rows_per_table[table] = report.rows_per_table.get(table, 0) + n
    # Standard timestamps that are no timestamp (parsed once in the stage), per table storing them.
    for f, col in TIMESTAMP_FIELDS.items():
        if f in stage_types and bags.bad_stamps:
            for table, spec in targets.items():
                if col in spec["stamped"]:
                    checks_of[table].checks.append((col, f"s.{q(f)} IS NOT NULL AND s.{stamp_column(col)} IS NULL",
                                                    f"CAST(to_json(s.{q(f)}) AS VARCHAR)",
                                                    f"value does not fit column type {STAMP_TYPE}"))
    for batch in _check_batches(checks_of):
        select = _discards_select(day, uuid_ts, batch, targets, bags.structures)
        if select:
            discarded += con.execute(f"INSERT INTO {SCHEMA}.{DISCARDS} {select}").fetchone()[0]
    changed = changed or bool(report.new_columns)  # columns added now
    return discarded, None if changed else columns_of


def _leaf_counts(bag: str, structure: dict, all_leaves: list[tuple[str, Leaf]],
                 dated: set[int]) -> tuple[str, list[tuple[int, bool]]]:
    """SELECT (bag, t, ev, counts) over the bag's distinct values, per (type, event) group: the
    values each leaf of the bag holds and, for each dated leaf, the values a cast to its inferred
    type refuses; and what each count is: (leaf index in `all_leaves`, whether refused values).

    The struct's leaves are counted as the columns of its recursive unnest (`count(COLUMNS(*))`):
    one expression to bind instead of one per leaf (binding is most of a small day's statement).
    Leaves read apart (spelled) and the cast checks are columns of their own before them. With no
    struct, or keys named like those columns (`_k_...`): one count per leaf expression.
    """
    idx = [i for i, (b, _) in enumerate(all_leaves) if b == bag]
    in_struct = [i for i in idx if not all_leaves[i][1].spelled]
    spelled = [i for i in idx if all_leaves[i][1].spelled]
    checked = [i for i in idx if i in dated]
    typed = (f"SELECT t, ev, {f'json_transform(v, {lit(json.dumps(structure))})' if structure else 'NULL'} "
             f"AS {q(bag)}, v AS {q(raw_bag_column(bag))} FROM {_values_table(bag)}")
    # non-NULL where the value is there and its cast refuses it
    refused = [f"CASE WHEN TRY_CAST({all_leaves[i][1].expr} AS {all_leaves[i][1].inferred}) IS NULL "
               f"THEN {all_leaves[i][1].expr} END" for i in checked]
    keys = {key.lower() for i in in_struct for key in all_leaves[i][1].path}
    if not in_struct or any(key.startswith("_k_") for key in keys):
        counts = [f"count({all_leaves[i][1].expr})" for i in idx] + [f"count({e})" for e in refused]
        return (f"SELECT {lit(bag)}, s.t, s.ev, CAST([{', '.join(counts)}] AS BIGINT[]) "
                f"FROM ({typed}) s GROUP BY ALL", [(i, False) for i in idx] + [(i, True) for i in checked])
    extras = "".join(f", {all_leaves[i][1].expr} AS _k_s{n}" for n, i in enumerate(spelled))
    extras += "".join(f", {e} AS _k_d{n}" for n, e in enumerate(refused))
    rows = f"SELECT {{'t': t, 'ev': ev}} AS _k_group{extras}, unnest(s.{q(bag)}, recursive := true) FROM ({typed}) s"
    counts = f"SELECT _k_group, count(COLUMNS(* EXCLUDE (_k_group))) FROM ({rows}) GROUP BY _k_group"
    return (f"SELECT {lit(bag)}, _k_group.t, _k_group.ev, "
            f"CAST(list_value(*COLUMNS(* EXCLUDE (_k_group))) AS BIGINT[]) FROM ({counts})",
            [(i, False) for i in spelled] + [(i, True) for i in checked] + [(i, False) for i in in_struct])


def _insert_table(con: duckdb.DuckDBPyConnection, day: str, uuid_ts: str, table: str, spec: dict,
                  leaves: list[tuple[str, Leaf]], stage_types: dict[str, str], structures: dict[str, dict],
                  report: LoadReport, existing: dict[str, str]) -> tuple[int, _Checks]:
    """Insert the stage's messages bound for `table` (whose {column: type} is `existing`, left as it is:
    it may be the catalog a rolled-back day must not change); returns the rows inserted and the checks
    finding its values that could not be stored, for the caller to run with the other tables'
    (`_discards_select`)."""
    existing = dict(existing)  # columns added below are noted in this copy
    standard = base_columns(table)
    if not existing:
        cols = ", ".join(f"{q(c)} {t}" for c, t in standard.items())
        con.execute(f"CREATE TABLE {SCHEMA}.{q(table)} ({cols})")
        existing = table_columns(con, table)

    def field(name: str) -> tuple[str, str]:
        return (f"s.{q(name)}", stage_types[name]) if name in stage_types else ("CAST(NULL AS VARCHAR)", "VARCHAR")

    if spec["is_event"]:  # its few event texts: their snake_case names inline (no join with _evt)
        texts = sorted(spec["event_texts"])
        event = lit(snake_case(texts[0])) if len(texts) == 1 else (
            "CASE s._k_event_text " + " ".join(f"WHEN {lit(e)} THEN {lit(snake_case(e))}" for e in texts) + " END")
    else:
        event = "e.event"
    std_src: dict[str, tuple[str, str]] = {
        "id": ("s._k_message_id", "VARCHAR"), "anonymous_id": field("anonymousId"), "user_id": field("userId"),
        "uuid_ts": (f"TIMESTAMPTZ {lit(uuid_ts)}", "TIMESTAMP WITH TIME ZONE"),
        "source": ("s._k_source", "VARCHAR"), "event": (event, "VARCHAR"),
        "event_text": ("s._k_event_text", "VARCHAR"), "name": field("name"),
        "category": field("category"), "group_id": field("groupId"), "previous_id": field("previousId"),
        **{col: field(f) for f, col in TIMESTAMP_FIELDS.items()},
    }
    columns: list[Column] = []
    stamps = set(TIMESTAMP_FIELDS.values())
    for c in standard:
        src_expr, src_type = std_src[c]
        if c in stamps and _norm_type(existing.get(c, standard[c])) == STAMP_TYPE:
            # Parsed once in the stage; a value that is no timestamp is discarded (_load_stage).
            columns.append(Column(c, f"s.{stamp_column(c)}", False, src_expr))
            spec["stamped"].add(c)
            continue
        expr, fallible = convert(src_expr, src_type, existing.get(c, standard[c]))
        columns.append(Column(c, expr, fallible, src_expr))
    std_text = {c.name: convert(c.raw, std_src[c.name][1], "VARCHAR")[0] for c in columns}
    groups: dict[str, list[tuple[str, Leaf]]] = {}
    for bag, leaf in leaves:
        name = column_name(bag, leaf.path)
        if name in standard or (bag != "context" and name.startswith("context_")):
            reserved = name if name in standard else None
            columns.append(Column(name, "", True, leaf.expr, reserved_of=reserved or "context",
                                  sources=((bag, leaf),)))
            continue
        groups.setdefault(name, []).append((bag, leaf))
    folds: list[tuple[str, str, str, str]] = []  # discard checks of keys folded into one column
    fold_sources: list[tuple[str, Leaf]] = []  # the leaves those checks read
    for name, members in groups.items():
        dst = existing.get(name)
        if dst is None:
            types = [leaf.inferred or leaf.src_type for _, leaf in members]
            dst = new_column_type(name, types[0] if len(types) == 1 else merged_type(types))
            if dst is None:
                continue
            con.execute(f"ALTER TABLE {SCHEMA}.{q(table)} ADD COLUMN {q(name)} {dst}")
            existing[name] = dst
            report.new_columns.append(f"{table}.{name}")
        if len(members) == 1:
            expr, fallible = convert(members[0][1].expr, members[0][1].src_type, dst)
            columns.append(Column(name, expr, fallible, members[0][1].expr, sources=tuple(members)))
        else:
            column, checks_of_fold = folded_column(name, members, dst)
            columns.append(dataclasses.replace(column, sources=tuple(members)))
            folds += checks_of_fold
            fold_sources += members

    where = f"s._k_invalid IS NULL AND s._k_type = {lit(spec['type'])}"
    if spec["is_event"]:
        where += f" AND s._k_event_text IN ({', '.join(lit(e) for e in sorted(spec['event_texts']))})"
    joins_evt = event == "e.event" and spec["type"] == "track"
    track_names = " JOIN _evt e ON e.event_text = s._k_event_text" if joins_evt else ""

    # Keys spelled unlike the struct, and the order of folded keys, are read from the bag as sent.
    folded_bags = {bag for bag, _ in fold_sources}
    stage = _typed_stage(leaves, folded_bags, structures)
    stored = [c for c in columns if c.reserved_of is None]
    select = ", ".join(f"{c.expr} AS {q(c.name)}" for c in stored)
    n = con.execute(f"INSERT INTO {SCHEMA}.{q(table)} BY NAME SELECT {select} "
                    f"FROM {stage} s{track_names} WHERE {where}").fetchone()[0]

    # Values that could not be stored: type conflicts, reserved names, name collisions.
    checks: list[tuple[str, str, str, str]] = []  # (column, condition, value as JSON text, reason)
    checked: list[tuple[str, Leaf]] = list(fold_sources)  # the leaves the checks read
    for c in columns:
        if c.reserved_of or c.fallible:
            checked += c.sources
        raw_text = f"CAST(to_json({c.raw}) AS VARCHAR)"
        if c.reserved_of == "context":
            checks.append((c.name, f"{c.raw} IS NOT NULL", raw_text,
                           "property name collides with the context_ prefix"))
        elif c.reserved_of:
            std = std_text[c.reserved_of]
            val = convert(c.raw, _leaf_type(leaves, c.raw), "VARCHAR")[0]
            checks.append((c.name, f"{c.raw} IS NOT NULL AND {val} IS DISTINCT FROM {std}", raw_text,
                           "reserved column name (value differs from the standard column)"))
        elif c.fallible:
            checks.append((c.name, f"{c.raw} IS NOT NULL AND ({c.expr}) IS NULL", raw_text,
                           f"value does not fit column type {existing.get(c.name, '')}"))
    checks += folds
    return n, _Checks(checks, checked, folded_bags)


@dataclasses.dataclass
class _Checks:
    """The discard checks of one table: SQL over the stage row `s` (bags typed) and `e` (_evt)."""

    checks: list[tuple[str, str, str, str]]  # (column, condition, value as JSON text, reason)
    leaves: list[tuple[str, Leaf]]           # the bag leaves they read
    raw_bags: set[str]                       # the bags they also read as sent (`_raw_<bag>`)


def _typed_stage(read: list[tuple[str, Leaf]], raw_bags: set[str], structures: dict[str, dict]) -> str:
    """The stage with its bags typed with just the leaves `read` (json_transform per row); those of
    spelled leaves and `raw_bags` also kept as read (JSON text, `_raw_<bag>`)."""
    paths: dict[str, list[tuple[str, ...]]] = {}
    for bag, leaf in read:
        if not leaf.spelled:
            paths.setdefault(bag, []).append(leaf.path)
    typed = ", ".join(f"json_transform({q(b)}, {lit(json.dumps(_restrict(structures[b], p)))}) AS {q(b)}"
                      for b, p in paths.items())
    raw_needed = {bag for bag, leaf in read if leaf.spelled} | raw_bags
    raw = "".join(f", {q(b)} AS {q(raw_bag_column(b))}" for b in sorted(raw_needed))
    return f"(SELECT *{f' REPLACE ({typed})' if typed else ''}{raw} FROM _stage)" if typed or raw else "_stage"


# Discard checks tested in one scan of the stage at most: a day with more (many event tables whose
# values may not fit) is scanned once per batch of tables, each scan reading only its tables' rows
# and leaves (one scan of thousands of checks types every row with every table's leaves).
CHECKS_PER_SCAN = 100


def _check_batches(checks_of: dict[str, _Checks]) -> list[dict[str, _Checks]]:
    """The tables' checks in batches of whole tables, each of at most CHECKS_PER_SCAN checks (a table
    with more is a batch of its own); one batch for a day with few checks."""
    batches: list[dict[str, _Checks]] = []
    size = 0
    for table, found in sorted(checks_of.items()):
        if not batches or (size + len(found.checks) > CHECKS_PER_SCAN and batches[-1]):
            batches.append({})
            size = 0
        batches[-1][table] = found
        size += len(found.checks)
    return batches


def _discards_select(day: str, uuid_ts: str, checks_of: dict[str, _Checks], targets: dict[str, dict],
                     structures: dict[str, dict]) -> str | None:
    """SELECT of the _discards rows of every value the tables of `checks_of` (some or all of the day's
    `targets`) could not store, in one scan of the stage: each message is paired with the tables it
    went to (its type's table and, for a track, its event's), and every distinct check is tested once
    per pair of a table it belongs to; pairs of other tables are left out before any check."""
    # {(check, its rank among equal checks of a table): the tables having it}
    tables_of: dict[tuple[tuple[str, str, str, str], int], list[str]] = {}
    for table, found in sorted(checks_of.items()):
        seen: Counter = Counter()
        for check in found.checks:
            tables_of.setdefault((check, seen[check]), []).append(table)
            seen[check] += 1
    if not tables_of:
        return None
    read = [leaf for found in checks_of.values() for leaf in found.leaves]
    raw_bags = set().union(*(found.raw_bags for found in checks_of.values()))
    routes = ", ".join(f"({lit(t)}, {lit(table)})" for t, table in TYPE_TABLES.items() if table in targets)
    entries = []
    for ((name, cond, value, reason), _), tables in tables_of.items():
        if set(tables) != set(checks_of):  # the check belongs to some of the tables only
            cond = f"r.tbl IN ({', '.join(lit(t) for t in tables)}) AND ({cond})"
        entries.append(f"CASE WHEN {cond} THEN {{'c': {lit(name)}, 'v': {value}, 'r': {lit(reason)}}} END")
    found = ", ".join(entries)
    in_batch = "" if set(checks_of) == set(targets) else \
        f" AND r.tbl IN ({', '.join(lit(t) for t in sorted(checks_of))})"
    any_found = " OR ".join(f"({cond})" for (_, cond, _, _), _ in tables_of)
    return f"""SELECT DATE {lit(day)}, d.src, d.file, d.mid, d.tbl, d.p.c, d.p.v, d.p.r, TIMESTAMPTZ {lit(uuid_ts)}
        FROM (SELECT s._k_source AS src, s._file AS file, s._k_message_id AS mid, r.tbl,
                     unnest(list_filter([{found}], lambda x: x IS NOT NULL)) AS p
              FROM {_typed_stage(read, raw_bags, structures)} s LEFT JOIN _evt e ON e.event_text = s._k_event_text
              JOIN (SELECT * FROM (VALUES {routes}) v(type, tbl) UNION SELECT 'track', event_table FROM _evt) r
                ON r.type = s._k_type AND (r.type <> 'track' OR r.tbl = 'tracks' OR r.tbl = e.event_table)
              WHERE s._k_invalid IS NULL{in_batch} AND ({any_found})) d"""


def key_position(bag: str, path: tuple[str, ...]) -> str:
    """SQL of where a key path sits in the bag as sent: its key's index at each level (document order)."""
    raw = f"s.{q(raw_bag_column(bag))}"
    return "[" + ", ".join(f"list_position(json_keys({raw}, {lit(json_pointer(path[:i]))}), {lit(key)})"
                           for i, key in enumerate(path)) + "]"


def folded_column(name: str, members: list[tuple[str, Leaf]], dst: str) -> tuple[Column, list[tuple[str, str, str, str]]]:
    """A column for several keys with one Segment column name (`Plan`/`plan`, `userAgent`/`user_agent`).

    As in Segment's warehouses they fold into one column: per message, the value of the key that
    comes last in the message among those whose value fits the column wins. Returns the column and
    the discard checks (column, condition, value, reason) for every other value.
    """
    converted = [convert(leaf.expr, leaf.src_type, dst) for _, leaf in members]
    present = [f"(({expr}) IS NOT NULL)" for expr, _ in converted]
    latest = ", ".join(f"CASE WHEN {has} THEN {{'p': {key_position(bag, leaf.path)}, 'i': {i}}} END"
                       for i, (has, (bag, leaf)) in enumerate(zip(present, members)))
    first = ", ".join(f"CASE WHEN {has} THEN {i} END" for i, has in enumerate(present))
    # Key positions are computed only for the rare messages holding more than one of the keys.
    winner = (f"(CASE WHEN {' + '.join(f'CAST({has} AS INTEGER)' for has in present)} > 1 "
              f"THEN list_max([{latest}]).i ELSE coalesce({first}) END)")
    expr = f"CASE {winner} " + " ".join(f"WHEN {i} THEN {e}" for i, (e, _) in enumerate(converted)) + " END"
    keys = [".".join(leaf.path) for _, leaf in members]
    checks = []
    for i, ((_, leaf), (e, fallible)) in enumerate(zip(members, converted)):
        value = f"CAST(to_json({leaf.expr}) AS VARCHAR)"
        if fallible:
            checks.append((name, f"{leaf.expr} IS NOT NULL AND ({e}) IS NULL", value,
                           f"value does not fit column type {dst}"))
        others = ", ".join(sorted(k for j, k in enumerate(keys) if j != i))
        checks.append((name, f"{present[i]} AND {winner} <> {i}", value,
                       f"key folded into a column that kept a later value of the message: {keys[i]} "
                       f"(folded with {others} into {name})"))
    return Column(name, expr, False, members[-1][1].expr), checks


def _leaf_type(leaves: list[tuple[str, Leaf]], expr: str) -> str:
    for _, leaf in leaves:
        if leaf.expr == expr:
            return leaf.src_type
    return "VARCHAR"


# Traits aggregated in one statement when `users` is rebuilt (see _rebuild_users).
TRAITS_PER_AGGREGATE = 100


def _rebuild_users(con: duckdb.DuckDBPyConnection, report: LoadReport) -> None:
    """`users`: one row per identified user_id with the latest non-null value of every trait."""
    cols = table_columns(con, "identifies")
    if not cols:
        con.execute(f"""CREATE TABLE IF NOT EXISTS {SCHEMA}.users (id VARCHAR, anonymous_id VARCHAR,
            received_at TIMESTAMPTZ, uuid_ts TIMESTAMPTZ, source VARCHAR)""")
        report.rows_per_table["users"] = con.execute(f"SELECT count(*) FROM {SCHEMA}.users").fetchone()[0]
        return
    skip = set(COMMON_COLUMNS) - {"anonymous_id", "received_at", "uuid_ts", "source"}
    traits = [c for c in cols if c not in skip and not c.startswith("context_")]
    order = "coalesce(timestamp, received_at), received_at, id"

    def latest(columns: list[str]) -> str:
        select = ", ".join(f"arg_max({q(c)}, ({order})) FILTER (WHERE {q(c)} IS NOT NULL) AS {q(c)}" for c in columns)
        return f"SELECT user_id AS id, {select} FROM {SCHEMA}.identifies WHERE user_id IS NOT NULL GROUP BY user_id"
    # Every aggregate keeps a state per user: with hundreds of traits in one statement that is gigabytes,
    # so the traits are aggregated TRAITS_PER_AGGREGATE at a time and the parts joined on the user.
    chunks = [traits[n:n + TRAITS_PER_AGGREGATE] for n in range(0, len(traits), TRAITS_PER_AGGREGATE)]
    if len(chunks) <= 1:
        con.execute(f"CREATE OR REPLACE TABLE {SCHEMA}.users AS {latest(traits)}")
    else:
        # (inside the day's transaction: should a statement fail, its rollback removes the parts too)
        parts = [f"_users_part_{n}" for n in range(len(chunks))]
        for part, columns in zip(parts, chunks):
            con.execute(f"CREATE OR REPLACE TEMP TABLE {part} AS {latest(columns)}")
        joined = " ".join(f"JOIN {part} USING (id)" for part in parts[1:])
        con.execute(f"CREATE OR REPLACE TABLE {SCHEMA}.users AS SELECT * FROM {parts[0]} {joined}")
        con.execute("; ".join(f"DROP TABLE {part}" for part in parts))
    report.rows_per_table["users"] = con.execute(f"SELECT count(*) FROM {SCHEMA}.users").fetchone()[0]
