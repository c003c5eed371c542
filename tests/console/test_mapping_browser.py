"""The mapping page in a real browser (headless Chromium driven by Playwright): a user maps the high-value
flag to a new HubSpot property, previews, dry-runs and saves; the declaration file is the expected YAML;
the sync then runs from Dagster and the contact in the sandbox has the property. A second user writes a
query, previews it and saves it as a model. Screenshots of each step go to $GROWTH_STACK_SCREENSHOTS."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from hubspot import HubSpot

from growth_stack_dagster import config
from tests.activation.helpers import contact_row, write_contacts
from tests.browser import new_page, screenshot
from tests.servers import run_server

pytestmark = pytest.mark.timeout(600)

ROWS = [contact_row(i, high=i % 3 == 0) for i in range(20)]
EXPECTED_DECLARATION = """\
# The sync hubspot_high_value_flag: sync_hubspot__contacts -> hubspot contacts.
# Written by the console's mapping page; edit it here or there.
version: 2
exposures:
  - name: hubspot_high_value_flag
    label: 'HubSpot contacts: high-value flag'
    type: application
    owner: {name: Growth team}
    depends_on:
      - ref('sync_hubspot__contacts')
    description: Declared on the console's mapping page.
    meta:
      sync:
        destination: hubspot
        object: contacts
        mode: upsert
        primary_key: email
        match_field: email
        mappings:
          - {column: email, field: email}
          - {column: first_name, field: firstname}
          - {column: last_name, field: lastname}
          - column: is_high_value
            field: gs_high_value_flag
            null_policy: clear
            create: {type: bool, label: High value (Growth Stack)}
"""


@pytest.fixture
def project_copy(tmp_path: Path) -> Path:
    """A copy of the dbt project (with its parsed manifest), so saving never touches the repository."""
    copy = tmp_path / "dbt_project"
    shutil.copytree(config.dbt_project_dir(), copy, ignore=shutil.ignore_patterns("logs", "run", "compiled"))
    assert (copy / "target" / "manifest.json").exists(), "run `make dbt-parse` first"
    return copy


@pytest.fixture
def console(gs_home: Path, sandbox_url: str, project_copy: Path):
    write_contacts(ROWS)
    env = {"GROWTH_STACK_HOME": str(gs_home), "GROWTH_STACK_SANDBOX_URL": sandbox_url,
           "GROWTH_STACK_DBT_PROJECT_DIR": str(project_copy)}
    with run_server("console", "/health", env, log_path=gs_home / "console.log") as (url, _):
        yield url, env


def test_map_the_high_value_flag_to_a_new_hubspot_property_then_run_it_from_dagster(
        browser, console, sandbox_url: str, project_copy: Path, gs_home: Path) -> None:
    url, env = console
    page = new_page(browser)
    page.set_default_timeout(180_000)  # a save runs `dbt parse`, slow on a loaded 2-core machine
    page.goto(f"{url}/syncs")
    page.locator("tr", has_text="sync_hubspot__contacts").get_by_role("link", name="New sync from this model").click()
    page.get_by_role("heading", name="New sync from sync_hubspot__contacts").wait_for()
    screenshot(page, "mapping-1-new-sync")
    assert page.get_by_label("Tool and object").input_value() == "hubspot:contacts"
    # the fields come from HubSpot's own properties API (the sandbox's), suggested by name
    assert page.get_by_label("Field for first_name").input_value() == "firstname"
    assert page.get_by_label("Field for email").input_value() == "email"
    for column in ("hubspot_contact_id", "customer_id", "lifetime_value", "margin", "coupon_usage_rate",
                   "orders_last_365d", "last_seen_date"):
        page.get_by_label(f"Field for {column}").select_option("")
    page.get_by_label("Field for last_name").select_option("lastname")
    page.get_by_label("Field for is_high_value").select_option("__new__")
    page.get_by_label("New field name for is_high_value").fill("gs_high_value_flag")
    page.get_by_label("New field type for is_high_value").select_option("bool")
    page.get_by_label("New field label for is_high_value").fill("High value (Growth Stack)")
    page.get_by_label("When is_high_value is empty").select_option("clear")
    page.get_by_label("Sync name").fill("hubspot_high_value_flag")
    page.get_by_label("Title").fill("HubSpot contacts: high-value flag")
    page.get_by_label("Key column (one row per value)").select_option("email")
    page.get_by_label("Find the record in hubspot by").select_option("email")
    screenshot(page, "mapping-2-mapped")

    page.get_by_role("button", name="Preview payloads").click()
    payload = page.locator("pre.payload").first
    payload.wait_for()
    text = payload.inner_text()
    assert '"gs_high_value_flag": "true"' in text and '"idProperty": "email"' in text
    assert "person00000@shop.test" in text and "gs_margin" not in text
    screenshot(page, "mapping-3-preview")

    page.get_by_role("button", name="Dry run").click()
    page.locator("#dry-run-counts").wait_for()
    assert page.locator("[data-count=added]").inner_text() == "20"
    assert page.locator("[data-count=changed]").inner_text() == "0"
    screenshot(page, "mapping-4-dry-run")
    assert requests.get(f"{sandbox_url}/hubspot/_sandbox/writes/contacts", timeout=10).json().get("writes", {}) == {}

    page.get_by_role("button", name="Save the sync").click()
    page.get_by_role("heading", name="Saved the sync hubspot_high_value_flag").wait_for()
    screenshot(page, "mapping-5-saved")
    saved = project_copy / "models" / "activation" / "syncs" / "hubspot_high_value_flag.yml"
    assert saved.read_text() == EXPECTED_DECLARATION
    assert page.locator("#declaration").inner_text().strip() == EXPECTED_DECLARATION.strip()

    # opening it again and saving it unchanged leaves the file as it is
    page.goto(f"{url}/syncs/edit?name=hubspot_high_value_flag")
    page.get_by_role("button", name="Save the sync").click()
    page.get_by_role("heading", name="Nothing changed in hubspot_high_value_flag").wait_for()
    assert saved.read_text() == EXPECTED_DECLARATION

    # the sync runs from Dagster: the code location reads the saved declaration (no Python change)
    dagster_home = gs_home / "dagster_home_test"
    dagster_home.mkdir()
    run = subprocess.run(
        [str(Path(sys.executable).with_name("dagster")), "asset", "materialize", "-m", "growth_stack_dagster.definitions",
         "--select", "destinations/hubspot/contacts/hubspot_high_value_flag"],
        # outside the repository: the dagster CLI loads a .env of its working folder over the environment
        env={**os.environ, **env, "DAGSTER_HOME": str(dagster_home)}, cwd=gs_home, capture_output=True, text=True,
        timeout=400)
    assert run.returncode == 0, run.stderr[-4000:]
    client = HubSpot(access_token=config.DEFAULT_SANDBOX_TOKEN, host=f"{sandbox_url}/hubspot")
    for row in ROWS[:6]:
        contact = client.crm.contacts.basic_api.get_by_id(row["email"], id_property="email",
                                                          properties=["gs_high_value_flag", "firstname"])
        assert contact.properties["gs_high_value_flag"] == ("true" if row["is_high_value"] else "false")
        assert contact.properties["firstname"] == row["first_name"]


def test_write_a_query_preview_it_and_save_it_as_a_model(browser, console, project_copy: Path) -> None:
    url, _ = console
    page = new_page(browser)
    page.set_default_timeout(180_000)
    page.goto(f"{url}/queries")
    page.get_by_label("Query").fill("delete from activation.sync_hubspot__contacts")
    page.get_by_role("button", name="Preview").click()
    assert "would change the warehouse" in page.locator("#query-error").inner_text()

    page.get_by_label("Query").fill("select email, first_name, is_high_value\n"
                                    "from activation.sync_hubspot__contacts\nwhere is_high_value")
    page.get_by_role("button", name="Preview").click()
    page.locator("#preview").wait_for()
    assert page.locator("#preview h2").inner_text() == "7 rows"
    assert page.locator("#preview tbody tr").count() == 7
    screenshot(page, "query-1-preview")
    page.get_by_label("Model name").fill("sync_hubspot__vip_contacts")
    page.get_by_label("Key column (one row per value)").select_option("email")
    page.get_by_label("What it holds").fill("High-value contacts for the VIP list.")
    page.get_by_role("button", name="Save as a model").click()
    page.locator("#saved").wait_for()
    screenshot(page, "query-2-saved")
    sql = (project_copy / "models" / "activation" / "sync_hubspot__vip_contacts.sql").read_text()
    assert "from {{ ref('sync_hubspot__contacts') }}" in sql
    model_yaml = (project_copy / "models" / "activation" / "_sync_hubspot__vip_contacts.yml").read_text()
    assert "name: email" in model_yaml and "- unique" in model_yaml
    # dbt parsed it: the model is offered for a new sync
    page.goto(f"{url}/syncs")
    assert page.locator("tr", has_text="sync_hubspot__vip_contacts").count() == 1


def test_saves_from_another_site_or_without_the_form_token_are_refused(console, project_copy: Path) -> None:
    url, _ = console
    form = {"model": "sync_hubspot__contacts", "name": "evil", "action": "save", "target": "hubspot:contacts"}
    assert requests.post(f"{url}/syncs/edit", data=form, timeout=30).status_code == 403
    page = requests.get(f"{url}/syncs/edit?model=sync_hubspot__contacts", timeout=30).text
    token = page.split('name="csrf" value="')[1].split('"')[0]
    cross = requests.post(f"{url}/syncs/edit", data={**form, "csrf": token},
                          headers={"Origin": "http://attacker.example"}, timeout=30)
    assert cross.status_code == 403
    assert not (project_copy / "models" / "activation" / "syncs" / "evil.yml").exists()
