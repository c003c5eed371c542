"""Real `dbt build` of the journey, marketing and finance marts on a real DuckDB file: events loaded
day by day by the capture loader, SaaS tables as dlt loads them. The event-derived models are built one
received day at a time (as the Dagster partitions run them) and must equal a full rebuild."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from growth_stack_dagster.transform.partitions import MAX_DATE_ENV, MIN_DATE_ENV
from tests.dbt_journeys import warehouse as wh
from tests.dbt_journeys.warehouse import DAY1, DAY2

REPO = Path(__file__).resolve().parents[2]
DBT = Path(sys.executable).with_name("dbt")
MARTS = ["+path:models/marts/journeys", "+path:models/marts/marketing", "+path:models/marts/finance",
         "+customer_traits"]
# what a daily partition builds: the event models and the staging views they read (a view must be
# re-created when the loader adds a column to its table, e.g. the first web track's user agent)
EVENTS_DAILY = ["+tag:events_daily"]
ANALYSES = REPO / "dbt_project" / "analyses"
OTHER_TEAMS_PATHS = ("models/staging", "models/intermediate", "models/marts/identity", "models/marts/customers",
                     "tests")
AS_OF = "2026-03-03"  # ages and traits are evaluated on this day


def dbt(home: Path, work: Path, command: str, *args: str, day: str | None = None, partition_env: str | None = None,
        **dbt_vars) -> None:
    """Run the venv's dbt on `home/warehouse.duckdb` with traits as of AS_OF; `day` passes the partition
    vars min_date = max_date = day; `partition_env` names the day as a Dagster partition run does (the
    environment variables of transform/partitions.py); other keyword arguments are more dbt vars."""
    env = {**os.environ, "GROWTH_STACK_HOME": str(home), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    if partition_env:
        env.update({MIN_DATE_ENV: partition_env, MAX_DATE_ENV: partition_env})
    argv = [str(DBT), command, "--project-dir", "dbt_project", "--profiles-dir", "dbt_project",
            "--target-path", str(work / "target"), "--log-path", str(work / "logs"), *args]
    if command == "build":
        # models upstream of ours are built, but only our folders' tests run: the others have their own suites
        argv += ["--exclude", *(f"resource_type:{kind},path:{path}" for kind in ("test", "unit_test")
                                for path in OTHER_TEAMS_PATHS)]
    if day:
        dbt_vars.update(min_date=day, max_date=day)
    argv += ["--vars", json.dumps({"as_of": AS_OF, **dbt_vars})]
    result = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    # dbt prints the failures after its summary line
    summary = result.stdout[result.stdout.rfind("Finished running"):] if "Finished running" in result.stdout else result.stdout
    assert result.returncode == 0, f"dbt {command} failed:\n{summary[-8000:]}\n{result.stderr[-3000:]}"


def rows(home: Path, sql: str, *params) -> list[tuple]:
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as con:
        con.execute("set TimeZone = 'UTC'")
        return con.execute(sql, list(params)).fetchall()


def event_model_rows(home: Path) -> dict[str, set[tuple]]:
    return {
        "touchpoints": set(rows(home, "select * from marts.journey_event_touchpoints")),
        "sessions": set(rows(home, "select * from marts.journey_event_sessions")),
    }


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Day 1 built with its partition vars, day 2 added as the daily Dagster partition builds it (the event
    models and the staging views they read, the day named by environment variables), then the event
    models rebuilt in full."""
    home = tmp_path_factory.mktemp("gs_home")
    work = tmp_path_factory.mktemp("dbt_work")
    wh.write_day1_events(home / "events")
    wh.create_saas_tables(home)
    wh.load_events(home, DAY1)
    dbt(home, work, "build", "--select", *MARTS, day=DAY1)
    after_day1 = event_model_rows(home)

    wh.write_day2_events(home / "events")
    wh.load_events(home, DAY2)
    dbt(home, work, "build", "--select", *EVENTS_DAILY, partition_env=DAY2)
    incremental = event_model_rows(home)

    dbt(home, work, "build", "--full-refresh", "--select", *EVENTS_DAILY)
    full = event_model_rows(home)
    return {"home": home, "work": work, "after_day1": after_day1, "incremental": incremental, "full": full}


def test_incremental_days_equal_a_full_build(built):
    assert built["incremental"] == built["full"]
    assert len(built["full"]["touchpoints"]) == 11
    # the day-2 run added rows and left day 1's alone
    assert built["after_day1"]["touchpoints"] < built["incremental"]["touchpoints"]


def test_sessions_split_after_30_minutes_and_continue_across_midnight(built):
    home = built["home"]
    by_path = dict(rows(home, "select page_path, session_id from marts.journey_event_touchpoints "
                              "where touchpoint_type = 'page_view'"))
    assert by_path["/landing/spring"] == by_path["/products/mug"]  # 29 minutes apart
    assert by_path["/cart"] != by_path["/products/mug"]  # 31 minutes and 1 second
    assert by_path["/sale"] == by_path["/checkout"]  # 23:50 and 00:10, loaded on different days
    assert len(set(by_path.values())) == 3
    midnight = rows(home, "select started_at, ended_at, duration_seconds, touchpoints, page_views, tracks, "
                          "landing_page_path, first_received_date, last_received_date, customer_id is not null "
                          "from marts.sessions where session_id = ?", by_path["/sale"])
    assert [tuple(str(v) for v in midnight[0])] == [(
        f"{DAY1} 23:50:00+00:00", f"{DAY2} 00:12:00+00:00", "1320", "3", "2", "1", "/sale", DAY1, DAY2, "True")]
    email_sessions = rows(home, "select count(*) from marts.journey_event_touchpoints "
                                "where channel = 'email' and session_id is not null")
    assert email_sessions == [(0,)]


def test_customer_journey_holds_every_source_for_each_customer(built):
    home = built["home"]
    ann = rows(home, "select customer_id from marts.customer_identifiers where identifier_type = 'user_id' "
                     "and identifier_value = 'u_ann'")[0][0]
    bob = rows(home, "select customer_id from marts.customer_identifiers where identifier_type = 'user_id' "
                     "and identifier_value = 'u_bob'")[0][0]
    kinds = rows(home, "select customer_id, touchpoint_type, source, channel, count(*) from marts.customer_journey "
                       "group by all order by all")
    assert {(c == ann, t, s, ch, n) for c, t, s, ch, n in kinds if c in (ann, bob)} == {
        (True, "email_delivered", "customerio", "email", 1),
        (True, "order", "stripe", "payments", 1),
        (True, "page_view", "web", "web", 5),
        (True, "screen_view", "ios", "app", 1),
        (True, "support_ticket", "zendesk", "support", 1),
        (True, "track", "ios", "app", 1),
        (True, "track", "web", "web", 1),
        (False, "deal_stage_change", "hubspot", "sales", 2),
        (False, "sales_call", "hubspot", "sales", 1),
        (False, "screen_view", "ios", "app", 1),
        (False, "track", "ios", "app", 1),
    }


def test_attribution_cost_per_order_and_roas(built):
    home = built["home"]
    attributed = rows(home, "select order_id, utm_campaign, weight_first_touch, weight_last_touch, weight_linear, "
                            "weight_position_based, attributed_revenue_linear from marts.attribution_touchpoints")
    assert attributed == [("in_ann1", "Spring Sale", 1.0, 1.0, 1.0, 1.0, 50.0)]
    spring = rows(home, "select spend, clicks, attributed_orders_last_touch, attributed_revenue_last_touch, "
                        "cost_per_order_last_touch, return_on_ad_spend_last_touch from marts.campaign_performance "
                        "where utm_source = 'facebook' and utm_campaign = 'Spring Sale'")
    assert spring == [(25.0, 34, 1.0, 50.0, 25.0, 2.0)]


def test_exec_metrics_use_the_sku_cost_effective_on_the_order_day(built):
    home = built["home"]
    daily = rows(home, "select order_date, orders, new_customers, gross_revenue, discounts, revenue, cost, margin, "
                       "coupon_usage_rate from marts.exec_daily_metrics")
    # 2 mugs at the cost effective on DAY2 (9.00, not 8.00): cost 18.00, margin 50.00 - 18.00
    assert [(str(r[0]), *(float(v) for v in r[1:])) for r in daily] == [
        (DAY2, 1.0, 1.0, 55.0, 5.0, 50.0, 18.0, 32.0, 1.0)]
    segments = rows(home, "select age_band, customer_type, customers, orders, orders_with_coupon, coupon_usage_rate "
                          "from marts.coupon_usage_by_segment order by all")
    assert ("35-44", "retail", 1, 1, 1, 1.0) in segments
    assert ("45-54", "wholesale", 1, 0, 0, None) in segments


def test_whitepaper_analyses_compile_and_answer(built):
    home, work = built["home"], built["work"]
    dbt(home, work, "compile", "--select", "path:analyses", top_pages_min_purchases=0, coupon_min_orders=1)
    compiled = work / "target" / "compiled" / "growth_stack" / "analyses"
    assert sorted(p.name for p in compiled.iterdir()) == sorted(p.name for p in ANALYSES.glob("*.sql"))
    top_pages = rows(home, (compiled / "top_pages_of_qualified_repeat_buyers.sql").read_text())
    assert top_pages[0][:3] == ("/cart", 1, 1) or {r[0] for r in top_pages} >= {"/landing/spring", "/checkout"}
    coupons = rows(home, (compiled / "coupon_usage_by_demographic_segment.sql").read_text())
    assert [r[:4] for r in coupons] == [("35-44", "retail", 1, 1.0)]
    app = rows(home, (compiled / "wholesale_mobile_app_usage.sql").read_text())
    by_type = {r[1]: r for r in app if r[0] == "by_customer_type"}
    assert by_type["wholesale"][2:4] == (1, 1)  # one wholesale customer, who uses the app
    assert ("top_event", "Request a Quote") in {(r[0], r[1]) for r in app}


def test_a_partition_run_names_its_days_through_the_environment(built):
    """The Dagster partition's environment variables bound the rebuilt days and the data tests' filter."""
    home, work = built["home"], built["work"]
    dbt(home, work, "compile", "--select", "journey_event_touchpoints", "journey_event_sessions",
        "test_name:unique,journey_event_touchpoints", partition_env=DAY2)
    compiled = work / "target" / "compiled" / "growth_stack" / "models" / "marts" / "journeys"
    touchpoints = (compiled / "journey_event_touchpoints.sql").read_text()
    assert f"received_at >= cast('{DAY2} 00:00:00+00:00'" in touchpoints
    assert f"received_date between cast('{DAY2}' as date) and cast('{DAY2}' as date)" in \
        (compiled / "journey_event_sessions.sql").read_text()
    unique_test = next((compiled / "_journeys__models.yml").glob("unique_journey_event_touchpoints_touchpoint_id*.sql"))
    assert f"cast('{DAY2}' as date)" in unique_test.read_text()
