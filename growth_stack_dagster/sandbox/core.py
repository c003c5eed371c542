"""The sandbox's shared machinery: persistent object store, fault injection, rate limits,
webhook delivery and the interface every emulation module implements.

An emulation module (`hubspot.py`, `stripe.py`, ...) exposes `build(ctx: SandboxContext) -> Emulation`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools

import orjson
import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import requests
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute

log = logging.getLogger("growth_stack.sandbox")


# --------------------------------------------------------------------------- store
class Store:
    """Objects of every emulated system, kept in one SQLite file so state survives restarts.

    An object is a JSON document in the real API's representation, addressed by
    (system, collection, id). `seq` orders objects by insertion for cursor pagination;
    `created` and `updated` (epoch seconds) serve `created[gte]`-style filters and
    incremental exports. Thread-safe: one connection guarded by a lock.
    """

    def __init__(self, path: Path | str):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(
            """
            CREATE TABLE IF NOT EXISTS objects (
                seq INTEGER PRIMARY KEY AUTOINCREMENT,
                system TEXT NOT NULL, collection TEXT NOT NULL, id TEXT NOT NULL,
                created INTEGER NOT NULL, updated INTEGER NOT NULL, data TEXT NOT NULL,
                UNIQUE (system, collection, id)
            );
            CREATE INDEX IF NOT EXISTS objects_seq ON objects (system, collection, seq);
            CREATE INDEX IF NOT EXISTS objects_created ON objects (system, collection, created);
            CREATE INDEX IF NOT EXISTS objects_updated ON objects (system, collection, updated);
            CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
            CREATE TABLE IF NOT EXISTS lookups (
                system TEXT NOT NULL, name TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,
                PRIMARY KEY (system, name, key)
            ) WITHOUT ROWID;
            CREATE TABLE IF NOT EXISTS writes (
                system TEXT NOT NULL, collection TEXT NOT NULL, id TEXT NOT NULL, count INTEGER NOT NULL,
                PRIMARY KEY (system, collection, id)
            );
            """
        )

    def next_id(self, name: str, start: int = 1) -> int:
        """A persistent counter (for numeric ids such as HubSpot's or Zendesk's)."""
        with self._lock:
            row = self._db.execute(
                "INSERT INTO counters (name, value) VALUES (?, ?) "
                "ON CONFLICT (name) DO UPDATE SET value = value + 1 RETURNING value",
                (name, start),
            ).fetchone()
            return int(row[0])

    def put(self, system: str, collection: str, obj_id: str, data: dict[str, Any],
            created: int | None = None, updated: int | None = None) -> dict[str, Any]:
        """Insert or replace one object; `created` is kept from the first insert unless given."""
        now = int(time.time())
        with self._lock:
            self._db.execute(
                "INSERT INTO objects (system, collection, id, created, updated, data) VALUES (?,?,?,?,?,?) "
                "ON CONFLICT (system, collection, id) DO UPDATE SET "
                "data = excluded.data, updated = excluded.updated, "
                "created = CASE WHEN ? IS NULL THEN objects.created ELSE excluded.created END",
                (system, collection, str(obj_id), created if created is not None else now,
                 updated if updated is not None else now, orjson.dumps(data).decode(), created),
            )
        return data

    def put_many(self, system: str, collection: str,
                 rows: Iterable[tuple[str, dict[str, Any], int, int]]) -> int:
        """Bulk insert-or-replace of (id, data, created, updated) rows; returns the count."""
        batch = [(system, collection, str(i), c, u, orjson.dumps(d).decode()) for i, d, c, u in rows]
        with self._lock:
            outer = self._db.in_transaction  # inside `transaction()`: its commit covers these rows
            if not outer:
                self._db.execute("BEGIN")
            self._db.executemany(
                "INSERT INTO objects (system, collection, id, created, updated, data) VALUES (?,?,?,?,?,?) "
                "ON CONFLICT (system, collection, id) DO UPDATE SET "
                "data = excluded.data, updated = excluded.updated, created = excluded.created",
                batch,
            )
            if not outer:
                self._db.execute("COMMIT")
        return len(batch)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """Hold the store and commit every write inside once (a batch of 100 records, one commit)."""
        with self._lock:
            if self._db.in_transaction:
                yield
                return
            self._db.execute("BEGIN")
            try:
                yield
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def lookup(self, system: str, name: str, key: str) -> str | None:
        """The value stored under `key` in the lookup table `name` (e.g. an email's record id), or None."""
        with self._lock:
            row = self._db.execute("SELECT value FROM lookups WHERE system=? AND name=? AND key=?",
                                   (system, name, key)).fetchone()
        return row[0] if row else None

    def set_lookups(self, system: str, name: str, changes: dict[str, str | None]) -> None:
        """Apply {key: value, or None to remove} to the lookup table `name` (one indexed row per key, so a
        unique-value index costs one short row per record, not a rewrite of a bucket)."""
        puts = [(system, name, k, v) for k, v in changes.items() if v is not None]
        drops = [(system, name, k) for k, v in changes.items() if v is None]
        with self._lock:
            if puts:
                self._db.executemany("INSERT INTO lookups (system, name, key, value) VALUES (?,?,?,?) "
                                     "ON CONFLICT (system, name, key) DO UPDATE SET value = excluded.value", puts)
            if drops:
                self._db.executemany("DELETE FROM lookups WHERE system=? AND name=? AND key=?", drops)

    def get(self, system: str, collection: str, obj_id: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._db.execute(
                "SELECT data FROM objects WHERE system=? AND collection=? AND id=?",
                (system, collection, str(obj_id)),
            ).fetchone()
        return orjson.loads(row[0]) if row else None

    def delete(self, system: str, collection: str, obj_id: str) -> bool:
        with self._lock:
            cur = self._db.execute(
                "DELETE FROM objects WHERE system=? AND collection=? AND id=?",
                (system, collection, str(obj_id)),
            )
        return cur.rowcount > 0

    def page(self, system: str, collection: str, *, after_seq: int = 0, limit: int = 100,
             where: str = "", params: Iterable[Any] = (), order: str = "seq") -> list[tuple[int, dict[str, Any]]]:
        """Up to `limit` (seq, object) pairs with seq > after_seq, in `order` (a column list).

        `where` is an extra SQL condition on the columns seq, id, created, updated or on
        `json_extract(data, '$.field')`, with `?` placeholders bound from `params`.
        """
        sql = "SELECT seq, data FROM objects WHERE system=? AND collection=? AND seq > ?"
        if where:
            sql += f" AND ({where})"
        sql += f" ORDER BY {order} LIMIT ?"
        with self._lock:
            rows = self._db.execute(sql, (system, collection, after_seq, *params, limit)).fetchall()
        return [(seq, orjson.loads(data)) for seq, data in rows]

    def query(self, sql: str, params: Iterable[Any] = ()) -> list[tuple]:
        """Raw read query against the `objects` table, for emulations with special listings."""
        with self._lock:
            return self._db.execute(sql, tuple(params)).fetchall()

    def scan(self, system: str, collection: str, batch: int = 1000) -> Iterator[dict[str, Any]]:
        """Every object of a collection, in insertion order."""
        after = 0
        while True:
            rows = self.page(system, collection, after_seq=after, limit=batch)
            if not rows:
                return
            for seq, obj in rows:
                after = seq
                yield obj

    def count(self, system: str, collection: str) -> int:
        with self._lock:
            return self._db.execute(
                "SELECT count(*) FROM objects WHERE system=? AND collection=?", (system, collection)
            ).fetchone()[0]

    def stats(self) -> dict[str, dict[str, int]]:
        with self._lock:
            rows = self._db.execute(
                "SELECT system, collection, count(*) FROM objects GROUP BY 1, 2 ORDER BY 1, 2"
            ).fetchall()
        out: dict[str, dict[str, int]] = {}
        for system, collection, n in rows:
            out.setdefault(system, {})[collection] = n
        return out

    def count_writes(self, system: str, collection: str, ids: Iterable[str]) -> None:
        """Add one to the write count of each destination record `ids` (repeats count each time).

        Emulations call this where they apply a write a sync sends, so tests can prove no double send.
        """
        rows = [(system, collection, str(i)) for i in ids]
        if not rows:
            return
        with self._lock:
            self._db.executemany(
                "INSERT INTO writes (system, collection, id, count) VALUES (?, ?, ?, 1) "
                "ON CONFLICT (system, collection, id) DO UPDATE SET count = count + 1", rows)

    def write_counts(self, system: str | None = None, collection: str | None = None) -> dict[str, int]:
        """{record id: times written} for one system and collection (or every record, keyed system/collection/id)."""
        with self._lock:
            if system is not None and collection is not None:
                rows = self._db.execute("SELECT id, count FROM writes WHERE system=? AND collection=? ORDER BY id",
                                        (system, collection)).fetchall()
                return {i: n for i, n in rows}
            rows = self._db.execute("SELECT system || '/' || collection || '/' || id, count FROM writes "
                                    "WHERE ? IS NULL OR system = ? ORDER BY 1", (system, system)).fetchall()
        return {i: n for i, n in rows}

    def write_totals(self) -> dict[str, dict[str, int]]:
        """{system: {collection: total writes}}."""
        with self._lock:
            rows = self._db.execute("SELECT system, collection, sum(count) FROM writes GROUP BY 1, 2").fetchall()
        out: dict[str, dict[str, int]] = {}
        for system, collection, n in rows:
            out.setdefault(system, {})[collection] = int(n)
        return out

    def reset(self) -> None:
        with self._lock:
            self._db.execute("DELETE FROM objects")
            self._db.execute("DELETE FROM counters")
            self._db.execute("DELETE FROM lookups")
            self._db.execute("DELETE FROM writes")


# --------------------------------------------------------------------------- faults
@dataclasses.dataclass
class FaultRule:
    """One injected fault, matched on the request path prefix (e.g. `/hubspot/crm/v3/objects/contacts`)
    and, when `method` is set (e.g. "POST"), on the HTTP method too.

    kind: `rate_limit` (the API's own 429), `error` (a 5xx in the API's error shape; nothing applied),
    `slow` (sleep `delay` seconds, then answer normally: a client that gave up still sees its write land),
    `reject` (per-record rejection: the emulation rejects records whose key contains `match`, in the
    API's own per-record error shape), `apply_then_error` (the request is applied, then its answer is
    replaced by a `status` error), `apply_then_drop` (applied, then the connection is dropped before the
    answer's body), `drop` (the connection is dropped and nothing is applied), `job_failed` (an
    asynchronous job of the matching request ends as failed, e.g. a Zendesk bulk job).
    `skip` matching requests pass first; then the rule fires `count` times (-1 = forever).
    """

    prefix: str
    kind: str
    count: int = 1
    skip: int = 0
    status: int = 500
    retry_after: float = 1.0
    delay: float = 0.0
    match: str = ""
    method: str = ""
    id: int = 0
    fired: int = 0

    KINDS = ("rate_limit", "error", "slow", "reject", "apply_then_error", "apply_then_drop", "drop", "job_failed")
    # kinds the request middleware acts on; `reject` and `job_failed` are read by the emulations
    REQUEST_KINDS = ("rate_limit", "error", "slow", "apply_then_error", "apply_then_drop", "drop")

    def matches(self, path: str, method: str | None) -> bool:
        """True when the rule applies to a request of `method` (None: any) on `path`."""
        return path.startswith(self.prefix) and (
            not self.method or method is None or self.method.upper() == method.upper())


class Faults:
    def __init__(self) -> None:
        self._rules: list[FaultRule] = []
        self._lock = threading.Lock()
        self._ids = itertools.count(1)

    def add(self, spec: dict[str, Any]) -> FaultRule:
        fields = {f.name for f in dataclasses.fields(FaultRule)} - {"id", "fired"}
        unknown = set(spec) - fields
        if unknown:
            raise ValueError(f"unknown fault fields {sorted(unknown)}; allowed: {sorted(fields)}")
        rule = FaultRule(**spec)
        rule.method = (rule.method or "").upper()
        if rule.kind not in FaultRule.KINDS:
            raise ValueError(f"fault kind must be one of {FaultRule.KINDS}, not {rule.kind!r}")
        rule.id = next(self._ids)
        with self._lock:
            self._rules.append(rule)
        return rule

    def list(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dataclasses.asdict(r) for r in self._rules]

    def clear(self, rule_id: int | None = None) -> None:
        """Remove every rule, or only the rule `rule_id` (the others keep their order and firings)."""
        with self._lock:
            self._rules[:] = [] if rule_id is None else [r for r in self._rules if r.id != rule_id]

    def take(self, path: str, kinds: tuple[str, ...] = FaultRule.REQUEST_KINDS,
             method: str | None = None) -> FaultRule | None:
        """The first live rule of `kinds` matching `path` (and `method`), consuming one firing of it."""
        with self._lock:
            for rule in self._rules:
                if rule.kind in kinds and rule.matches(path, method):
                    if rule.skip > 0:
                        rule.skip -= 1
                        continue
                    if rule.count == 0:
                        continue
                    if rule.count > 0:
                        rule.count -= 1
                    rule.fired += 1
                    return rule
        return None

    def rejects(self, path: str, record_key: str, method: str | None = None) -> bool:
        """True when a live `reject` rule for `path` (and `method`) matches `record_key` (consumes one firing)."""
        with self._lock:
            for rule in self._rules:
                if (rule.kind == "reject" and rule.matches(path, method) and rule.count != 0
                        and rule.match and rule.match in record_key):
                    if rule.count > 0:
                        rule.count -= 1
                    rule.fired += 1
                    return True
        return False


# --------------------------------------------------------------------------- rate limits
class TokenBucket:
    """`rate` requests per second with bursts up to `burst`; thread-safe."""

    def __init__(self, rate: float, burst: float):
        self.rate, self.burst = rate, burst
        self._tokens = burst
        self._at = time.monotonic()
        self._lock = threading.Lock()

    def try_acquire(self) -> float:
        """0.0 when a request may pass now, else the seconds to wait before retrying."""
        with self._lock:
            now = time.monotonic()
            self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
            self._at = now
            if self._tokens >= 1:
                self._tokens -= 1
                return 0.0
            return (1 - self._tokens) / self.rate


# --------------------------------------------------------------------------- webhooks
class WebhookSender:
    """Delivers signed webhooks from a background thread, retrying with backoff like real senders.

    `base_url` is where sources post (`<base_url>/<source>`); None disables delivery. Deliveries
    that still fail after the retries are kept in the store (`_sandbox/webhook_failures`).
    """

    def __init__(self, base_url: str | None, store: Store, attempts: int = 6):
        self.base_url = base_url.rstrip("/") if base_url else None
        self.store = store
        self.attempts = attempts
        self._q: queue.Queue[tuple[str, bytes, dict[str, str]] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="webhook-sender", daemon=True)
        self._thread.start()
        self.delivered = 0

    def send(self, source: str, body: bytes, headers: dict[str, str]) -> None:
        if self.base_url:
            self._q.put((source, body, headers))

    def pending(self) -> int:
        return self._q.unfinished_tasks

    def _run(self) -> None:
        session = requests.Session()
        while True:
            item = self._q.get()
            if item is None:
                return
            source, body, headers = item
            url = f"{self.base_url}/{source}"
            error = "retries exhausted"
            for attempt in range(self.attempts):
                try:
                    r = session.post(url, data=body, headers=headers, timeout=10)
                    if r.status_code < 300:
                        self.delivered += 1
                        error = ""
                        break
                    error = f"HTTP {r.status_code}: {r.text[:200]}"
                    if 400 <= r.status_code < 500 and r.status_code not in (408, 429):
                        break  # the receiver refused it; retrying cannot help
                except requests.RequestException as exc:
                    error = str(exc)
                time.sleep(min(0.2 * 2**attempt, 5))
            if error:
                fid = self.store.next_id("webhook_failure")
                self.store.put("_sandbox", "webhook_failures", str(fid),
                               {"source": source, "url": url, "error": error, "body": body.decode()})
                log.warning("webhook to %s failed: %s", url, error)
            self._q.task_done()

    def flush(self, timeout: float = 30) -> bool:
        """Wait until every queued webhook has been delivered or recorded as failed."""
        deadline = time.monotonic() + timeout
        while self._q.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.02)
        return self._q.unfinished_tasks == 0


# --------------------------------------------------------------------------- interface
@dataclasses.dataclass
class SandboxContext:
    store: Store
    token: str
    faults: Faults
    webhooks: WebhookSender
    rate_limit_scale: float = 1.0  # multiplies every published rate; 0 turns rate limits off


@dataclasses.dataclass
class Emulation:
    """What an emulation module hands the app.

    prefix: mount path such as `/hubspot`; routes: Starlette routes relative to it.
    rate_limit_response(retry_after) and error_response(status): the real API's bodies and
    headers for a 429 and an injected 5xx. rate/burst: the published request rate per second
    and burst (None: not limited). seed(collection, objects): optional hook for
    `POST /_admin/seed/<system>/<collection>`; the default stores each object by its `id`.
    """

    prefix: str
    routes: list[BaseRoute]
    rate_limit_response: Callable[[float], Response]
    error_response: Callable[[int], Response]
    rate: float | None = None
    burst: float | None = None
    seed: Callable[[str, list[dict[str, Any]]], int] | None = None


def bearer_token(request: Request) -> str | None:
    """The token of an `Authorization: Bearer <token>` header, or None."""
    auth = request.headers.get("authorization", "")
    scheme, _, token = auth.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def json_error(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(body, status_code=status, headers=headers)
