"""API objects as Arrow tables in dlt's relational layout, without dlt's per-row normalizer.

dlt's normalizer turns each JSON object into a root row (nested dicts flattened into `a__b`
columns), one child table per list (`<table>__<list>`, rows joined by `_dlt_parent_id` to the
parent's `_dlt_id`, ordered by `_dlt_list_idx`, scalars wrapped in a `value` column), and keeps
anything deeper than `max_nesting` as a JSON column. It does so row by row in Python, which caps a
large load at a fraction of the API's paging speed. `relational_tables` produces the same tables
and columns for a batch of objects and hands them to dlt as Arrow tables, which dlt writes as they
are. Child tables also carry the root object's key (e.g. `invoice_id`), since they are loaded as
tables of their own (merged on that key) rather than as dlt-managed nested tables.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc
from dlt.common.normalizers.json.helpers import get_nested_row_hash
from dlt.common.normalizers.naming.snake_case import NamingConvention
from dlt.common.normalizers.utils import generate_dlt_ids

NAMING = NamingConvention()
SEPARATOR = NAMING.PATH_SEPARATOR  # "__"
_identifiers: dict[str, str] = {}


def _identifier(key: str) -> str:
    """`key` as dlt's default naming convention normalizes it (cached: APIs repeat their keys)."""
    name = _identifiers.get(key)
    if name is None:
        name = _identifiers[key] = NAMING.normalize_identifier(key) if key and not key.isspace() else "_empty"
    return name


class RelationalBatch:
    """Rows of one batch, by table, plus the columns of each table that hold JSON documents."""

    def __init__(self) -> None:
        self.rows: dict[str, list[dict[str, Any]]] = {}
        self.json_columns: dict[str, set[str]] = {}

    def add(self, table: str, row: dict[str, Any]) -> None:
        rows = self.rows.get(table)
        if rows is None:
            rows = self.rows[table] = []
        rows.append(row)

    def flatten(self, table: str, obj: dict[str, Any], level: int, row: dict[str, Any],
                lists: list[tuple[str, list[Any]]], prefix: str = "") -> None:
        """Copy `obj` into `row`: dicts flattened while `level` > 0, lists collected into `lists`
        (by child table name), deeper dicts and lists kept as JSON text, as dlt's normalizer does."""
        for key, value in obj.items():
            name = prefix + _identifier(key)
            kind = type(value)
            if kind is dict or kind is list:
                if level <= 0:
                    row[name] = orjson.dumps(value).decode()
                    columns = self.json_columns.get(table)
                    if columns is None:
                        columns = self.json_columns[table] = set()
                    columns.add(name)
                elif kind is dict:
                    self.flatten(table, value, level - 1, row, lists, name + SEPARATOR)
                else:
                    lists.append((table + SEPARATOR + name, value))
            else:
                row[name] = value

    def add_children(self, lists: list[tuple[str, list[Any]]], parent_id: str, level: int,
                     propagate: dict[str, Any]) -> None:
        """Rows of the child tables of one row (whose `_dlt_id` is `parent_id`), at nesting `level`."""
        for table, items in lists:
            for idx, item in enumerate(items):
                row_id = get_nested_row_hash(parent_id, table, idx)
                child_lists: list[tuple[str, list[Any]]] = []
                row: dict[str, Any] = {}
                row_level = level
                if type(item) is dict:
                    self.flatten(table, item, level, row, child_lists)
                elif type(item) is list:
                    # a list of lists goes through an intermediate table, as in dlt
                    row_level = level - 1
                    self.flatten(table, {"list": item}, row_level, row, child_lists)
                else:
                    row["value"] = item
                row.update(propagate)
                row["_dlt_parent_id"] = parent_id
                row["_dlt_list_idx"] = idx
                row["_dlt_id"] = row_id
                self.add(table, row)
                if child_lists:
                    self.add_children(child_lists, row_id, row_level - 1, propagate)


def relational_tables(objects: Iterable[dict[str, Any]], table: str, root_key: tuple[str, str],
                      max_nesting: int = 2) -> RelationalBatch:
    """Root rows of `table` and the rows of its child tables for a batch of objects.

    `root_key` is (field of the object, column name in child tables), e.g. ("id", "invoice_id"):
    every child row carries its root object's key. Root rows get a fresh random `_dlt_id`, child
    rows the deterministic one dlt gives them (a hash of parent id, table and position).
    """
    objects = list(objects)
    batch = RelationalBatch()
    batch.rows[table] = []
    key_field, key_column = root_key
    for obj, row_id in zip(objects, generate_dlt_ids(len(objects))):
        row: dict[str, Any] = {}
        lists: list[tuple[str, list[Any]]] = []
        batch.flatten(table, obj, max_nesting, row, lists)
        row["_dlt_id"] = row_id
        batch.add(table, row)
        if lists:
            batch.add_children(lists, row_id, max_nesting - 1, {key_column: obj[key_field]})
    return batch


def _column(values: list[Any]) -> pa.Array:
    try:
        return pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        # values of mixed types (rare in APIs, e.g. a number sent once as a string) are kept as text
        return pa.array([v if v is None or isinstance(v, str) else orjson.dumps(v).decode() for v in values],
                        pa.string())


def rows_to_arrow(rows: list[dict[str, Any]]) -> pa.Table:
    """Rows (dicts with any subset of the columns) as one Arrow table with the union of their
    columns in order of first appearance; a column with no value in any row is left out, as dlt's
    normalizer creates no column for it."""
    names: dict[str, None] = {}
    for row in rows:
        names.update(dict.fromkeys(row))
    arrays, fields = [], []
    for name in names:
        array = _column([row.get(name) for row in rows])
        if pa.types.is_null(array.type):
            continue
        arrays.append(array)
        fields.append(pa.field(name, array.type, nullable=name != "_dlt_id"))
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))


def _path_values(rows: list[Any], path: tuple[str, ...]) -> list[Any]:
    """The value at `path` (keys into nested dicts) in each row, None where it is missing."""
    values = rows
    for key in path:
        values = [v.get(key) if type(v) is dict else None for v in values]
    return values


def random_ids(n: int) -> pa.Array:
    """`n` fresh unique row ids, made in bulk: a random 64-bit prefix (hex) shared by the batch, then
    each row's number. (Ids sharing a prefix compress well: a warehouse stores them ~2x faster
    than 128 random bits each.)"""
    numbers = pc.cast(pa.array(range(n), pa.int64()), pa.string())
    return pc.binary_join_element_wise(secrets.token_hex(8), numbers, "")


class _LazyRows:
    """The Python values of a table's rows, gathered only when asked for: the rows of `parent`
    (`path` None), or every element of the lists at `path` in them, each wrapped as {wrap: element}
    when `wrap` is given."""

    def __init__(self, parent: Any, path: tuple[str, ...] | None, wrap: str | None = None) -> None:
        self.parent, self.path, self.wrap = parent, path, wrap
        self._rows: list[Any] | None = None

    def rows(self) -> list[Any]:
        if self._rows is None:
            parent = self.parent if isinstance(self.parent, list) else self.parent.rows()
            if self.path is None:
                self._rows = parent
            else:
                self._rows = [v for values in _path_values(parent, self.path) if values for v in values]
            if self.wrap:
                self._rows = [{self.wrap: v} for v in self._rows]
        return self._rows


class _ArrowTables:
    """`arrow_relational_tables` at work: Arrow converts and flattens the objects natively; Python
    only collects the JSON documents kept whole below the nesting limit."""

    def __init__(self, key_column: str) -> None:
        self.key_column = key_column
        self.tables: dict[str, dict[str, pa.Array]] = {}
        self.json_columns: dict[str, set[str]] = {}

    def table(self, table: str, items: pa.StructArray, level: int, source: Any,
              links: dict[str, pa.Array], root_index: pa.Array, root_keys: pa.Array) -> None:
        """Columns of `table` from `items` (one struct per row; `source` the same rows as Python
        values), then its child tables. `links` are the columns dlt's layout adds after the data
        (root key, parent id, list index); `root_index` maps each row to its root object."""
        columns: dict[str, pa.Array] = {}
        self.tables[table] = columns
        row_ids = random_ids(len(items))
        children: list[tuple[str, pa.Array, tuple[str, ...]]] = []
        self._flatten(table, items, level, (), "", source, columns, children)
        columns.update(links)
        columns["_dlt_id"] = row_ids
        for child_table, lists, path in children:
            values = pc.list_flatten(lists)
            if len(values) == 0:
                continue
            parents = pc.list_parent_indices(lists)
            offsets = lists.offsets
            start = offsets[0].as_py()
            list_idx = pc.subtract(pa.array(range(start, start + len(values)), pa.int64()),
                                   pc.take(offsets, parents).cast(pa.int64()))
            child_root = pc.take(root_index, parents)
            child_links = {self.key_column: pc.take(root_keys, child_root), "_dlt_parent_id": pc.take(row_ids, parents),
                           "_dlt_list_idx": list_idx}
            # the Python values of the child rows, only where JSON documents must be read from them
            child_source = _LazyRows(source, path)
            if pa.types.is_struct(values.type):
                self.table(child_table, values, level - 1, child_source, child_links, child_root, root_keys)
            elif pa.types.is_list(values.type) or pa.types.is_large_list(values.type):
                # a list of lists goes through an intermediate table `list`, as in dlt
                wrapped = pa.StructArray.from_arrays([values], names=["list"])
                self.table(child_table, wrapped, level - 2, _LazyRows(child_source, None, wrap="list"), child_links,
                           child_root, root_keys)
            elif not pa.types.is_null(values.type):
                self.tables[child_table] = {"value": values, **child_links, "_dlt_id": random_ids(len(values))}

    def _flatten(self, table: str, items: pa.StructArray, level: int, path: tuple[str, ...], prefix: str,
                 source: Any, columns: dict[str, pa.Array],
                 children: list[tuple[str, pa.Array, tuple[str, ...]]]) -> None:
        for i, field in enumerate(items.type):
            name = prefix + _identifier(field.name)
            values = pc.struct_field(items, [i])
            kind = field.type
            nested = pa.types.is_struct(kind) or pa.types.is_list(kind) or pa.types.is_large_list(kind)
            if pa.types.is_null(kind):
                continue  # no value in any row: no column, as in dlt
            if nested and level <= 0:
                documents = _path_values(source.rows(), (*path, field.name))
                columns[name] = pa.array([None if d is None else orjson.dumps(d).decode() for d in documents],
                                         pa.string())
                self.json_columns.setdefault(table, set()).add(name)
            elif pa.types.is_struct(kind):
                self._flatten(table, values, level - 1, (*path, field.name), name + SEPARATOR, source, columns,
                              children)
            elif nested:
                children.append((table + SEPARATOR + name, values, (*path, field.name)))
            else:
                columns[name] = values


def arrow_relational_tables(objects: list[dict[str, Any]], table: str, root_key: tuple[str, str],
                            max_nesting: int = 2) -> tuple[dict[str, pa.Table], dict[str, set[str]]]:
    """The tables of `relational_tables` (same names, columns and links), built by Arrow:
    ({table: Arrow table}, {table: its JSON columns}). Objects Arrow cannot type as one schema
    (a field holding a number in one object and text in another) go through `relational_tables`."""
    key_field, key_column = root_key
    try:
        items = pa.array(objects)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        batch = relational_tables(objects, table, root_key, max_nesting)
        return {t: rows_to_arrow(rows) for t, rows in batch.rows.items()}, batch.json_columns
    builder = _ArrowTables(key_column)
    root_keys = pc.struct_field(items, [items.type.get_field_index(key_field)])
    builder.table(table, items, max_nesting, _LazyRows(objects, None), {}, pa.array(range(len(objects)), pa.int64()),
                  root_keys)
    out = {}
    for name, columns in builder.tables.items():
        # `_dlt_id`, the root's primary key and the children's merge key are declared non-null, as dlt does
        required = {"_dlt_id", key_field} if name == table else {"_dlt_id", key_column}
        fields = [pa.field(c, a.type, nullable=c not in required) for c, a in columns.items()]
        out[name] = pa.Table.from_arrays(list(columns.values()), schema=pa.schema(fields))
    return out, builder.json_columns


# dlt data types and the Arrow type their values take in a load file
_ARROW_TYPES = {"bigint": pa.int64(), "double": pa.float64(), "bool": pa.bool_(), "text": pa.string()}
_DLT_TYPES = {t: name for name, t in _ARROW_TYPES.items()}


def fit_to_columns(items: pa.Table, columns: dict[str, Any]) -> pa.Table:
    """`items` fitted to the columns a table already has (`{name: dlt column schema}`): a column
    whose values arrive with another type is cast to the column's type when every value converts
    (e.g. numbers as text), else its values go to a variant column `<name>__v_<type>` beside it,
    as dlt's normalizer does, so a changed type never breaks a load."""
    for index, name in enumerate(items.column_names):
        target = _ARROW_TYPES.get((columns.get(name) or {}).get("data_type", ""))
        values = items.column(index)
        if target is None or values.type == target or values.type not in _DLT_TYPES:
            continue
        try:
            items = items.set_column(index, name, pc.cast(values, target))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            variant = f"{name}{SEPARATOR}v_{_DLT_TYPES[values.type]}"
            items = items.set_column(index, variant, values)
    return items
