"""The Dagster UI and the console in headless Chromium, as a newcomer meets them after `make demo`:
no dialog and no queued runs on arrival, every group in the asset graph, a materialization launched from
the UI, numeric metadata plotted, the scorecard one click from its asset, and a late event file turning
into a sensor-triggered backfill of its day. Screenshots go to $GROWTH_STACK_SCREENSHOTS when set
(docs/screenshots/ holds the README's)."""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

import dagster as dg
import orjson
import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from growth_stack_dagster import eventfiles
from tests.browser import new_page, screenshot

GROUPS = ["capture", "ingest_hubspot", "ingest_stripe", "ingest_facebook_ads", "ingest_zendesk", "ingest_finance",
          "staging", "identity", "customer_360", "marketing", "finance", "activation", "reports"]
# The first test's setup starts dagster dev over the session's built company (and builds that company
# when tests/e2e did not run first): minutes on a busy machine.
pytestmark = pytest.mark.timeout(1500)
UNFINISHED = [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING,
              dg.DagsterRunStatus.STARTED]


def instance_of(stack) -> dg.DagsterInstance:
    from dagster._core.instance.ref import InstanceRef

    return dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(Path(stack["home"]) / "dagster_home")))


def sensor_cursor(instance: dg.DagsterInstance, name: str) -> str | None:
    for state in instance.all_instigator_state():
        if state.name == name and state.instigator_data is not None:
            return getattr(state.instigator_data, "cursor", None)
    return None


def sensor_ticked(instance: dg.DagsterInstance, name: str) -> bool:
    """Whether the daemon has finished a tick of sensor `name` (skipped or not)."""
    return any(state.name == name and getattr(state.instigator_data, "last_tick_success_timestamp", None)
               for state in instance.all_instigator_state())


def wait_until(predicate, timeout: float, what: str, every: float = 1.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


def open_page(browser, url: str, wait_text: str, timeout: float = 60_000):
    page = new_page(browser, 1440, 900)
    page.goto(url, wait_until="load")
    page.get_by_text(wait_text, exact=False).first.wait_for(timeout=timeout)
    return page


def test_first_page_has_no_dialog_and_no_run_is_queued_for_work_already_done(stack, browser) -> None:
    instance = instance_of(stack)
    # the daemon's first evaluation of the event-file sensor, with everything already loaded
    wait_until(lambda: sensor_cursor(instance, "event_files_sensor"), 180, "the event_files_sensor's first tick")
    # and of the finance drop sensor, whose first tick must not queue a load of the drops already loaded
    wait_until(lambda: sensor_ticked(instance, "finance_drop_sensor"), 180, "the finance_drop_sensor's first tick")
    page = new_page(browser, 1440, 900)
    # The first-visit dialog opens a second after the UI's ShouldShowNux query answers true: wait for that answer.
    with page.expect_response(lambda r: "ShouldShowNux" in (r.request.post_data or ""), timeout=60_000) as nux:
        page.goto(stack["dagster"] + "/overview", wait_until="load")
    page.get_by_text("Overview").first.wait_for(timeout=60_000)
    screenshot(page, "overview")
    assert nux.value.json()["data"]["shouldShowNux"] is False
    assert page.get_by_text("Join the Dagster community").count() == 0
    sensor_runs = instance.get_runs(dg.RunsFilter(tags={"dagster/sensor_name": "event_files_sensor"}))
    assert sensor_runs == []
    # Schedules start new work on their own clock (the streaming observation every few minutes), and a
    # tick may queue its run for a moment just as this looks: only runs queued by anything else count.
    queued = instance.get_runs(dg.RunsFilter(statuses=[dg.DagsterRunStatus.QUEUED]))
    assert [run for run in queued if "dagster/schedule_name" not in run.tags] == []
    page.context.close()


def test_the_asset_graph_shows_every_group(stack, browser) -> None:
    page = open_page(browser, stack["dagster"] + "/asset-groups", "capture")
    with contextlib.suppress(PlaywrightTimeoutError):  # the graph fills in as it lays out; the assert names what is missing
        page.wait_for_function("groups => groups.every(g => document.body.innerText.includes(g))", arg=GROUPS,
                               timeout=60_000)
    screenshot(page, "asset-graph")
    text = page.inner_text("body")
    missing = [g for g in GROUPS if g not in text]
    assert not missing, f"groups not shown in the asset graph: {missing}"
    page.context.close()


def test_a_materialization_launched_from_the_ui_succeeds_and_links_to_the_scorecard(stack, browser) -> None:
    instance = instance_of(stack)
    key = dg.AssetKey(["reports", "executive_scorecard"])
    before = instance.get_latest_materialization_event(key)
    page = open_page(browser, stack["dagster"] + "/assets/reports/executive_scorecard", "executive_scorecard")
    page.locator("button", has_text="Materialize").first.click()
    event = wait_until(lambda: (e := instance.get_latest_materialization_event(key)) and e != before and e, 240,
                       "the scorecard's materialization")
    run_id = event.run_id
    assert instance.get_run_by_id(run_id).status == dg.DagsterRunStatus.SUCCESS or wait_until(
        lambda: instance.get_run_by_id(run_id).status == dg.DagsterRunStatus.SUCCESS, 60, "the run's success")
    page.goto(stack["dagster"] + f"/runs/{run_id}", wait_until="load")
    page.get_by_text("Success").first.wait_for(timeout=60_000)
    page.get_by_text("Finished execution of run").first.wait_for(timeout=60_000)
    screenshot(page, "run")

    # one click from the asset's latest materialization metadata to the page the console serves
    page.goto(stack["dagster"] + "/assets/reports/executive_scorecard", wait_until="load")
    link = page.locator("a[href$='/scorecard']").first
    link.wait_for(timeout=60_000)
    assert link.get_attribute("href") == stack["console"] + "/scorecard"
    with page.context.expect_page() as opened:
        link.click(modifiers=["ControlOrMeta"])  # metadata links open beside the UI
    scorecard = opened.value
    scorecard.wait_for_load_state("load")
    scorecard.locator(".js-plotly-plot").first.wait_for(timeout=60_000)
    scorecard.set_viewport_size({"width": 1440, "height": 900})
    screenshot(scorecard, "scorecard")
    charts = scorecard.locator(".js-plotly-plot").count()
    assert charts >= 6, f"{charts} charts on the scorecard"
    assert scorecard.get_by_text("Revenue by day").count() >= 1
    assert scorecard.get_by_text("Return on ad spend by campaign").count() >= 1
    page.context.close()


def test_numeric_metadata_is_plotted_over_time(stack, browser) -> None:
    page = open_page(browser, stack["dagster"] + "/assets/events/tracks", "Metadata")
    page.get_by_role("button", name="Plots").first.click()
    page.locator("canvas").nth(2).wait_for(timeout=60_000)  # the third chart: rows, discards, messages_read
    page.get_by_role("button", name="Plots").first.scroll_into_view_if_needed()
    screenshot(page, "metadata-plot")
    text = page.inner_text("body")
    for name in ("rows", "discards", "messages_read"):
        assert name in text
    assert page.locator("canvas").count() >= 3  # one chart per numeric metadata key
    page.context.close()


def test_a_late_event_file_requests_its_day_as_a_sensor_triggered_backfill(stack, browser) -> None:
    instance = instance_of(stack)
    root = Path(stack["home"]) / "events"
    days = eventfiles.days_with_files(root)
    day = days[len(days) // 2]  # an older day, loaded long ago
    message = {"type": "page", "messageId": "late-file-page-1", "anonymousId": "late-visitor",
               "receivedAt": f"{day}T12:00:00.000Z", "timestamp": f"{day}T12:00:00.000Z",
               "properties": {"path": "/late"}, "context": {"page": {"path": "/late"}}}
    eventfiles.write_closed_file(root, "web", day, [orjson.dumps(message)])

    def sensor_run():
        runs = instance.get_runs(dg.RunsFilter(tags={"dagster/sensor_name": "event_files_sensor"}))
        return [r for r in runs if r.tags.get("dagster/partition") == day]

    [run] = wait_until(sensor_run, 180, f"the sensor's run for {day}")
    assert run.tags["growth_stack/backfill"] == "true"
    wait_until(lambda: instance.get_run_by_id(run.run_id).status not in UNFINISHED, 300, "the backfill run to finish")
    assert instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.SUCCESS
    page = open_page(browser, stack["dagster"] + "/runs", "capture_events_job")
    page.get_by_text("event_files_sensor").first.wait_for(timeout=60_000)
    screenshot(page, "sensor-backfill")
    assert page.get_by_text("event_files_sensor").count() >= 1
    page.context.close()



def test_run_now_from_the_console_launches_a_sync_whose_metadata_shows_its_counts(stack, browser) -> None:
    """The mapping page's "Run now" goes through Dagster's GraphQL API (as the UI's Materialize button
    does); the sync's materialization then shows its row counts in the UI."""
    import requests

    from growth_stack_dagster.console.dagster_client import launch_asset_run

    instance = instance_of(stack)
    key = dg.AssetKey(["destinations", "hubspot", "contacts", "hubspot_contacts_traits"])
    run_id = launch_asset_run(stack["dagster"], key.path)
    wait_until(lambda: instance.get_run_by_id(run_id).status not in UNFINISHED, 300, "the sync's run")
    assert instance.get_run_by_id(run_id).status == dg.DagsterRunStatus.SUCCESS
    # This run's own materialization: an automation may materialize the sync again meanwhile (the late file
    # of the test before changes its upstream), so the asset's latest event need not be this run's.
    [event] = [e for e in instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION)
               if e.asset_materialization.asset_key == key]
    metadata = event.asset_materialization.metadata
    # `growth-stack run` synced everything already: this run finds nothing new to send
    assert metadata["rows_unchanged"].value > 0 and metadata["rows_sent"].value == 0
    assert metadata["rows_rejected"].value == 0
    assert "@" not in str({k: v.value for k, v in metadata.items()})  # no personal data in metadata
    page = open_page(browser, stack["dagster"] + "/assets/" + "/".join(key.path), "Metadata")
    for name in ("rows_unchanged", "rows_sent", "rejection_rate"):
        page.get_by_text(name).first.wait_for(timeout=60_000)
    screenshot(page, "sync-metadata")
    page.context.close()
    # the console's Syncs page lists the sync; its Run now form posts to the same launcher
    assert "hubspot_contacts_traits" in requests.get(stack["console"] + "/syncs", timeout=60).text
