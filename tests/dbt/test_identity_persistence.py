"""Persistent customer ids through real `dbt build`s on a real DuckDB file: a merge keeps the older id and
is recorded with its link; a kiosk found to be shared is blocked, the customer it joined splits and the
split is recorded; the merge history outlives `--full-refresh`."""

from __future__ import annotations

import hashlib
from pathlib import Path

import duckdb

from tests.dbt import raw
from tests.dbt.conftest import IDENTITY, customers, dbt_build, query

DAY3 = "2026-01-12"
KIOSK_USERS = [f"u_k{i}" for i in range(1, 11)]  # with u_carl and u_dan, 12 users on one device: over the cap of 10


def md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


def merge_history(home: Path) -> list[tuple]:
    return query(home, """
        select change_type, old_customer_id, customer_id, cast(changed_at as varchar), identifiers_moved,
               source_system, identifier_type_a, identifier_value_a, identifier_type_b, identifier_value_b,
               change_reason
        from marts.identity_merges order by changed_at, change_type""")


def test_a_merge_and_a_split_are_recorded_and_ids_persist(home: Path, dbt_work: Path) -> None:
    raw.day1_events(home / "events")
    raw.load_events(home, raw.DAY1)
    raw.day1_saas_tables(home)
    dbt_build(home, dbt_work)
    first = customers(home)
    carl, dan = first[("user_id", "u_carl")], first[("user_id", "u_dan")]
    # Carl's first identifiers were seen together at second 20; a-carl's key sorts first
    assert carl == md5("anonymous_id:a-carl") and dan == md5("user_id:u_dan")
    assert merge_history(home) == []

    # Day 2: Dan signs in on Carl's device. Two customers become one: Carl's, the older, survives.
    raw.write_events(home / "events", "web", raw.DAY2, [
        raw.message(raw.DAY2, 5, type="page", anonymousId="a-carl", userId="u_dan", name="Home")])
    raw.load_events(home, raw.DAY2)
    dbt_build(home, dbt_work)
    second = customers(home)
    assert second[("user_id", "u_dan")] == second[("user_id", "u_carl")] == carl
    assert {k: v for k, v in second.items() if v != first[k]} == {("user_id", "u_dan"): carl}
    assert merge_history(home) == [
        ("merge", dan, carl, "2026-01-11 00:00:05+00", 1, "web", "anonymous_id", "a-carl", "user_id", "u_dan",
         "anonymous_id:a-carl and user_id:u_dan were linked")]

    # Day 3: ten more people sign in on that device, a shop kiosk. It is blocked (anonymous_id -> user_id
    # cap 10), every link through it disappears and Carl's customer splits. u_carl, the oldest identifier
    # left, keeps Carl's id; Dan gets the id named after his own oldest identifier.
    raw.write_events(home / "events", "web", DAY3, [
        raw.message(DAY3, 10 + k, type="page", anonymousId="a-carl", userId=u, name="Home")
        for k, u in enumerate(KIOSK_USERS)])
    raw.load_events(home, DAY3)
    dbt_build(home, dbt_work)
    third = customers(home)
    assert ("anonymous_id", "a-carl") not in third
    assert third[("user_id", "u_carl")] == carl
    assert third[("user_id", "u_dan")] == md5("user_id:u_dan")
    assert {third[("user_id", u)] for u in KIOSK_USERS} == {md5(f"user_id:{u}") for u in KIOSK_USERS}
    assert {k: v for k, v in third.items() if k in second and v != second[k]} == {("user_id", "u_dan"): md5("user_id:u_dan")}
    history = merge_history(home)
    assert history[0][:3] == ("merge", dan, carl)  # the history is kept
    [split] = history[1:]
    assert split[:5] == ("split", carl, md5("user_id:u_dan"), "2026-01-12 00:00:19+00", 1)
    assert split[10] == ("1 identifier split off: anonymous_id:a-carl left the identity graph "
                         "(linked to 12 distinct user_id values, more than the cap of 10)")

    # Nothing new: nothing moves and nothing is recorded twice; --full-refresh keeps the map and the history.
    dbt_build(home, dbt_work, [*IDENTITY, "--full-refresh"])
    assert customers(home) == third
    assert merge_history(home) == history


def test_guest_checkout_stripe_customers_of_one_email_stay_one_customer(home: Path, dbt_work: Path) -> None:
    """One email, eight Stripe customers (one per guest checkout) and two HubSpot contacts: one person.
    A shared family inbox (six app users) is still blocked."""
    raw.day1_events(home / "events")
    raw.load_events(home, raw.DAY1)
    raw.day1_saas_tables(home)
    with duckdb.connect(str(home / "warehouse.duckdb")) as con:
        for k in range(1, 9):
            created = 1768046400 + k * 86_400
            con.execute("insert into stripe.customers values (?, false, ?, 'customer', ?, ?, 'Bob B', false, ?, ?)",
                        [created, f"cus_bob{k}", created, " BOB@x.io" if k % 2 else "bob@x.io", raw.LOAD_ID, f"dlt-b{k}"])
            con.execute("insert into stripe.invoices values (?, false, ?, 'invoice', ?, 'usd', ?, 'bob@x.io', 'paid', "
                        "12000, ?, ?, ?)", [created, f"in_bob{k}", created, f"cus_bob{k}", created + 60, raw.LOAD_ID, f"dlt-ib{k}"])
        raw.hubspot_contact(con, "602", "Bob@X.io", "2026-01-09 12:00:00+00")
    dbt_build(home, dbt_work)
    got = customers(home)
    bob = got[("user_id", "u_bob")]
    assert {got[("stripe_customer_id", f"cus_bob{k}")] for k in range(1, 9)} == {bob}
    assert got[("hubspot_contact_id", "602")] == got[("hubspot_contact_id", "502")] == bob
    blocked = {(t, v) for t, v in query(home, "select identifier_type, identifier_value from intermediate.int_identifiers_blocked")}
    assert ("email", "bob@x.io") not in blocked and ("email", "family@home.com") in blocked
