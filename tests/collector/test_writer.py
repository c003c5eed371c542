"""The event writer: group commit, rotation, shutdown, and recovery of files a crash left open."""

from __future__ import annotations

import asyncio
import datetime as dt
import fcntl
import os
from pathlib import Path

import orjson
import pytest

from growth_stack_dagster import eventfiles
from growth_stack_dagster.collector.writer import EventWriter, Unavailable, recover_open_files


def _line(i: int) -> bytes:
    return orjson.dumps({"messageId": f"m{i}"}) + b"\n"


def _ids(root: Path) -> list[str]:
    return [orjson.loads(raw)["messageId"] for f in eventfiles.closed_files(root)
            for raw in f.read_bytes().splitlines()]


def _today() -> str:
    return dt.datetime.now(dt.timezone.utc).date().isoformat()


def test_concurrent_appends_share_commits_and_close_on_shutdown(tmp_path: Path) -> None:
    today = _today()

    async def main() -> None:
        writer = EventWriter(tmp_path, max_age=60, min_free_bytes=0)
        await writer.start()
        await asyncio.gather(*(writer.append("web", today, _line(i)) for i in range(500)))
        await writer.append("ios", today, _line(500) + _line(501))
        # acknowledged but not yet published: the hidden open files hold the lines
        assert eventfiles.closed_files(tmp_path) == []
        assert len(list(tmp_path.glob("source=*/date=*/.collector-*.jsonl.open"))) == 2
        # a line received before midnight: its day's file is published at once
        await writer.append("web", "2026-01-01", _line(502))
        assert [eventfiles.parse_closed_path(p) for p in eventfiles.closed_files(tmp_path)] == [
            ("web", "2026-01-01")]
        await writer.close()

    asyncio.run(main())
    assert sorted(_ids(tmp_path)) == sorted(f"m{i}" for i in range(503))
    assert sorted(eventfiles.parse_closed_path(p) for p in eventfiles.closed_files(tmp_path)) == [
        ("ios", today), ("web", "2026-01-01"), ("web", today)]
    assert list(tmp_path.rglob(".*.open")) == []


def test_rotation_by_size_and_age(tmp_path: Path) -> None:
    async def main() -> None:
        writer = EventWriter(tmp_path, max_bytes=200, max_age=0.2, min_free_bytes=0)
        await writer.start()
        for i in range(30):
            await writer.append("web", _today(), _line(i))
        await asyncio.sleep(0.6)  # age rotation publishes the last one without shutdown
        assert not list(tmp_path.rglob(".*.open"))
        assert sorted(_ids(tmp_path)) == sorted(f"m{i}" for i in range(30))
        await writer.close()

    asyncio.run(main())
    files = eventfiles.closed_files(tmp_path)
    assert len(files) >= 30 * len(_line(10)) // 200
    assert all(f.stat().st_size <= 200 + len(_line(10)) for f in files)


def test_overload_is_refused_not_buffered_without_bound(tmp_path: Path) -> None:
    async def main() -> None:
        writer = EventWriter(tmp_path, max_pending_bytes=10, min_free_bytes=0)
        await writer.start()
        with pytest.raises(Unavailable, match="overloaded"):
            await writer.append("web", "2026-11-26", b"x" * 11 + b"\n")
        await writer.close()
        with pytest.raises(Unavailable, match="shutting down"):
            await writer.append("web", "2026-11-26", _line(1))

    asyncio.run(main())
    assert list(tmp_path.rglob("*.jsonl*")) == []


def _open_file(root: Path, name: str, content: bytes) -> Path:
    d = eventfiles.partition_dir(root, "web", "2026-11-26")
    d.mkdir(parents=True, exist_ok=True)
    p = d / f".{name}.jsonl.open"
    p.write_bytes(content)
    return p


def test_recovery_drops_a_torn_last_line_and_publishes(tmp_path: Path) -> None:
    torn = _open_file(tmp_path, "collector-1", _line(1) + _line(2) + b'{"messageId":"m3","pro')
    whole = _open_file(tmp_path, "collector-2", _line(4))
    empty_after_cut = _open_file(tmp_path, "collector-3", b'{"messageId":"m5"')
    foreign = _open_file(tmp_path, "part-4", _line(6))  # another tool's file: never touched
    published = recover_open_files(tmp_path)
    assert len(published) == 2
    assert sorted(_ids(tmp_path)) == ["m1", "m2", "m4"]
    assert not torn.exists() and not whole.exists() and not empty_after_cut.exists()
    assert foreign.exists()


def test_recovery_skips_files_a_live_writer_holds(tmp_path: Path) -> None:
    held = _open_file(tmp_path, "collector-9", _line(1))
    fd = os.open(held, os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        assert recover_open_files(tmp_path) == []
        assert held.exists()
    finally:
        os.close(fd)
    assert len(recover_open_files(tmp_path)) == 1


def test_write_error_is_unavailable_and_the_writer_recovers(tmp_path: Path) -> None:
    blocker = tmp_path / "source=web"
    blocker.write_text("a file where the partition folder should be")

    async def main() -> None:
        writer = EventWriter(tmp_path, min_free_bytes=0)
        await writer.start()
        with pytest.raises(Unavailable, match="could not be written"):
            await writer.append("web", _today(), _line(1))
        await writer.append("ios", _today(), _line(2))  # other sources are unaffected
        blocker.unlink()
        await writer.append("web", _today(), _line(3))  # and the error is not sticky
        await writer.close()

    asyncio.run(main())
    assert sorted(_ids(tmp_path)) == ["m2", "m3"]
