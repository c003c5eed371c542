"""The identity stitch: components checked against a plain union-find, and persistent customer ids
(gains never rename, the older id survives a merge, splits and merges recorded, a build from scratch
gives the ids the successive builds gave)."""

from __future__ import annotations

import datetime as dt
import hashlib
import random

import duckdb
import pyarrow as pa
import pytest

from growth_stack_dagster.lib.identity_graph import (OUT_COLUMNS, IdentityGraphError, new_customer_id, stitch,
                                                     update_map)

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)


def at(minutes: float) -> dt.datetime:
    return T0 + dt.timedelta(minutes=minutes)


class Graph:
    """Nodes with first-seen times and timed links, stitched build after build on one DuckDB connection."""

    def __init__(self) -> None:
        self.con = duckdb.connect()
        self.seen: dict[str, dt.datetime] = {}
        self.links: dict[tuple[str, str], dt.datetime] = {}
        self.previous: dict[str, str] | None = None
        self.changes = []
        self.nodes_sql = "select * from nodes"
        self.in_place = False  # build by update_map on the map `out` instead of stitch with `prev`

    def node(self, key: str, minute: float) -> None:
        self.seen.setdefault(key, at(minute))

    def link(self, a: str, b: str, minute: float) -> None:
        self.node(a, minute)
        self.node(b, minute)
        self.links[(a, b)] = at(minute)

    def unlink(self, a: str, b: str) -> None:
        del self.links[(a, b)]

    def forget(self, key: str) -> None:
        """Take an identifier out of the graph (as when it is blocked), with its links."""
        del self.seen[key]
        self.links = {pair: t for pair, t in self.links.items() if key not in pair}

    def build(self, from_scratch: bool = False, dropped: dict[str, str] | None = None) -> dict[str, str]:
        con = self.con
        ts = pa.timestamp("us", tz="UTC")
        tables = {
            "nodes": pa.table({"node_key": list(self.seen), "first_seen_at": pa.array(list(self.seen.values()), ts),
                               "last_seen_at": pa.array(list(self.seen.values()), ts)}),
            "edges": pa.table({"key_a": [a for a, _ in self.links], "key_b": [b for _, b in self.links],
                               "link_id": [f"{a}|{b}" for a, b in self.links],
                               "first_seen_at": pa.array(list(self.links.values()), ts)}),
            "prev": pa.table({"node_key": pa.array(list(self.previous or {}), pa.string()),
                              "customer_id": pa.array(list((self.previous or {}).values()), pa.string())}),
            "dropped": pa.table({"node_key": pa.array(list(dropped or {}), pa.string()),
                                 "reason": pa.array(list((dropped or {}).values()), pa.string())}),
        }
        for name, table in tables.items():
            con.register(f"{name}_arrow", table)
            con.execute(f"create or replace table {name} as select * from {name}_arrow")
            con.unregister(f"{name}_arrow")
        in_place = self.in_place and not from_scratch and \
            con.execute("select count(*) from duckdb_tables() where table_name = 'out'").fetchall()[0][0]
        if in_place:  # as the dbt model does: a first build writes the map, later ones update it
            stats, self.changes = update_map(con, self.nodes_sql, "select * from edges", "out",
                                             dropped_sql="select * from dropped")
        else:
            stats, self.changes = stitch(con, self.nodes_sql, "select * from edges", "out",
                                         previous_sql=None if from_scratch else "select * from prev",
                                         dropped_sql="select * from dropped")
        self.stats = stats
        mapping = dict(con.execute("select node_key, customer_id from out").fetchall())
        if not from_scratch:
            self.previous = mapping
        return mapping


def partition(mapping: dict[str, str]) -> set[frozenset[str]]:
    groups: dict[str, set[str]] = {}
    for node, cid in mapping.items():
        groups.setdefault(cid, set()).add(node)
    return {frozenset(g) for g in groups.values()}


def union_find_partition(edges, nodes) -> set[frozenset[str]]:
    parent = {x: x for x in nodes}

    def find(x):
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in edges:
        parent[find(a)] = find(b)
    groups: dict[str, set[str]] = {}
    for x in parent:
        groups.setdefault(find(x), set()).add(x)
    return {frozenset(g) for g in groups.values()}


def test_chain_cycle_self_loop_and_lonely_nodes():
    g = Graph()
    for k, (a, b) in enumerate([("a", "b"), ("b", "c"), ("c", "x"), ("d", "e"), ("e", "d"), ("y", "y")]):
        g.link(a, b, k)
    g.node("z", 10)
    assert partition(g.build()) == {frozenset("abcx"), frozenset("de"), frozenset("y"), frozenset("z")}
    assert g.stats.components == 4 and g.stats.new == 4 and g.stats.kept == 0


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_graphs_match_union_find(seed):
    rng = random.Random(seed)
    g = Graph()
    nodes = [f"n{i}" for i in range(2000)]
    for k, key in enumerate(nodes):
        g.node(key, rng.randrange(10_000))
    edges = [(rng.choice(nodes), rng.choice(nodes)) for _ in range(1500)]
    for a, b in edges:
        g.link(a, b, 0)
    assert partition(g.build()) == union_find_partition(edges, nodes)


def test_a_customer_is_named_after_its_oldest_identifier():
    g = Graph()
    g.node("anonymous_id:a1", 1)
    g.link("anonymous_id:a1", "user_id:u1", 5)
    g.link("user_id:u1", "email:ann@x.com", 6)
    ids = g.build()
    assert set(ids.values()) == {new_customer_id("anonymous_id:a1")}


def test_gaining_identifiers_never_renames_a_customer():
    g = Graph()
    g.link("user_id:u1", "email:ann@x.com", 1)
    first = g.build()
    customer = first["user_id:u1"]
    # New devices, Stripe customers and emails, including keys whose md5 is smaller than every other
    # (the old rule named a component after its smallest md5) and one first seen *before* the founder
    # (a HubSpot contact created earlier but loaded late).
    newcomers = [f"anonymous_id:dev{i}" for i in range(40)] + [f"stripe_customer_id:cus_{i}" for i in range(8)]
    for k, key in enumerate(newcomers):
        g.link("email:ann@x.com", key, 10 + k)
    g.link("hubspot_contact_id:101", "email:ann@x.com", -100)
    assert any(new_customer_id(k) < customer for k in newcomers)
    second = g.build()
    assert set(second.values()) == {customer}
    assert g.changes == [] and g.stats.kept == 1 and g.stats.new == 0
    [row] = g.con.execute("select count(*) from out where previous_customer_id is null and change_type is null "
                          "and customer_id = ?", [customer]).fetchall()
    assert row == (len(newcomers) + 1,)


def test_an_unrelated_customer_changes_nobody_elses_id():
    g = Graph()
    g.link("email:ann@x.com", "user_id:u1", 1)
    g.link("user_id:u1", "anonymous_id:a1", 2)
    before = g.build()
    g.link("email:bob@y.com", "user_id:u2", 3)
    g.node("anonymous_id:a9", 4)
    after = g.build()
    assert {k: after[k] for k in before} == before
    assert after["user_id:u2"] == new_customer_id("email:bob@y.com") != before["user_id:u1"]


def test_the_older_customer_survives_a_merge_and_the_merge_is_recorded():
    g = Graph()
    g.link("anonymous_id:a7", "hubspot_contact_id:101", 1)   # older customer
    g.link("email:ann@x.com", "user_id:u1", 5)
    first = g.build()
    older, younger = first["anonymous_id:a7"], first["user_id:u1"]
    assert older != younger
    g.link("user_id:u1", "anonymous_id:a7", 9)
    merged = g.build()
    assert set(merged.values()) == {older}
    [change] = g.changes
    assert (change.change_type, change.old_customer_id, change.customer_id, change.changed_at, change.link_id) == \
        ("merge", younger, older, at(9), "user_id:u1|anonymous_id:a7")
    rows = set(g.con.execute("select node_key, previous_customer_id, change_type from out "
                             "where change_type is not null").fetchall())
    assert rows == {("email:ann@x.com", younger, "merge"), ("user_id:u1", younger, "merge")}


def test_three_customers_joined_through_new_identifiers_each_record_their_link():
    g = Graph()
    g.link("user_id:a", "email:a@x.io", 1)
    g.link("user_id:b", "email:b@x.io", 2)
    g.link("user_id:c", "email:c@x.io", 3)
    first = g.build()
    # c reaches b through a new device first, then b reaches a through a new Stripe customer
    g.link("email:c@x.io", "anonymous_id:d1", 10)
    g.link("anonymous_id:d1", "user_id:b", 11)
    g.link("email:b@x.io", "stripe_customer_id:cus_1", 20)
    g.link("stripe_customer_id:cus_1", "email:a@x.io", 21)
    g.build()
    assert set(g.previous.values()) == {first["user_id:a"]}
    by_old = {c.old_customer_id: c for c in g.changes}
    assert set(by_old) == {first["user_id:b"], first["user_id:c"]}
    assert all(c.customer_id == first["user_id:a"] and c.change_type == "merge" for c in g.changes)
    # b and c had joined each other at minute 11; both reached a at minute 21
    assert {c.link_id for c in g.changes} == {"stripe_customer_id:cus_1|email:a@x.io"}


def test_a_split_keeps_the_id_with_the_oldest_identifiers_and_names_the_other_part():
    g = Graph()
    g.link("anonymous_id:kiosk", "user_id:u1", 1)
    g.link("user_id:u1", "email:ann@x.com", 2)
    g.link("anonymous_id:kiosk", "user_id:u2", 3)
    g.link("user_id:u2", "email:bob@y.com", 4)
    first = g.build()
    shared = first["user_id:u1"]
    assert first["user_id:u2"] == shared == new_customer_id("anonymous_id:kiosk")
    # the kiosk is found to be shared and blocked: every link through it disappears
    g.unlink("anonymous_id:kiosk", "user_id:u1")
    g.unlink("anonymous_id:kiosk", "user_id:u2")
    del g.seen["anonymous_id:kiosk"]
    after = g.build(dropped={"anonymous_id:kiosk": "linked to 11 distinct user_id values"})
    # u1 (first seen at minute 1) is now the oldest identifier of the old customer: its part keeps the id
    assert after["user_id:u1"] == after["email:ann@x.com"] == shared
    assert after["user_id:u2"] == after["email:bob@y.com"] == new_customer_id("user_id:u2")
    [change] = g.changes
    assert (change.change_type, change.old_customer_id, change.customer_id) == ("split", shared, new_customer_id("user_id:u2"))
    assert change.changed_at == at(4) and change.link_id is None
    assert change.reason == ("2 identifiers split off: anonymous_id:kiosk left the identity graph "
                             "(linked to 11 distinct user_id values)")


def test_a_vanished_link_splits_and_the_split_is_recorded():
    g = Graph()
    g.link("hubspot_contact_id:7", "email:old@x.io", 1)
    g.link("email:old@x.io", "user_id:u7", 2)
    first = g.build()
    g.unlink("email:old@x.io", "user_id:u7")   # the contact's email was edited in HubSpot
    after = g.build()
    assert after["hubspot_contact_id:7"] == first["hubspot_contact_id:7"]
    assert after["user_id:u7"] == new_customer_id("user_id:u7")
    [change] = g.changes
    assert change.reason == "1 identifier split off: a link between its identifiers is no longer recorded by any system"


def test_a_merge_and_a_split_in_one_build_give_the_ids_of_two_separate_builds():
    """Y = {y1, y2}, X = {x}: in one build y2 leaves y1 and joins x. As if x had merged into Y first and
    Y had then split, the part {y2, x} is named after y2, its oldest identifier."""
    g = Graph()
    g.node("user_id:y1", 0)
    g.link("user_id:y1", "email:y2@x.io", 1)
    g.link("user_id:x", "anonymous_id:x1", 3)
    first = g.build()
    g.unlink("user_id:y1", "email:y2@x.io")
    g.link("email:y2@x.io", "user_id:x", 5)
    after = g.build()
    assert after["user_id:y1"] == first["user_id:y1"]
    assert after["user_id:x"] == after["email:y2@x.io"] == new_customer_id("email:y2@x.io")
    kinds = {(c.change_type, c.old_customer_id, c.customer_id) for c in g.changes}
    assert kinds == {("split", first["user_id:y1"], after["user_id:x"]), ("merge", first["user_id:x"], after["user_id:x"])}
    assert after == g.build(from_scratch=True)


@pytest.mark.parametrize("seed", [11, 12, 13, 14])
def test_successive_builds_give_the_ids_of_one_build_from_scratch(seed):
    """A growing graph built ten times (identifiers arrive in the order first seen, links come and go)
    ends with exactly the ids a single build from scratch gives; ids change only through recorded merges
    and splits."""
    rng = random.Random(seed)
    g = Graph()
    keys: list[str] = []
    minute = 0
    previous: dict[str, str] = {}
    kinds: set[str] = set()
    for build in range(10):
        for _ in range(60):
            minute += 1
            key = f"{rng.choice(['anonymous_id', 'user_id', 'email'])}:{build}-{minute}"
            g.node(key, minute)
            if keys and rng.random() < 0.7:
                g.link(rng.choice(keys), key, minute)
            if len(keys) > 2 and rng.random() < 0.15:
                g.link(rng.choice(keys), rng.choice(keys), minute)
            keys.append(key)
        for link in rng.sample(sorted(g.links), k=min(3, len(g.links))):
            g.unlink(*link)
        current = g.build()
        moved = {(previous[k], current[k]) for k in previous if k in current and previous[k] != current[k]}
        assert moved <= {(c.old_customer_id, c.customer_id) for c in g.changes}
        assert all(old in previous.values() for old, _ in moved)
        kinds |= {c.change_type for c in g.changes}
        previous = current
    assert kinds == {"merge", "split"}  # the history did merge and split customers
    assert g.build(from_scratch=True) == previous


@pytest.mark.parametrize("by_hash", [True, False])
@pytest.mark.parametrize("unknown_side", ["key_a", "key_b"])
def test_a_link_to_an_unknown_identifier_is_refused(by_hash, unknown_side, monkeypatch):
    """Whether keys are looked up by hash or compared, and whichever side of the link is unknown."""
    from growth_stack_dagster.lib import identity_graph

    if not by_hash:
        monkeypatch.setattr(identity_graph, "_distinct", lambda hashes: False)
    a, b = ("'b'", "'a'") if unknown_side == "key_a" else ("'a'", "'b'")
    con = duckdb.connect()
    # a node without a key (skipped) must not hide the unknown one from the error message
    con.execute("create table nodes as select * from (values ('a'), ('c'), (null)) t(node_key), "
                "(select now() as first_seen_at, now() as last_seen_at)")
    con.execute(f"create table edges as select {a} as key_a, {b} as key_b, 'l1' as link_id, now() as first_seen_at "
                "union all select 'a', 'c', 'l2', now()")
    with pytest.raises(IdentityGraphError, match=f"{a} - {b} names an identifier that is not among the nodes"):
        stitch(con, "select * from nodes", "select * from edges", "out")
    assert not con.execute("select count(*) from duckdb_tables() where table_name = 'out'").fetchall()[0][0]


def test_an_identifier_selected_twice_is_refused():
    con = duckdb.connect()
    con.execute("create table nodes as select * from (values ('a'), ('b'), ('a')) t(node_key), "
                "(select now() as first_seen_at, now() as last_seen_at)")
    con.execute("create table edges as select 'a' as key_a, 'b' as key_b, 'l1' as link_id, now() as first_seen_at")
    with pytest.raises(IdentityGraphError, match="selects the identifier 'a' more than once"):
        stitch(con, "select * from nodes", "select * from edges", "out")


def test_identifiers_first_seen_together_are_ordered_by_the_md5_of_their_key():
    g = Graph()
    keys = [f"user_id:u{i}" for i in range(6)]
    for key in keys:
        g.link("email:shared-moment@x.io", key, 3)
    ids = g.build()
    fingerprint = {k: int.from_bytes(hashlib.md5(k.encode()).digest()[:8], "little") for k in [*keys, "email:shared-moment@x.io"]}
    assert set(ids.values()) == {new_customer_id(min(fingerprint, key=fingerprint.get))}


def _random_history(seed: int, builds: int, per_build: int, nodes_sql: str = "select * from nodes",
                    forget: int = 0, in_place: bool = False) -> list:
    """`builds` successive builds of a random graph (each adds `per_build` identifiers, most linked to an
    earlier one, drops up to 4 links and takes `forget` identifiers out of the graph): [(the id map, the
    recorded changes)] per build."""
    rng = random.Random(seed)
    g = Graph()
    g.nodes_sql = nodes_sql
    g.in_place = in_place
    keys: list[str] = []
    history = []
    for build in range(builds):
        for minute in range(build * per_build, (build + 1) * per_build):
            key = f"{rng.choice(['anonymous_id', 'user_id', 'email'])}:{minute}"
            g.node(key, minute)
            if keys and rng.random() < 0.7:
                g.link(rng.choice(keys), key, minute)
            keys.append(key)
        for link in rng.sample(sorted(g.links), k=min(4, len(g.links))):
            g.unlink(*link)
        for key in rng.sample(keys, k=min(forget, len(keys) - 1)) if build else []:
            g.forget(key)
            keys.remove(key)
        g.build()
        assert sorted(r[0] for r in g.con.execute("select node_key from out").fetchall()) == sorted(g.seen)
        history.append((g.con.execute(f"select {', '.join(OUT_COLUMNS)} from out order by node_key").fetchall(),
                        g.changes))
        if in_place and build:  # the first build is a stitch, which writes no state
            assert_state_is_current(g.con)
    return history


def assert_state_is_current(con) -> None:
    """The map's state columns hold hash(node_key), one customer_code per customer_id (and vice versa), and
    whether the row records a new or moved identifier (to be rewritten as a kept row next time)."""
    assert con.execute("""
        select count(*) filter (where node_hash is distinct from hash(node_key) or customer_code is null
                                   or rewrite_next is distinct from (previous_customer_id is distinct from customer_id
                                                                     or change_type is not null)),
               count(distinct customer_code) - count(distinct customer_id),
               count(distinct (customer_code, customer_id)) - count(distinct customer_id)
        from out
    """).fetchall() == [(0, 0, 0)]


@pytest.mark.parametrize("seed", [21, 22])
def test_looking_keys_up_by_hash_gives_what_comparing_the_keys_gives(seed, monkeypatch):
    """Keys are joined by their 64-bit hash unless two of them share one; then by the key itself. Both
    ways give the same ids, previous ids and recorded changes over a history of merges and splits."""
    from growth_stack_dagster.lib import identity_graph

    by_hash = _random_history(seed, builds=6, per_build=50)
    monkeypatch.setattr(identity_graph, "_distinct", lambda hashes: False)
    by_key = _random_history(seed, builds=6, per_build=50)
    assert by_hash == by_key
    assert any(changes for _, changes in by_hash)


@pytest.mark.parametrize("seed", [31, 32])
def test_nodes_read_in_another_order_each_time_give_the_same_ids(seed, monkeypatch):
    """The stitch reads the nodes more than once and lines the reads up by position when their plan only
    scans tables; nodes whose every read comes in a random order give the same map and changes, whether
    the plan gives that away or the check of the lined-up reads finds it."""
    from growth_stack_dagster.lib import identity_graph

    def history(nodes_sql: str) -> list:
        return _random_history(seed, builds=5, per_build=40, nodes_sql=nodes_sql)

    in_order = history("select * from nodes")
    assert history("select * from nodes order by random()") == in_order
    monkeypatch.setattr(identity_graph, "_scans_only", lambda con, sql: True)
    assert history("select * from nodes order by random()") == in_order
    assert any(changes for _, changes in in_order)


def test_ids_of_other_lengths_from_an_earlier_map_are_kept_as_they_are():
    """Ids this stitch makes are md5 digests; a previous map written by another tool may hold ids of any
    length and any characters, and each customer keeps its own exactly, as its previous id too."""
    g = Graph()
    g.link("user_id:1", "email:a@x.io", 1)
    g.link("user_id:2", "email:b@x.io", 2)
    g.node("user_id:3", 3)
    g.previous = {"user_id:1": "c-1", "email:a@x.io": "c-1", "user_id:2": "customer-0002",
                  "email:b@x.io": "customer-0002", "user_id:3": "ü-3"}
    g.node("email:c@x.io", 4)
    ids = g.build()
    assert ids == {"user_id:1": "c-1", "email:a@x.io": "c-1", "user_id:2": "customer-0002",
                   "email:b@x.io": "customer-0002", "user_id:3": "ü-3", "email:c@x.io": new_customer_id("email:c@x.io")}
    previous = dict(g.con.execute("select node_key, previous_customer_id from out").fetchall())
    assert previous == {**ids, "email:c@x.io": None}


def count_calls(monkeypatch, functions: dict[str, str]) -> dict[str, int]:
    """Count the calls of identity_graph's functions (name in the counts -> function name), which still run."""
    from growth_stack_dagster.lib import identity_graph

    calls = dict.fromkeys(functions, 0)

    def counted(name, function):
        return lambda *args: calls.__setitem__(name, calls[name] + 1) or function(*args)
    for name, function in functions.items():
        monkeypatch.setattr(identity_graph, function, counted(name, getattr(identity_graph, function)))
    return calls


def test_a_previous_map_with_an_identifier_twice_still_gives_one_row_per_identifier():
    """previous_sql should select one row per identifier; if it selects one twice, the stitch does not
    copy the previous map (that would write the identifier twice) and writes every row from the nodes."""
    con = duckdb.connect()
    con.execute("create table nodes as select 'email:' || i as node_key, timestamptz '2026-01-01' + to_minutes(i) as "
                "first_seen_at, timestamptz '2026-01-01' + to_minutes(i) as last_seen_at from range(10) t(i)")
    con.execute("create table edges as select 'email:0' as key_a, 'email:1' as key_b, 'l' as link_id, "
                "timestamptz '2026-01-01' as first_seen_at")
    stitch(con, "select * from nodes", "select * from edges", "first")
    con.execute("create table prev as select node_key, customer_id from first union all "
                "select node_key, customer_id from first where node_key = 'email:3'")
    stitch(con, "select * from nodes", "select * from edges", "out", previous_sql="select * from prev")
    assert con.execute("select count(*), count(distinct node_key) from out").fetchall() == [(10, 10)]
    assert con.execute("select count(*) from out join first using (node_key, customer_id)").fetchall() == [(10,)]


@pytest.mark.parametrize("seed", [51, 52])
def test_a_map_updated_in_place_holds_the_rows_a_new_map_gets(seed, monkeypatch):
    """update_map changes only the rows that changed (deletes those of moved, stale and departed identifiers,
    inserts new and moved ones), or replaces every row when most changed; build after build, with
    identifiers leaving the graph, both give the map, previous ids and changes that stitch writes anew."""
    from growth_stack_dagster.lib import identity_graph

    calls = count_calls(monkeypatch, {"changed rows": "_update_in_place", "every row": "_replace_all"})
    distinct = identity_graph._distinct

    written = _random_history(seed, builds=6, per_build=50, forget=3)
    assert calls == {"changed rows": 0, "every row": 0}

    def in_place(share: float) -> list:
        monkeypatch.setattr(identity_graph, "UPDATE_ROWS_UP_TO", share)
        return _random_history(seed, builds=6, per_build=50, forget=3, in_place=True)
    # The first build writes the map (a stitch, with no state columns), the second rewrites every row with
    # its state, and each later one changes only the rows that change, with no fallback:
    assert in_place(1.0) == written
    assert calls == {"changed rows": 4, "every row": 1}
    assert in_place(-1.0) == written
    assert calls == {"changed rows": 4, "every row": 6}
    assert in_place(0.5) == written  # as it is: here most builds move most rows (a giant component splits)
    monkeypatch.setattr(identity_graph, "_distinct", lambda hashes: False)  # keys compared, not hashed
    calls.update({"changed rows": 0, "every row": 0})
    assert in_place(1.0) == written
    assert calls == {"changed rows": 0, "every row": 5}

    # When the changed rows do not add up, every row is rewritten (the count check's fallback).
    monkeypatch.setattr(identity_graph, "_distinct", distinct)
    update_in_place = identity_graph._update_in_place
    monkeypatch.setattr(identity_graph, "_update_in_place", lambda con, table: update_in_place(con, table) + 1)
    calls.update({"changed rows": 0, "every row": 0})
    assert in_place(1.0) == written
    assert calls == {"changed rows": 4, "every row": 5}  # tried, then every row rewritten
    assert any(change.change_type == "split" for _, changes in written for change in changes)


def test_rows_looked_at_a_block_at_a_time_give_the_same_ids(monkeypatch):
    """The oldest identifier of each group is found a block of rows at a time; blocks of 1, 2 and 7 rows
    give the ids, previous ids and changes of one block (the default holds a million rows)."""
    from growth_stack_dagster.lib import identity_graph

    whole = _random_history(61, builds=4, per_build=40, forget=2, in_place=True)
    for rows in (1, 2, 7):
        monkeypatch.setattr(identity_graph, "_BLOCK", rows)
        assert _random_history(61, builds=4, per_build=40, forget=2, in_place=True) == whole


def _map_with_a_merge_to_come() -> Graph:
    """A graph built twice in place, whose next build merges two customers."""
    g = Graph()
    g.in_place = True
    g.link("user_id:1", "email:a@x.io", 1)
    g.link("user_id:2", "email:b@x.io", 2)
    for other in range(10):  # customers the merge does not touch: their rows stay as they are
        g.node(f"user_id:{other + 10}", 0)
    g.build()
    g.node("anonymous_id:3", 3)
    g.build()
    g.link("email:a@x.io", "email:b@x.io", 4)
    return g


def _rows(con, columns: tuple[str, ...] = ("*",)) -> list:
    return con.execute(f"select {', '.join(columns)} from out order by node_key").fetchall()


def test_a_failed_update_leaves_the_map_as_it_was(monkeypatch):
    """The rows change in one transaction: a failure after the delete rolls it back, and the map, its
    rows and the connection are as before (no work table left, the next update works)."""
    from growth_stack_dagster.lib import identity_graph

    g = _map_with_a_merge_to_come()
    before = _rows(g.con)
    update_in_place = identity_graph._update_in_place

    def fail_after_writing(con, table):
        update_in_place(con, table)
        raise RuntimeError("disk full")
    monkeypatch.setattr(identity_graph, "_update_in_place", fail_after_writing)
    with pytest.raises(RuntimeError, match="disk full"):
        g.build()
    assert _rows(g.con) == before
    assert g.con.execute("select count(*) from duckdb_tables() where starts_with(table_name, '_st_')").fetchall() \
        == [(0,)]
    monkeypatch.setattr(identity_graph, "_update_in_place", update_in_place)
    merged = g.build()
    assert len(set(merged.values())) == 12 and _rows(g.con) != before
    assert [c.change_type for c in g.changes] == ["merge"]


def test_an_update_inside_the_callers_transaction_is_committed_or_rolled_back_by_the_caller():
    g = _map_with_a_merge_to_come()
    before = _rows(g.con)
    g.con.execute("begin transaction")
    g.build()
    inside = _rows(g.con)
    assert inside != before  # seen inside the transaction
    g.con.execute("rollback")
    assert _rows(g.con) == before
    g.con.execute("begin transaction")
    g.build()
    g.con.execute("commit")
    assert _rows(g.con) == inside and [c.change_type for c in g.changes] == ["merge"]


def test_a_database_error_in_the_callers_transaction_is_raised_as_it_is(monkeypatch):
    """A DuckDB error aborts the caller's transaction: the clean-up after it fails too, and must not hide it."""
    from growth_stack_dagster.lib import identity_graph

    g = _map_with_a_merge_to_come()
    before = _rows(g.con)
    update_in_place = identity_graph._update_in_place

    def fail_in_sql(con, table):
        update_in_place(con, table)
        con.execute("select cast('not a number' as integer)")
    monkeypatch.setattr(identity_graph, "_update_in_place", fail_in_sql)
    g.con.execute("begin transaction")
    with pytest.raises(duckdb.ConversionException, match="not a number"):
        g.build()
    g.con.execute("rollback")
    assert _rows(g.con) == before


def test_columns_the_map_lacks_are_added():
    """A map written before a column existed gets it, instead of every update failing."""
    g = _map_with_a_merge_to_come()
    g.con.execute("alter table out drop column change_reason")
    g.build()
    reasons = g.con.execute("select change_reason from out where change_type = 'merge'").fetchall()
    assert reasons and all("were linked" in r[0] for r in reasons)


_DAMAGE = {
    "hashes of another DuckDB version": "update out set node_hash = node_hash + 1",
    "a row written without its code": "update out set customer_code = null where node_key = 'user_id:1'",
    "a map from before the state columns": "alter table out drop column node_hash; alter table out drop column customer_code; "
                                           "alter table out drop column rewrite_next",
}


@pytest.mark.parametrize("damage", list(_DAMAGE))
def test_a_map_whose_state_is_not_current_is_rewritten_with_it(damage, monkeypatch):
    """A build reads the previous map from its state columns (integers) only when they are what this stitch
    writes; otherwise every row is rewritten from the ids the map holds, state included, and the next
    build updates in place again. Both give the map of a twin whose state was never touched."""
    twin, g = _map_with_a_merge_to_come(), _map_with_a_merge_to_come()
    twin.build()
    assert_state_is_current(g.con)
    g.con.execute(_DAMAGE[damage])
    calls = count_calls(monkeypatch, {"changed rows": "_update_in_place", "every row": "_replace_all"})
    g.build()
    assert calls == {"changed rows": 0, "every row": 1}
    assert _rows(g.con, OUT_COLUMNS) == _rows(twin.con, OUT_COLUMNS)
    assert [c.change_type for c in g.changes] == [c.change_type for c in twin.changes] == ["merge"]
    assert_state_is_current(g.con)
    g.link("email:a@x.io", "anonymous_id:5", 5)
    g.build()
    assert calls == {"changed rows": 1, "every row": 1}
    twin.link("email:a@x.io", "anonymous_id:5", 5)
    twin.build()
    assert _rows(g.con, OUT_COLUMNS) == _rows(twin.con, OUT_COLUMNS)
    assert_state_is_current(g.con)


def test_an_update_whose_rows_do_not_add_up_is_rolled_back_and_every_row_rewritten(monkeypatch):
    """If the rows updated in place do not add up (here a kept customer's row goes missing with them), the
    update is rolled back and update_map runs again without the state, rewriting every row from the ids the
    map held: the map of a twin that was never disturbed. In the caller's transaction it fails instead,
    for the caller to roll back."""
    from growth_stack_dagster.lib import identity_graph

    twin, g = _map_with_a_merge_to_come(), _map_with_a_merge_to_come()
    twin.build()
    update_in_place = identity_graph._update_in_place

    def losing_a_row(con, table):
        con.execute(f"delete from {table} where node_key = 'user_id:10'")
        return update_in_place(con, table)
    monkeypatch.setattr(identity_graph, "_update_in_place", losing_a_row)
    g.con.execute("begin transaction")
    with pytest.raises(RuntimeError, match="did not add up"):
        g.build()
    g.con.execute("rollback")
    calls = count_calls(monkeypatch, {"changed rows": "_update_in_place", "every row": "_replace_all"})
    g.build()
    assert calls == {"changed rows": 1, "every row": 1}
    assert _rows(g.con, OUT_COLUMNS) == _rows(twin.con, OUT_COLUMNS)
    assert [c.change_type for c in g.changes] == ["merge"]
    assert_state_is_current(g.con)


@pytest.mark.parametrize("in_place", [False, True])
def test_a_map_whose_identifiers_all_left_the_graph_gives_an_empty_map(in_place):
    """Every identifier blocked or deleted: the previous customers have no home left, and nothing is merged."""
    g = Graph()
    g.in_place = in_place
    g.link("user_id:1", "email:a@x.io", 1)
    g.node("user_id:2", 2)
    g.build()
    g.build()
    for key in ("user_id:1", "email:a@x.io", "user_id:2"):
        g.forget(key)
    assert g.build() == {}
    assert g.changes == [] and g.stats.merged == 0


def test_a_rebuild_in_place_gives_the_rows_of_a_build_from_scratch():
    """update_map(rebuild=True) ignores the previous map: the rows become those a first build writes."""
    g = _map_with_a_merge_to_come()
    g.build()
    stitch(g.con, "select * from nodes", "select * from edges", "scratch", dropped_sql="select * from dropped")
    update_map(g.con, "select * from nodes", "select * from edges", "out", dropped_sql="select * from dropped",
               rebuild=True)
    scratch = g.con.execute("select * from scratch order by node_key").fetchall()
    assert _rows(g.con, OUT_COLUMNS) == scratch and all(row[2] is None for row in scratch)
    assert_state_is_current(g.con)


@pytest.mark.parametrize("in_place", [False, True])
def test_a_part_split_off_with_the_key_that_founded_its_customer_takes_the_next_free_id(in_place):
    """user_id:2 founded a customer that later gained an older identifier; when the link goes, the older
    part keeps the id and user_id:2's part cannot be md5(user_id:2) again: it takes md5(user_id:2#1), or
    the next attempt no customer has."""
    g = Graph()
    g.in_place = in_place
    g.node("user_id:2", 2)
    g.node("user_id:9", 9)
    assert g.build()["user_id:2"] == new_customer_id("user_id:2")
    g.link("anonymous_id:1", "user_id:2", 1)
    g.build()
    g.unlink("anonymous_id:1", "user_id:2")
    ids = g.build()
    assert ids["anonymous_id:1"] == new_customer_id("user_id:2")
    assert ids["user_id:2"] == new_customer_id("user_id:2", 1)
    assert [(c.change_type, c.old_customer_id, c.customer_id) for c in g.changes] == \
        [("split", new_customer_id("user_id:2"), new_customer_id("user_id:2", 1))]

    # Again, with md5(user_id:2#1) to md5(user_id:2#5) taken by other customers: the next attempt (past the
    # first four, checked together, they are checked one by one).
    g.link("anonymous_id:1", "user_id:2", 10)
    for attempt in range(2, 6):
        g.node(f"user_id:{attempt + 10}", 11)
    g.build()
    holders = {"user_id:9": 1, **{f"user_id:{attempt + 10}": attempt for attempt in range(2, 6)}}
    for key, attempt in holders.items():
        taken = new_customer_id("user_id:2", attempt)
        if in_place:
            g.con.execute("update out set customer_id = ?, previous_customer_id = ? where node_key = ?",
                          [taken, taken, key])
        else:
            g.previous[key] = taken
    g.unlink("anonymous_id:1", "user_id:2")
    ids = g.build()
    assert {key: ids[key] for key in holders} == \
        {key: new_customer_id("user_id:2", attempt) for key, attempt in holders.items()}
    assert ids["user_id:2"] == new_customer_id("user_id:2", 6)
