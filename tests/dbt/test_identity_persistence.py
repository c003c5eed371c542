"""Persistent customer ids through real dbt builds on a real DuckDB file: guest-checkout Stripe customers
stay one person; a merge keeps the older id and is recorded with its link; a kiosk found to be shared is
blocked, the customer it joined splits and the split is recorded; the map and the history outlive
`--full-refresh`; ten builds of a growing simulated company keep every id, as a build from scratch does.

After the first `dbt build` (subprocess), later builds run dbt in this process: dbt's start-up is most of
a small build."""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

import duckdb

from tests.dbt import raw
from tests.dbt.conftest import COMPANY_AS_OF, COMPANY_DAYS, REPO, customers, dbt_build, query
from tests.dbt.test_ground_truth import truth_identifiers
from tests.unit.test_identity_graph import count_calls

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


# The raw tables the identity models read, and the time each row happened (rows are cut on it).
GROWTH_TABLES = {
    **{f"events.{t}": 'coalesce("timestamp", received_at)'
       for t in ("identifies", "tracks", "pages", "screens", "groups", "aliases")},
    "hubspot.contacts": "created_at",
    "stripe.customers": "to_timestamp(created)",
    "stripe.invoices": "to_timestamp(created)",
    "zendesk.users": "created_at",
}
IDENTITY_MODELS = ["path:models/intermediate/identity", "path:models/marts/identity"]


def grow_to(home: Path, full: Path, cutoff: dt.datetime) -> None:
    """Make `home`'s raw tables the simulated company's rows up to `cutoff` (the company as it was then)."""
    with duckdb.connect(str(home / "warehouse.duckdb")) as con:
        con.execute(f"attach '{full / 'warehouse.duckdb'}' as full_company (read_only)")
        existing = {f"{s}.{t}" for s, t in con.execute(
            "select schema_name, table_name from duckdb_tables() where database_name = 'full_company'").fetchall()}
        for table, happened_at in GROWTH_TABLES.items():
            if table in existing:
                con.execute(f"create schema if not exists {table.split('.')[0]}")
                con.execute(f"create or replace table {table} as select * from full_company.{table} "
                            f"where {happened_at} <= ?", [cutoff])
        con.execute("detach full_company")


def dbt_in_process(work: Path, *args: str) -> None:
    """One dbt command in this process (dbt's start-up is most of a small build); fails the test on error."""
    from dbt.cli.main import dbtRunner

    from dbt.adapters.duckdb.connections import DuckDBConnectionManager

    try:
        result = dbtRunner().invoke([*args[:1], "--project-dir", "dbt_project", "--profiles-dir", "dbt_project",
                                     "--target-path", str(work / "target"), "--log-path", str(work / "logs"),
                                     "--quiet", *args[1:]])
    finally:
        # dbt-duckdb keeps its database open in the process: close it so the test can read the file.
        if DuckDBConnectionManager._ENV is not None:
            DuckDBConnectionManager._ENV.close()
        DuckDBConnectionManager.close_all_connections()
    assert result.success, f"dbt {' '.join(args)} failed: {result.exception or result.result}"


def add_guest_checkouts(home: Path) -> None:
    """Bob checks out as a guest eight times: eight Stripe customers with his email, each with a paid
    invoice of 120.00; and a second HubSpot contact (a duplicate) with his email."""
    with duckdb.connect(str(home / "warehouse.duckdb")) as con:
        for k in range(1, 9):
            created = 1768046400 + k * 86_400
            con.execute("insert into stripe.customers values (?, false, ?, 'customer', ?, ?, 'Bob B', false, ?, ?)",
                        [created, f"cus_bob{k}", created, " BOB@x.io" if k % 2 else "bob@x.io", raw.LOAD_ID, f"dlt-b{k}"])
            con.execute("insert into stripe.invoices values (?, false, ?, 'invoice', ?, 'usd', ?, 'bob@x.io', 'paid', "
                        "12000, ?, ?, ?)", [created, f"in_bob{k}", created, f"cus_bob{k}", created + 60, raw.LOAD_ID, f"dlt-ib{k}"])
        raw.hubspot_contact(con, "602", "Bob@X.io", "2026-01-09 12:00:00+00")


def test_a_merge_and_a_split_are_recorded_and_ids_persist(home: Path, dbt_work: Path, monkeypatch) -> None:
    monkeypatch.setenv("GROWTH_STACK_HOME", str(home))
    monkeypatch.chdir(REPO)
    raw.day1_events(home / "events")
    raw.load_events(home, raw.DAY1)
    raw.day1_saas_tables(home)
    add_guest_checkouts(home)
    dbt_build(home, dbt_work)
    first = customers(home)
    # One email with eight Stripe customers (guest checkout) and two HubSpot contacts is one person,
    # while the family inbox shared by six app users is still blocked.
    bob = first[("user_id", "u_bob")]
    assert {first[("stripe_customer_id", f"cus_bob{k}")] for k in range(1, 9)} == {bob}
    assert first[("hubspot_contact_id", "602")] == first[("hubspot_contact_id", "502")] == bob
    blocked = set(query(home, "select identifier_type, identifier_value from intermediate.int_identifiers_blocked"))
    assert ("email", "bob@x.io") not in blocked and ("email", "family@home.com") in blocked

    carl, dan = first[("user_id", "u_carl")], first[("user_id", "u_dan")]
    # Carl's first identifiers were seen together at second 20; a-carl's key sorts first
    assert carl == md5("anonymous_id:a-carl") and dan == md5("user_id:u_dan")
    assert merge_history(home) == []

    # Day 2: Dan signs in on Carl's device. Two customers become one: Carl's, the older, survives.
    raw.write_events(home / "events", "web", raw.DAY2, [
        raw.message(raw.DAY2, 5, type="page", anonymousId="a-carl", userId="u_dan", name="Home")])
    raw.load_events(home, raw.DAY2)
    dbt_in_process(dbt_work, "run", "--select", *IDENTITY_MODELS)
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
    dbt_in_process(dbt_work, "run", "--select", *IDENTITY_MODELS)
    third = customers(home)
    assert ("anonymous_id", "a-carl") not in third
    assert third[("user_id", "u_carl")] == carl
    assert third[("user_id", "u_dan")] == md5("user_id:u_dan")
    assert {third[("user_id", u)] for u in KIOSK_USERS} == {md5(f"user_id:{u}") for u in KIOSK_USERS}
    assert {k: v for k, v in third.items() if k in second and v != second[k]} == {("user_id", "u_dan"): md5("user_id:u_dan")}
    history = merge_history(home)
    assert history[0][:3] == ("merge", dan, carl)  # the history is kept
    [split] = history[1:]
    # a split is dated by the latest moment the build's identity data reaches
    [(latest,)] = query(home, "select cast(max(last_seen_at) as varchar) from marts.customer_identifiers")
    assert split[:5] == ("split", carl, md5("user_id:u_dan"), latest, 1)
    assert split[10] == ("1 identifier split off: anonymous_id:a-carl left the identity graph "
                         "(linked to 12 distinct user_id values, more than the cap of 10)")

    # Nothing new: nothing moves and nothing is recorded twice; --full-refresh keeps the map and the history.
    dbt_in_process(dbt_work, "run", "--select", *IDENTITY_MODELS, "--full-refresh")
    assert customers(home) == third
    assert merge_history(home) == history


def test_ids_stay_stable_across_ten_builds_of_a_growing_company(home: Path, dbt_work: Path, simulated_company: Path,
                                                               monkeypatch) -> None:
    """The simulated company as it was after each tenth of its history, built ten times on one warehouse:
    an identifier's customer_id never changes unless identity_merges records the merge that moved it; only
    people's own identifiers merge; a build from scratch at the end gives every identifier the same id."""
    monkeypatch.setenv("GROWTH_STACK_HOME", str(home))
    monkeypatch.chdir(REPO)
    # Builds after the first update the map in place (dbt runs in this process): count which write ran.
    writes = count_calls(monkeypatch, {"changed rows": "_update_in_place", "every row": "_replace_all"})
    truth = {k: p for k, p in truth_identifiers(simulated_company / "simulation" / "ground_truth.jsonl").items()}
    start = dt.datetime.combine(COMPANY_AS_OF - dt.timedelta(days=COMPANY_DAYS), dt.time(), dt.timezone.utc)
    step = dt.timedelta(days=COMPANY_DAYS / 10)
    previous: dict[tuple[str, str], str] = {}
    gained = 0
    paths = []  # per build after the first: which write ran
    for k in range(1, 11):
        # the last build also holds as_of's own (live) traffic
        grow_to(home, simulated_company, start + k * step if k < 10 else start + 11 * step)
        if k == 1:
            dbt_build(home, dbt_work)  # staging views, identity models and their data tests
        else:
            before = dict(writes)
            dbt_in_process(dbt_work, "run", "--select", *IDENTITY_MODELS)
            paths.append(tuple(name for name in writes if writes[name] > before[name]))
        current = customers(home)
        assert len(current) >= len(previous)
        history = {(old, new) for old, new in query(home, "select old_customer_id, customer_id from marts.identity_merges")}
        moved = {(previous[i], current[i]) for i in previous if current[i] != previous[i]}
        assert moved <= history, f"build {k}: ids changed without a recorded merge or split"
        sizes = {cid: sum(1 for c in previous.values() if c == cid) for cid in set(previous.values())}
        gained += sum(1 for cid, n in sizes.items() if sum(1 for c in current.values() if c == cid) > n)
        previous = current
    assert gained >= 10  # customers did gain identifiers (devices, Stripe customers, emails) and kept their ids
    # Each build wrote one way, with no fallback. The second rewrites every row (the first build, a stitch,
    # wrote no state); so does a build that writes more than half the rows (new ones, and those the build
    # before wrote new: here the third and the sixth, in a graph of 19 to 119 identifiers); the others, the
    # last four among them, change only the rows that changed.
    assert paths[0] == ("every row",) and all(len(path) == 1 for path in paths), paths
    assert paths[-4:] == [("changed rows",)] * 4 and paths.count(("changed rows",)) >= 5, paths
    # Only one person's own identifiers ever merged, and nothing split (the company only grew).
    for change_type, old, new in query(home, "select change_type, old_customer_id, customer_id from marts.identity_merges"):
        assert change_type == "merge"
        people = {truth[i] for i, c in previous.items() if c == new and i in truth}
        assert len(people) == 1, (old, new, people)
    dbt_in_process(dbt_work, "test", "--select", *IDENTITY_MODELS)

    dbt_in_process(dbt_work, "run", "--select", *IDENTITY_MODELS, "--vars", '{"identity_rebuild": true}')
    assert customers(home) == previous


def test_a_guest_checkout_buyer_with_eight_stripe_customers_is_one_high_value_customer(
        home: Path, dbt_work: Path, monkeypatch) -> None:
    """Bob checks out as a guest eight times (eight Stripe customers, eight paid invoices of 120.00), is 35
    (HubSpot date of birth 1990-05-01) and visits the shop every week: one customer, high-value."""
    monkeypatch.setenv("GROWTH_STACK_HOME", str(home))
    monkeypatch.chdir(REPO)
    raw.day1_events(home / "events")
    raw.load_events(home, raw.DAY1)
    raw.day1_saas_tables(home)
    add_guest_checkouts(home)
    # as_of Wednesday 2026-02-11: the 4 complete weeks before it start on Jan 12, 19, 26 and Feb 2
    for day in ("2026-01-13", "2026-01-20", "2026-01-27", "2026-02-03"):
        raw.write_events(home / "events", "web", day, [
            raw.message(day, 3600, type="page", anonymousId="a-bob", userId="u_bob", name="Home")])
        raw.load_events(home, day)
    dbt_in_process(dbt_work, "run", "--select", "+customer_traits", "--vars", '{"as_of": "2026-02-11"}')
    got = customers(home)
    bob = got[("user_id", "u_bob")]
    assert {got[("stripe_customer_id", f"cus_bob{k}")] for k in range(1, 9)} == {bob}
    assert query(home, "select is_high_value from marts.customer_traits where customer_id = ?", bob) == [(True,)]
    assert query(home, "select count(*) from marts.customer_traits where is_high_value") == [(1,)]
