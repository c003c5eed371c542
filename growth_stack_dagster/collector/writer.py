"""Durable event-file writing with group commit, rotation and crash recovery.

One `EventWriter` per worker process. Requests hand it their lines and wait; a single committer
writes everything pending to the open files (one per source and received date), fsyncs each
touched file once, and only then wakes the waiting requests, so concurrent requests share one
fsync. While a commit runs in its thread, new requests queue for the next one.

Open files are hidden (`.collector-<time>-<hex>.jsonl.open`, see `eventfiles`), held under an
exclusive `flock` while written, and published (renamed to `.jsonl`) when older than `max_age`,
larger than `max_bytes`, from a previous UTC day, or at shutdown. After a crash,
`recover_open_files` publishes what a dead writer left: everything up to its last newline
(acknowledged lines were fsynced, so only an unacknowledged torn tail is dropped).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import errno
import fcntl
import logging
import os
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from growth_stack_dagster import eventfiles

log = logging.getLogger("growth_stack.collector")

FILE_PREFIX = "collector"


class Unavailable(Exception):
    """The writer cannot make lines durable now (disk full, write error, overload); retry later."""

    def __init__(self, reason: str, retry_after: int = 1):
        super().__init__(reason)
        self.reason, self.retry_after = reason, retry_after


@dataclass
class _OpenFile:
    fd: int
    path: Path
    opened_at: float
    size: int = 0
    durable_size: int = 0


@dataclass
class _Pending:
    key: tuple[str, str]
    data: bytes
    future: asyncio.Future = field(repr=False)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _fsync_new_dirs(directory: Path) -> None:
    """mkdir -p `directory`, fsyncing each parent whose entries changed (power-loss safety)."""
    missing = []
    d = directory
    while not d.exists():
        missing.append(d)
        d = d.parent
    if not missing:
        return
    directory.mkdir(parents=True, exist_ok=True)
    for d in reversed(missing):
        eventfiles.fsync_dir(d.parent)


class EventWriter:
    """Appends lines durably under `root` (the events folder); one instance per process."""

    def __init__(self, root: Path, *, max_bytes: int = 64 << 20, max_age: float = 5.0,
                 max_pending_bytes: int = 128 << 20, min_free_bytes: int = 100 << 20):
        self.root = Path(root)
        self.max_bytes, self.max_age = max_bytes, max_age
        self.max_pending_bytes, self.min_free_bytes = max_pending_bytes, min_free_bytes
        self._files: dict[tuple[str, str], _OpenFile] = {}
        self._pending: list[_Pending] = []
        self._pending_bytes = 0
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="event-writer")
        self._closing = False
        self._free_checked_at = 0.0
        self._disk_full = False

    async def start(self) -> None:
        """Start the committer task on the running loop."""
        self.root.mkdir(parents=True, exist_ok=True)
        self._wake = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._run(), name="event-writer")

    async def append(self, source: str, day: str, data: bytes) -> None:
        """Return once `data` (complete newline-terminated lines) is fsynced; raise `Unavailable`."""
        if self._closing:
            raise Unavailable("the collector is shutting down", retry_after=1)
        self._check_free_space()
        if self._pending_bytes + len(data) > self.max_pending_bytes:
            raise Unavailable("the collector is overloaded (write queue full)", retry_after=1)
        future = asyncio.get_running_loop().create_future()
        self._pending.append(_Pending((source, day), data, future))
        self._pending_bytes += len(data)
        self._wake.set()
        await future

    def _check_free_space(self) -> None:
        now = time.monotonic()
        if now - self._free_checked_at > 1.0:
            self._free_checked_at = now
            self._disk_full = shutil.disk_usage(self.root).free < self.min_free_bytes
        if self._disk_full:
            raise Unavailable("the disk holding the event files is (nearly) full", retry_after=30)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if not self._closing:
                try:
                    await asyncio.wait_for(self._wake.wait(), timeout=min(1.0, self.max_age / 2))
                except asyncio.TimeoutError:
                    pass
            self._wake.clear()
            batch, self._pending, self._pending_bytes = self._pending, [], 0
            stop = self._closing and not batch
            try:
                results = await loop.run_in_executor(self._executor, self._commit, batch, stop)
            except Exception as exc:  # a bug, not an I/O error: never leave requests hanging
                log.exception("event writer commit failed")
                results = {p.key: exc for p in batch}
            for p in batch:
                if p.future.done():
                    continue
                error = results.get(p.key, "no result")
                if error is None:
                    p.future.set_result(None)
                else:
                    # strerror only: the client needs to know to retry, not the server's paths
                    reason = getattr(error, "strerror", None) or type(error).__name__
                    p.future.set_exception(Unavailable(f"the event file could not be written ({reason})"))
            if stop:
                return

    def _commit(self, batch: list[_Pending], close_all: bool) -> dict[tuple[str, str], BaseException | None]:
        """Runs in the writer thread: write, fsync once per file, then rotate."""
        by_key: dict[tuple[str, str], list[bytes]] = {}
        for p in batch:
            by_key.setdefault(p.key, []).append(p.data)
        results: dict[tuple[str, str], BaseException | None] = {}
        touched: list[tuple[tuple[str, str], _OpenFile]] = []
        now = time.monotonic()
        for key, chunks in by_key.items():
            f = self._files.get(key)
            try:
                if f is None:
                    f = self._files[key] = self._open(key, now)
                _write_all(f.fd, b"".join(chunks))
                f.size += sum(len(c) for c in chunks)
                touched.append((key, f))
            except OSError as exc:
                results[key] = exc
                self._abandon(key, exc)
        for key, f in touched:
            try:
                os.fdatasync(f.fd)
                f.durable_size = f.size
                results[key] = None
            except OSError as exc:
                results[key] = exc
                self._abandon(key, exc)
        today = dt.datetime.now(dt.timezone.utc).date().isoformat()
        for key, f in list(self._files.items()):
            if close_all or f.size >= self.max_bytes or now - f.opened_at >= self.max_age or key[1] != today:
                self._publish(key)
        return results

    def _open(self, key: tuple[str, str], now: float) -> _OpenFile:
        directory = eventfiles.partition_dir(self.root, key[0], key[1])
        _fsync_new_dirs(directory)
        path = eventfiles.open_path(directory, eventfiles.new_file_stem(FILE_PREFIX))
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            eventfiles.fsync_dir(directory)
        except OSError:
            os.close(fd)
            raise
        return _OpenFile(fd=fd, path=path, opened_at=now)

    def _publish(self, key: tuple[str, str]) -> None:
        """Close an open file whose every byte is durable: rename it to its closed name."""
        f = self._files.pop(key)
        try:
            if f.durable_size == 0:
                f.path.unlink(missing_ok=True)
            else:
                eventfiles.close_file(f.path)
        except OSError:
            log.exception("could not publish %s; it will be recovered on restart", f.path.name)
        finally:
            os.close(f.fd)

    def _abandon(self, key: tuple[str, str], exc: BaseException) -> None:
        """After a write/fsync error: cut the file back to its durable part and publish that."""
        f = self._files.get(key)
        log.error("writing %s failed (%s); closing it at its last durable line", key, exc)
        if f is None:
            return
        try:
            os.ftruncate(f.fd, f.durable_size)
            os.fsync(f.fd)
            f.size = f.durable_size
            self._publish(key)
        except OSError:
            # Leave it for recovery on restart rather than publish bytes not known durable.
            self._files.pop(key, None)
            os.close(f.fd)
            log.exception("could not truncate %s; leaving it for recovery", f.path.name)

    async def close(self) -> None:
        """Commit what is pending, publish every open file, stop the committer."""
        self._closing = True
        if self._task is not None:
            self._wake.set()
            await self._task
            self._task = None
        self._executor.shutdown(wait=True)


def _last_newline_end(fd: int, size: int) -> int:
    """Offset just after the last b'\\n' in the file (0 if none), reading backwards."""
    position = size
    chunk = 1 << 16
    while position > 0:
        start = max(0, position - chunk)
        data = os.pread(fd, position - start, start)
        i = data.rfind(b"\n")
        if i >= 0:
            return start + i + 1
        position = start
    return 0


def recover_open_files(root: Path) -> list[Path]:
    """Publish `.collector-*.jsonl.open` files that no live writer holds; return the closed paths.

    A torn final line (no trailing newline) is dropped: it was never acknowledged. Files locked
    by a running collector are left alone; files written by other tools are never touched.
    """
    published: list[Path] = []
    for path in sorted(Path(root).glob(f"source=*/date=*/.{FILE_PREFIX}-*{eventfiles.OPEN_SUFFIX}")):
        try:
            fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
        except FileNotFoundError:
            continue
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                    continue  # a live collector is writing it
                raise
            size = os.fstat(fd).st_size
            keep = _last_newline_end(fd, size)
            if keep != size:
                log.warning("dropping a torn last line (%d bytes) from %s", size - keep, path.name)
                os.ftruncate(fd, keep)
            if keep == 0:
                path.unlink()
                eventfiles.fsync_dir(path.parent)
                continue
            os.fsync(fd)
            published.append(eventfiles.close_file(path))
        finally:
            os.close(fd)
    return published
