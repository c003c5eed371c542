"""Load one received date of event files into the warehouse `events` schema (Segment's shape).

This is the one module holding capture's warehouse-specific (DuckDB) SQL. `load_partition` is a
pure function of (connection, event-file root, day): Dagster assets call it, tests call it.

How a day is loaded, in one transaction:
1. the day's previous load is deleted (its rows, found through the ledger `events._loaded_messages`,
   and its discards), so a re-run produces the same tables;
2. webhook files (first line `{"type": "webhook", ...}`) are transformed in Python
   (`transforms.transform_webhook`) into Segment messages written to temporary NDJSON files;
3. DuckDB `read_json` reads every file of the day at once, inferring one schema over all rows
   (`sample_size=-1`, so no key is missed; structs kept as structs); a line that is not JSON
   becomes an all-NULL row (`ignore_errors`), and only the files holding such rows are re-read in
   Python to copy the exact line into `events._discards`: nothing is dropped silently (a file
   with a valid non-object line, which the record reader refuses, is cleaned in Python first);
4. messages without messageId, with an unknown type, or tracks without event go to `_discards`;
   duplicates within the day and messages already loaded on another day are dropped and counted;
5. per target table (`tracks`, `pages`, ..., one per track event) properties / traits / context
   structs are flattened into columns in SQL with Segment's names; a column's type is chosen when
   it is created (Segment e-commerce spec types first, else the type DuckDB inferred) and never
   changes; new columns are added with ALTER TABLE; values that do not fit their column's type go to
   `_discards` (the row is still loaded, with NULL there);
6. `users` is rebuilt from `identifies` (latest non-null value of each trait per user).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable
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

def snake_case(name: str) -> str:
    """Segment's column/table naming: `Order Completed` -> `order_completed`, `userAgent` -> `user_agent`."""
    s = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", str(name))
    s = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", s)
    s = re.sub(r"[^0-9A-Za-z]+", "_", s).strip("_").lower()
    s = re.sub(r"_+", "_", s)
    if s and s[0].isdigit():
        s = "_" + s
    return s[:120]


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


def struct_leaves(expr: str, typ: duckdb.typing.DuckDBPyType, path: tuple[str, ...] = ()) -> list[Leaf]:
    """Every leaf of a (possibly nested) struct: objects are descended, lists and maps are leaves."""
    if typ.id == "struct":
        out: list[Leaf] = []
        for key, child in typ.children:
            out += struct_leaves(f"struct_extract({expr}, {lit(key)})", child, (*path, key))
        return out
    return [Leaf(expr, str(typ), path)]


@dataclasses.dataclass
class Column:
    name: str
    expr: str            # SQL of the stored value
    fallible: bool       # a non-NULL source value may fail to convert -> discard
    raw: str             # SQL of the source value (for the discard)
    reserved_of: str | None = None  # when set: a property colliding with this standard column


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


def _scan_invalid_lines(path: Path) -> Iterable[tuple[str, str]]:
    """(line, reason) for each line of `path` that is not a JSON object naming a message."""
    with open(path, "rb") as fh:
        for raw in fh:
            line = raw.rstrip(b"\r\n")
            if not line.strip():
                continue
            try:
                obj = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                yield line.decode("utf-8", "replace"), f"invalid JSON line: {exc}"
                continue
            if not isinstance(obj, dict):
                yield line.decode("utf-8", "replace"), "line is not a JSON object"
            elif obj.get("type") is None and obj.get("messageId") is None:
                yield line.decode("utf-8", "replace"), "message has neither type nor messageId"


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
    out = out_dir / f"{len(prep.original_of):06d}.jsonl"
    with open(src, "rb") as fh, open(out, "wb") as dst:
        for raw in fh:
            line = raw.rstrip(b"\r\n")
            if not line.strip():
                continue
            try:
                obj = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                prep.discards.append((str(src), None, line.decode("utf-8", "replace"), f"invalid JSON line: {exc}"))
                continue
            if not isinstance(obj, dict):
                prep.discards.append((str(src), None, line.decode("utf-8", "replace"), "line is not a JSON object"))
                continue
            if obj.get("type") is None and obj.get("messageId") is None:
                prep.discards.append((str(src), None, line.decode("utf-8", "replace"),
                                      "message has neither type nor messageId"))
                continue
            if obj.get("type") != "webhook":
                dst.write(line + b"\n")
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


def _read_json_sql(paths: list[str], ignore_errors: bool) -> str:
    files = "[" + ", ".join(lit(p) for p in paths) + "]"
    return (f"SELECT * FROM read_json({files}, format='newline_delimited', records=true, "
            f"union_by_name=true, sample_size=-1, field_appearance_threshold=0, map_inference_threshold=-1, "
            f"hive_partitioning=false, filename='_file', ignore_errors={'true' if ignore_errors else 'false'})")


# --------------------------------------------------------------------------- the load

def load_partition(con: duckdb.DuckDBPyConnection, events_root: Path, day: str,
                   transform: Callable[[str, dict], list[dict]] = transforms.transform_webhook,
                   now: dt.datetime | None = None) -> LoadReport:
    """Load the closed event files received on `day` (YYYY-MM-DD) under `events_root` into `events.*`.

    Idempotent: the day's earlier load is replaced, in one transaction. Returns a `LoadReport`.
    Raises ValueError for a malformed `day`; data problems never raise, they go to `_discards`.
    """
    dt.date.fromisoformat(day)
    uuid_ts = (now or dt.datetime.now(dt.timezone.utc)).isoformat()
    files = eventfiles.closed_files(Path(events_root), day)
    report = LoadReport(day=day, files=len(files))
    tmp = Path(tempfile.mkdtemp(prefix=f"gs_load_{day}_"))
    con.execute("SET TimeZone = 'UTC'")
    # Row order inside a table carries no meaning here; dropping it lets DuckDB insert in parallel.
    con.execute("SET preserve_insertion_order = false")
    t0 = time.perf_counter()
    try:
        # Reading and transforming touch only temp tables: done before the write transaction, whose
        # first failing statement would otherwise abort it.
        prep = _Prepared(read_paths=[], original_of={}, discards=[])
        for f in files:
            parsed = eventfiles.parse_closed_path(f)
            source = parsed[0] if parsed else "unknown"
            if _first_line_is_webhook(f):
                _rewrite_file(f, tmp, source, prep, transform)
            else:
                prep.read_paths.append(str(f))
        report.webhooks_transformed = prep.webhooks_transformed
        report.webhooks_skipped = prep.webhooks_skipped
        t = report.lap("webhooks", t0)
        staged = _stage(con, prep, tmp, transform)
        t = report.lap("read", t)
        con.execute("BEGIN TRANSACTION")
        try:
            ensure_system_tables(con)
            _delete_partition(con, day)
            _insert_discards(con, day, uuid_ts, [(sf, mid, None, None, v, r) for sf, mid, v, r in prep.discards])
            if staged:
                report.messages_read = con.execute("SELECT count(*) FROM _stage").fetchone()[0]
                _load_stage(con, day, uuid_ts, report)
            t = report.lap("write", t)
            _rebuild_users(con, report)
            t = report.lap("users", t)
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
    finally:
        con.execute("DROP TABLE IF EXISTS _stage")
        shutil.rmtree(tmp, ignore_errors=True)
    return report


def _delete_partition(con: duckdb.DuckDBPyConnection, day: str) -> None:
    ids = f"(SELECT message_id FROM {SCHEMA}.{LEDGER} WHERE partition_date = DATE {lit(day)})"
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
           transform: Callable[[str, dict], list[dict]]) -> bool:
    """Read every file into the temp table `_stage` (one row per line). False when nothing to read."""
    paths = [p for p in prep.read_paths if Path(p).stat().st_size > 0]
    if not paths:
        return False
    try:
        con.execute(f"CREATE OR REPLACE TEMP TABLE _stage AS {_read_json_sql(paths, True)}")
    except duckdb.Error:
        # A valid JSON line that is not an object defeats the record reader: clean those files in Python.
        rewritten: list[str] = []
        for p in paths:
            if p in prep.original_of:
                rewritten.append(p)
                continue
            parsed = eventfiles.parse_closed_path(p)
            before = len(prep.read_paths)
            _rewrite_file(Path(p), tmp, parsed[0] if parsed else "unknown", prep, transform)
            rewritten += prep.read_paths[before:]
        con.execute(f"CREATE OR REPLACE TEMP TABLE _stage AS {_read_json_sql(rewritten, False)}")
        paths = rewritten
    cols = {c.lower() for c in con.table("_stage").columns}
    for needed in ("type", "messageid"):
        if needed not in cols:
            con.execute(f"ALTER TABLE _stage ADD COLUMN {'messageId' if needed == 'messageid' else 'type'} VARCHAR")
    # Invalid lines became all-NULL rows: copy their exact text from the file, then drop the rows.
    bad_files = [r[0] for r in con.execute(
        'SELECT DISTINCT _file FROM _stage WHERE "type" IS NULL AND "messageId" IS NULL').fetchall()]
    for f in bad_files:
        original = prep.original_of.get(f, f)
        if f in prep.original_of:
            continue  # rewritten files hold only objects; their bad lines are already discarded
        prep.discards += [(original, None, line, reason) for line, reason in _scan_invalid_lines(Path(f))]
    con.execute('DELETE FROM _stage WHERE "type" IS NULL AND "messageId" IS NULL')
    if prep.original_of:
        con.execute("CREATE OR REPLACE TEMP TABLE _filemap (tmp VARCHAR, original VARCHAR)")
        con.executemany("INSERT INTO _filemap VALUES (?, ?)", list(prep.original_of.items()))
        con.execute("UPDATE _stage SET _file = m.original FROM _filemap m WHERE _stage._file = m.tmp")
    _normalize_bags(con, prep)
    return True


def _normalize_bags(con: duckdb.DuckDBPyConnection, prep: _Prepared) -> None:
    """Make properties/traits/context structs even when some message sent a non-object there.

    read_json types such a field JSON; the non-object values go to _discards and the objects are
    turned into a struct with the merged structure of all of them (rare path, so the slow
    json_group_structure is acceptable here).
    """
    rel = con.table("_stage")
    types = {n: t for n, t in zip(rel.columns, rel.dtypes)}
    mid = _text({n: str(t) for n, t in types.items()}, "messageId")
    for bag in ("properties", "traits", "context"):
        if bag not in types or types[bag].id == "struct":
            continue
        as_json = f"CAST({q(bag)} AS JSON)"
        for f, m, v in con.execute(f"SELECT _file, {mid}, CAST({q(bag)} AS VARCHAR) FROM _stage "
                                   f"WHERE {q(bag)} IS NOT NULL AND json_type({as_json}) <> 'OBJECT'").fetchall():
            prep.discards.append((f, m, v, f"{bag} is not a JSON object"))
        structure = con.execute(f"SELECT json_group_structure({as_json}) FROM _stage "
                                f"WHERE json_type({as_json}) = 'OBJECT'").fetchone()[0]
        if not structure or not structure.startswith("{"):
            con.execute(f"UPDATE _stage SET {q(bag)} = NULL")
            continue
        structure = structure.replace('"NULL"', '"JSON"')
        con.execute(f"""CREATE OR REPLACE TEMP TABLE _stage AS SELECT * REPLACE (
            CASE WHEN json_type({as_json}) = 'OBJECT' THEN json_transform({as_json}, {lit(structure)}) END
            AS {q(bag)}) FROM _stage""")


def _text(con_types: dict[str, str], col: str) -> str:
    """SQL of a top-level stage field as text (NULL when the field never appeared)."""
    if col not in con_types:
        return "CAST(NULL AS VARCHAR)"
    expr, _ = convert(q(col), con_types[col], "VARCHAR")
    return expr


def _load_stage(con: duckdb.DuckDBPyConnection, day: str, uuid_ts: str, report: LoadReport) -> None:
    rel = con.table("_stage")
    stage_types = {n: str(t) for n, t in zip(rel.columns, rel.dtypes)}
    stage_pytypes = dict(zip(rel.columns, rel.dtypes))
    mid, typ, event = _text(stage_types, "messageId"), _text(stage_types, "type"), _text(stage_types, "event")
    source_sql = "regexp_extract(_file, 'source=([^/]+)/date=', 1)"

    # 1. message-level validity
    valid_types = ", ".join(lit(t) for t in TYPE_TABLES)
    con.execute(f"""CREATE OR REPLACE TEMP TABLE _msg AS
        SELECT rowid AS rid, {mid} AS message_id, {typ} AS type, {event} AS event_text, _file,
               {source_sql} AS source,
               CASE WHEN {mid} IS NULL OR {mid} = '' THEN 'message has no messageId'
                    WHEN {typ} = 'webhook' THEN 'webhook envelope in an event-source file'
                    WHEN {typ} IS NULL OR {typ} NOT IN ({valid_types}) THEN 'unknown message type'
                    WHEN {typ} = 'track' AND ({event} IS NULL OR trim({event}) = '') THEN 'track without event'
               END AS invalid_reason
        FROM _stage""")
    con.execute(f"""INSERT INTO {SCHEMA}.{DISCARDS}
        SELECT DATE {lit(day)}, m.source, m._file, m.message_id, NULL, NULL, CAST(to_json(s) AS VARCHAR),
               m.invalid_reason, TIMESTAMPTZ {lit(uuid_ts)}
        FROM _msg m JOIN _stage s ON s.rowid = m.rid WHERE m.invalid_reason IS NOT NULL""")

    # 2. dedup: within the day keep the earliest received copy; drop ids loaded on another day
    recv = _text(stage_types, "receivedAt")
    con.execute(f"""CREATE OR REPLACE TEMP TABLE _drop AS
        WITH dup AS (SELECT message_id FROM _msg WHERE invalid_reason IS NULL GROUP BY 1 HAVING count(*) > 1),
        ranked AS (
            SELECT m.rid, row_number() OVER (PARTITION BY m.message_id
                       ORDER BY {recv} NULLS LAST, m._file,
                                md5(CAST(to_json(s) AS VARCHAR))) AS rn
            FROM _msg m JOIN _stage s ON s.rowid = m.rid
            WHERE m.invalid_reason IS NULL AND m.message_id IN (SELECT message_id FROM dup))
        SELECT rid, 'day' AS why FROM ranked WHERE rn > 1""")
    report.duplicates_in_day = con.execute("SELECT count(*) FROM _drop").fetchone()[0]
    con.execute(f"""INSERT INTO _drop SELECT rid, 'history' FROM _msg m
        WHERE invalid_reason IS NULL AND rid NOT IN (SELECT rid FROM _drop)
          AND message_id IN (SELECT message_id FROM {SCHEMA}.{LEDGER})""")
    report.duplicates_across_days = con.execute("SELECT count(*) FROM _drop WHERE why = 'history'").fetchone()[0]

    # 3. event tables
    events = [r[0] for r in con.execute(
        "SELECT DISTINCT event_text FROM _msg WHERE type = 'track' AND invalid_reason IS NULL").fetchall()]
    con.execute("CREATE OR REPLACE TEMP TABLE _evt (event_text VARCHAR, event VARCHAR, event_table VARCHAR)")
    rows = [(e, snake_case(e), event_table_name(e)) for e in events]
    if rows:
        con.executemany("INSERT INTO _evt VALUES (?, ?, ?)", rows)
    con.execute("""CREATE OR REPLACE TEMP TABLE _keep AS
        SELECT m.rid, m.message_id, m.type, m.source, m._file, m.event_text, e.event, e.event_table
        FROM _msg m LEFT JOIN _evt e ON m.type = 'track' AND e.event_text = m.event_text
        WHERE m.invalid_reason IS NULL AND m.rid NOT IN (SELECT rid FROM _drop)""")
    con.execute(f"INSERT INTO {SCHEMA}.{LEDGER} SELECT message_id, DATE {lit(day)}, source, type FROM _keep")
    # Carry the routing fields on the stage rows once, so each table's insert is a filtered scan of
    # the stage, not a join over the whole day (sorting the wide rows instead measured no faster).
    for col, typ in (("message_id", "VARCHAR"), ("type", "VARCHAR"), ("source", "VARCHAR"),
                     ("event_text", "VARCHAR"), ("event", "VARCHAR"), ("event_table", "VARCHAR"),
                     ("keep", "BOOLEAN")):
        con.execute(f"ALTER TABLE _stage ADD COLUMN _k_{col} {typ}")
    con.execute("""UPDATE _stage SET _k_message_id = k.message_id, _k_type = k.type, _k_source = k.source,
            _k_event_text = k.event_text, _k_event = k.event, _k_event_table = k.event_table, _k_keep = true
        FROM _keep k WHERE _stage.rowid = k.rid""")

    # 4. which struct leaves hold values in which table
    bags = {b: struct_leaves(f"s.{q(b)}", stage_pytypes[b]) if stage_pytypes[b].id == "struct" else
            [Leaf(f"s.{q(b)}", stage_types[b], ())]
            for b in ("properties", "traits", "context") if b in stage_pytypes}
    bags = {b: leaves for b, leaves in bags.items() if not (leaves and leaves[0].path == ())}
    all_leaves = [(b, leaf) for b, leaves in bags.items() for leaf in leaves]
    presence: dict[tuple[str, str | None], set[int]] = {}
    if all_leaves:
        counts = ", ".join(f"count({leaf.expr})" for _, leaf in all_leaves)
        for row in con.execute(f"""SELECT s._k_type, s._k_event_table, {counts}
                FROM _stage s WHERE s._k_keep GROUP BY ALL""").fetchall():
            presence[(row[0], row[1])] = {i for i, n in enumerate(row[2:]) if n}
    groups = con.execute("SELECT type, event_table, count(*) FROM _keep GROUP BY ALL").fetchall()

    targets: dict[str, dict[str, Any]] = {}
    for mtype, etable, n in groups:
        present = presence.get((mtype, etable), set())
        for table, bag in ((TYPE_TABLES[mtype], BAG_OF_TABLE.get(TYPE_TABLES[mtype])),
                           (etable, "properties") if etable else (None, None)):
            if table is None:
                continue
            t = targets.setdefault(table, {"type": mtype, "is_event": table == etable, "leaves": set(),
                                           "bag": bag})
            for i in present:
                b, _ = all_leaves[i]
                if b == "context" or b == bag:
                    t["leaves"].add(i)
    for table in sorted(targets):
        spec = targets[table]
        n = _insert_table(con, day, uuid_ts, table, spec, [all_leaves[i] for i in sorted(spec["leaves"])],
                          stage_types, report)
        report.rows_per_table[table] = report.rows_per_table.get(table, 0) + n
    con.execute("DROP TABLE IF EXISTS _msg; DROP TABLE IF EXISTS _keep; DROP TABLE IF EXISTS _drop; "
                "DROP TABLE IF EXISTS _evt")


def _insert_table(con: duckdb.DuckDBPyConnection, day: str, uuid_ts: str, table: str, spec: dict,
                  leaves: list[tuple[str, Leaf]], stage_types: dict[str, str], report: LoadReport) -> int:
    existing = table_columns(con, table)
    standard = base_columns(table)
    if not existing:
        cols = ", ".join(f"{q(c)} {t}" for c, t in standard.items())
        con.execute(f"CREATE TABLE {SCHEMA}.{q(table)} ({cols})")
        existing = table_columns(con, table)

    def field(name: str) -> tuple[str, str]:
        return (f"s.{q(name)}", stage_types[name]) if name in stage_types else ("CAST(NULL AS VARCHAR)", "VARCHAR")

    std_src: dict[str, tuple[str, str]] = {
        "id": ("s._k_message_id", "VARCHAR"), "anonymous_id": field("anonymousId"), "user_id": field("userId"),
        "uuid_ts": (f"TIMESTAMPTZ {lit(uuid_ts)}", "TIMESTAMP WITH TIME ZONE"),
        "source": ("s._k_source", "VARCHAR"), "event": ("s._k_event", "VARCHAR"),
        "event_text": ("s._k_event_text", "VARCHAR"), "name": field("name"),
        "category": field("category"), "group_id": field("groupId"), "previous_id": field("previousId"),
        **{col: field(f) for f, col in TIMESTAMP_FIELDS.items()},
    }
    columns: list[Column] = []
    for c in standard:
        src_expr, src_type = std_src[c]
        expr, fallible = convert(src_expr, src_type, existing.get(c, standard[c]))
        columns.append(Column(c, expr, fallible, src_expr))
    taken = {c.name for c in columns}
    std_text = {c.name: convert(c.raw, std_src[c.name][1], "VARCHAR")[0] for c in columns}
    collisions: list[tuple[str, Leaf]] = []
    for bag, leaf in leaves:
        parts = [snake_case(p) or "_" for p in leaf.path]
        name = ("context_" if bag == "context" else "") + "_".join(parts)
        if name in standard or (bag != "context" and name.startswith("context_")):
            reserved = name if name in standard else None
            columns.append(Column(name, "", True, leaf.expr, reserved_of=reserved or "context"))
            continue
        if name in taken:
            collisions.append((name, leaf))
            continue
        taken.add(name)
        dst = existing.get(name)
        if dst is None:
            dst = new_column_type(name, leaf.src_type)
            if dst is None:
                continue
            con.execute(f"ALTER TABLE {SCHEMA}.{q(table)} ADD COLUMN {q(name)} {dst}")
            existing[name] = dst
            report.new_columns.append(f"{table}.{name}")
        expr, fallible = convert(leaf.expr, leaf.src_type, dst)
        columns.append(Column(name, expr, fallible, leaf.expr))

    where = (f"s._k_event_table = {lit(table)}" if spec["is_event"] else f"s._k_type = {lit(spec['type'])}")
    source_join = f"FROM _stage s WHERE s._k_keep AND {where}"
    stored = [c for c in columns if c.reserved_of is None]
    select = ", ".join(f"{c.expr} AS {q(c.name)}" for c in stored)
    n = con.execute(f"INSERT INTO {SCHEMA}.{q(table)} BY NAME SELECT {select} {source_join}").fetchone()[0]

    # Values that could not be stored: type conflicts, reserved names, name collisions.
    head = f"SELECT DATE {lit(day)}, s._k_source, s._file, s._k_message_id, {lit(table)}, "
    tail = f", TIMESTAMPTZ {lit(uuid_ts)} {source_join}"
    parts = []
    for c in columns:
        raw_text = f"CAST(to_json({c.raw}) AS VARCHAR)"
        if c.reserved_of == "context":
            parts.append(f"{head}{lit(c.name)}, {raw_text}, 'property name collides with the context_ prefix'"
                         f"{tail} AND {c.raw} IS NOT NULL")
        elif c.reserved_of:
            std = std_text[c.reserved_of]
            val = convert(c.raw, _leaf_type(leaves, c.raw), "VARCHAR")[0]
            parts.append(f"{head}{lit(c.name)}, {raw_text}, 'reserved column name (value differs from the "
                         f"standard column)'{tail} AND {c.raw} IS NOT NULL AND {val} IS DISTINCT FROM {std}")
        elif c.fallible:
            reason = lit(f"value does not fit column type {existing.get(c.name, '')}")
            parts.append(f"{head}{lit(c.name)}, {raw_text}, {reason}{tail} AND {c.raw} IS NOT NULL "
                         f"AND ({c.expr}) IS NULL")
    for name, leaf in collisions:
        reason = lit(f"column name collision: key {'.'.join(leaf.path)} maps to an existing column")
        parts.append(f"{head}{lit(name)}, CAST(to_json({leaf.expr}) AS VARCHAR), {reason}{tail} "
                     f"AND {leaf.expr} IS NOT NULL")
    if parts:
        con.execute(f"INSERT INTO {SCHEMA}.{DISCARDS} " + " UNION ALL ".join(parts))
    return n


def _leaf_type(leaves: list[tuple[str, Leaf]], expr: str) -> str:
    for _, leaf in leaves:
        if leaf.expr == expr:
            return leaf.src_type
    return "VARCHAR"


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
    select = ", ".join(
        f"arg_max({q(c)}, ({order})) FILTER (WHERE {q(c)} IS NOT NULL) AS {q(c)}" for c in traits)
    con.execute(f"""CREATE OR REPLACE TABLE {SCHEMA}.users AS
        SELECT user_id AS id, {select} FROM {SCHEMA}.identifies WHERE user_id IS NOT NULL GROUP BY user_id""")
    report.rows_per_table["users"] = con.execute(f"SELECT count(*) FROM {SCHEMA}.users").fetchone()[0]
