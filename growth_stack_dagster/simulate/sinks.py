"""Where generated data goes: the sandbox's seed endpoint, the event files, the collector, the
Customer.io helper, finance CSV drops and the ground-truth file. Every sink buffers a bounded
amount and writes in batches, so memory does not grow with the number of customers.
"""

from __future__ import annotations

import base64
import csv
import datetime as dt
import os
import queue
import threading
from collections import Counter, OrderedDict, defaultdict
from pathlib import Path
from typing import Any

import orjson
import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from growth_stack_dagster import eventfiles

COLLECTOR_MAX_REQUEST_BYTES = 500 * 1024
_COLLECTOR_BATCH_BYTES = COLLECTOR_MAX_REQUEST_BYTES - 4 * 1024  # room for the envelope around the messages


class SinkError(RuntimeError):
    """A destination refused or could not take generated data; the message says what to do."""


def http_session(attempts: int = 8) -> requests.Session:
    """A session that retries 429/502/503/504 and connection errors with backoff, honouring Retry-After."""
    retry = Retry(total=attempts, connect=attempts, read=2, status=attempts, backoff_factor=0.2,
                  backoff_max=10, status_forcelist=(429, 502, 503, 504), allowed_methods=None,
                  respect_retry_after_header=True, raise_on_status=False)
    session = requests.Session()
    adapter = HTTPAdapter(max_retries=retry, pool_connections=2, pool_maxsize=4)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def reachable(url: str, path: str, timeout: float = 2.0) -> bool:
    """True when `GET url+path` answers 2xx."""
    try:
        return requests.get(url + path, timeout=timeout).ok
    except requests.RequestException:
        return False


# ----------------------------------------------------------------------------- sandbox seeding

class SandboxSeeder:
    """Batches objects per (system, collection) into `POST {sandbox}/_admin/seed/<system>/<collection>`.

    When `batch_size` objects (or `max_bytes`) are buffered, every buffer is sent in the order the
    collections were first seen (owners and products before the deals and invoices that name them).
    Requests go out from one background thread, at most `inflight` batches ahead of generation.
    """

    def __init__(self, base_url: str, batch_size: int = 2000, max_bytes: int = 8 << 20, inflight: int = 2):
        self.base_url = base_url.rstrip("/")
        self.batch_size, self.max_bytes = batch_size, max_bytes
        self.seeded: dict[str, Counter[str]] = defaultdict(Counter)
        self.requests = 0
        self._buffers: dict[tuple[str, str], list[bytes]] = {}
        self._count = self._bytes = 0
        self._session = http_session()
        self._queue: queue.Queue[tuple[str, str, bytes, int] | None] = queue.Queue(maxsize=inflight)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="sandbox-seeder", daemon=True)
        self._thread.start()

    def add(self, system: str, collection: str, obj: dict[str, Any]) -> None:
        line = orjson.dumps(obj)
        self._buffers.setdefault((system, collection), []).append(line)
        self._count += 1
        self._bytes += len(line) + 1
        if self._count >= self.batch_size or self._bytes >= self.max_bytes:
            self.flush()

    def flush(self) -> None:
        for (system, collection), lines in self._buffers.items():
            if lines:
                self._put((system, collection, b"\n".join(lines) + b"\n", len(lines)))
                lines.clear()
        self._count = self._bytes = 0

    def close(self) -> dict[str, dict[str, int]]:
        """Send what is left, wait for every request; the counts the sandbox reported as seeded."""
        self.flush()
        self._put(None)
        self._thread.join()
        self._raise()
        return {system: dict(sorted(c.items())) for system, c in sorted(self.seeded.items())}

    def _put(self, item: tuple[str, str, bytes, int] | None) -> None:
        while True:
            self._raise()
            try:
                self._queue.put(item, timeout=0.5)
                return
            except queue.Full:
                continue

    def _raise(self) -> None:
        if self._error is not None:
            raise SinkError(str(self._error)) from self._error

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            if self._error is not None:
                continue  # drain: the generator stops at its next add
            system, collection, body, count = item
            url = f"{self.base_url}/_admin/seed/{system}/{collection}"
            try:
                r = self._session.post(url, data=body, timeout=300,
                                       headers={"Content-Type": "application/x-ndjson"})
                if r.status_code != 200:
                    raise SinkError(f"the sandbox refused {count} {system} {collection} at {url}: "
                                    f"HTTP {r.status_code} {r.text[:300]}")
                self.seeded[system][collection] += int(r.json().get("seeded", 0))
                self.requests += 1
            except requests.RequestException as exc:
                self._error = SinkError(f"could not seed {system} {collection} at {url} ({exc}); "
                                        "is `growth-stack sandbox` running there?")
            except BaseException as exc:  # noqa: BLE001 - handed to the generating thread
                self._error = exc


# ----------------------------------------------------------------------------- event files

class EventFileSink:
    """Collects history lines per (source, day) and publishes them with `eventfiles.write_closed_file`.

    People are generated one after another and each touches every day, so lines are first appended
    to one private spool file per (source, day) under `spool_dir` (at most `max_open` handles at a
    time); `close()` then publishes each spool as closed event files of up to `max_file_bytes`.
    Memory stays constant at any scale and each partition gets one file (not thousands of small ones).
    """

    def __init__(self, root: Path, spool_dir: Path, max_open: int = 128, max_file_bytes: int = 256 << 20):
        self.root, self.spool_dir = Path(root), Path(spool_dir)
        self.max_open, self.max_file_bytes = max_open, max_file_bytes
        self.lines: Counter[str] = Counter()
        self.files: Counter[str] = Counter()
        self.paths: list[Path] = []
        self._handles: OrderedDict[tuple[str, str], Any] = OrderedDict()
        self._spools: dict[tuple[str, str], Path] = {}
        self.spool_dir.mkdir(parents=True, exist_ok=True)

    def add(self, source: str, day: str, message: dict[str, Any]) -> None:
        self.add_line(source, day, orjson.dumps(message))

    def add_line(self, source: str, day: str, line: bytes) -> None:
        key = (source, day)
        fh = self._handles.get(key)
        if fh is None:
            fh = self._open(key)
        else:
            self._handles.move_to_end(key)
        fh.write(line)
        fh.write(b"\n")
        self.lines[source] += 1

    def _open(self, key: tuple[str, str]) -> Any:
        if len(self._handles) >= self.max_open:
            self._handles.popitem(last=False)[1].close()
        path = self._spools.get(key)
        if path is None:
            eventfiles.check_source_name(key[0])
            path = self._spools[key] = self.spool_dir / f"{key[0]}__{key[1]}.spool"
        fh = self._handles[key] = open(path, "ab", buffering=64 << 10)
        return fh

    def close(self) -> dict[str, dict[str, int]]:
        """Publish every spool as closed event files; {"lines": per source, "files": per source}."""
        for fh in self._handles.values():
            fh.close()
        self._handles.clear()
        for key in sorted(self._spools):
            spool = self._spools.pop(key)
            with open(spool, "rb") as fh:
                while True:
                    path = eventfiles.write_closed_file(self.root, key[0], key[1], _take(fh, self.max_file_bytes))
                    if path is None:
                        break
                    self.files[key[0]] += 1
                    self.paths.append(path)
            spool.unlink()
        self._remove_spool_dir()
        return {"lines": dict(sorted(self.lines.items())), "files": dict(sorted(self.files.items()))}

    def abort(self) -> None:
        """Drop everything not yet published (after a failure), leaving no spool behind."""
        for fh in self._handles.values():
            fh.close()
        self._handles.clear()
        for spool in self._spools.values():
            spool.unlink(missing_ok=True)
        self._spools.clear()
        self._remove_spool_dir()

    def _remove_spool_dir(self) -> None:
        try:
            self.spool_dir.rmdir()
        except OSError:
            pass  # not empty (someone else's files) or already gone


def _take(fh: Any, limit: int):
    """Lines (without newline) from `fh` until about `limit` bytes were read."""
    size = 0
    for line in fh:
        yield line[:-1]
        size += len(line)
        if size >= limit:
            return


# ----------------------------------------------------------------------------- collector

class CollectorSender:
    """Sends today's messages to `POST {collector}/v1/batch` as each source's SDK would.

    Messages go with their client fields only (`timestamp` is the client clock; `sentAt` is stamped
    when the batch leaves), since the collector stamps `receivedAt` and corrects `timestamp` itself.
    Batches stay under the collector's 500 KB request limit; 429 and 503 are retried.
    """

    def __init__(self, base_url: str, write_keys: dict[str, str]):
        self.base_url = base_url.rstrip("/")
        self._auth = {source: "Basic " + base64.b64encode(f"{key}:".encode()).decode()
                      for key, source in write_keys.items()}
        self._session = http_session()
        self._buffers: dict[str, list[bytes]] = {}
        self._sizes: Counter[str] = Counter()
        self.sent: Counter[str] = Counter()
        self.requests = 0

    def add(self, source: str, message: dict[str, Any]) -> None:
        if source not in self._auth:
            raise SinkError(f"no write key for source {source!r}; add {source}=<key> to GROWTH_STACK_WRITE_KEYS.")
        client = {k: v for k, v in message.items() if k not in ("receivedAt", "sentAt", "timestamp", "originalTimestamp")}
        client["timestamp"] = message["originalTimestamp"]
        line = orjson.dumps(client)
        if self._sizes[source] + len(line) + 1 > _COLLECTOR_BATCH_BYTES:
            self._send(source)
        self._buffers.setdefault(source, []).append(line)
        self._sizes[source] += len(line) + 1

    def close(self) -> dict[str, int]:
        for source in sorted(self._buffers):
            self._send(source)
        return dict(sorted(self.sent.items()))

    def _send(self, source: str) -> None:
        lines = self._buffers.pop(source, [])
        self._sizes.pop(source, None)
        if not lines:
            return
        sent_at = dt.datetime.now(dt.timezone.utc)
        body = (b'{"batch":[' + b",".join(lines) + b'],"sentAt":"'
                + f"{sent_at:%Y-%m-%dT%H:%M:%S}.{sent_at.microsecond // 1000:03d}Z".encode() + b'"}')
        url = f"{self.base_url}/v1/batch"
        try:
            r = self._session.post(url, data=body, timeout=60, headers={
                "Authorization": self._auth[source], "Content-Type": "application/json"})
        except requests.RequestException as exc:
            raise SinkError(f"could not send today's {source} events to {url} ({exc}).") from exc
        if r.status_code >= 300:
            raise SinkError(f"the collector refused a batch of {len(lines)} {source} messages: "
                            f"HTTP {r.status_code} {r.text[:300]}")
        self.sent[source] += len(lines)
        self.requests += 1


class CustomerioHelper:
    """Today's emails through the sandbox's `POST /customerio/_sandbox/messages`, which sends the
    signed reporting webhooks (delivered, opened, clicked) to the collector."""

    PATH = "/customerio/_sandbox/messages"

    def __init__(self, sandbox_url: str):
        self.url = sandbox_url.rstrip("/") + self.PATH
        self._session = http_session()
        self.emails = 0
        self.webhooks = 0

    @classmethod
    def available(cls, sandbox_url: str) -> bool:
        """True when the sandbox has the helper (it answers an empty body with 400, not 404)."""
        try:
            r = requests.post(sandbox_url.rstrip("/") + cls.PATH, json={}, timeout=5)
        except requests.RequestException:
            return False
        return r.status_code == 400

    def send(self, spec: dict[str, Any]) -> None:
        try:
            r = self._session.post(self.url, data=orjson.dumps(spec), timeout=30,
                                   headers={"Content-Type": "application/json"})
        except requests.RequestException as exc:
            raise SinkError(f"could not reach the Customer.io helper at {self.url} ({exc}).") from exc
        if r.status_code != 202:
            raise SinkError(f"the Customer.io helper refused an email: HTTP {r.status_code} {r.text[:300]}")
        self.emails += 1
        self.webhooks += len(r.json().get("webhooks", []))


# ----------------------------------------------------------------------------- plain files

def write_csv_atomic(path: Path, fieldnames: list[str], rows: list[dict[str, Any]]) -> Path:
    """Write a CSV next to its final name, fsync, then rename, so a watcher never reads half of it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=fieldnames)
        writer.writeheader()
        writer.writerows(rows)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    return path


class JsonLinesWriter:
    """A JSON-lines file written as it goes and renamed into place on `close()`."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._tmp = self.path.with_name(f".{self.path.name}.tmp")
        self._fh = open(self._tmp, "wb")
        self.count = 0

    def write(self, obj: dict[str, Any]) -> None:
        self._fh.write(orjson.dumps(obj) + b"\n")
        self.count += 1

    def close(self) -> Path:
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self._fh.close()
        os.replace(self._tmp, self.path)
        return self.path

    def abort(self) -> None:
        self._fh.close()
        self._tmp.unlink(missing_ok=True)
