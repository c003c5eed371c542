"""Reading the event files as the collector writes them, with a cursor that survives everything.

A file is known by its key `<source>/<date>/<stem>`: the same key whether it is still open
(`.<stem>.jsonl.open`) or already published (`<stem>.jsonl`), so the collector's rename never
moves a cursor. The cursor holds, per file, the byte offset just after the last line the route
finished with, and `since`, the first received date still being read (older days are done).
Only complete lines (ending in a newline) are read: the collector appends whole lines and a
torn tail left by a crash is never acknowledged (and is cut by its recovery).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
from pathlib import Path
from typing import Any

from growth_stack_dagster import eventfiles

READ_CHUNK = 1 << 20


@dataclasses.dataclass
class Cursor:
    """Where a route stands: the first date still read, and the offset reached in each file."""

    since: str
    files: dict[str, int] = dataclasses.field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"since": self.since, "files": dict(self.files)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Cursor:
        return cls(since=str(data["since"]), files={str(k): int(v) for k, v in (data.get("files") or {}).items()})


@dataclasses.dataclass(frozen=True)
class FileState:
    """One event file as seen on disk now."""

    key: str
    source: str
    day: str
    path: Path
    size: int
    closed: bool


@dataclasses.dataclass
class Line:
    """One complete line read from a file: its key and the offsets it spans."""

    key: str
    source: str
    start: int
    end: int
    raw: bytes


def today() -> str:
    """Today's UTC date (the collector's received-date partition)."""
    return dt.datetime.now(dt.timezone.utc).date().isoformat()


def _stem(name: str) -> tuple[str, bool] | None:
    """(stem, closed) of an event file name, or None for anything else."""
    if name.endswith(eventfiles.OPEN_SUFFIX) and name.startswith("."):
        return name[1:-len(eventfiles.OPEN_SUFFIX)], False
    if name.endswith(eventfiles.CLOSED_SUFFIX) and not name.startswith("."):
        return name[:-len(eventfiles.CLOSED_SUFFIX)], True
    return None


def source_dirs(root: Path, sources: list[str] | None) -> list[tuple[str, Path]]:
    """(source, folder) of the sources to read: the given ones, or every source present."""
    if sources is not None:
        return [(s, Path(root) / f"source={s}") for s in sources]
    try:
        entries = sorted(os.scandir(root), key=lambda e: e.name)
    except FileNotFoundError:
        return []
    return [(e.name[len("source="):], Path(e.path)) for e in entries if e.name.startswith("source=")]


def scan(root: Path, sources: list[str] | None, since: str, until: str | None = None) -> list[FileState]:
    """Every event file of `sources` received on dates since..until (inclusive), oldest first."""
    found: list[FileState] = []
    for source, sdir in source_dirs(root, sources):
        try:
            days = sorted(e.name[len("date="):] for e in os.scandir(sdir) if e.name.startswith("date="))
        except FileNotFoundError:
            continue
        for day in days:
            if day < since or (until is not None and day > until):
                continue
            ddir = sdir / f"date={day}"
            try:
                entries = list(os.scandir(ddir))
            except FileNotFoundError:
                continue
            by_stem: dict[str, FileState] = {}
            for entry in entries:
                parsed = _stem(entry.name)
                if parsed is None:
                    continue
                stem, closed = parsed
                try:
                    size = entry.stat().st_size
                except FileNotFoundError:  # renamed or removed between listing and stat
                    continue
                state = FileState(f"{source}/{day}/{stem}", source, day, Path(entry.path), size, closed)
                # In the instant of a rename both names may be listed: the closed one wins.
                if stem not in by_stem or closed:
                    by_stem[stem] = state
            found += [by_stem[s] for s in sorted(by_stem)]
    found.sort(key=lambda f: (f.day, f.key.rsplit("/", 1)[1], f.source))
    return found


def _open_either(state: FileState):
    """Open a file under its current name, following a rename from open to closed."""
    try:
        return open(state.path, "rb")
    except FileNotFoundError:
        if state.closed:
            raise
        stem = state.key.rsplit("/", 1)[1]
        return open(eventfiles.closed_path(state.path.parent, stem), "rb")


def read_lines(state: FileState, offset: int, max_bytes: int = READ_CHUNK) -> list[Line]:
    """Complete lines of a file from `offset`, up to about `max_bytes`."""
    try:
        with _open_either(state) as fh:
            fh.seek(offset)
            data = fh.read(max_bytes)
            if data and not data.endswith(b"\n"):
                cut = data.rfind(b"\n")
                if cut < 0:  # one line longer than max_bytes: read up to its end
                    more = data
                    while True:
                        chunk = fh.read(max_bytes)
                        if not chunk:
                            return []  # a torn tail, not yet a line
                        more += chunk
                        cut = more.find(b"\n", len(more) - len(chunk))
                        if cut >= 0:
                            data = more[:cut + 1]
                            break
                else:
                    data = data[:cut + 1]
    except FileNotFoundError:
        return []
    lines: list[Line] = []
    position = offset
    for raw in data.splitlines(keepends=True):
        lines.append(Line(state.key, state.source, position, position + len(raw), raw))
        position += len(raw)
    return lines


def start_date(start: str) -> str:
    """The first date a new route reads: today (UTC), or the beginning of the files."""
    return today() if start == "today" else "0000-00-00"


def compact(cursor: Cursor, files: list[FileState]) -> None:
    """Move `since` past days that are over and fully read, and forget their files' offsets.

    Only days before yesterday count as over: a request received just before midnight may still
    be committed to a new file of its day just after it.
    """
    yesterday = (dt.date.fromisoformat(today()) - dt.timedelta(days=1)).isoformat()
    by_day: dict[str, list[FileState]] = {}
    for f in files:
        by_day.setdefault(f.day, []).append(f)
    for day in sorted(by_day):
        if day >= yesterday:
            break
        if not all(f.closed and cursor.files.get(f.key, 0) >= f.size for f in by_day[day]):
            break
        cursor.since = (dt.date.fromisoformat(day) + dt.timedelta(days=1)).isoformat()
    cursor.files = {k: v for k, v in cursor.files.items() if k.split("/")[1] >= cursor.since}
