"""The stitched customers of a simulated company against the simulator's ground truth.

The simulator fills a sandbox subprocess and the event files, the real loaders fill the warehouse,
then a real `dbt build` stitches. `customer_identifiers` must hold exactly the ground truth's
identifiers that reached the warehouse, grouped exactly as the ground truth's people.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import orjson

from tests.dbt.conftest import COMPANY_CUSTOMERS as CUSTOMERS
from tests.dbt.conftest import customers, dbt_build, partition, query

# Every identifier the raw tables hold, read straight from the loaders' tables (not from dbt).
RAW_IDENTIFIERS = """
    select 'anonymous_id', trim(anonymous_id) from events.pages union
    select 'anonymous_id', trim(anonymous_id) from events.screens union
    select 'anonymous_id', trim(anonymous_id) from events.identifies union
    select 'anonymous_id', trim(anonymous_id) from events.tracks where source not in ('customerio', 'stripe') union
    select 'user_id', trim(user_id) from events.identifies union
    select 'user_id', trim(user_id) from events.pages union
    select 'user_id', trim(user_id) from events.screens union
    select 'user_id', trim(user_id) from events.tracks where source not in ('customerio', 'stripe') union
    select 'customerio_id', trim(user_id) from events.tracks where source = 'customerio' union
    select 'email', lower(trim(email)) from events.identifies union
    select 'email', lower(trim(properties__email)) from hubspot.contacts union
    select 'email', lower(trim(email)) from stripe.customers union
    select 'email', lower(trim(email)) from zendesk.users union
    select 'hubspot_contact_id', id from hubspot.contacts union
    select 'stripe_customer_id', id from stripe.customers union
    select 'zendesk_user_id', cast(id as varchar) from zendesk.users
"""


def truth_identifiers(path: Path) -> dict[tuple[str, str], str]:
    """{(identifier_type, normalised value): person_key} from ground_truth.jsonl."""
    out: dict[tuple[str, str], str] = {}
    for line in path.read_bytes().splitlines():
        person = orjson.loads(line)
        for kind, values in person["identifiers"].items():
            for value in values if isinstance(values, list) else [values]:
                if value is not None:
                    out[(kind, str(value).strip().lower() if kind == "email" else str(value))] = person["person_key"]
    return out


def test_customer_identifiers_match_the_simulators_ground_truth(home: Path, dbt_work: Path,
                                                                simulated_company: Path) -> None:
    shutil.copy(simulated_company / "warehouse.duckdb", home / "warehouse.duckdb")
    shutil.copytree(simulated_company / "simulation", home / "simulation")
    dbt_build(home, dbt_work)

    truth = truth_identifiers(home / "simulation" / "ground_truth.jsonl")
    in_warehouse = {(t, v) for t, v in query(home, RAW_IDENTIFIERS) if v is not None}
    # Some ground-truth identifiers never reach the warehouse (a device with no traffic, a
    # Customer.io person never emailed): no stitching can know them.
    expected = {k: person for k, person in truth.items() if k in in_warehouse}
    assert len(expected) > CUSTOMERS  # the comparison is not vacuous

    got = customers(home)
    # guest-checkout buyers: one email, several Stripe customers, one person
    assert any(sum(k[0] == "stripe_customer_id" and p == person for k, p in expected.items()) > 1
               for person in set(expected.values()))
    assert set(got) == set(expected)
    assert partition(got) == partition(expected)
    assert query(home, "select count(*) from intermediate.int_identifiers_blocked") == [(0,)]
