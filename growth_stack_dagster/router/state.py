"""The router's own files under `$GROWTH_STACK_HOME/router/`.

* `state.json`: per route its cursor, counts (delivered, duplicates, skipped, failed attempts,
  dead-lettered), lag and backlog, and when it was written; replaced atomically (write, fsync,
  rename), so a SIGKILL leaves the previous or the next version, never half of one. Dagster reads it.
* `dead_letters/<route>.jsonl`: messages that kept failing, one JSON line each with the reason.
* `identities.sqlite3`: the emails the stream named people by (user id or anonymous id -> email).
"""

from __future__ import annotations

import contextlib
import copy
import fcntl
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from growth_stack_dagster import config

COUNTS = ("delivered", "duplicates", "skipped", "filtered", "failed", "dead_lettered")


def router_dir() -> Path:
    """`$GROWTH_STACK_HOME/router`."""
    return config.home() / "router"


def state_path(directory: Path | None = None) -> Path:
    return (directory or router_dir()) / "state.json"


def write_atomically(path: Path, data: bytes) -> None:
    """Replace `path` with `data` so that a crash leaves either the old or the new file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_state(directory: Path | None = None) -> dict[str, Any]:
    """The last state the router wrote ({} when it never ran)."""
    path = state_path(directory)
    try:
        return orjson.loads(path.read_bytes())
    except FileNotFoundError:
        return {}
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"the router's state file {path} is not valid JSON ({exc}); restore it from a backup, "
                         "or delete it to start every route again from today's files.") from None


class StateStore:
    """The router's state in memory, saved to `state.json` by one thread at a time."""

    def __init__(self, directory: Path | None = None):
        self.directory = directory or router_dir()
        self.directory.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._save_lock = threading.Lock()
        self._data = read_state(self.directory)
        self._data.setdefault("routes", {})
        self._dirty = True
        self._saved_at = 0.0

    def route(self, name: str) -> dict[str, Any]:
        """A copy of one route's saved state (empty for a new route)."""
        with self._lock:
            return copy.deepcopy(self._data["routes"].get(name, {}))

    def update(self, name: str, **fields: Any) -> None:
        """Replace fields of a route's state in memory (`save` makes it durable)."""
        with self._lock:
            route = self._data["routes"].setdefault(name, {})
            changed = {k: v for k, v in fields.items() if route.get(k) != v}
            if changed:
                route.update(copy.deepcopy(changed))
                self._dirty = True

    def retire_others(self, names: set[str]) -> None:
        """Mark routes no longer in the routes file as retired (their cursors are kept)."""
        with self._lock:
            for name, route in self._data["routes"].items():
                route["retired"] = name not in names

    def save(self, heartbeat_every: float | None = None) -> None:
        """Write the whole state durably; with `heartbeat_every`, only if something changed or
        that many seconds passed (the write time tells readers the router is alive)."""
        with self._save_lock:
            if heartbeat_every is not None and not self._dirty and time.time() - self._saved_at < heartbeat_every:
                return
            with self._lock:
                self._dirty = False
                self._saved_at = time.time()
                self._data["updated_at"] = time.time()
                self._data["pid"] = os.getpid()
                data = orjson.dumps(self._data, option=orjson.OPT_INDENT_2)
            write_atomically(state_path(self.directory), data)


class DeadLetters:
    """A route's dead-letter file, locked while appended to or rewritten."""

    def __init__(self, route: str, directory: Path | None = None):
        self.path = (directory or router_dir()) / "dead_letters" / f"{route}.jsonl"

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_suffix(".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def add(self, entries: list[dict[str, Any]]) -> None:
        """Append entries durably."""
        if not entries:
            return
        with self._locked():
            with open(self.path, "ab") as fh:
                fh.write(b"".join(orjson.dumps(e) + b"\n" for e in entries))
                fh.flush()
                os.fsync(fh.fileno())

    def read(self) -> list[dict[str, Any]]:
        """Every entry now in the file."""
        try:
            return [orjson.loads(line) for line in self.path.read_bytes().splitlines() if line.strip()]
        except FileNotFoundError:
            return []

    @contextlib.contextmanager
    def rewriting(self) -> Iterator[list[dict[str, Any]]]:
        """Hold the file: yields its entries; whatever the list holds on exit replaces the file."""
        with self._locked():
            entries = self.read()
            yield entries
            data = b"".join(orjson.dumps(e) + b"\n" for e in entries)
            self.path.parent.mkdir(parents=True, exist_ok=True)
            write_atomically(self.path, data)


class IdentityBook:
    """Emails the stream named people by: identify calls (and any message with traits.email)
    teach `user_id -> email` and `anonymous_id -> email`; kept in SQLite so a restart keeps them."""

    def __init__(self, directory: Path | None = None):
        path = (directory or router_dir()) / "identities.sqlite3"
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS emails (kind TEXT, id TEXT, email TEXT, PRIMARY KEY (kind, id))")
        self._lock = threading.Lock()

    @staticmethod
    def _email_in(message: dict[str, Any]) -> str | None:
        for holder in (message.get("traits"), (message.get("context") or {}).get("traits"), message.get("properties")):
            if isinstance(holder, dict) and isinstance(holder.get("email"), str) and "@" in holder["email"]:
                return holder["email"].strip()
        return None

    def learn(self, message: dict[str, Any]) -> None:
        """Remember the email a message names for its user id and anonymous id."""
        email = self._email_in(message)
        if not email:
            return
        rows = [(kind, str(message[key]), email) for kind, key in (("user", "userId"), ("anonymous", "anonymousId"))
                if message.get(key)]
        if rows:
            with self._lock:
                self._db.executemany("INSERT OR REPLACE INTO emails VALUES (?, ?, ?)", rows)

    def email_for(self, message: dict[str, Any]) -> str | None:
        """The message's own email, else the one learned for its user id, else its anonymous id."""
        email = self._email_in(message)
        if email:
            return email
        with self._lock:
            for kind, key in (("user", "userId"), ("anonymous", "anonymousId")):
                if message.get(key):
                    row = self._db.execute("SELECT email FROM emails WHERE kind=? AND id=?",
                                           (kind, str(message[key]))).fetchone()
                    if row:
                        return row[0]
        return None
