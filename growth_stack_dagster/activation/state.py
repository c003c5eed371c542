"""The `activation_state` schema: what each destination last accepted, per sync and record, the row
log and the run history, and the short write transactions that keep them (journal folds).

Tables (all keyed by `sync`, the declaration's name):
- `records`: one row per record the sync knows: `checksum` of the payload the destination last accepted
  (null if never), `destination_id` (returned on create, or the model's), `created_by_sync`, and for a
  failing record the `failed_checksum`, `attempts` and `last_error`.
- `row_log`: every record sent or rejected (sync, run_id, record_key, operation, status, message, logged_at).
- `runs`: one row per run with its counts and rejection rate.
- `journal_folds`: journal segments already folded, so a fold interrupted after its commit is not applied twice.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import duckdb

from growth_stack_dagster.activation import journal

SCHEMA = "activation_state"
T = TypeVar("T")

DDL = f"""
create schema if not exists {SCHEMA};
create table if not exists {SCHEMA}.records (
    sync varchar not null, record_key varchar not null, checksum varchar, destination_id varchar,
    created_by_sync boolean not null default false, failed_checksum varchar, attempts integer not null default 0,
    last_error varchar, updated_at timestamp not null default current_timestamp,
    primary key (sync, record_key));
create table if not exists {SCHEMA}.row_log (
    sync varchar not null, run_id varchar not null, record_key varchar not null, operation varchar not null,
    status varchar not null, message varchar, logged_at timestamp not null);
create table if not exists {SCHEMA}.runs (
    sync varchar not null, run_id varchar not null, started_at timestamp, finished_at timestamp, status varchar,
    added bigint, changed bigint, removed bigint, unchanged bigint, failed bigint, retried bigint,
    sent bigint, rejected bigint, rejection_rate double, message varchar, primary key (sync, run_id));
create table if not exists {SCHEMA}.journal_folds (sync varchar not null, segment varchar not null,
    folded_at timestamp not null default current_timestamp, primary key (sync, segment));
"""

# Operations after which the destination no longer holds the record for this sync: forget it.
FORGETTING_OPERATIONS = ("delete", "remove", "clear", "forget")


def _is_lock_error(exc: Exception) -> bool:
    return isinstance(exc, duckdb.IOException) and "lock" in str(exc).lower()


def with_lock_retry(action: Callable[[], T], wait_seconds: float = 120.0) -> T:
    """Run `action`, retrying while another process holds the warehouse's write lock (loads, dbt)."""
    deadline = time.monotonic() + wait_seconds
    pause = 0.05
    while True:
        try:
            return action()
        except duckdb.IOException as exc:
            if not _is_lock_error(exc) or time.monotonic() > deadline:
                if _is_lock_error(exc):
                    raise RuntimeError(f"The warehouse stayed locked by another process for {wait_seconds:.0f} s; "
                                       "run the sync again once the load or dbt build has finished.") from exc
                raise
            time.sleep(pause)
            pause = min(pause * 2, 1.0)


@contextmanager
def connect(warehouse: Path, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
    """A short-lived connection to the warehouse, waiting for the write lock if another process holds it."""
    con = with_lock_retry(lambda: duckdb.connect(str(warehouse), read_only=read_only))
    try:
        yield con
    finally:
        con.close()


def ensure_schema(warehouse: Path) -> None:
    """Create the state tables if missing (one short write)."""
    with connect(warehouse) as con:
        con.execute(DDL)


def state_exists(con: duckdb.DuckDBPyConnection) -> bool:
    return bool(con.execute("select count(*) from information_schema.tables where table_schema = ? "
                            "and table_name = 'records'", [SCHEMA]).fetchone()[0])


_JOURNAL_COLUMNS = ("{'t': 'VARCHAR', 'run_id': 'VARCHAR', 'key': 'VARCHAR', 'op': 'VARCHAR', 'status': 'VARCHAR', "
                    "'checksum': 'VARCHAR', 'destination_id': 'VARCHAR', 'message': 'VARCHAR', 'at': 'DOUBLE', "
                    "'batch': 'VARCHAR', 'idempotent': 'BOOLEAN', 'max_attempts': 'INTEGER'}")


def fold_journal(warehouse: Path, sync_name: str, home: Path | None = None, paths: list[Path] | None = None) -> int:
    """Fold every unfolded journal segment of a sync (or only the closed segments `paths`) into
    `activation_state` in one short transaction, then delete them. Returns the number of result lines folded."""
    paths = journal.segments(sync_name, home) if paths is None else sorted(paths)
    if not paths:
        return 0
    ids = [journal.segment_id(p) for p in paths]

    def apply() -> int:
        with connect(warehouse) as con:
            con.execute(DDL)
            done = {r[0] for r in con.execute(
                f"select segment from {SCHEMA}.journal_folds where sync = ? and segment in (select unnest(?))",
                [sync_name, ids]).fetchall()}
            todo = [str(p) for p, i in zip(paths, ids) if i not in done]
            folded = 0
            if todo:
                con.execute("begin")
                con.execute(f"create temp table j as select * from read_json(?, format='newline_delimited', "
                            f"ignore_errors=true, columns={_JOURNAL_COLUMNS})", [todo])
                folded = _apply_journal(con, sync_name)
                con.executemany(f"insert or ignore into {SCHEMA}.journal_folds (sync, segment) values (?, ?)",
                                [[sync_name, i] for p, i in zip(paths, ids) if str(p) in todo])
                con.execute("commit")
                con.execute("drop table j")
            return folded

    folded = with_lock_retry(apply)
    for p in paths:
        p.unlink(missing_ok=True)
    return folded


def _apply_journal(con: duckdb.DuckDBPyConnection, sync_name: str) -> int:
    """The journal in temp table `j` applied to the state tables (inside the caller's transaction)."""
    # The last result per key wins (a record retried within one run).
    con.execute("""
        create temp table jr as
        select * from (
            select *, row_number() over (partition by key order by "at" desc) as rn from j where t = 'result'
        ) where rn = 1
    """)
    # Batches whose intent has no result: the process died while they were in flight.
    con.execute("""
        create temp table ju as
        select i.key, i.op, i.checksum, i.idempotent, i.max_attempts, i.run_id, i."at"
        from j as i
        where i.t = 'intent' and not exists (
            select 1 from j as r where r.t = 'result' and r.key = i.key and r.batch = i.batch)
    """)
    accepted_keep = f"""
        insert into {SCHEMA}.records as s (sync, record_key, checksum, destination_id, created_by_sync, failed_checksum,
                                           attempts, last_error, updated_at)
        select $1, key, checksum, destination_id, op = 'create', null, 0, null, to_timestamp("at")::timestamp
        from jr where status = 'accepted' and op not in {FORGETTING_OPERATIONS}
        on conflict (sync, record_key) do update set
            checksum = excluded.checksum,
            destination_id = coalesce(excluded.destination_id, s.destination_id),
            created_by_sync = s.created_by_sync or excluded.created_by_sync,
            failed_checksum = null, attempts = 0, last_error = null, updated_at = excluded.updated_at
    """
    con.execute(accepted_keep, [sync_name])
    con.execute(f"""delete from {SCHEMA}.records where sync = $1 and record_key in (
                    select key from jr where status = 'accepted' and op in {FORGETTING_OPERATIONS})""", [sync_name])
    con.execute(f"""
        insert into {SCHEMA}.records as s (sync, record_key, failed_checksum, attempts, last_error, updated_at)
        select $1, key, checksum, 1, message, to_timestamp("at")::timestamp from jr where status = 'rejected'
        on conflict (sync, record_key) do update set
            attempts = case when s.failed_checksum is not distinct from excluded.failed_checksum
                            then s.attempts + 1 else 1 end,
            failed_checksum = excluded.failed_checksum, last_error = excluded.last_error,
            updated_at = excluded.updated_at
    """, [sync_name])
    # In flight when the process died, to a destination where sending twice would double the record:
    # not sent again automatically; reported with what to do.
    con.execute(f"""
        insert into {SCHEMA}.records as s (sync, record_key, failed_checksum, attempts, last_error, updated_at)
        select $1, key, checksum, max_attempts,
               'The run stopped while this record was being sent and the destination does not deduplicate it, '
               || 'so it was not sent again; check it in the destination, then run `growth-stack sync reset '
               || $1 || '` or change the record to send it again.', to_timestamp("at")::timestamp
        from ju where not idempotent
        on conflict (sync, record_key) do update set
            failed_checksum = excluded.failed_checksum, attempts = excluded.attempts,
            last_error = excluded.last_error, updated_at = excluded.updated_at
    """, [sync_name])
    con.execute(f"""
        insert into {SCHEMA}.row_log
        select $1, run_id, key, op, status, message, to_timestamp("at")::timestamp from j where t = 'result'
        union all
        select $1, run_id, key, op, 'interrupted',
               case when idempotent then 'the run stopped while this record was in flight; it is sent again'
                    else 'the run stopped while this record was in flight; not sent again (see records.last_error)' end,
               to_timestamp("at")::timestamp
        from ju
    """, [sync_name])
    folded = con.execute("select count(*) from j where t = 'result'").fetchone()[0]
    con.execute("drop table jr")
    con.execute("drop table ju")
    return int(folded)


def record_run(warehouse: Path, row: dict) -> None:
    """Insert or replace one `runs` row (short write)."""
    cols = list(row)

    def write() -> None:
        with connect(warehouse) as con:
            con.execute(DDL)
            con.execute(f"insert or replace into {SCHEMA}.runs ({', '.join(cols)}) values ({', '.join('?' * len(cols))})",
                        [row[c] for c in cols])
    with_lock_retry(write)


def reset(warehouse: Path, sync_name: str, home: Path | None = None) -> int:
    """Forget what the destination last accepted for a sync (checksums and failures; destination ids and
    which records the sync created are kept, so mirror still deletes only its own): the next run sends
    every row of the model again. Returns the number of records reset."""
    fold_journal(warehouse, sync_name, home)

    def write() -> int:
        with connect(warehouse) as con:
            con.execute(DDL)
            n = con.execute(f"select count(*) from {SCHEMA}.records where sync = ?", [sync_name]).fetchone()[0]
            con.execute(f"update {SCHEMA}.records set checksum = null, failed_checksum = null, attempts = 0, "
                        "last_error = null where sync = ?", [sync_name])
            return int(n)
    return with_lock_retry(write)
