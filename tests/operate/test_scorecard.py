"""The scorecard page from marts in a real DuckDB file: per-currency money (major units or integer
minor units), charts for every section, the high-value history, and what is missing said in words.
(tests/ui builds it from a real dbt build and opens it in a browser.)"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb

from growth_stack_dagster.operate import scorecard


def make_marts(path: Path, minor_units: bool) -> None:
    with duckdb.connect(str(path)) as con:
        con.execute("create schema marts")
        money = ("revenue_minor bigint, margin_minor bigint, currency_decimals integer" if minor_units
                 else "revenue decimal(18,2), margin decimal(18,2)")
        con.execute(f"create table marts.exec_daily_metrics (order_date date, currency varchar, orders integer, "
                    f"new_customers integer, {money})")
        rows = [("2026-11-01", "usd", 3, 1, 12345, 4000), ("2026-11-02", "usd", 1, 1, 1000, 300),
                ("2026-11-01", "eur", 2, 0, 9999, 1000), ("2026-11-02", "jpy", 1, 1, 5000, 900)]
        for day, cur, orders, new, revenue, margin in rows:
            if minor_units:
                decimals = 0 if cur == "jpy" else 2
                con.execute("insert into marts.exec_daily_metrics values (?, ?, ?, ?, ?, ?, ?)",
                            [day, cur, orders, new, revenue, margin, decimals])
            else:
                con.execute("insert into marts.exec_daily_metrics values (?, ?, ?, ?, ?, ?)",
                            [day, cur, orders, new, revenue / 100, margin / 100])
        con.execute("create table marts.coupon_usage_by_segment as select * from (values "
                    "('25-34', 'retail', 0.25), ('25-34', 'wholesale', 0.5), ('35-44', 'retail', 0.1)) "
                    "t(age_band, customer_type, coupon_usage_rate)")
        con.execute("create table marts.customer_traits as select * from (values (1, true), (2, false), (3, true)) "
                    "t(customer_id, is_high_value)")
        con.execute("create table marts.high_value_customers_daily as select (date '2026-11-01' + range::integer)::date as day, "
                    "range + 1 as high_value_customers from range(3)")


def test_the_page_shows_money_per_currency_in_major_or_minor_units(tmp_path: Path) -> None:
    for minor in (False, True):
        warehouse = tmp_path / f"w_{minor}.duckdb"
        make_marts(warehouse, minor_units=minor)
        out = tmp_path / f"out_{minor}"
        page, figures, charts = scorecard.build_scorecard(
            warehouse, out, now=dt.datetime(2026, 11, 3, 8, tzinfo=dt.timezone.utc))
        assert figures["revenue_by_currency"]["USD"] == 133.45
        assert figures["revenue_by_currency"]["EUR"] == 99.99
        # JPY has no minor unit: 5000 is 5000 yen in both forms only when decimals are read
        assert figures["revenue_by_currency"]["JPY"] == (5000.0 if minor else 50.0)
        assert figures["orders"] == 7 and figures["new_customers"] == 3 and figures["high_value_customers"] == 2
        # revenue, margin, orders, new customers, coupon usage, high-value over time (no campaigns mart)
        assert charts == 6
        html = page.read_text()
        assert "plotly" in html.lower() and "Executive scorecard" in html
        assert "marts.campaign_performance" in html  # the missing mart is named
        assert "Revenue by day" in html and "Coupon usage rate by segment" in html


def test_the_high_value_history_is_the_daily_mart_one_point_per_day(tmp_path: Path) -> None:
    warehouse = tmp_path / "w.duckdb"
    make_marts(warehouse, minor_units=False)
    with duckdb.connect(str(warehouse)) as con:  # a year of days, as the mart holds after a first build
        con.execute("create or replace table marts.high_value_customers_daily as select "
                    "(date '2025-11-03' + range::integer)::date as day, range // 10 as high_value_customers from range(365)")
    out = tmp_path / "out"
    page, figures, charts = scorecard.build_scorecard(warehouse, out, now=dt.datetime(2026, 11, 3, 8, tzinfo=dt.timezone.utc))
    data = scorecard.read_scorecard_data(warehouse)
    assert data.high_value_history[0] == (dt.date(2025, 11, 3), 0) and data.high_value_history[-1] == (dt.date(2026, 11, 2), 36)
    title, fig = next((t, f) for t, f in scorecard.build_figures(data) if t.startswith("High-value customers over time"))
    assert list(fig.data[0].x) == [d for d, _ in data.high_value_history] and list(fig.data[0].y)[-1] == 36
    assert not fig.layout.annotations  # a full history needs no explanation
    assert "High-value customers over time" in page.read_text()
    assert sorted(p.name for p in out.iterdir()) == ["index.html"]  # nothing kept beside the page any more
    # before the mart is built, the page names it instead of charting anything
    with duckdb.connect(str(warehouse)) as con:
        con.execute("drop table marts.high_value_customers_daily")
    page, _, charts_without = scorecard.build_scorecard(warehouse, out)
    assert charts_without == charts - 1 and "marts.high_value_customers_daily" in page.read_text()


def test_an_empty_warehouse_gives_a_page_that_says_what_to_build(tmp_path: Path) -> None:
    page, figures, charts = scorecard.build_scorecard(tmp_path / "none.duckdb", tmp_path / "out")
    assert charts == 0 and "Not built yet" in page.read_text()


def test_the_daily_charts_cover_the_continuous_history_not_months_of_zeros(tmp_path: Path) -> None:
    # as in the demo company: two boundary purchases a year back, nothing for months, then daily orders
    warehouse = tmp_path / "w.duckdb"
    first, last = dt.date(2025, 12, 4), dt.date(2026, 12, 4)
    recent_start = last - dt.timedelta(days=119)
    with duckdb.connect(str(warehouse)) as con:
        con.execute("create schema marts")
        con.execute("create table marts.exec_daily_metrics (order_date date, currency varchar, orders integer, "
                    "new_customers integer, revenue decimal(18,2), margin decimal(18,2))")
        day = first
        while day <= last:
            orders = 1 if day == first else 2 if day >= recent_start and day.day % 7 else 0
            con.execute("insert into marts.exec_daily_metrics values (?, 'usd', ?, ?, ?, ?)",
                        [day, orders, min(orders, 1), 120.0 * orders, 40.0 * orders])
            day += dt.timedelta(days=1)
    page, figures, charts = scorecard.build_scorecard(warehouse, tmp_path / "out",
                                                      now=dt.datetime(2026, 12, 4, 20, tzinfo=dt.timezone.utc))
    data = scorecard.read_scorecard_data(warehouse)
    period = scorecard.chart_period(data.daily)
    first_recent_order = min(d for d in (recent_start + dt.timedelta(days=k) for k in range(120)) if d.day % 7)
    assert (period.start, period.end) == (first_recent_order, last)
    assert (period.earlier_orders, period.earlier_first, period.earlier_last) == (1, first, first)
    for title, fig in scorecard.build_figures(data)[:4]:  # revenue, margin, orders, new customers
        xs = [x for trace in fig.data for x in trace.x]
        assert min(xs) == first_recent_order and max(xs) == last, title
        assert len(xs) == (last - first_recent_order).days + 1, title  # quiet days inside stay, as zeros
    html = page.read_text()
    assert f"Daily charts: {first_recent_order} to {last}" in html
    assert f"1 earlier order ({first} to {first}) is in the marts but not charted" in html
    assert charts == 4 and figures["orders"] > 0
    # the high-value card says the moment its traits hold at
    with duckdb.connect(str(warehouse)) as con:
        con.execute("create table marts.customer_traits as select range as customer_id, range < 21 as is_high_value, "
                    "timestamptz '2026-12-04 19:53:42+00' as as_of_at from range(50)")
    page, figures, _ = scorecard.build_scorecard(warehouse, tmp_path / "out",
                                                 now=dt.datetime(2026, 12, 4, 20, tzinfo=dt.timezone.utc))
    assert figures["high_value_customers"] == 21
    assert "traits as of 2026-12-04 19:53 UTC" in page.read_text()


def test_the_chart_period_is_at_most_a_year_and_says_so() -> None:
    days = [dt.date(2024, 1, 1) + dt.timedelta(days=k) for k in range(800)]
    daily = [{"order_date": d, "currency": "USD", "orders": 1} for d in days]
    period = scorecard.chart_period(daily)
    assert period.end == days[-1] and period.days == scorecard.CHART_MAX_DAYS and period.capped
    assert period.earlier_orders == 800 - scorecard.CHART_MAX_DAYS
    assert scorecard.chart_period([{"order_date": days[0], "currency": "USD", "orders": 0}]) is None


def test_segments_without_orders_have_no_bar_and_each_bar_shows_its_orders() -> None:
    coupons = [{"age_band": "25-34", "customer_type": "retail", "orders": 225, "coupon_usage_rate": 0.18},
               {"age_band": "25-34", "customer_type": "wholesale", "orders": 2, "coupon_usage_rate": 1.0},
               {"age_band": "unknown", "customer_type": "unknown", "orders": 0, "coupon_usage_rate": None}]
    data = scorecard.ScorecardData([], coupons, [], 21, [], high_value_history=[(dt.date(2026, 12, 4), 21)])
    (title, fig), (history_title, history) = scorecard.build_figures(data)
    assert [t.name for t in fig.data] == ["retail", "wholesale"]  # anonymous visitors: no orders, no rate
    assert [list(t.text) for t in fig.data] == [["225 orders"], ["2 orders"]]
    # one day of data so far: a readable week either side, and the page says why there is one point
    assert history.layout.xaxis.range == ("2026-11-27", "2026-12-11")
    assert "History starts 2026-12-04" in history.layout.annotations[0].text


def test_traits_with_their_moment_and_the_history_are_both_read(tmp_path: Path) -> None:
    """As dbt builds them: customer_traits carries `as_of_at`, and reading it must leave the connection
    ready for the history query that follows (an unfinished result made that mart look missing)."""
    warehouse = tmp_path / "w.duckdb"
    make_marts(warehouse, minor_units=False)
    with duckdb.connect(str(warehouse)) as con:
        con.execute("create or replace table marts.customer_traits as select * from (values "
                    "(1, true, timestamptz '2026-11-03 08:00:00+00'), (2, false, timestamptz '2026-11-03 08:00:00+00')) "
                    "t(customer_id, is_high_value, as_of_at)")
    data = scorecard.read_scorecard_data(warehouse)
    assert "marts.high_value_customers_daily" not in data.missing
    assert data.high_value_now == 1 and data.high_value_as_of == dt.datetime(2026, 11, 3, 8, tzinfo=dt.timezone.utc)
    assert [n for _, n in data.high_value_history] == [1, 2, 3]
