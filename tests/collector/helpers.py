"""Reading what the collector wrote, for the collector tests."""

from __future__ import annotations

import time
from pathlib import Path

import orjson

from growth_stack_dagster import eventfiles


def events_root(home: Path) -> Path:
    return home / "events"


def all_files(home: Path) -> list[Path]:
    """Every file (closed or open) under the events folder."""
    root = events_root(home)
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def closed_lines(home: Path) -> list[tuple[str, dict]]:
    """(source, message) for every line of every closed event file."""
    out = []
    for path in eventfiles.closed_files(events_root(home)):
        source, _ = eventfiles.parse_closed_path(path)
        for raw in path.read_bytes().splitlines():
            out.append((source, orjson.loads(raw)))
    return out


def wait_lines(home: Path, count: int, timeout: float = 10.0) -> list[tuple[str, dict]]:
    """Poll until at least `count` lines are in closed files (files close after their max age)."""
    deadline = time.monotonic() + timeout
    while True:
        lines = closed_lines(home)
        if len(lines) >= count or time.monotonic() > deadline:
            return lines
        time.sleep(0.05)
