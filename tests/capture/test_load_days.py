"""`loader.load_days` (what a run over many partitions uses) leaves exactly the tables a day-by-day
load leaves: a simulated company's days plus planted duplicates, discards, new columns, type
conflicts and webhooks, compared table by table (EXCEPT ALL both ways) in real DuckDB files."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import duckdb

from growth_stack_dagster import eventfiles
from growth_stack_dagster.capture import loader
from tests.capture.payloads import customerio_body, envelope, stamp, stripe_invoice_paid, write

REPO = Path(__file__).resolve().parents[2]
NOW = dt.datetime(2026, 12, 1, 12, tzinfo=dt.timezone.utc)


def simulated_events(home: Path, days: int) -> Path:
    """A small simulated company's event files (web, app, Customer.io and Stripe webhooks)."""
    env = {**os.environ, "GROWTH_STACK_HOME": str(home)}
    subprocess.run([sys.executable, "-m", "growth_stack_dagster.cli", "simulate", "--customers", "30",
                    "--days", str(days), "--seed", "7", "--no-sandbox", "--no-collector", "--no-progress"],
                   check=True, cwd=REPO, env=env, capture_output=True)
    return home / "events"


def plant_edge_cases(root: Path, days: list[str]) -> None:
    """Messages whose handling depends on the days before them."""
    first, second, third = days[0], days[1], days[2]
    repeated = stamp({"type": "track", "messageId": "repeat-1", "userId": "u-edge", "event": "Plan Chosen",
                      "properties": {"seats": 3}}, first, 5)
    write(root, "web", first, [
        repeated, repeated,  # twice within the day
        stamp({"type": "identify", "messageId": "id-1", "userId": "u-edge",
               "traits": {"plan": "free", "email": "edge@example.com"}}, first, 6),
        b'{"type":"track","messageId":"torn"',  # an unreadable line
        stamp({"type": "launch", "messageId": "odd-type"}, first, 7),  # an unknown type
    ])
    write(root, "web", second, [
        dict(repeated, receivedAt=f"{second}T00:00:03.000Z"),  # again, received the next day
        # `seats` became a BIGINT column the day before: text does not fit it
        stamp({"type": "track", "messageId": "seats-text", "userId": "u-edge", "event": "Plan Chosen",
               "properties": {"seats": "many", "billing": "annual"}}, second, 8),  # `billing`: a new column
        stamp({"type": "identify", "messageId": "id-2", "userId": "u-edge", "traits": {"plan": "pro"}}, second, 9),
        stamp({"type": "page", "messageId": "case-fold", "anonymousId": "a-edge",
               "properties": {"Plan": "x", "plan": "y"}}, second, 10),
    ])
    write(root, "customerio", third, [envelope(customerio_body("opened", "01HEDGEOPENED"), third, 11)])
    write(root, "stripe", third, [envelope(stripe_invoice_paid("evt_edge_paid"), third, 12),
                                  envelope("not json at all", third, 13)])


def columns(con, db: str) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for table, column, typ in con.execute(
            "SELECT table_name, column_name, data_type FROM information_schema.columns "
            "WHERE table_catalog = ? AND table_schema = 'events'", [db]).fetchall():
        out.setdefault(table, {})[column] = typ
    return out


def test_load_days_leaves_the_tables_a_day_by_day_load_leaves(tmp_path: Path) -> None:
    root = simulated_events(tmp_path / "home", days=6)
    days = eventfiles.days_with_files(root)
    assert len(days) >= 6
    plant_edge_cases(root, days)

    with duckdb.connect(str(tmp_path / "day_by_day.duckdb")) as con:
        by_day = [loader.load_partition(con, root, day, now=NOW) for day in days]
    with duckdb.connect(str(tmp_path / "range.duckdb")) as con:
        in_range = loader.load_days(con, root, reversed(days), now=NOW)  # any order: loaded in date order
    assert [r.day for r in in_range] == days
    for a, b in zip(by_day, in_range):
        a.rows_per_table.pop("users"), b.rows_per_table.pop("users", None)
        assert (a.messages_read, a.rows_per_table, a.duplicates_in_day, a.duplicates_across_days, a.discards,
                a.new_columns, a.webhooks_transformed) == (
            b.messages_read, b.rows_per_table, b.duplicates_in_day, b.duplicates_across_days, b.discards,
            b.new_columns, b.webhooks_transformed)
    assert sum(r.duplicates_across_days for r in by_day) >= 1 and sum(r.discards for r in by_day) >= 3

    with duckdb.connect(str(tmp_path / "day_by_day.duckdb")) as con:
        con.execute(f"ATTACH '{tmp_path / 'range.duckdb'}' AS range_load (READ_ONLY)")
        expected, got = columns(con, "day_by_day"), columns(con, "range_load")
        assert got == expected
        assert {"users", "_discards", "_loaded_messages", "tracks", "pages", "plan_chosen"} <= expected.keys()
        assert "billing" in expected["plan_chosen"]
        for table, cols in expected.items():
            listed = ", ".join(f'"{c}"' for c in sorted(cols))
            a = f'SELECT {listed} FROM day_by_day.events."{table}"'
            b = f'SELECT {listed} FROM range_load.events."{table}"'
            assert con.execute(f"SELECT count(*) FROM ({a} EXCEPT ALL {b})").fetchone()[0] == 0, table
            assert con.execute(f"SELECT count(*) FROM ({b} EXCEPT ALL {a})").fetchone()[0] == 0, table
        assert con.execute("SELECT count(*) FROM range_load.events._discards WHERE reason LIKE "
                           "'value does not fit column type BIGINT%' AND \"column\" = 'seats'").fetchone()[0] == 1
        assert con.execute("SELECT plan FROM range_load.events.users WHERE id = 'u-edge'").fetchone() == ("pro",)


def test_load_days_gives_the_connection_its_threads_back(tmp_path: Path) -> None:
    """Small days run with one DuckDB thread (`SMALL_DAY_BYTES`); the setting is restored after."""
    root = tmp_path / "events"
    days = ["2026-11-20", "2026-11-21"]
    for i, day in enumerate(days):
        write(root, "web", day, [stamp({"type": "track", "messageId": f"t{i}", "userId": "u", "event": "Tiny"}, day, 1)])
    with duckdb.connect(str(tmp_path / "w.duckdb"), config={"threads": 3}) as con:
        reports = loader.load_days(con, root, days, now=NOW)
        assert [r.rows_per_table["tiny"] for r in reports] == [1, 1]
        assert con.execute("SELECT current_setting('threads')").fetchone()[0] == 3


def _tables(con: duckdb.DuckDBPyConnection) -> dict[str, list[str]]:
    """Every `events` table's rows (load times left out), sorted, to compare two loads."""
    skip = {loader.DISCARDS: "discarded_at", loader.LEDGER: None}
    return {t: sorted(map(repr, con.execute(
        f'SELECT * FROM events."{t}"' if t in skip and skip[t] is None
        else f'SELECT * EXCLUDE ({skip.get(t, "uuid_ts")}) FROM events."{t}"').fetchall()))
        for t in loader.events_tables(con)}


def test_load_days_replaces_a_day_when_discards_was_dropped(tmp_path: Path) -> None:
    """With the ledger present and _discards dropped (e.g. to clear it by hand), load_days asks each
    day whether it was loaded, as load_partition does: a day loaded again replaces its rows."""
    day = "2026-11-20"
    root = tmp_path / "events"
    write(root, "web", day, [stamp({"type": "track", "event": "E", "messageId": f"m{i}", "userId": "u"}, day, i)
                             for i in range(3)])
    con = duckdb.connect()
    loader.load_days(con, root, [day], now=NOW)
    con.execute("DROP TABLE events._discards")
    loader.load_days(con, root, [day], now=NOW)
    assert con.execute("SELECT count(*), count(DISTINCT id) FROM events.tracks").fetchone() == (3, 3)
    assert con.execute("SELECT count(*) FROM events._loaded_messages").fetchone() == (3,)


def test_the_cached_columns_are_not_changed_by_a_day_that_rolled_back(tmp_path: Path, monkeypatch) -> None:
    """load_days hands the columns a committed day leaves to the next day; a day that adds a column
    and then fails rolls back, and the next day neither finds the column cached nor fails on it."""
    d1, d2, d3 = "2026-11-20", "2026-11-21", "2026-11-22"
    root = tmp_path / "events"
    write(root, "web", d1, [stamp({"type": "track", "event": "E", "messageId": "a", "properties": {"n": 1}}, d1, 1)])
    for day, mid in ((d2, "b"), (d3, "c")):
        write(root, "web", day, [stamp({"type": "track", "event": "E", "messageId": mid,
                                        "properties": {"n": 2, "added": "x"}}, day, 1)])
    con = duckdb.connect()
    catalog = loader._Catalog(loaded_days=loader._loaded_days(con))
    for _ in range(2):  # the second load of the day finds nothing new: the columns stay cached
        loader.load_partition(con, root, d1, now=NOW, _catalog=catalog)
    assert catalog.columns is not None

    def fail(*args, **kwargs):
        raise RuntimeError("a failure after ALTER TABLE")
    with monkeypatch.context() as m:
        m.setattr(loader, "_discards_select", fail)
        try:
            loader.load_partition(con, root, d2, now=NOW, _catalog=catalog)
        except RuntimeError:
            pass
        else:
            raise AssertionError("the day did not fail")
    assert "added" not in loader.table_columns(con, "e")
    assert "added" not in (catalog.columns or {}).get("e", {})
    loader.load_partition(con, root, d3, now=NOW, _catalog=catalog)
    assert con.execute("SELECT id, added FROM events.e ORDER BY id").fetchall() == [("a", None), ("c", "x")]


def test_the_file_per_bag_typing_path_types_like_the_one_file_path(tmp_path: Path, monkeypatch) -> None:
    """A day with many distinct bag values types each bag from a file of its own (in threads); it
    leaves the tables that typing all bags from one file leaves."""
    import json
    day = "2026-11-20"
    root = tmp_path / "events"
    write(root, "web", day, [json.dumps(stamp({
        "type": ["track", "page", "identify"][i % 3], "event": f"E{i % 4}", "messageId": f"m{i}", "userId": "u",
        "properties": {"n": i, ("Plan" if i % 3 else "plan"): i if i % 2 else "x", "d": "2026-11-20"},
        "traits": {"t": i}, "context": {"ip": f"10.0.0.{i}", "userAgent": "a", "user_agent": "b"}}, day, i)).encode()
        for i in range(200)])
    out = []
    for threshold in (10**9, 1):
        monkeypatch.setattr(loader, "SEPARATE_VALUES", threshold)
        con = duckdb.connect()
        loader.load_days(con, root, [day], now=NOW)
        out.append(_tables(con))
    assert out[0] == out[1]
    assert out[0]["e0"] and out[0][loader.DISCARDS]


def test_discards_found_in_batches_of_tables_equal_those_of_one_scan(tmp_path: Path, monkeypatch) -> None:
    """A day whose tables have many discard checks is scanned once per batch of tables, each scan
    reading only its tables' rows; the discards and tables equal those of one scan of every check."""
    import json
    d1, d2 = "2026-11-20", "2026-11-21"
    root = tmp_path / "events"
    for day, bad in ((d1, False), (d2, True)):
        write(root, "web", day, [json.dumps(stamp({
            "type": "track", "event": f"Event {e}", "messageId": f"{day}-{e}-{i}", "userId": "u",
            "properties": {f"p{e}_{k}": ("x" if bad and (i + k) % 3 == 0 else i) for k in range(4)},
            "context": {"ip": "x" if bad and i == 1 else f"10.0.0.{i}"}}, day, i)).encode()
            for e in range(12) for i in range(6)])
    scans = []
    discards_select = loader._discards_select
    monkeypatch.setattr(loader, "_discards_select", lambda *a: scans.append(sorted(a[2])) or discards_select(*a))
    out = []
    for per_scan in (10**6, 5):
        monkeypatch.setattr(loader, "CHECKS_PER_SCAN", per_scan)
        scans.clear()
        con = duckdb.connect()
        loader.load_days(con, root, [d1, d2], now=NOW)
        out.append((_tables(con), len(scans)))
    (one_scan, one), (batched, many) = out
    assert one == 2 and many > 4  # one scan a day, then several on a day
    assert batched == one_scan
    assert len(one_scan[loader.DISCARDS]) == 12 * 6 * 4 // 3


def test_users_aggregated_a_few_traits_at_a_time_equal_users_aggregated_at_once(tmp_path: Path, monkeypatch) -> None:
    """`users` keeps each user's latest non-null value of every trait; with many traits it is built a
    few traits at a time and the parts joined on the user: the same rows, no part left behind."""
    day = "2026-11-20"
    root = tmp_path / "events"
    write(root, "web", day, [stamp({"type": "identify", "messageId": f"i{i}", "userId": f"u{i % 4}",
                                    "traits": {f"trait_{k}": (None if (i + k) % 3 == 0 else i * 10 + k)
                                               for k in range(7)}}, day, (i * 7) % 13) for i in range(24)])
    out = []
    for per_aggregate in (100, 2):
        monkeypatch.setattr(loader, "TRAITS_PER_AGGREGATE", per_aggregate)
        con = duckdb.connect()
        loader.load_days(con, root, [day], now=NOW)
        out.append(_tables(con)["users"])
        assert con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name LIKE '_users_part_%'").fetchone() == (0,)
    assert out[0] == out[1]
    assert len(out[0]) == 4
