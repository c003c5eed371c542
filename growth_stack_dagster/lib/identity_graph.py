"""Identity stitching with persistent customer ids.

Used by the dbt Python model `int_identity_components` and by `bench/bench_identity.py`.

`stitch` takes the identifiers (graph nodes, `type:value` keys with when each was first and last
seen), the links between them (edges) and, optionally, the id map of the previous build. It finds
the connected components with `scipy.sparse.csgraph.connected_components` once the keys are mapped
to integers in DuckDB (joined on DuckDB's 64-bit hash of the key, not the key, unless two nodes share a
hash), and gives every component a `customer_id` by these rules:

- An identifier's "age" is (first_seen_at, md5 of its node_key): the oldest identifier is the one seen
  first, ties broken by the first 8 bytes of the md5 of its key (DuckDB's `md5_number_upper`), so the
  order never depends on the wall clock or on build order.
- A previous customer id lives on in the component that holds its oldest current identifier (its
  home). Gaining identifiers never renames a customer.
- In a component, the oldest identifier that had a previous id decides: if its previous id is at home
  here, the component keeps that id; if it was split off from a customer whose home is elsewhere, the
  component is named after it (as if the merge had come first and the split after).
- Every other previous id at home in the component is merged into the component's id, recorded with
  the link that joined it, replaying the component's links in time order.
- Identifiers of a previous id found outside its home split off: they take the id of their new
  component, recorded as a split.
- A component with no previous id (a new customer, or a part split off) is named after its oldest
  identifier: `md5(node_key)` of that identifier (with `#1`, `#2`, ... appended to the key in the rare
  case that id is already taken in this build).

`update_map` does the same to an id map table in place, writing only the rows that change, and keeps
the map's state beside it (STATE_COLUMNS: integers the next build reads instead of the key and id strings).

Merges keep the older id and splits give each part the id of its own oldest identifier, so a build
from scratch over the same data gives every customer the id the successive builds gave it, as long
as identifiers arrived in the order they were first seen (see README, "Customer ids").
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import hashlib
import json

import duckdb
import numpy as np
import pyarrow as pa
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

# Temporary tables are prefixed `_st_` and dropped before `stitch` returns.
# (`_st_labels` is only ever registered, as `_st_labels_arrow`; it is listed so that the view goes too.)
_TEMP_TABLES = ("_st_nodes", "_st_wanted", "_st_labels", "_st_prev_ids", "_st_comp", "_st_founders", "_st_fixed",
                "_st_ids", "_st_changes", "_st_merge_rows", "_st_merge_nodes", "_st_split_rows", "_st_moved_rows",
                "_st_moved", "_st_tie_rows", "_st_split_codes", "_st_split_current", "_st_skip", "_st_new_rows",
                "_st_out", "_st_candidates", "_st_wanted_codes")

OUT_TYPES = {"node_key": "varchar", "customer_id": "varchar", "previous_customer_id": "varchar",
             "change_type": "varchar", "changed_at": "timestamptz", "change_link_id": "varchar",
             "change_reason": "varchar"}
OUT_COLUMNS = tuple(OUT_TYPES)

# The map's state, kept by update_map beside OUT_COLUMNS so that a build reads integers, not strings:
# node_hash = hash(node_key) (DuckDB's 64-bit hash), customer_code, an integer per customer_id (one code
# per id, one id per code), and rewrite_next: the row records this build's new or moved identifier (its
# previous id or change), so the next build rewrites it as a plain kept row. Rows whose state is missing
# (e.g. written by `stitch`) or whose hashes another DuckDB version computed differently are noticed,
# and every row is then rewritten with it.
STATE_TYPES = {"node_hash": "ubigint", "customer_code": "integer", "rewrite_next": "boolean"}
STATE_COLUMNS = tuple(STATE_TYPES)

# In place, only the changed rows are written when at most this share of the nodes is new or moved.
UPDATE_ROWS_UP_TO = 0.5

_NO_CHANGE = """cast(null as varchar) as change_type, cast(null as timestamptz) as changed_at,
                cast(null as varchar) as change_link_id, cast(null as varchar) as change_reason"""


@dataclasses.dataclass
class StitchStats:
    """What one stitch did: graph size, components and how many ids were kept, new, merged and split."""

    nodes: int
    edges: int
    components: int
    kept: int
    new: int
    merged: int
    split: int


@dataclasses.dataclass(frozen=True)
class Change:
    """One change of the id map: `old_customer_id` merged into, or split off to, `customer_id`."""

    change_type: str  # "merge" | "split"
    old_customer_id: str
    customer_id: str
    changed_at: dt.datetime | None
    link_id: str | None
    reason: str


class IdentityGraphError(ValueError):
    """The input of a stitch is inconsistent (a link names an identifier that is not a node)."""


def new_customer_id(node_key: str, attempt: int = 0) -> str:
    """The id of a customer founded by `node_key`: md5 of the key (of `key#attempt` after a clash)."""
    key = node_key if attempt == 0 else f"{node_key}#{attempt}"
    return hashlib.md5(key.encode()).hexdigest()


def stitch(con: duckdb.DuckDBPyConnection, nodes_sql: str, edges_sql: str, out_table: str,
           previous_sql: str | None = None, dropped_sql: str | None = None,
           temporary: bool = False) -> tuple[StitchStats, list[Change]]:
    """Write `out_table` (OUT_COLUMNS, one row per node) and return the stats and the id changes.

    nodes_sql selects `(node_key VARCHAR, first_seen_at TIMESTAMPTZ, last_seen_at TIMESTAMPTZ)`, one row
    per identifier; edges_sql selects `(key_a, key_b, link_id, first_seen_at)`, both keys among the nodes;
    previous_sql selects the previous build's `(node_key, customer_id)`, one row per node_key (None on
    the first build); dropped_sql optionally selects `(node_key, reason)` of identifiers that were taken
    out of the graph (e.g. blocked), used to explain splits; `temporary` makes `out_table` a temp table.
    `previous_customer_id` is the node's id in
    the previous map; `change_*` describe the merge or split that moved it, NULL when it did not move.
    Raises IdentityGraphError when a link names an identifier that is not a node.
    """
    return _cleaned_up(con, lambda: _stitch(con, nodes_sql, edges_sql, out_table, previous_sql, dropped_sql,
                                            temporary, in_place=False, state=False))


def update_map(con: duckdb.DuckDBPyConnection, nodes_sql: str, edges_sql: str, table: str,
               dropped_sql: str | None = None, rebuild: bool = False) -> tuple[StitchStats, list[Change]]:
    """Bring the id map `table` (OUT_COLUMNS, as an earlier `stitch` or `update_map` left it) up to date
    in place, and return the stats and the id changes.

    Afterwards `table` holds the rows that `stitch(con, nodes_sql, edges_sql, out, previous_sql="select
    node_key, customer_id from <table>", dropped_sql=dropped_sql)` would write to `out` (in another
    order), and the same stats and changes are returned. Only what changed is written: the rows of
    identifiers that moved, left the graph, or still carry the previous build's change (or no previous
    id) are deleted, and the rows of those still in the graph are inserted with the rows of new
    identifiers. The previous map is read from its STATE_COLUMNS (integers) when they are current;
    otherwise, and when most identifiers are new or moved, every row is replaced (with its state). With
    `rebuild` the previous map is ignored and every row replaced by a build from scratch. Columns of
    OUT_COLUMNS and STATE_COLUMNS the table lacks are added first. The rows change in one transaction (the
    caller's, when one is open), so a failure while they change leaves the table as it was; the map is
    read before that transaction.
    """
    for column, type_ in {**OUT_TYPES, **STATE_TYPES}.items():
        con.execute(f"alter table {table} add column if not exists {column} {type_}")
    previous_sql = None if rebuild else f"select node_key, customer_id from {table}"
    state = not rebuild and _state_is_current(con, table)
    try:
        return _cleaned_up(con, lambda: _stitch(con, nodes_sql, edges_sql, table, previous_sql, dropped_sql,
                                                temporary=False, in_place=True, state=state))
    except _StateUnusable:  # raised before anything is written, or after a rollback of what was
        return _cleaned_up(con, lambda: _stitch(con, nodes_sql, edges_sql, table, previous_sql, dropped_sql,
                                                temporary=False, in_place=True, state=False))


def _state_is_current(con: duckdb.DuckDBPyConnection, table: str) -> bool:
    """Whether every row of the map has its state, and a sample of its node_hash values is what this
    DuckDB's hash gives (a DuckDB version with another hash function would otherwise find no identifier)."""
    missing = con.execute(f"""
        select count(*) from {table}
        where node_key is null or customer_id is null or node_hash is null or customer_code is null
           or customer_code < 0 or rewrite_next is null
    """).fetchall()[0][0]
    if missing:
        return False
    return con.execute(f"""
        select count(*) from (select node_key, node_hash from {table} where node_key is not null limit 2048)
        where node_hash <> hash(node_key)
    """).fetchall()[0][0] == 0


def _cleaned_up(con: duckdb.DuckDBPyConnection, run):
    """run(), then drop the temp tables; after a failure, a failing drop (e.g. in the caller's transaction,
    which the failure aborted: its rollback drops them) does not hide the failure."""
    try:
        result = run()
    except BaseException:
        with contextlib.suppress(duckdb.Error):
            _drop_temp_tables(con)
        raise
    _drop_temp_tables(con)
    return result


def _drop_temp_tables(con: duckdb.DuckDBPyConnection) -> None:
    for table in _TEMP_TABLES:
        con.execute(f"drop table if exists {table}")
    for table in _TEMP_TABLES:
        con.execute(f"drop view if exists {table}_arrow")


@contextlib.contextmanager
def _transaction(con: duckdb.DuckDBPyConnection):
    """A transaction around the block, unless the caller has one open (its commit or rollback decides);
    yields whether it began one.

    An open transaction keeps its id from statement to statement; without one, every statement has its
    own (a failed BEGIN would abort the caller's transaction, so it is not tried)."""
    txid = "select txid_current()"
    if con.execute(txid).fetchall() == con.execute(txid).fetchall():
        yield False
        return
    con.execute("begin transaction")
    try:
        yield True
    except BaseException:
        with contextlib.suppress(duckdb.Error):  # the failure is what the caller needs to see
            con.execute("rollback")
        raise
    con.execute("commit")


_I64_MAX = np.iinfo(np.int64).max
_BLOCK = 1 << 20  # rows per block in _group_argmin
_U64_MAX = np.iinfo(np.uint64).max


class _Keys:
    """The node_key of node i, fetched from DuckDB only for the few nodes that need it (founders, nodes that
    moved, nodes of merges and splits, ties, rows written in place): found by hash in nodes_sql, or by i in
    the copy `_st_nodes` when two keys share a hash, or, with the map's state (`in_map`: the map, and the
    sorted rows whose keys the first read kept with those keys), in those keys and else by node_hash in the
    map. Keys fetched once are kept."""

    def __init__(self, con: duckdb.DuckDBPyConnection, nodes_sql: str, hashes: np.ndarray | None,
                 in_map: tuple[str, tuple[np.ndarray, pa.Array]] | None = None):
        self.con, self.nodes_sql, self.hashes = con, nodes_sql, hashes
        self.map_table, (self.stored_rows, self.stored) = in_map if in_map else (None, (None, None))
        self.rows = np.empty(0, dtype=np.int64)  # the rows fetched, in the order of the keys in self.chunks
        self.chunks: list[pa.Array] = []
        self.order: np.ndarray | None = None  # argsort of self.rows, once asked for

    def fetch(self, rows: np.ndarray) -> None:
        """Fetch the keys of `rows` not fetched yet, in one query (which returns them in the order of rows)."""
        rows = _sorted_unique(np.asarray(rows, dtype=np.int64))
        rows = rows[~np.isin(rows, self.rows, assume_unique=True)]
        if len(rows) == 0:
            return
        if self.map_table is not None:
            at = np.minimum(np.searchsorted(self.stored_rows, rows), max(len(self.stored_rows) - 1, 0))
            missing = self.stored_rows[at] != rows if len(self.stored_rows) else np.ones(len(rows), dtype=bool)
            self._add(rows[~missing], self.stored.take(pa.array(at[~missing])))
            rows = rows[missing]
            if len(rows) == 0:
                return
            _register(self.con, "_st_wanted", {"k": np.arange(len(rows), dtype=np.int32), "h": self.hashes[rows]})
            found = self.con.sql(f"""
                select w.k, m.node_key from {self.map_table} m join _st_wanted w on w.h = m.node_hash
                where m.node_key is not null and m.customer_id is not null
                order by w.k
            """).to_arrow_table()
            expected = np.arange(len(rows))
        elif self.hashes is not None:
            _register(self.con, "_st_wanted", {"k": np.arange(len(rows), dtype=np.int32), "h": self.hashes[rows]})
            found = self.con.sql(f"""
                select w.k, n.node_key
                from (select hash(node_key) as h, node_key from ({self.nodes_sql}) where node_key is not null) n
                join _st_wanted w using (h)
                order by w.k
            """).to_arrow_table()
            expected = np.arange(len(rows))
        else:
            _register(self.con, "_st_wanted", {"i": rows.astype(np.int32)})
            found = self.con.sql("select n.i, n.node_key from _st_nodes n semi join _st_wanted w using (i) order by n.i") \
                .to_arrow_table()
            expected = rows
        if not np.array_equal(found.column(0).to_numpy(), expected):
            raise RuntimeError("identity stitch: a second read of the nodes (or the map) found other identifiers")
        self._add(rows, found.column("node_key").combine_chunks())

    def _add(self, rows: np.ndarray, keys: pa.Array) -> None:
        self.rows = np.concatenate([self.rows, rows])
        self.chunks.append(keys)
        self.order = None

    def of(self, rows: np.ndarray) -> pa.Array:
        """The keys of `rows`, in their order."""
        rows = np.asarray(rows, dtype=np.int64)
        self.fetch(rows)
        if self.order is None:
            self.order = np.argsort(self.rows, kind="stable")
        at = self.order[np.searchsorted(self.rows[self.order], rows)]
        return pa.chunked_array(self.chunks, pa.string()).take(pa.array(at)).combine_chunks()


class _Tiebreak:
    """md5_number_upper(node_key) per node, computed in DuckDB only for nodes that tie on first_seen_at."""

    def __init__(self, con: duckdb.DuckDBPyConnection, keys: _Keys, n: int):
        self.con = con
        self.keys = keys
        self.values = np.zeros(n, dtype=np.uint64)
        self.known = np.zeros(n, dtype=bool)

    def of(self, rows: np.ndarray) -> np.ndarray:
        missing = _sorted_unique(rows[~self.known[rows]])
        if len(missing):
            _register(self.con, "_st_tie_rows", {"i": missing.astype(np.int32), "node_key": self.keys.of(missing)})
            found = self.con.execute("select i, md5_number_upper(node_key) as h from _st_tie_rows").fetchnumpy()
            self.values[found["i"]] = found["h"]
            self.known[found["i"]] = True
        return self.values[rows]


def _group_argmin(groups: np.ndarray, ages: np.ndarray, tiebreak: _Tiebreak, count: int,
                  rows: np.ndarray | None = None) -> np.ndarray:
    """Per group 0..count-1, the row with the smallest (age, md5 of its key); -1 for an empty group.

    `groups` and `ages` are parallel arrays; `rows` names their nodes (default 0..len-1).
    """
    oldest = np.full(count, _I64_MAX, dtype=np.int64)
    np.minimum.at(oldest, groups, ages)
    # Only the rows as old as their group's oldest (about one per group) are looked at again: found a block
    # of rows at a time, in one reused buffer (fresh memory is slow to touch on some machines).
    block = np.empty(min(len(groups), _BLOCK), dtype=np.int64)
    parts = [np.empty(0, dtype=np.int64)]
    for start in range(0, len(groups), _BLOCK):
        in_block = groups[start:start + _BLOCK]
        oldest_here = np.take(oldest, in_block, out=block[:len(in_block)])
        parts.append(np.flatnonzero(oldest_here == ages[start:start + _BLOCK]) + start)
    candidate = np.concatenate(parts)
    del oldest, block, parts
    candidate_groups = groups[candidate]
    candidate_rows = candidate if rows is None else rows[candidate]
    tied = (np.bincount(candidate_groups, minlength=count) > 1)[candidate_groups]
    out = np.full(count, -1, dtype=np.int64)
    out[candidate_groups[~tied]] = candidate_rows[~tied]
    if tied.any():
        g, r = candidate_groups[tied], candidate_rows[tied]
        h = tiebreak.of(r)
        smallest = np.full(count, _U64_MAX, dtype=np.uint64)
        np.minimum.at(smallest, g, h)
        win = h == smallest[g]
        out[g[win]] = r[win]
    return out


def _register(con: duckdb.DuckDBPyConnection, name: str, columns: dict[str, np.ndarray | pa.Array]) -> None:
    """Copy numpy (or Arrow) columns into the temp table `name`."""
    con.register(f"{name}_arrow", pa.table({k: v if isinstance(v, pa.Array) else pa.array(v)
                                            for k, v in columns.items()}))
    con.execute(f"create or replace temp table {name} as select * from {name}_arrow")
    con.unregister(f"{name}_arrow")


def _sorted_unique(values: np.ndarray) -> np.ndarray:
    """The distinct values, sorted (np.unique hashes, which is slow on millions of values)."""
    ordered = np.sort(values)
    return ordered[np.concatenate(([True], ordered[1:] != ordered[:-1]))] if len(ordered) else ordered


def _scans_only(con: duckdb.DuckDBPyConnection, sql: str) -> bool:
    """Whether the plan of `sql` only scans tables, filters and projects: then every read of it returns
    the rows in the tables' order."""
    def operators(node: dict) -> list[str]:
        return [node["name"]] + [name for child in node.get("children", []) for name in operators(child)]
    plan = json.loads(con.execute(f"explain (format json) {sql}").fetchall()[0][1])
    return all(name in ("SEQ_SCAN", "TABLE_SCAN", "PROJECTION", "FILTER") for node in plan for name in operators(node))


def _distinct(hashes: np.ndarray) -> bool:
    """Whether no two of the 64-bit hashes are equal."""
    ordered = np.sort(hashes)
    return not bool((ordered[1:] == ordered[:-1]).any())


class _StateUnusable(Exception):
    """The map's state cannot be used this time: two nodes share a hash (or two rows of the map one node),
    the customer codes would pass 32 bits, or the rows updated in place did not add up (rolled back)."""


def _read_nodes_with_state(con: duckdb.DuckDBPyConnection, nodes_sql: str, table: str):
    """The nodes joined with the map's state in one read: node i is row i of the join. Returns numpy arrays
    (hashes, ages, codes, stale) and an Arrow array of keys: `code` is a node's previous customer_code (-1 for
    a new node), `stale` whether its row is not a plain kept row (new, or moved with its change, in the
    previous build), and the key is kept only for the nodes whose row is written (new and stale ones)."""
    read = con.sql(f"""
        select coalesce(epoch_us(n.first_seen_at), 9223372036854775807) as t, n.h,
               coalesce(p.customer_code, -1) as code, coalesce(p.rewrite_next, false)::utinyint as stale,
               case when p.customer_code is null or p.rewrite_next then n.node_key end as node_key
        from (select node_key, first_seen_at, hash(node_key) as h from ({nodes_sql}) where node_key is not null) n
        left join {table} p on p.node_hash = n.h
    """).to_arrow_table()
    hashes = read.column("h").to_numpy()
    if not _distinct(hashes):
        raise _StateUnusable()
    keys = read.column("node_key")
    kept = np.nonzero(keys.is_null().to_numpy() == 0)[0]  # the nodes whose key was kept, and those keys
    return hashes, read.column("t").to_numpy(), read.column("code").to_numpy().astype(np.int32, copy=False), \
        read.column("stale").to_numpy().astype(bool), (kept, keys.drop_null().combine_chunks())


def _stitch(con, nodes_sql, edges_sql, out_table, previous_sql, dropped_sql, temporary, in_place, state):
    # Integer ids in the order of one read of the nodes: node i is row i of the result (DuckDB keeps the
    # order of a result). An identifier's age is (first_seen_at, md5 of its key): compared in numpy. `h`,
    # DuckDB's 64-bit hash of the key, lets the joins below compare integers instead of strings. The keys
    # are not copied: the output reads them from nodes_sql again, lined up by position (checked by hash).
    # With the map's state, the read joins the map (see _read_nodes_with_state); node i is row i of the join.
    if state:
        hashes, age, code, stale, stored_keys = _read_nodes_with_state(con, nodes_sql, out_table)
        n = len(age)
    else:
        cols = con.execute(f"""
            select coalesce(epoch_us(first_seen_at), 9223372036854775807) as t, hash(node_key) as h
            from ({nodes_sql}) where node_key is not null
        """).fetchnumpy()
        age, hashes = np.asarray(cols["t"], dtype=np.int64), np.asarray(cols["h"], dtype=np.uint64)
        n = len(age)
        del cols
    # Keys are looked up by their hash when the nodes' hashes are all distinct: a node's key then finds
    # that node and no other. Otherwise (two keys with one hash, odds about n^2 / 2^65) by the key itself.
    # A key that is not a node could pass for one only if its hash equals a node's: odds about n / 2^64.
    by_hash = state or _distinct(hashes)
    if by_hash:
        _register(con, "_st_nodes", {"i": np.arange(n, dtype=np.int32), "h": hashes})
        in_scan_order = not state
    else:
        # Two keys share a hash: the nodes are copied with their keys and numbered in the copy's order.
        con.execute(f"""
            create or replace temp table _st_nodes as
            select node_key, coalesce(epoch_us(first_seen_at), 9223372036854775807) as t,
                   (row_number() over () - 1)::integer as i
            from ({nodes_sql}) where node_key is not null
        """)
        twice = con.execute("select node_key from _st_nodes group by node_key having count(*) > 1 limit 1").fetchall()
        if twice:
            raise IdentityGraphError(f"nodes_sql selects the identifier {twice[0][0]!r} more than once; "
                                     "it must select one row per node_key.")
        cols = con.execute("select i, t from _st_nodes").fetchnumpy()
        # A scan returns the rows in the order they were numbered (insertion order is kept), which lets
        # the output line the nodes up with numpy's arrays by position; checked, with a join as the fallback.
        in_scan_order = bool(np.array_equal(cols["i"], np.arange(n, dtype=cols["i"].dtype)))
        age = np.empty(n, dtype=np.int64)
        age[cols["i"]] = cols["t"]
        del cols
    keys = _Keys(con, nodes_sql, hashes if by_hash else None, (out_table, stored_keys) if state else None)

    def node_of(alias: str, key: str) -> str:
        return f"{alias}.h = {key}_h" if by_hash else f"{alias}.node_key = {key}"

    def keyed(key: str) -> str:  # a key and, when looked up by hash, its hash (hashed before the joins)
        return f"{key}, hash({key}) as {key}_h" if by_hash else key
    tiebreak = _Tiebreak(con, keys, n)
    # Left joins: a link whose side is not a node comes back with -1 there, so the links are read once.
    arrays = con.sql(f"""
        select coalesce(na.i, -1) as a, coalesce(nb.i, -1) as b
        from (select {keyed("key_a")}, {keyed("key_b")} from ({edges_sql}) where key_a is not null and key_b is not null) e
        left join _st_nodes na on {node_of("na", "e.key_a")}
        left join _st_nodes nb on {node_of("nb", "e.key_b")}
    """).to_arrow_table()  # (Arrow, then numpy: one copy; fetchnumpy grows its arrays as rows come)
    a, b = arrays.column("a").to_numpy(), arrays.column("b").to_numpy()
    if len(a) and min(a.min(), b.min()) < 0:
        key_a, key_b = con.execute(f"""
            select e.key_a, e.key_b from ({edges_sql}) e
            where e.key_a not in (select node_key from ({nodes_sql}) where node_key is not null)
               or e.key_b not in (select node_key from ({nodes_sql}) where node_key is not null)
            limit 1
        """).fetchall()[0]
        raise IdentityGraphError(
            f"The link {key_a!r} - {key_b!r} names an identifier that is not among the nodes; "
            "every side of a link must also be selected by nodes_sql.")
    a, b = np.asarray(a, dtype=np.int32), np.asarray(b, dtype=np.int32)
    edge_count = len(a)
    graph = coo_matrix((np.ones(edge_count, dtype=np.int8), (a, b)), shape=(n, n)).tocsr()
    del arrays, a, b
    components, labels = connected_components(graph, directed=False)
    labels = labels.astype(np.int32)
    del graph

    # The previous map as integer codes (previous customer id -> code). In place, with the map's state
    # columns current (see update_map), the codes and key hashes are read as they are, and the ids of
    # only the codes this build needs are read later; otherwise the ids are numbered here, all of them
    # kept in _st_prev_ids.
    previous = f"({previous_sql})" if previous_sql else \
        "(select cast(null as varchar) as node_key, cast(null as varchar) as customer_id where false)"
    if state:
        previous_rows, top_code = con.execute(f"""
            select count(*), max(customer_code) from {out_table}
        """).fetchall()[0]
        codes = 0 if top_code is None else top_code + 1
        gone = previous_rows - int(np.count_nonzero(code >= 0))  # rows whose identifier is no longer a node
        all_ids_sql = f"select customer_id from {out_table}"
    else:
        con.execute(f"""
            create or replace temp table _st_prev_ids as
            select customer_id, hash(customer_id) as h, (row_number() over () - 1)::integer as code
            from (select distinct customer_id from {previous} where customer_id is not null)
        """)
        id_hashes = con.execute("select h from _st_prev_ids").fetchnumpy()["h"]
        codes = len(id_hashes)
        id_of = "c.h = p.customer_id_h" if _distinct(id_hashes) else "c.customer_id = p.customer_id"
        del id_hashes
        pairs = con.execute(f"""
            select coalesce(n.i, -1) as i, c.code
            from (select {keyed("node_key")}, customer_id, hash(customer_id) as customer_id_h
                  from {previous} where node_key is not null and customer_id is not null) p
            left join _st_nodes n on {node_of("n", "p.node_key")}
            join _st_prev_ids c on {id_of}
        """).fetchnumpy()
        all_ids_sql = "select customer_id from _st_prev_ids"
        # A left join: a previous row whose identifier is no longer a node comes back with -1 (left out).
        in_graph = pairs["i"] >= 0
        previous_rows, gone = len(in_graph), int(len(in_graph) - in_graph.sum())
        code = np.full(n, -1, dtype=np.int32)
        code[pairs["i"][in_graph]] = pairs["code"][in_graph]
        stale = np.zeros(n, dtype=bool)
        del pairs, in_graph

    with_code = np.nonzero(code >= 0)[0]
    coded, coded_labels, coded_ages = code[with_code], labels[with_code], age[with_code]
    # The home of a previous id: the component of its oldest current identifier (-1 when none is left).
    oldest_of_code = _group_argmin(coded, coded_ages, tiebreak, codes, with_code)
    home = np.where(oldest_of_code >= 0, labels[np.maximum(oldest_of_code, 0)] if n else -1, -1).astype(np.int32)
    del oldest_of_code
    # A component's winner: its oldest identifier that had a previous id. If that id is at home here,
    # the component keeps it; if the identifier was split off from elsewhere, the component is named
    # after it. New identifiers never rename a component that holds a previous customer's identifiers.
    winner = _group_argmin(coded_labels, coded_ages, tiebreak, components, with_code)
    # A component without a winner has only new identifiers: its oldest is found among the new ones.
    new_rows = np.nonzero(code < 0)[0]
    first = _group_argmin(labels[new_rows], age[new_rows], tiebreak, components, new_rows)
    has_winner = winner >= 0
    winner_code = np.full(components, -1, dtype=np.int32)
    winner_code[has_winner] = code[winner[has_winner]]
    keeps = has_winner.copy()
    keeps[has_winner] = home[winner_code[has_winner]] == np.nonzero(has_winner)[0]
    founder = np.where(keeps, -1, np.where(has_winner, winner, first))
    home_component = home
    kept_code_of = np.where(keeps, winner_code, -1)
    # Previous ids whose home keeps another id (merged); those with no identifier left are not merges.
    at_a_home = home_component >= 0
    loses = np.nonzero(at_a_home & (kept_code_of[np.maximum(home_component, 0)] != np.arange(codes)))[0] \
        if components else np.empty(0, dtype=np.int64)
    merge_components = _sorted_unique(home_component[loses])
    away = with_code[coded_labels != home_component[coded]] if codes else np.empty(0, dtype=np.int64)
    had_prev = code >= 0
    moved = had_prev & (kept_code_of[labels] != code)
    moved_rows = np.nonzero(moved)[0]
    founded = np.nonzero(founder >= 0)[0]
    # The customer code of each component (written to the map's state column in place): a kept id keeps
    # its code, a new id takes the next free one.
    if codes + len(founded) > np.iinfo(np.int32).max:
        if state:  # every row is then rewritten with codes numbered afresh
            raise _StateUnusable()
        raise RuntimeError("identity stitch: more than 2^31 customer ids")
    customer_code = kept_code_of.astype(np.int32)
    customer_code[founded] = codes + np.arange(len(founded), dtype=np.int32)
    # In place, most nodes keep the id they had and their rows are left as they are; only the rows of the
    # nodes without a previous id, of those that moved and of those that kept their id but still carry
    # the previous build's change (or no previous id) are written, their keys fetched with the others.
    # When more than half the nodes are to be written, or the map's state columns are not current, every
    # row is written from the nodes (_write_all).
    refreshed_rows = np.nonzero(stale & ~moved)[0]
    update_rows = in_place and state and previous_rows - gone == len(with_code) and \
        len(new_rows) + len(moved_rows) + len(refreshed_rows) <= n * UPDATE_ROWS_UP_TO
    written = np.concatenate([new_rows, refreshed_rows]) if update_rows else np.empty(0, dtype=np.int64)
    merge_rows, split_rows = _merge_rows(merge_components, labels), _split_rows(away, code)
    # The keys this build needs, fetched in one read: founders, the nodes that moved, the nodes of the
    # components with a merge and those of the customers that split, and the rows written in place.
    keys.fetch(np.concatenate([founder[founded], moved_rows, merge_rows, split_rows, written]))
    _register(con, "_st_founders", {"component": founded.astype(np.int32), "founder": keys.of(founder[founded]),
                                    "customer_code": customer_code[founded]})

    def ids_of(components_wanted: np.ndarray | None) -> None:
        """_st_ids: (component, customer_id, customer_code) of the components wanted (None: all of them)."""
        wanted = np.arange(components) if components_wanted is None else components_wanted
        kept = wanted[keeps[wanted]]
        if state:  # the previous ids of the codes needed, read from the map
            need = np.concatenate([winner_code[kept], code[moved_rows], code[merge_rows]])
            _register(con, "_st_wanted_codes", {"code": _sorted_unique(need[need >= 0]).astype(np.int32)})
            con.execute(f"""
                create or replace temp table _st_prev_ids as
                select p.customer_code as code, any_value(p.customer_id) as customer_id
                from {out_table} p semi join _st_wanted_codes w on w.code = p.customer_code
                group by 1
            """)
        _register(con, "_st_comp", {"component": kept.astype(np.int32), "code": winner_code[kept]})
        con.execute("""
            create or replace temp table _st_ids as
            select c.component, p.customer_id, c.code as customer_code from _st_comp c join _st_prev_ids p using (code)
            union all
            select f.component, coalesce(x.customer_id, md5(f.founder)), f.customer_code
            from _st_founders f left join _st_fixed x using (component)
        """)

    # Rarely a new id equals one a previous customer keeps: name it after the founder's key plus #k.
    clashes = con.execute(f"""
        with f as (select component, founder, md5(founder) as id from _st_founders),
        taken as (select distinct p.customer_id from ({all_ids_sql}) p semi join f on f.id = p.customer_id)
        select f.component, f.founder from f semi join taken t on t.customer_id = f.id order by f.founder
    """).fetchall()
    con.execute("create or replace temp table _st_fixed (component integer, customer_id varchar)")
    if clashes:
        con.executemany("insert into _st_fixed values (?, ?)", _resolve_clashes(con, clashes, all_ids_sql))
    # The components whose rows are written (with a merge or a split, they hold nodes that moved).
    ids_of(_sorted_unique(labels[np.concatenate([written, moved_rows])]) if update_rows else None)

    # Previous ids at home in a component whose id is another: merged. Identifiers away from home: split.
    previous_rows_sql = f"""
        select p.customer_id, p.node_key from {out_table} p semi join _st_split_codes s on s.code = p.customer_code
    """ if state else f"""
        select p.customer_id, p.node_key from {previous} p
        semi join (select i.customer_id from _st_prev_ids i semi join _st_split_codes s on s.code = i.code) s
        on s.customer_id = p.customer_id
    """
    changes = _merges(con, edges_sql, keys, merge_components, labels, code, home_component, winner_code) + \
        _splits(con, nodes_sql, previous_rows_sql if gone else None, dropped_sql, keys, away, code, labels)
    con.execute("""create or replace temp table _st_changes (change_type varchar, old_customer_id varchar,
                   customer_id varchar, changed_at timestamptz, link_id varchar, reason varchar)""")
    if changes:
        con.register("_st_changes_arrow", pa.Table.from_pylist([dataclasses.asdict(c) for c in changes], schema=pa.schema([
            ("change_type", pa.string()), ("old_customer_id", pa.string()), ("customer_id", pa.string()),
            ("changed_at", pa.timestamp("us", tz="UTC")), ("link_id", pa.string()), ("reason", pa.string())])))
        con.execute("insert into _st_changes select * from _st_changes_arrow")
        con.unregister("_st_changes_arrow")
    # The nodes that moved to another id, each with the change that moved it (every move has one: a merge
    # into the component's id, or a split from a customer whose home is elsewhere).
    _register(con, "_st_moved_rows", {"node_key": keys.of(moved_rows), "code": code[moved_rows],
                                      "component": labels[moved_rows]})
    con.execute("""
        create or replace temp table _st_moved as
        select r.node_key, ids.customer_id, p.customer_id as previous_customer_id, c.change_type, c.changed_at,
               c.link_id as change_link_id, c.reason as change_reason,
               hash(r.node_key) as node_hash, ids.customer_code, true as rewrite_next
        from _st_moved_rows r
        join _st_prev_ids p on p.code = r.code
        join _st_ids ids on ids.component = r.component
        left join _st_changes c on c.old_customer_id = p.customer_id and c.customer_id = ids.customer_id
    """)
    rows_moved, unexplained = con.execute(
        "select count(*), count(*) filter (where change_type is null) from _st_moved").fetchall()[0]
    if unexplained or rows_moved != len(moved_rows):
        raise RuntimeError(f"identity stitch: of {len(moved_rows)} identifiers that moved, {rows_moved} found their "
                           f"ids and {unexplained} of those no recorded change")
    stats = _stats(n, edge_count, components, keeps, changes)
    write_all = (labels, customer_code, had_prev, moved, hashes if by_hash else None, in_scan_order, len(moved_rows))
    if not in_place:
        _write_all(con, nodes_sql, out_table, temporary, *write_all, with_state=False)
        return stats, changes
    skip = np.empty(0, dtype=np.uint64)
    if update_rows:
        # The map's rows to delete: the nodes that moved or are written again, and identifiers no longer nodes.
        skip = hashes[np.concatenate([moved_rows, refreshed_rows])]
        if gone:
            skip = np.concatenate([skip, con.execute(f"""
                select p.node_hash as h from {out_table} p anti join _st_nodes n on n.h = p.node_hash
                where p.node_key is not null and p.customer_id is not null
            """).fetchnumpy()["h"]])
        _register(con, "_st_skip", {"h": skip})
        _register(con, "_st_new_rows", {"node_key": keys.of(written), "h": hashes[written], "component": labels[written],
                                        "kept": had_prev[written]})
    with _transaction(con) as own:
        if not update_rows:
            _replace_all(con, nodes_sql, out_table, *write_all)
        elif _update_in_place(con, out_table) != n:
            # The rows do not add up (the map changed under us, or holds what the stitch did not write): the
            # update is rolled back and update_map runs again without the state, rewriting every row.
            if not own:
                raise RuntimeError("identity stitch: the id map's rows did not add up after the update; roll back "
                                   "this transaction and run it again (update_map then rewrites every row)")
            raise _StateUnusable()
    return stats, changes


def _resolve_clashes(con: duckdb.DuckDBPyConnection, clashes: list[tuple[int, str]],
                     all_ids_sql: str) -> list[tuple[int, str]]:
    """For each (component, founder key) whose md5 a previous customer has, in order: the first of md5(key#1),
    md5(key#2), ... that no previous customer has (all_ids_sql selects their customer_id), that is no
    founder's md5, and that no earlier clash took. (A split part holding the key that founded its old
    customer clashes.) The first four attempts of every clash are checked in one query; further ones,
    rarely needed, one at a time."""
    def taken(candidates: list[str]) -> dict[str, bool]:
        _register(con, "_st_candidates", {"customer_id": pa.array(candidates, pa.string())})
        found = {r[0] for r in con.execute(f"""
            select distinct p.customer_id from ({all_ids_sql}) p semi join _st_candidates c on c.customer_id = p.customer_id
            union
            select c.customer_id from _st_candidates c semi join _st_founders f on md5(f.founder) = c.customer_id
        """).fetchall()}
        return {candidate: candidate in found for candidate in candidates}

    checked = taken([new_customer_id(key, attempt) for _, key in clashes for attempt in range(1, 5)])

    def is_taken(candidate: str) -> bool:
        if candidate not in checked:
            checked.update(taken([candidate]))
        return checked[candidate]
    chosen: set[str] = set()
    fixed = []
    for component, key in clashes:
        attempt = 1
        while (candidate := new_customer_id(key, attempt)) in chosen or is_taken(candidate):
            attempt += 1
        chosen.add(candidate)
        fixed.append((component, candidate))
    return fixed


def _stats(n: int, edges: int, components: int, keeps: np.ndarray, changes: list[Change]) -> StitchStats:
    return StitchStats(nodes=n, edges=edges, components=components, kept=int(keeps.sum()),
                       new=int(components - keeps.sum()),
                       merged=sum(c.change_type == "merge" for c in changes),
                       split=sum(c.change_type == "split" for c in changes))


def _drop_work_tables(con: duckdb.DuckDBPyConnection, keep: tuple[str, ...]) -> None:
    """Drop the work tables but `keep`, before the output is written: DuckDB then has their memory for
    the output instead of spilling to disk."""
    for table in _TEMP_TABLES:
        if table not in keep:
            con.execute(f"drop table if exists {table}")


def _update_in_place(con: duckdb.DuckDBPyConnection, table: str) -> int:
    """Bring the previous map `table` up to date: delete the rows of `_st_skip` (by node_hash: the nodes
    that moved or are written again, and identifiers no longer nodes), insert the rows of `_st_new_rows`
    (new nodes, and nodes that kept their id when `kept`) and of `_st_moved`. Returns the table's rows."""
    con.execute(f"delete from {table} where node_hash in (select h from _st_skip)")  # (no NULLs: _state_is_current)
    con.execute(f"""
        insert into {table} ({", ".join(OUT_COLUMNS + STATE_COLUMNS)})
        select r.node_key, ids.customer_id, case when r.kept then ids.customer_id end as previous_customer_id,
               {_NO_CHANGE}, r.h as node_hash, ids.customer_code, not r.kept as rewrite_next
        from _st_new_rows r join _st_ids ids using (component)
        union all
        select {", ".join(OUT_COLUMNS + STATE_COLUMNS)} from _st_moved
    """)
    return con.execute(f"select count(*) from {table}").fetchall()[0][0]


def _replace_all(con: duckdb.DuckDBPyConnection, nodes_sql: str, table: str, *write_all_args) -> None:
    """Replace every row of `table` with rows written from the nodes (see _write_all)."""
    _write_all(con, nodes_sql, "_st_out", True, *write_all_args, with_state=True)
    columns = ", ".join(OUT_COLUMNS + STATE_COLUMNS)
    con.execute(f"delete from {table}")
    con.execute(f"insert into {table} ({columns}) select {columns} from _st_out")


def _write_all(con: duckdb.DuckDBPyConnection, nodes_sql: str, out_table: str, temporary: bool, labels: np.ndarray,
               customer_code: np.ndarray, had_prev: np.ndarray, moved: np.ndarray, hashes: np.ndarray | None,
               in_scan_order: bool, moved_count: int, with_state: bool) -> None:
    """Write every node's row from the nodes: customer_id per node as a dictionary column over the
    components' ids, lined up with the nodes, with no join over every node. A node that had an id and did
    not move had its component's id; the few nodes that moved come from `_st_moved`, with their change.
    `hashes` are the nodes' key hashes when the keys are looked up by hash, else None (the keys are in
    `_st_nodes`). With `with_state`, the STATE_COLUMNS are written too (customer_code per component)."""
    dictionary = con.sql("select customer_id from _st_ids order by component").to_arrow_table().column(0)
    labels_table = {"customer_id": pa.DictionaryArray.from_arrays(pa.array(labels), dictionary.combine_chunks()),
                    "had_previous": pa.array(had_prev), "moved": pa.array(moved)}
    if with_state:
        labels_table["customer_code"] = pa.array(customer_code[labels])
    _drop_work_tables(con, keep=("_st_moved",) + (("_st_nodes",) if hashes is None else ()))
    if hashes is not None:
        # The keys are read from nodes_sql again, lined up by position with the first read when its plan
        # only scans tables (a join or an aggregate may return the rows in another order each time), else
        # joined by hash. A row is kept only if its key's hash is the first read's at that position:
        # should the second read still come in another order, rows go missing and the join is used.
        labels_table["h"] = pa.array(hashes)
        source = f"(select node_key from ({nodes_sql}) where node_key is not null)"
        line_up, keep = "positional join _st_labels_arrow l", "not l.moved and hash(n.node_key) = l.h"
        # (With the map's state, node i is row i of a join with the map, not of nodes_sql: joined by hash.)
        if not in_scan_order or not _scans_only(con, f"select * from {source}"):
            line_up, keep = "join _st_labels_arrow l on l.h = hash(n.node_key)", "not l.moved"
    else:
        labels_table["i"] = pa.array(np.arange(len(labels), dtype=np.int32))
        source = "_st_nodes"
        line_up = "positional join _st_labels_arrow l" if in_scan_order else "join _st_labels_arrow l using (i)"
        keep = "not l.moved"
    con.register("_st_labels_arrow", pa.table(labels_table))
    node_hash = "l.h" if hashes is not None else "hash(n.node_key)"

    # Written in two statements: the nodes that did not move, then the few that moved with their change.
    def write(line_up: str, keep: str) -> int:
        con.execute(f"""
            create or replace {"temp " if temporary else ""}table {out_table} as
            select n.node_key, cast(l.customer_id as varchar) as customer_id,
                   case when l.had_previous then cast(l.customer_id as varchar) end as previous_customer_id,
                   {_NO_CHANGE}{f", {node_hash} as node_hash, l.customer_code, not l.had_previous as rewrite_next"
                                if with_state else ""}
            from {source} n {line_up}
            where {keep}
        """)
        return con.execute(f"select count(*) from {out_table}").fetchall()[0][0]
    if write(line_up, keep) != len(labels) - moved_count:
        if hashes is None:
            raise RuntimeError("identity stitch: the output lost nodes")
        write("join _st_labels_arrow l on l.h = hash(n.node_key)", "not l.moved")
    con.unregister("_st_labels_arrow")
    con.execute(f"""
        insert into {out_table}
        select {", ".join(OUT_COLUMNS + (STATE_COLUMNS if with_state else ()))} from _st_moved
    """)


def _merge_rows(merge_components: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """The nodes of the components where a merge happened."""
    in_merge = np.zeros(int(labels.max(initial=-1)) + 1, dtype=bool)
    in_merge[merge_components] = True
    return np.nonzero(in_merge[labels])[0]


def _merges(con: duckdb.DuckDBPyConnection, edges_sql: str, keys: _Keys, merge_components: np.ndarray,
            labels: np.ndarray,
            code: np.ndarray, home_component: np.ndarray, winner_code: np.ndarray) -> list[Change]:
    """The merges of this build, each with the link that joined the old id to its survivor.

    In every component where a previous id at home lost to an older group, links are replayed in time
    order (first_seen_at, then link_id) over the identifiers, those of one previous customer starting as
    one set; the link at which a previous customer's set first connects to the winner's is the one that
    merged it.
    """
    if len(merge_components) == 0:
        return []
    rows = _merge_rows(merge_components, labels)
    component, prev = labels[rows], code[rows]
    has_prev = prev >= 0
    in_winner = has_prev & (prev == winner_code[component])
    at_home = np.zeros(len(rows), dtype=bool)
    at_home[has_prev] = home_component[prev[has_prev]] == component[has_prev]
    _register(con, "_st_merge_rows", {"node_key": keys.of(rows), "component": component, "code": prev,
                                      "in_winner": in_winner, "at_home": at_home})
    con.execute("""
        create or replace temp table _st_merge_nodes as
        select r.node_key, r.component, p.customer_id as prev_id, r.in_winner, r.at_home, ids.customer_id
        from _st_merge_rows r
        join _st_ids ids using (component)
        left join _st_prev_ids p on p.code = r.code
    """)
    nodes = con.execute("select node_key, component, prev_id, in_winner, at_home, customer_id from _st_merge_nodes").fetchall()
    links = con.execute(f"""
        select e.key_a, e.key_b, e.link_id, e.first_seen_at
        from ({edges_sql}) e semi join _st_merge_nodes m on m.node_key = e.key_a
        order by e.first_seen_at nulls last, e.link_id
    """).fetchall()
    parent: dict[str, str] = {}
    holds: dict[str, set[str]] = {}  # root -> previous ids at home in its set, "" for the winning group
    first_of_group: dict[tuple[int, str], str] = {}
    survivor_of_old: dict[str, str] = {}
    for node_key, component_id, prev_id, winning, home, customer_id in nodes:
        parent[node_key] = node_key
        if prev_id is None:
            continue
        # The identifiers of one previous customer in one component start as one set: they were one customer.
        group = (component_id, prev_id)
        if group in first_of_group:
            parent[node_key] = first_of_group[group]
            continue
        first_of_group[group] = node_key
        holds[node_key] = {""} if winning else ({prev_id} if home else set())
        if home and not winning:
            survivor_of_old[prev_id] = customer_id

    def find(x: str) -> str:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    changes: list[Change] = []
    for key_a, key_b, link_id, first_seen_at in links:
        ra, rb = find(key_a), find(key_b)
        if ra == rb:
            continue
        held_a, held_b = holds.pop(ra, set()), holds.pop(rb, set())
        if ("" in held_a) != ("" in held_b):  # this link joins previous customers to the winning group
            for old in sorted((held_b if "" in held_a else held_a) - {""}):
                changes.append(Change("merge", old, survivor_of_old[old], first_seen_at, link_id,
                                      f"{key_a} and {key_b} were linked"))
        parent[rb] = ra
        holds[ra] = held_a | held_b
    found = {c.old_customer_id for c in changes}
    if found != set(survivor_of_old):  # a component is connected, so every group meets the winner
        raise RuntimeError(f"identity merges without a joining link: {sorted(set(survivor_of_old) - found)[:5]}")
    return sorted(changes, key=lambda c: (c.customer_id, c.old_customer_id))


def _split_rows(away: np.ndarray, code: np.ndarray) -> np.ndarray:
    """The current nodes of the previous customers that split."""
    if len(away) == 0:
        return np.empty(0, dtype=np.int64)
    split = np.zeros(int(code.max()) + 1, dtype=bool)  # by previous id's code (np.isin sorts every node's)
    split[code[away]] = True
    return np.nonzero(split[np.maximum(code, 0)] & (code >= 0))[0]


def _splits(con: duckdb.DuckDBPyConnection, nodes_sql: str, previous_rows_sql: str | None, dropped_sql: str | None,
            keys: _Keys, away: np.ndarray, code: np.ndarray, labels: np.ndarray) -> list[Change]:
    """Identifiers of a previous customer found outside its home: split off to their new customer.
    previous_rows_sql selects the previous map's (customer_id, node_key) of the codes in _st_split_codes;
    None when no identifier left the graph (then every previous row is a current node)."""
    if len(away) == 0:
        return []
    _register(con, "_st_split_rows", {"code": code[away], "component": labels[away]})
    rows = con.execute("""
        select p.customer_id, ids.customer_id, count(*) as identifiers
        from _st_split_rows r
        join _st_prev_ids p on p.code = r.code
        join _st_ids ids on ids.component = r.component
        group by all
        order by 1, 2
    """).fetchall()
    changed_at = con.execute(f"select max(coalesce(last_seen_at, first_seen_at)) from ({nodes_sql})").fetchall()[0][0]
    dropped = f"({dropped_sql})" if dropped_sql else \
        "(select cast(null as varchar) as node_key, cast(null as varchar) as reason where false)"
    # The split customers' identifiers that left the graph: their previous rows minus their current nodes.
    split_codes = _sorted_unique(code[away])
    _register(con, "_st_split_codes", {"code": split_codes})
    removed: dict[str, list[str]] = {}
    if previous_rows_sql is not None:
        _register(con, "_st_split_current", {"node_key": keys.of(_split_rows(away, code))})
    for customer_id, node_key, reason in [] if previous_rows_sql is None else con.execute(f"""
        select r.customer_id, r.node_key, d.reason
        from ({previous_rows_sql}) r
        anti join _st_split_current k on k.node_key = r.node_key
        left join {dropped} d on d.node_key = r.node_key
        order by 1, 2
    """).fetchall():
        removed.setdefault(customer_id, []).append(f"{node_key} left the identity graph" + (f" ({reason})" if reason else ""))
    changes = []
    for old, new, count in rows:
        why = removed.get(old)
        reason = ("; ".join(why[:3]) + (f" and {len(why) - 3} more" if len(why) > 3 else "")) if why else \
            "a link between its identifiers is no longer recorded by any system"
        changes.append(Change("split", old, new, changed_at, None,
                              f"{count} identifier{'s' if count != 1 else ''} split off: {reason}"))
    return changes
