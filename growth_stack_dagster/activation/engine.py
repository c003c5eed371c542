"""The sync engine: plan in the warehouse, send in batches, keep what the destination accepted.

    plan_sync(name)  the diff (added, changed, removed, unchanged, failed, due for retry) and sample
                     request bodies, computed by the very code a run uses, without sending (dry run)
    run_sync(name)   fold any journal left by a killed run, plan, close the warehouse, send the planned
                     records in batches at the declared rate (journalled durably per batch), then fold
                     the journal into `activation_state` in short transactions
    reset_sync(name) forget what was accepted, so the next run is a full resync

The diff is one DuckDB query: each model row's mapped payload is checksummed (md5 of its JSON, plus the
mapping) and compared with the checksum the destination last accepted, kept in `activation_state.records`.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime as dt
import decimal
import hashlib
import json
import os
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import duckdb
import requests
import tenacity

from growth_stack_dagster import config
from growth_stack_dagster.activation import journal, state
from growth_stack_dagster.activation.declarations import effective_batch_size, effective_rate_limit, load_syncs
from growth_stack_dagster.activation.destinations import destination_class
from growth_stack_dagster.activation.destinations.base import (
    BatchRejected, DestinationUnavailable, Record, RecordResult, SyncSpec, destination_base_url,
    destination_credential,
)
from growth_stack_dagster.activation.http import RequestRateLimiter, destination_session

MODEL_SCHEMA = "activation"
CATEGORIES = ("added", "changed", "removed", "unchanged", "failed", "retried")
# What a new row, a changed row and a row that left the model become, by mode (None: nothing is sent).
_ADDED_OP = {"upsert": "'upsert'", "update": "'update'", "insert": "'create'",
             "mirror": "case when d.destination_id is not null and d.created_by_sync then 'update' else 'create' end",
             "membership": "'add'", "archive": "'archive'"}
_CHANGED_OP = {"upsert": "'upsert'", "update": "'update'", "insert": None,
               "mirror": "case when d.destination_id is not null then 'update' else 'create' end",
               "membership": None, "archive": None}
NON_IDEMPOTENT_OPERATIONS = {"create"}


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _lit(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def mapping_fingerprint(spec: SyncSpec) -> str:
    """A hash of what shapes a payload (object, mode, mappings, null policies): changing it resends every row."""
    shape = [spec.destination, spec.object, spec.mode, spec.match_field,
             [(m.column, m.field, m.null_policy) for m in spec.mappings]]
    return hashlib.md5(json.dumps(shape).encode()).hexdigest()[:12]


def _removed_op(spec: SyncSpec) -> str:
    if spec.mode == "membership":
        return "'remove'"
    if spec.mode == "archive" or spec.on_removal == "nothing":
        return "'forget'"
    if spec.on_removal == "clear":
        return "'clear'"
    return "case when d.created_by_sync then 'delete' else 'forget' end"


def diff_sql(spec: SyncSpec, has_state: bool, full_resync: bool = False) -> str:
    """The diff query: one row per record that is in the model or in the state, with its category,
    the operation to send (null: none) and the mapped columns as `c0..cn`. Parameter $1: the sync's name."""
    columns = list(dict.fromkeys(m.column for m in spec.mappings))
    struct = ", ".join(f"{_q(m.field)} := m.{_q(m.column)}" for m in spec.mappings)
    id_column = f"cast(m.{_q(spec.destination_id_column)} as varchar)" if spec.destination_id_column else "null"
    state_rel = (f"select * from {state.SCHEMA}.records where sync = $1" if has_state else
                 "select null::varchar as record_key, null::varchar as checksum, null::varchar as destination_id, "
                 "false as created_by_sync, null::varchar as failed_checksum, 0 as attempts, "
                 "null::varchar as last_error where false")
    ignores_changes = _CHANGED_OP[spec.mode] is None
    unchanged = ("s.checksum is not null" if ignores_changes
                 else "s.checksum = m.checksum" + (" and false" if full_resync else ""))
    changed_op = _CHANGED_OP[spec.mode] or "null"
    mapped = ", ".join(f"m.{_q(c)} as c{i}" for i, c in enumerate(columns))
    return f"""
with model as (
    select cast(m.{_q(spec.primary_key)} as varchar) as record_key,
           md5(cast(to_json(struct_pack({struct})) as varchar) || {_lit(mapping_fingerprint(spec))}) as checksum,
           {id_column} as model_destination_id,
           {", ".join(f"m.{_q(c)}" for c in columns)}
    from {MODEL_SCHEMA}.{_q(spec.model)} as m
    where m.{_q(spec.primary_key)} is not null
),
s as ({state_rel}),
joined as (
    select coalesce(m.record_key, s.record_key) as record_key,
           m.record_key is not null as in_model,
           m.checksum, s.checksum as accepted_checksum,
           coalesce(s.destination_id, m.model_destination_id) as destination_id,
           coalesce(s.created_by_sync, false) as created_by_sync,
           coalesce(s.attempts, 0) as attempts, s.last_error,
           case
               when m.record_key is not null and s.record_key is null then 'added'
               when m.record_key is not null and {unchanged} then 'unchanged'
               when m.record_key is not null and s.failed_checksum = m.checksum and s.attempts >= {int(spec.max_attempts)}
                   then 'failed'
               when m.record_key is not null and s.failed_checksum = m.checksum then 'retried'
               when m.record_key is not null and s.checksum is null then 'added'
               when m.record_key is not null then 'changed'
               else 'removed'
           end as category{"," if mapped else ""}
           {mapped}
    from model as m full outer join s on s.record_key = m.record_key
)
select d.*,
       case d.category
           when 'added' then {_ADDED_OP[spec.mode]}
           when 'changed' then {changed_op}
           when 'retried' then case when d.accepted_checksum is null then {_ADDED_OP[spec.mode]} else {changed_op} end
           when 'removed' then case when d.accepted_checksum is null then 'forget' else {_removed_op(spec)} end
       end as operation
from joined as d
"""


@dataclasses.dataclass
class Plan:
    """What a run would do: counts by category and by operation, and sample request bodies."""

    sync: SyncSpec
    counts: dict[str, int]
    operations: dict[str, int]
    samples: list[dict[str, Any]]
    path: Path | None = None  # parquet file of the records to send (run only)

    @property
    def to_send(self) -> int:
        return sum(n for op, n in self.operations.items() if op != "forget")

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: the sync, counts, operations and samples."""
        return {"sync": self.sync.name, "destination": self.sync.destination, "object": self.sync.object,
                "mode": self.sync.mode, "counts": self.counts, "operations": self.operations, "samples": self.samples}


@dataclasses.dataclass
class SyncResult:
    """What a run did. No personal data: counts, the run id and failure reasons (without the records)."""

    sync: str
    run_id: str
    counts: dict[str, int]
    sent: int = 0
    accepted: int = 0
    rejected: int = 0
    status: str = "success"
    message: str = ""
    rejection_reasons: dict[str, int] = dataclasses.field(default_factory=dict)

    @property
    def rejection_rate(self) -> float:
        return self.rejected / self.sent if self.sent else 0.0

    def metadata(self) -> dict[str, Any]:
        """Counts for Dagster metadata."""
        return {**{f"rows_{k}": v for k, v in self.counts.items()}, "rows_sent": self.sent,
                "rows_accepted": self.accepted, "rows_rejected": self.rejected,
                "rejection_rate": round(self.rejection_rate, 6), "run_id": self.run_id, "status": self.status}


def resolve(sync: str | SyncSpec) -> SyncSpec:
    """A SyncSpec by name (from the dbt manifest), or the one given."""
    if isinstance(sync, SyncSpec):
        return sync
    syncs = load_syncs()
    if sync not in syncs:
        raise KeyError(f"No sync named {sync!r}; declared syncs: {', '.join(sorted(syncs)) or 'none'} "
                       "(see `growth-stack sync list`).")
    return syncs[sync]


def make_destination(spec: SyncSpec, limiter: RequestRateLimiter | None = None):
    """The destination object for a sync, on its base URL and credential from the environment."""
    cls = destination_class(spec.destination)
    obj = cls.objects[spec.object]
    idempotent = obj.idempotent and spec.mode not in ("insert", "mirror")
    session = destination_session(idempotent=idempotent, limiter=limiter)
    return cls(destination_base_url(spec.destination), destination_credential(spec.destination), session)


def _json_value(value: Any) -> Any:
    """A warehouse value as JSON: integral decimals as ints, other decimals as floats, dates in ISO-8601."""
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.timezone.utc)
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def build_record(spec: SyncSpec, row: dict[str, Any]) -> Record:
    """One planned row (from the diff) as a Record: payload after the null policies."""
    op = row["operation"]
    columns = list(dict.fromkeys(m.column for m in spec.mappings))
    index = {c: i for i, c in enumerate(columns)}
    payload: dict[str, Any] = {}
    if op in ("clear", "delete", "remove", "forget"):
        key_field = next((m.field for m in spec.mappings if m.column == spec.primary_key), None)
        if op == "clear":
            payload = {m.field: None for m in spec.mappings if m.field != spec.match_field}
        if key_field:
            payload[key_field] = row["record_key"]
    else:
        for m in spec.mappings:
            value = _json_value(row[f"c{index[m.column]}"])
            if value is None and m.null_policy == "skip":
                continue
            payload[m.field] = value
    return Record(key=row["record_key"], operation=op, payload=payload, destination_id=row.get("destination_id"))


def _counts(con, spec: SyncSpec) -> tuple[dict[str, int], dict[str, int]]:
    counts = dict.fromkeys(CATEGORIES, 0)
    for category, n in con.execute("select category, count(*) from diff group by 1").fetchall():
        counts[category] = int(n)
    operations = {op: int(n) for op, n in con.execute(
        "select operation, count(*) from diff where operation is not null group by 1 order by 1").fetchall()}
    return counts, operations


def plan_sync(sync: str | SyncSpec, *, warehouse: Path | None = None, sample: int = 5, full_resync: bool = False,
              plan_file: Path | None = None, destination=None) -> Plan:
    """The dry run: the diff of a sync's model against its state, with up to `sample` request bodies per
    operation exactly as `send` would post them. Reads the warehouse read-only; sends nothing.
    With `plan_file`, also writes every record to send there (parquet) for `run_sync`."""
    spec = resolve(sync)
    warehouse = Path(warehouse or config.warehouse_path())
    if not warehouse.exists():
        raise FileNotFoundError(f"The warehouse {warehouse} does not exist yet: build the models first "
                                "(`growth-stack run` or the dbt assets).")

    spill_dir = (plan_file.parent if plan_file is not None else Path(tempfile.gettempdir())) / "duckdb_spill"

    def read() -> tuple[dict[str, int], dict[str, int], list[dict[str, Any]]]:
        with state.connect(warehouse, read_only=True) as con:
            exists = con.execute("select count(*) from information_schema.tables where table_schema = ? "
                                 "and table_name = ?", [MODEL_SCHEMA, spec.model]).fetchone()[0]
            if not exists:
                raise LookupError(f"The model {MODEL_SCHEMA}.{spec.model} is not in the warehouse yet: build it "
                                  f"with dbt (`dbt build -s {spec.model}`) before syncing {spec.name}.")
            # Bounded memory whatever the model's size: DuckDB spills the diff to disk past this.
            con.execute("set preserve_insertion_order = false")
            con.execute(f"set memory_limit = {_lit(os.environ.get('ACTIVATION__PLAN_MEMORY_LIMIT', '256MB'))}")
            con.execute(f"set temp_directory = {_lit(str(spill_dir))}")
            has_state = state.state_exists(con)
            try:
                con.execute(f"create temp table diff as {diff_sql(spec, has_state, full_resync)}",
                            [spec.name] if has_state else [])
            except duckdb.BinderException as exc:
                raise LookupError(f"{MODEL_SCHEMA}.{spec.model} in the warehouse does not match the declaration "
                                  f"{spec.source_file} ({str(exc).splitlines()[0]}); rebuild the model with dbt "
                                  f"(`dbt build -s {spec.model}`) or fix the mapping.") from None
            counts, operations = _counts(con, spec)
            rows = []
            if sample:
                cursor = con.execute(
                    "select * from (select *, row_number() over (partition by operation order by record_key) as n "
                    "from diff where operation is not null and operation <> 'forget') where n <= ? "
                    "order by operation, record_key", [sample])
                names = [d[0] for d in cursor.description]
                rows = [dict(zip(names, values)) for values in cursor.fetchall()]
            if plan_file is not None:
                con.execute(f"copy (select * exclude (in_model, last_error) from diff where operation is not null "
                            f"order by operation, record_key) to {_lit(str(plan_file))} (format parquet)")
            return counts, operations, rows

    counts, operations, rows = state.with_lock_retry(read)
    samples = _samples(spec, rows, destination)
    return Plan(sync=spec, counts=counts, operations=operations, samples=samples, path=plan_file)


def _samples(spec: SyncSpec, rows: list[dict[str, Any]], destination=None) -> list[dict[str, Any]]:
    by_op: dict[str, list[Record]] = {}
    for row in rows:
        record = build_record(spec, row)
        by_op.setdefault(record.operation, []).append(record)
    out = []
    dest = destination
    for op, records in by_op.items():
        body: Any = None
        if dest is None:
            dest = make_destination(spec)
        preview = getattr(dest, "preview", None)
        if callable(preview):
            body = preview(spec, records)
        out.append({"operation": op, "keys": [r.key for r in records],
                    "request": body if body is not None else [r.payload for r in records]})
    return out


def _iter_batches(spec: SyncSpec, path: Path, batch_size: int) -> Iterator[tuple[str, list[Record], dict[str, str]]]:
    """(operation, records, {key: checksum}) batches of one operation each, streamed from the plan file."""
    import pyarrow.parquet as pq

    pending: list[Record] = []
    checksums: dict[str, str] = {}
    current = None
    for chunk in pq.ParquetFile(path).iter_batches(batch_size=max(batch_size * 10, 1000)):
        for row in chunk.to_pylist():
            op = row["operation"]
            if op != current or len(pending) >= batch_size:
                if pending:
                    yield current, pending, checksums
                pending, checksums, current = [], {}, op
            pending.append(build_record(spec, row))
            checksums[row["record_key"]] = row["checksum"]
    if pending:
        yield current, pending, checksums


# A connection broken while the answer was read (urllib3's Retry has already given the request back).
_BROKEN_ANSWER = (requests.exceptions.ChunkedEncodingError, requests.exceptions.ConnectionError)


def _send(dest, spec: SyncSpec, records: list[Record], idempotent: bool) -> list[RecordResult]:
    """`dest.send`, sent again (tenacity: exponential backoff with jitter) when the answer was lost on a
    broken connection, but only where sending twice changes nothing."""
    if not idempotent:
        return dest.send(spec, records)
    retrying = tenacity.Retrying(retry=tenacity.retry_if_exception_type(_BROKEN_ANSWER),
                                 wait=tenacity.wait_exponential_jitter(multiplier=0.2, max=10, jitter=0.5),
                                 stop=tenacity.stop_after_attempt(4), reraise=True)
    return retrying(dest.send, spec, records)


def send_isolating(dest, spec: SyncSpec, records: list[Record], idempotent: bool = True) -> list[RecordResult]:
    """Send one batch; when the destination refuses it whole, split it in halves until the bad records
    are alone, and reject only those."""
    try:
        results = _send(dest, spec, records, idempotent)
    except BatchRejected as exc:
        if len(records) == 1:
            return [RecordResult(key=records[0].key, status="rejected", message=str(exc)[:500])]
        middle = len(records) // 2
        return (send_isolating(dest, spec, records[:middle], idempotent)
                + send_isolating(dest, spec, records[middle:], idempotent))
    by_key = {r.key: r for r in results}
    # A record the destination did not answer for stays pending and is retried on the next run.
    return [by_key.get(r.key) or RecordResult(key=r.key, status="retry", message="no result from the destination")
            for r in records]


def run_sync(sync: str | SyncSpec, *, warehouse: Path | None = None, home: Path | None = None,
             full_resync: bool = False, log: Callable[[str], None] | None = None, run_id: str | None = None,
             fold_every_seconds: float = 30.0) -> SyncResult:
    """Run one sync end to end (see the module docstring). Raises nothing for rejected records (they are
    counted and logged); returns with status `stopped` when the destination stayed unavailable."""
    spec = resolve(sync)
    warehouse = Path(warehouse or config.warehouse_path())
    home = Path(home or config.home())
    log = log or (lambda _msg: None)
    run_id = run_id or time.strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:8]
    started = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    cls = destination_class(spec.destination)
    obj = cls.objects[spec.object]
    with journal.sync_lock(spec.name, home):
        state.ensure_schema(warehouse)
        leftover = state.fold_journal(warehouse, spec.name, home)
        if leftover:
            log(f"folded {leftover} record results journalled by an interrupted run")
        for stale in journal.sync_dir(spec.name, home).glob("plan-*.parquet"):
            stale.unlink(missing_ok=True)  # left by a killed run; this run plans afresh
        plan_path = journal.sync_dir(spec.name, home) / f"plan-{run_id}.parquet"
        requests_, per = effective_rate_limit(spec, obj)
        limiter = RequestRateLimiter(requests_, per, key=spec.name)
        dest = make_destination(spec, limiter)
        plan = plan_sync(spec, warehouse=warehouse, sample=0, full_resync=full_resync, plan_file=plan_path,
                         destination=dest)
        result = SyncResult(sync=spec.name, run_id=run_id, counts=plan.counts)
        log(f"{spec.name}: " + ", ".join(f"{v} {k}" for k, v in plan.counts.items()) + f"; {plan.to_send} to send")
        try:
            if plan.to_send:
                try:
                    dest.prepare(spec)
                except (DestinationUnavailable, requests.RequestException) as exc:
                    result.status = "stopped"
                    result.message = (f"Could not prepare {spec.destination} {spec.object} for {spec.name}: "
                                      f"{str(exc)[:300]}")
                    plan_path.unlink(missing_ok=True)
            _send_plan(spec, obj, dest, plan_path, run_id, warehouse, home, result, log, fold_every_seconds,
                       plan.operations)
        finally:
            plan_path.unlink(missing_ok=True)
            state.fold_journal(warehouse, spec.name, home)
        counts = dict(result.counts)
        counts["failed"] = counts.get("failed", 0) + result.rejected
        result.counts = counts
        state.record_run(warehouse, {
            "sync": spec.name, "run_id": run_id, "started_at": started,
            "finished_at": dt.datetime.now(dt.timezone.utc).replace(tzinfo=None), "status": result.status,
            **{k: counts.get(k, 0) for k in CATEGORIES}, "sent": result.sent, "rejected": result.rejected,
            "rejection_rate": result.rejection_rate, "message": result.message})
    log(f"{spec.name}: sent {result.sent}, accepted {result.accepted}, rejected {result.rejected} ({result.status})")
    return result


@dataclasses.dataclass
class _Batch:
    op: str
    records: list[Record]
    checksums: dict[str, str]
    batch_id: str
    idempotent: bool
    future: Future | None = None
    results: list[RecordResult] | None = None


def _send_plan(spec, obj, dest, plan_path: Path, run_id: str, warehouse: Path, home: Path, result: SyncResult,
               log, fold_every_seconds: float, operations: dict[str, int]) -> None:
    """Send the planned batches: intent journalled before each send, results after. Destinations that
    declare `max_concurrency` > 1 get that many batches in flight (one operation at a time)."""
    if not plan_path.exists():
        return
    opened: set[str] = set()
    jr = journal.Journal(spec.name, run_id, home)
    last_fold = time.monotonic()
    batch_no = 0
    workers = max(1, int(getattr(dest, "max_concurrency", 1)))
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=f"sync-{spec.name}") if workers > 1 else None
    inflight: collections.deque[_Batch] = collections.deque()
    # Closed journal segments are folded into the warehouse beside the sending, one fold at a time and in
    # order, so a fold (seconds once the state holds a million records) never stops the batches.
    folder = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"fold-{spec.name}")
    closed: list[Path] = []
    folding: Future | None = None

    def finish(batch: _Batch) -> bool:
        """Journal one batch's results; False when the destination stayed unavailable."""
        try:
            results = batch.future.result() if batch.future is not None else batch.results
        except (DestinationUnavailable, requests.RequestException) as exc:
            result.status = "stopped"
            result.message = (f"{spec.destination} stayed unavailable after retries ({type(exc).__name__}: "
                              f"{str(exc)[:300]}); the unsent records are sent by the next run.")
            return False
        done = time.time()
        lines = []
        for r in results:
            lines.append({"t": "result", "run_id": run_id, "key": r.key, "op": batch.op, "status": r.status,
                          "checksum": batch.checksums.get(r.key), "destination_id": r.destination_id,
                          "message": r.message or None, "at": done, "batch": batch.batch_id})
            if r.status == "accepted":
                result.accepted += 1
            elif r.status == "rejected":
                result.rejected += 1
                reason = (r.message or "rejected").split(":")[0][:80]
                result.rejection_reasons[reason] = result.rejection_reasons.get(reason, 0) + 1
        result.sent += len(batch.records)
        jr.write(lines)
        return True

    def drain(keep: int) -> bool:
        ok = True
        while len(inflight) > keep:
            ok = finish(inflight.popleft()) and ok
        return ok

    try:
        for op, records, checksums in _iter_batches(spec, plan_path, effective_batch_size(spec, obj)):
            now = time.time()
            if op == "forget":
                jr.write([{"t": "result", "run_id": run_id, "key": r.key, "op": op, "status": "accepted",
                           "checksum": None, "at": now, "batch": f"{run_id}:f"} for r in records])
                continue
            if op not in opened:
                if not drain(0):  # one operation at a time: the previous one is finished first
                    break
                if callable(getattr(dest, "open_session", None)):
                    # Destinations with upload sessions (Facebook) learn how many records this operation sends.
                    dest.open_session(spec, op, operations.get(op, 0))
                opened.add(op)
            batch_no += 1
            batch = _Batch(op, records, checksums, f"{run_id}:{batch_no}",
                           obj.idempotent and op not in NON_IDEMPOTENT_OPERATIONS)
            jr.write([{"t": "intent", "run_id": run_id, "key": r.key, "op": op, "checksum": checksums[r.key],
                       "batch": batch.batch_id, "idempotent": batch.idempotent, "max_attempts": spec.max_attempts,
                       "at": now} for r in records])
            if pool is not None:
                batch.future = pool.submit(send_isolating, dest, spec, records, batch.idempotent)
            else:
                try:
                    batch.results = send_isolating(dest, spec, records, batch.idempotent)
                except (DestinationUnavailable, requests.RequestException) as exc:
                    batch.future = Future()
                    batch.future.set_exception(exc)
            inflight.append(batch)
            if not drain(workers - 1):
                break
            if time.monotonic() - last_fold > fold_every_seconds:
                segment = jr.roll()
                if segment is not None:
                    closed.append(segment)
                if closed and (folding is None or folding.done()):
                    if folding is not None:
                        folding.result()  # a fold that failed stops the run here (its segments stay for the next)
                    folding = folder.submit(state.fold_journal, warehouse, spec.name, home, list(closed))
                    closed = []
                last_fold = time.monotonic()
        drain(0)
        if result.status == "stopped":
            log(result.message)
    finally:
        if pool is not None:
            pool.shutdown(wait=True)
        jr.close()
        folder.shutdown(wait=True)  # the run's last fold (run_sync) comes after the ones under way


def reset_sync(sync: str | SyncSpec, *, warehouse: Path | None = None, home: Path | None = None) -> int:
    """Forget what the destination accepted for a sync: its next run sends every row (full resync)."""
    spec = resolve(sync)
    with journal.sync_lock(spec.name, home):
        return state.reset(Path(warehouse or config.warehouse_path()), spec.name, home)
