"""Read-only looks into the warehouse for the console: a model's columns and first rows, and a query typed
on the mapping page, previewed with a time limit and a row limit.

Every connection is opened read-only, with access to local files and extensions switched off and the
configuration then locked, so a query can neither write nor read anything outside the warehouse. A
statement that is not a single SELECT is refused before it runs.
"""

from __future__ import annotations

import dataclasses
import threading
from pathlib import Path
from typing import Any

import duckdb

DEFAULT_ROW_LIMIT = 50
DEFAULT_TIMEOUT_SECONDS = 10.0


class QueryRefused(ValueError):
    """A query the console will not run or could not finish; the message says why in plain words."""


@dataclasses.dataclass
class QueryPreview:
    columns: list[tuple[str, str]]  # (name, DuckDB type)
    rows: list[tuple[Any, ...]]  # at most the row limit
    total_rows: int  # rows the whole query returns

    @property
    def truncated(self) -> bool:
        return self.total_rows > len(self.rows)


def single_select(sql: str) -> str:
    """`sql` without a trailing semicolon when it is exactly one SELECT (or WITH ... SELECT) statement;
    QueryRefused otherwise."""
    text = sql.strip().rstrip(";").strip()
    if not text:
        raise QueryRefused("Type a query first, e.g. select * from marts.customers.")
    try:
        statements = duckdb.extract_statements(text)
    except duckdb.Error as exc:
        raise QueryRefused(f"The query is not valid SQL: {_first_line(exc)}") from None
    if len(statements) != 1:
        raise QueryRefused("Write one query at a time: the text holds several statements.")
    if statements[0].type != duckdb.StatementType.SELECT:
        kind = statements[0].type.name.lower()
        raise QueryRefused(f"Only queries that read are allowed here (SELECT or WITH ... SELECT); this is a "
                           f"{kind} statement, which would change the warehouse.")
    return text


def connect(warehouse: Path) -> duckdb.DuckDBPyConnection:
    """A read-only connection that cannot reach files, the network or extensions."""
    if not Path(warehouse).exists():
        raise QueryRefused(f"The warehouse {warehouse} does not exist yet: run the flows once "
                           "(`growth-stack run`, or the assets in the Dagster UI).")
    try:
        con = duckdb.connect(str(warehouse), read_only=True)
    except duckdb.IOException as exc:
        if "lock" in str(exc).lower():
            raise QueryRefused("The warehouse is being written by a load or a build right now; try again in a "
                               "few seconds.") from None
        raise
    con.execute("set enable_external_access = false")
    con.execute("set autoinstall_known_extensions = false")
    con.execute("set autoload_known_extensions = false")
    con.execute("set lock_configuration = true")
    return con


def _run(con: duckdb.DuckDBPyConnection, sql: str, timeout: float, params: list | None = None):
    timer = threading.Timer(timeout, con.interrupt)
    timer.start()
    try:
        return con.execute(sql, params or []).fetchall()
    except duckdb.InterruptException:
        raise QueryRefused(f"The query took longer than {timeout:g} seconds and was stopped; narrow it down "
                           "(filter, aggregate or limit it).") from None
    except duckdb.Error as exc:
        raise QueryRefused(f"The warehouse refused the query: {_first_line(exc)}") from None
    finally:
        timer.cancel()


def preview_query(warehouse: Path, sql: str, row_limit: int = DEFAULT_ROW_LIMIT,
                  timeout: float = DEFAULT_TIMEOUT_SECONDS) -> QueryPreview:
    """The columns, the first `row_limit` rows and the row count of a read-only query."""
    text = single_select(sql)
    with connect(warehouse) as con:
        described = _run(con, f"describe select * from ({text}) as q", timeout)
        columns = [(str(r[0]), str(r[1])) for r in described]
        rows = _run(con, f"select * from ({text}) as q limit {int(row_limit)}", timeout)
        total = _run(con, f"select count(*) from ({text}) as q", timeout)[0][0]
    return QueryPreview(columns=columns, rows=[tuple(r) for r in rows], total_rows=int(total))


def table_preview(warehouse: Path, schema: str, table: str, row_limit: int = 5) -> QueryPreview | None:
    """A built model's columns, first rows and row count; None when it is not in the warehouse yet."""
    with connect(warehouse) as con:
        exists = con.execute("select count(*) from information_schema.tables where table_schema = ? "
                             "and table_name = ?", [schema, table]).fetchone()[0]
        if not exists:
            return None
        relation = f'"{schema}"."{table}"'
        columns = [(str(r[0]), str(r[1])) for r in _run(con, f"describe {relation}", DEFAULT_TIMEOUT_SECONDS)]
        rows = _run(con, f"select * from {relation} limit {int(row_limit)}", DEFAULT_TIMEOUT_SECONDS)
        total = _run(con, f"select count(*) from {relation}", DEFAULT_TIMEOUT_SECONDS)[0][0]
    return QueryPreview(columns=columns, rows=[tuple(r) for r in rows], total_rows=int(total))


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
