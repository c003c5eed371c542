"""The executive scorecard: the daily executive metrics as one self-contained HTML page of charts.

Reads the marts (read-only) by column name, so it follows the models as they evolve:
    marts.exec_daily_metrics        revenue, margin, orders, new customers by day and currency
    marts.coupon_usage_by_segment   coupon usage rate by age band and customer type
    marts.campaign_performance      return on ad spend by campaign (per attribution model)
    marts.customer_traits           high-value customers now
    marts.high_value_customers_daily  high-value customers over time, one row per day (the rule at each day's end)
Money is never added across currencies: each currency is its own line.

The daily charts cover the business's current continuous history (`chart_period`): from the first day of
the latest stretch of orders without a gap longer than GAP_DAYS, at most the last CHART_MAX_DAYS days, so a
few isolated old orders (e.g. one-off purchases a year back) never stretch the charts into months of zeros;
the page says which period it charts and what it leaves out.
The page is standalone (opened as a file) and embeddable: the console shows the inside of its <body> and
its <style class="scorecard-style"> under its own header and navigation.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import html
from collections.abc import Mapping
from pathlib import Path
from typing import Any

SCORECARD_FILE = "index.html"
ROAS_MODELS = ("last_touch", "linear", "first_touch", "position_based")
GAP_DAYS = 30  # a longer stretch without orders ends a period: the charts start after the latest one
CHART_MAX_DAYS = 365


@dataclasses.dataclass(frozen=True)
class ChartPeriod:
    """The days the daily charts show, and the orders outside them (counted, not charted)."""

    start: dt.date
    end: dt.date
    earlier_orders: int = 0
    earlier_first: dt.date | None = None
    earlier_last: dt.date | None = None
    capped: bool = False  # the stretch is longer than CHART_MAX_DAYS: only its last days are charted

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1


@dataclasses.dataclass
class ScorecardData:
    """What the page shows; each list of rows is a list of {column: value}."""

    daily: list[dict[str, Any]]
    coupons: list[dict[str, Any]]
    campaigns: list[dict[str, Any]]
    high_value_now: int | None
    missing: list[str]
    high_value_as_of: dt.datetime | None = None  # the moment the traits hold at (customer_traits.as_of_at)
    high_value_history: list[tuple[dt.date, int]] = dataclasses.field(default_factory=list)  # (day, count), oldest first


def _rows(con, sql: str) -> list[dict[str, Any]]:
    rel = con.sql(sql)
    return [dict(zip(rel.columns, row)) for row in rel.fetchall()]


def read_scorecard_data(warehouse: Path) -> ScorecardData:
    """Read the marts the page needs (read-only); a mart not built yet is named in `missing`."""
    import duckdb

    data = ScorecardData([], [], [], None, [])
    queries = {
        "marts.exec_daily_metrics": "SELECT * FROM marts.exec_daily_metrics ORDER BY order_date, currency",
        "marts.coupon_usage_by_segment": "SELECT * FROM marts.coupon_usage_by_segment ORDER BY age_band, customer_type",
        "marts.campaign_performance": "SELECT * FROM marts.campaign_performance",
        "marts.customer_traits": "SELECT count(*) FILTER (WHERE is_high_value) AS n FROM marts.customer_traits",
        "marts.high_value_customers_daily": "SELECT day, high_value_customers FROM marts.high_value_customers_daily ORDER BY day",
    }
    if not Path(warehouse).exists():
        data.missing = list(queries)
        return data
    with duckdb.connect(str(warehouse), read_only=True) as con:
        for name, sql in queries.items():
            try:
                rows = _rows(con, sql)
            except duckdb.Error:
                data.missing.append(name)
                continue
            if name.endswith("exec_daily_metrics"):
                data.daily = rows
            elif name.endswith("coupon_usage_by_segment"):
                data.coupons = rows
            elif name.endswith("campaign_performance"):
                data.campaigns = rows
            elif name.endswith("high_value_customers_daily"):
                data.high_value_history = [(r["day"], int(r["high_value_customers"])) for r in rows]
            else:
                data.high_value_now = int(rows[0]["n"])
                try:
                    # fetchall: an unfinished result (fetchone) would block the next query on this connection
                    data.high_value_as_of = con.execute("SELECT max(as_of_at) FROM marts.customer_traits").fetchall()[0][0]
                except duckdb.Error:  # a traits table without the moment: the card just leaves it out
                    pass
    return data


def _money(row: Mapping[str, Any], name: str) -> float | None:
    """A money column in the currency's major unit: `name` if the mart has it, else `<name>_minor`
    scaled by `currency_decimals` (the per-currency integer form)."""
    if row.get(name) is not None:
        return float(row[name])
    minor = row.get(f"{name}_minor")
    if minor is None:
        return None
    decimals = row.get("currency_decimals")
    return float(minor) / 10 ** (2 if decimals is None else int(decimals))


def summary_figures(data: ScorecardData, days: int = 30) -> dict[str, Any]:
    """Headline numbers over the last `days` days of data: revenue and margin by currency, orders,
    new customers, high-value customers now."""
    if not data.daily:
        return {"high_value_customers": data.high_value_now}
    last = max(r["order_date"] for r in data.daily)
    since = last - dt.timedelta(days=days - 1)
    recent = [r for r in data.daily if r["order_date"] >= since]
    revenue: dict[str, float] = {}
    margin: dict[str, float] = {}
    for r in recent:
        currency = (r.get("currency") or "?").upper()
        revenue[currency] = revenue.get(currency, 0.0) + (_money(r, "revenue") or 0.0)
        margin[currency] = margin.get(currency, 0.0) + (_money(r, "margin") or 0.0)
    return {
        "period": f"{since.isoformat()}..{last.isoformat()}",
        "revenue_by_currency": {c: round(v, 2) for c, v in sorted(revenue.items())},
        "margin_by_currency": {c: round(v, 2) for c, v in sorted(margin.items())},
        "orders": int(sum(r.get("orders") or 0 for r in recent)),
        "new_customers": int(sum(r.get("new_customers") or 0 for r in recent)),
        "high_value_customers": data.high_value_now,
    }


def chart_period(daily: list[dict[str, Any]], gap_days: int = GAP_DAYS,
                 max_days: int = CHART_MAX_DAYS) -> ChartPeriod | None:
    """The period the daily charts cover, from `exec_daily_metrics` rows: from the first order day after the
    latest gap of more than `gap_days` days without orders (all currencies together) to the last day of
    the mart, and no more than `max_days` days. None when there is no order at all."""
    order_days = sorted({r["order_date"] for r in daily if (r.get("orders") or 0) > 0})
    if not order_days:
        return None
    end = max(r["order_date"] for r in daily)
    start = order_days[0]
    for before, after in zip(order_days, order_days[1:]):
        if (after - before).days > gap_days:
            start = after
    capped = start < end - dt.timedelta(days=max_days - 1)
    start = max(start, end - dt.timedelta(days=max_days - 1))
    earlier = [r for r in daily if r["order_date"] < start and (r.get("orders") or 0) > 0]
    if not earlier:
        return ChartPeriod(start, end, capped=capped)
    return ChartPeriod(start, end, int(sum(r["orders"] for r in earlier)),
                       min(r["order_date"] for r in earlier), max(r["order_date"] for r in earlier), capped)


def _by_currency(rows: list[dict[str, Any]], value) -> dict[str, tuple[list, list]]:
    series: dict[str, tuple[list, list]] = {}
    for r in rows:
        x, y = series.setdefault((r.get("currency") or "?").upper(), ([], []))
        x.append(r["order_date"])
        y.append(value(r))
    return series


def _daily_totals(rows: list[dict[str, Any]], column: str) -> tuple[list, list]:
    totals: dict[Any, int] = {}
    for r in rows:
        totals[r["order_date"]] = totals.get(r["order_date"], 0) + int(r.get(column) or 0)
    days = sorted(totals)
    return days, [totals[d] for d in days]


def build_figures(data: ScorecardData) -> list[tuple[str, Any]]:
    """(section title, plotly Figure) for every chart the data allows, in page order."""
    import plotly.graph_objects as go

    layout = dict(height=320, margin=dict(l=50, r=20, t=40, b=40), template="plotly_white",
                  legend=dict(orientation="h", y=-0.2))
    figures: list[tuple[str, Any]] = []
    period = chart_period(data.daily)
    daily = [r for r in data.daily if period and period.start <= r["order_date"] <= period.end]
    if daily:
        for name, title in (("revenue", "Revenue by day (after discounts), per currency"),
                            ("margin", "Margin by day (revenue less SKU unit costs), per currency")):
            fig = go.Figure(layout={**layout, "title": title})
            for currency, (x, y) in _by_currency(daily, lambda r, n=name: _money(r, n)).items():
                fig.add_trace(go.Scatter(x=x, y=y, mode="lines", name=currency, showlegend=True))
            figures.append((title, fig))
        for column, title in (("orders", "Paid orders by day"), ("new_customers", "New customers by day (first paid order)")):
            x, y = _daily_totals(daily, column)
            figures.append((title, go.Figure(go.Bar(x=x, y=y, name=column), layout={**layout, "title": title})))
    # a segment without paid orders (e.g. anonymous visitors) has no rate: no empty bar or legend entry
    coupons = [r for r in data.coupons if r.get("coupon_usage_rate") is not None]
    if coupons:
        title = "Coupon usage rate by segment (share of paid orders with a coupon)"
        fig = go.Figure(layout={**layout, "title": title, "barmode": "group", "yaxis": {"tickformat": ".0%"}})
        for customer_type in sorted({r["customer_type"] for r in coupons}):
            rows = [r for r in coupons if r["customer_type"] == customer_type]
            orders = [r.get("orders") for r in rows]
            # the number of orders on each bar: a rate from a handful of orders reads as such
            fig.add_trace(go.Bar(x=[r["age_band"] for r in rows], y=[r.get("coupon_usage_rate") for r in rows],
                                 name=customer_type, text=[f"{int(n):,} orders" if n is not None else "" for n in orders],
                                 textposition="outside"))
        figures.append((title, fig))
    history = data.high_value_history
    if history:
        title = "High-value customers over time (the rule at the end of each day; the last day at the traits' moment)"
        fig = go.Figure(go.Scatter(x=[d for d, _ in history], y=[n for _, n in history], mode="lines+markers",
                                   name="high-value customers"), layout={**layout, "title": title})
        fig.update_yaxes(range=[0, max(max(n for _, n in history) * 1.25, 1)], rangemode="tozero")
        fig.update_xaxes(type="date", tickformat="%Y-%m-%d")
        if len(history) < 7:  # a young warehouse: say why there are so few points
            first = history[0][0]
            fig.add_annotation(text=f"History starts {first.isoformat()}, the first day the warehouse has data for",
                               showarrow=False, xref="paper", yref="paper", x=0.5, y=0.05)
            # a week either side, not a sub-second axis
            fig.update_xaxes(range=[(first - dt.timedelta(days=7)).isoformat(),
                                    (first + dt.timedelta(days=7)).isoformat()], dtick=86_400_000 * 2)
        figures.append((title, fig))
    spent = [r for r in data.campaigns if (r.get("spend") or 0) > 0]
    if spent:
        title = "Return on ad spend by campaign (attributed revenue / spend)"
        fig = go.Figure(layout={**layout, "title": title, "barmode": "group"})
        labels = [str(r.get("utm_campaign") or r.get("campaign_name") or "?") for r in spent]
        for model in ROAS_MODELS:
            column = f"return_on_ad_spend_{model}"
            if any(column in r for r in spent):
                fig.add_trace(go.Bar(x=labels, y=[r.get(column) for r in spent], name=model.replace("_", " ")))
        figures.append((title, fig))
    return figures


def render_scorecard(data: ScorecardData, built_at: dt.datetime) -> str:
    """The whole page: headline figures and every chart, plotly.js inlined once (works offline)."""
    figures = build_figures(data)
    summary = summary_figures(data)
    parts = []
    for i, (title, fig) in enumerate(figures):
        div = fig.to_html(full_html=False, include_plotlyjs=(i == 0), config={"displaylogo": False})
        parts.append(f'<section class="chart" aria-label="{html.escape(title)}">{div}</section>')

    def money(values: Mapping[str, float] | None) -> str:
        return ", ".join(f"{v:,.2f} {c}" for c, v in (values or {}).items()) or "—"

    cards = [("Revenue, last 30 days", money(summary.get("revenue_by_currency"))),
             ("Margin, last 30 days", money(summary.get("margin_by_currency"))),
             ("Orders, last 30 days", f"{summary.get('orders', 0):,}" if "orders" in summary else "—"),
             ("New customers, last 30 days", f"{summary.get('new_customers', 0):,}" if "new_customers" in summary else "—"),
             ("High-value customers",
              "—" if summary.get("high_value_customers") is None else f"{summary['high_value_customers']:,}")]
    notes = {"High-value customers": f"traits as of {data.high_value_as_of.astimezone(dt.timezone.utc):%Y-%m-%d %H:%M} UTC"
             if data.high_value_as_of else ""}
    card_html = "".join(f'<div class="card"><div class="label">{html.escape(k)}</div>'
                        f'<div class="value">{html.escape(v)}</div>'
                        + (f'<div class="label">{html.escape(notes[k])}</div>' if notes.get(k) else "") + "</div>"
                        for k, v in cards)
    missing = ("<p class='missing'>Not built yet: " + ", ".join(html.escape(m) for m in data.missing)
               + ". Materialize them in Dagster and this page fills in at its next refresh.</p>") if data.missing else ""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Executive scorecard</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style class="standalone-style">
body {{ font-family: system-ui, sans-serif; margin: 24px; color: #1f2933; background: #f7f9fb; }}
</style>
<style class="scorecard-style">
.scorecard h1 {{ margin: 0 0 4px; font-size: 24px; }} .scorecard .meta {{ color: #52606d; margin-bottom: 16px; }}
.scorecard .cards {{ display: flex; flex-wrap: wrap; gap: 12px; margin-bottom: 16px; }}
.scorecard .card {{ background: white; border-radius: 8px; padding: 12px 16px; box-shadow: 0 1px 2px #0002; min-width: 180px; }}
.scorecard .label {{ color: #52606d; font-size: 13px; }} .scorecard .value {{ font-size: 20px; font-weight: 600; }}
.scorecard .chart {{ background: white; border-radius: 8px; padding: 8px; margin-bottom: 16px; box-shadow: 0 1px 2px #0002; }}
.scorecard .missing {{ background: #fff4e5; padding: 8px 12px; border-radius: 6px; }}
</style></head><body>
<div class="scorecard">
<h1>Executive scorecard</h1>
<div class="meta">Built {built_at.strftime('%Y-%m-%d %H:%M UTC')} from the warehouse marts. {html.escape(period_sentence(data))}</div>
{missing}<div class="cards">{card_html}</div>
{''.join(parts)}
</div>
</body></html>
"""


def period_sentence(data: ScorecardData) -> str:
    """What the page covers, in words: the cards' 30 days and the charts' period, and what is left out."""
    summary = summary_figures(data)
    if "period" not in summary:
        return "No orders yet."
    last_30 = summary["period"].replace("..", " to ")
    period = chart_period(data.daily)
    if period is None:
        return f"Cards: the last 30 days ({last_30}); no orders to chart yet."
    why = (f"the last {CHART_MAX_DAYS} days" if period.capped else
           f"since orders have come in without a gap of more than {GAP_DAYS} days")
    text = (f"Cards: the last 30 days ({last_30}). Daily charts: {period.start.isoformat()} to "
            f"{period.end.isoformat()} ({period.days} days, {why}).")
    if period.earlier_orders:
        one = period.earlier_orders == 1
        text += (f" {period.earlier_orders:,} earlier order{'' if one else 's'} "
                 f"({period.earlier_first.isoformat()} to {period.earlier_last.isoformat()}) "
                 f"{'is' if one else 'are'} in the marts but not charted.")
    return text


def build_scorecard(warehouse: Path, out_dir: Path, now: dt.datetime | None = None) -> tuple[Path, dict[str, Any], int]:
    """Read the marts and write `out_dir/index.html` atomically.
    Returns (page path, headline figures, number of charts)."""
    now = now or dt.datetime.now(dt.timezone.utc)
    data = read_scorecard_data(warehouse)
    page = render_scorecard(data, now)
    out = Path(out_dir) / SCORECARD_FILE
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    tmp.write_text(page)
    tmp.replace(out)
    return out, summary_figures(data), len(build_figures(data))
