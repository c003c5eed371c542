"""The durable journal of a running sync: append-only JSON lines under
`$GROWTH_STACK_HOME/activation/<sync>/`, fsynced after every batch, outside the warehouse.

A run writes an `intent` line (the batch's keys and checksums) before it sends a batch and one `result`
line per record once the destination answered. The next state write folds the journal into
`activation_state` and deletes it; a run killed with SIGKILL leaves its journal, which the next run
folds first, so no accepted record is forgotten (and so none is sent again).
"""

from __future__ import annotations

import fcntl
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson

from growth_stack_dagster import config


def sync_dir(sync_name: str, home: Path | None = None) -> Path:
    """`$GROWTH_STACK_HOME/activation/<sync>`: the sync's journal segments, plan files and lock."""
    path = (home or config.home()) / "activation" / sync_name
    path.mkdir(parents=True, exist_ok=True)
    return path


@contextmanager
def sync_lock(sync_name: str, home: Path | None = None) -> Iterator[None]:
    """One run of a sync at a time (an advisory file lock, released by the OS if the process dies)."""
    path = sync_dir(sync_name, home) / "lock"
    with open(path, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RuntimeError(f"Sync {sync_name!r} is already running in another process; wait for it to "
                               "finish (the lock is released when that process ends).") from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


class Journal:
    """Append-only, fsynced JSONL segments named `journal-<run_id>-<token>-<segment>.jsonl`."""

    def __init__(self, sync_name: str, run_id: str, home: Path | None = None):
        self.dir = sync_dir(sync_name, home)
        self.run_id = run_id
        # A retried Dagster step keeps its run id: the token keeps its segments apart from the first try's.
        self.token = uuid.uuid4().hex[:8]
        self.segment = 0
        self._handle = None

    @property
    def path(self) -> Path:
        return self.dir / f"journal-{self.run_id}-{self.token}-{self.segment:05d}.jsonl"

    def write(self, lines: list[dict[str, Any]]) -> None:
        """Append lines and make them durable before returning."""
        if self._handle is None:
            self._handle = open(self.path, "ab")
        self._handle.write(b"".join(orjson.dumps(line) + b"\n" for line in lines))
        self._handle.flush()
        os.fsync(self._handle.fileno())

    def roll(self) -> Path | None:
        """Close the current segment (to be folded) and start the next; the closed path or None."""
        if self._handle is None:
            return None
        self._handle.close()
        self._handle = None
        closed = self.path
        self.segment += 1
        return closed

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None


def segments(sync_name: str, home: Path | None = None) -> list[Path]:
    """Every journal segment of a sync not yet folded, oldest first."""
    return sorted(sync_dir(sync_name, home).glob("journal-*.jsonl"))


def segment_id(path: Path) -> str:
    """`<run_id>-<token>-<segment>` of a segment file."""
    return path.stem.removeprefix("journal-")


def read_segment(path: Path) -> list[dict[str, Any]]:
    """The lines of a segment; a torn last line (the process died mid-write, before fsync) is dropped."""
    out = []
    for raw in path.read_bytes().splitlines():
        try:
            out.append(orjson.loads(raw))
        except orjson.JSONDecodeError:
            continue
    return out
