"""Real `dbt build` of the staging and identity models on a real DuckDB file, checked against
the stitching each edge case calls for."""

from __future__ import annotations

from pathlib import Path

import duckdb

from tests.dbt import raw
from tests.dbt.conftest import ALL_STAGING_AND_IDENTITY, customers, dbt_build, partition, query


def test_a_fresh_warehouse_builds_with_every_model_empty(home: Path, dbt_work: Path) -> None:
    duckdb.connect(str(home / "warehouse.duckdb")).close()  # no raw table exists yet
    dbt_build(home, dbt_work, ALL_STAGING_AND_IDENTITY)
    views = {r[0] for r in query(home, "select table_name from information_schema.tables "
                                       "where table_schema = 'staging' and table_type = 'VIEW'")}
    assert {"stg_events__identifies", "stg_events__order_completed", "stg_hubspot__contacts",
            "stg_stripe__invoice_lines", "stg_zendesk__users", "stg_facebook_ads__campaign_insights",
            "stg_finance__sku_costs"} <= views
    assert query(home, "select count(*) from staging.stg_events__email_clicked") == [(0,)]
    assert query(home, "select count(*) from marts.customer_identifiers") == [(0,)]
    assert query(home, "select count(*) from marts.identity_merges") == [(0,)]
    assert query(home, "select count(*) from marts.identity_links") == [(0,)]


def test_identities_are_stitched_across_systems_and_ids_stay_stable(home: Path, dbt_work: Path) -> None:
    raw.day1_events(home / "events")
    raw.load_events(home, raw.DAY1)
    raw.day1_saas_tables(home)
    dbt_build(home, dbt_work)

    first = customers(home)
    assert partition(first) == raw.EXPECTED_DAY1
    blocked = dict(((t, v), reason) for t, v, reason in query(
        home, "select identifier_type, identifier_value, block_reason from intermediate.int_identifiers_blocked"))
    assert blocked == raw.EXPECTED_BLOCKED

    # Ann's email, seen in five systems in five spellings, is one identifier with its history
    [(first_seen, last_seen, sources)] = query(
        home, "select first_seen_at, last_seen_at, sources from marts.customer_identifiers "
              "where identifier_type = 'email' and identifier_value = 'ann@example.com'")
    assert sources == "customerio,hubspot,stripe,web,zendesk"
    assert str(first_seen).startswith("2026-01-09 08:00:00") and str(last_seen).startswith("2026-01-10 14:00:00")

    # the alias chain is recorded as the links that joined Bob's identifiers, when they happened
    merges = {(a, b, system, str(at)[:19]) for a, b, system, at in query(
        home, "select identifier_value_a, identifier_value_b, source_system, first_seen_at from marts.identity_links "
              "where identifier_type_a in ('anonymous_id', 'user_id') and identifier_type_b = 'user_id' "
              "and customer_id = (select customer_id from marts.customer_identifiers where identifier_value = 'u_bob')")}
    assert merges == {("a-bob", "u_bob_old", "web", "2026-01-10 00:00:11"),
                      ("u_bob_old", "u_bob", "web", "2026-01-10 00:00:12"),
                      ("a-bob-2", "u_bob", "web", "2026-01-10 00:00:14")}

    # An unrelated customer arrives: nobody else's customer_id changes.
    raw.day2_unrelated_customer(home / "events")
    raw.load_events(home, raw.DAY2)
    raw.day2_saas_tables(home)
    dbt_build(home, dbt_work)
    second = customers(home)
    assert {k: second[k] for k in first} == first
    assert partition(second) == raw.EXPECTED_DAY1 | {frozenset(raw.EVE)}
    assert second[("user_id", "u_eve")] not in set(first.values())
    assert query(home, "select count(*) from marts.identity_merges") == [(0,)]  # nobody merged or split
