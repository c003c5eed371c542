"""The event-file layout: the one contract between the collector, the simulator and the loader.

    $GROWTH_STACK_HOME/events/source=<source>/date=<YYYY-MM-DD>/<name>.jsonl

* `source` is an event source (`web`, `ios`, `server`, ... from the write keys) or a webhook
  source (`stripe`, `customerio`, or any generic Standard Webhooks source name).
* `date` is the UTC date the collector received the message.
* A *closed* file ends in `.jsonl` and never changes again. A file being written is hidden
  (`.<name>.jsonl.open`) and renamed to its closed name only after it is fsynced, so a
  reader that globs `*.jsonl` never sees a half-written file.
* One JSON object per line. Event sources hold Segment messages (with `type`, `messageId`,
  `receivedAt`, ...). Webhook sources hold envelopes
  `{"type": "webhook", "messageId": ..., "receivedAt": ..., "body": "<raw body as received>"}`.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import uuid
from collections.abc import Iterable
from pathlib import Path

CLOSED_SUFFIX = ".jsonl"
OPEN_SUFFIX = ".jsonl.open"
_SOURCE_RE = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
_PARTITION_RE = re.compile(r"source=([^/]+)/date=(\d{4}-\d{2}-\d{2})/[^/]+\.jsonl$")


def check_source_name(source: str) -> str:
    """Return `source` if it is a valid source name, else raise ValueError."""
    # fullmatch: `$` would also accept a trailing newline, which would then name a folder
    if not isinstance(source, str) or not _SOURCE_RE.fullmatch(source):
        raise ValueError(
            f"source name {source!r} must be lower-case letters, digits, '_' or '-' (at most 64)."
        )
    return source


def partition_dir(root: Path, source: str, day: dt.date | str) -> Path:
    """Folder holding the files of one source for one received date."""
    day_s = day if isinstance(day, str) else day.isoformat()
    return Path(root) / f"source={check_source_name(source)}" / f"date={day_s}"


def new_file_stem(prefix: str = "part") -> str:
    """A unique, time-ordered file stem such as `part-20261126T170102123456-<hex>`."""
    now = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S%f")
    return f"{prefix}-{now}-{uuid.uuid4().hex[:12]}"


def open_path(directory: Path, stem: str) -> Path:
    return directory / f".{stem}{OPEN_SUFFIX}"


def closed_path(directory: Path, stem: str) -> Path:
    return directory / f"{stem}{CLOSED_SUFFIX}"


def fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def close_file(open_file: Path) -> Path:
    """Atomically publish an already fsynced open file under its closed name; returns it."""
    name = open_file.name
    if not (name.startswith(".") and name.endswith(OPEN_SUFFIX)):
        raise ValueError(f"{open_file} is not an open event file")
    target = open_file.with_name(name[1 : -len(OPEN_SUFFIX)] + CLOSED_SUFFIX)
    os.replace(open_file, target)
    fsync_dir(open_file.parent)
    return target


def write_closed_file(root: Path, source: str, day: dt.date | str, lines: Iterable[bytes]) -> Path | None:
    """Write `lines` (each one JSON document, without newline) as one closed file.

    Writes the hidden open file, fsyncs it, then renames it. Returns the closed path, or None
    when `lines` is empty (no empty files are published).
    """
    directory = partition_dir(root, source, day)
    directory.mkdir(parents=True, exist_ok=True)
    stem = new_file_stem()
    tmp = open_path(directory, stem)
    count = 0
    with open(tmp, "wb") as fh:
        for line in lines:
            fh.write(line)
            fh.write(b"\n")
            count += 1
        fh.flush()
        os.fsync(fh.fileno())
    if count == 0:
        tmp.unlink()
        return None
    return close_file(tmp)


def parse_closed_path(path: Path | str) -> tuple[str, str] | None:
    """(source, YYYY-MM-DD) of a closed event file path, or None if it is not one."""
    m = _PARTITION_RE.search(Path(path).as_posix())
    return (m.group(1), m.group(2)) if m else None


def closed_files(root: Path, day: dt.date | str | None = None) -> list[Path]:
    """All closed event files under `root`, optionally only those received on `day`, sorted."""
    day_glob = "*" if day is None else (day if isinstance(day, str) else day.isoformat())
    return sorted(Path(root).glob(f"source=*/date={day_glob}/*{CLOSED_SUFFIX}"))


def days_with_files(root: Path) -> list[str]:
    """Sorted received dates (YYYY-MM-DD) that have at least one closed file."""
    return sorted({p[1] for f in closed_files(root) if (p := parse_closed_path(f))})
