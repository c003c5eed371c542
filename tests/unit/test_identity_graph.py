"""Connected components of the identity graph, checked against a plain union-find."""

from __future__ import annotations

import random

import duckdb
import pytest

from growth_stack_dagster.lib.identity_graph import connected_components


def components_of(edges: list[tuple[str, str]], lonely: list[str] = ()) -> dict[str, str]:
    con = duckdb.connect()
    con.execute("create table e (key_a varchar, key_b varchar)")
    if edges:
        con.executemany("insert into e values (?, ?)", edges)
    con.execute("create table n (node_key varchar)")
    if lonely:
        con.executemany("insert into n values (?)", [(k,) for k in lonely])
    connected_components(con, "select * from e", "out", nodes_sql="select node_key from n")
    return dict(con.execute("select node_key, customer_id from out").fetchall())


def partition(mapping: dict[str, str]) -> set[frozenset[str]]:
    groups: dict[str, set[str]] = {}
    for node, cid in mapping.items():
        groups.setdefault(cid, set()).add(node)
    return {frozenset(g) for g in groups.values()}


def union_find_partition(edges, lonely=()) -> set[frozenset[str]]:
    parent: dict[str, str] = {}

    def find(x):
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in edges:
        parent[find(a)] = find(b)
    for k in lonely:
        find(k)
    groups: dict[str, set[str]] = {}
    for x in list(parent):
        groups.setdefault(find(x), set()).add(x)
    return {frozenset(g) for g in groups.values()}


def test_chain_cycle_self_loop_and_lonely_nodes():
    edges = [("a", "b"), ("b", "c"), ("c", "x"), ("d", "e"), ("e", "d"), ("y", "y")]
    got = components_of(edges, lonely=["z"])
    assert partition(got) == {frozenset("abcx"), frozenset("de"), frozenset("y"), frozenset("z")}


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_graphs_match_union_find(seed):
    rng = random.Random(seed)
    nodes = [f"n{i}" for i in range(2000)]
    edges = [(rng.choice(nodes), rng.choice(nodes)) for _ in range(1500)]
    lonely = rng.sample(nodes, 300)
    assert partition(components_of(edges, lonely)) == union_find_partition(edges, lonely)


def test_long_chain_in_adversarial_order_converges():
    # A 500-hop path whose node keys are shuffled, so small ids sit far from each other.
    rng = random.Random(7)
    keys = [f"k{i}" for i in range(501)]
    rng.shuffle(keys)
    edges = list(zip(keys, keys[1:]))
    assert partition(components_of(edges)) == {frozenset(keys)}


def test_customer_id_is_stable_when_unrelated_customers_are_added():
    base = [("email:ann@x.com", "user_id:u1"), ("user_id:u1", "anonymous_id:a1")]
    before = components_of(base)
    after = components_of(base + [("email:bob@y.com", "user_id:u2"), ("anonymous_id:a9", "user_id:u3")])
    assert {k: after[k] for k in before} == before


def test_merge_keeps_one_of_the_two_ids():
    left = [("email:ann@x.com", "user_id:u1")]
    right = [("anonymous_id:a7", "hubspot_contact_id:101")]
    ids_before = set(components_of(left).values()) | set(components_of(right).values())
    merged = components_of(left + right + [("user_id:u1", "anonymous_id:a7")])
    assert len(set(merged.values())) == 1
    assert set(merged.values()) <= ids_before
