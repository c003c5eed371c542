"""Pages of API objects as Arrow tables, for the high-volume tables.

dlt loads Arrow tables without its per-value Python normalizer (they go to Parquet as they are),
which is what lets the large tables keep up with the APIs' paging speed. Arrow does the
flattening: nested objects become `parent__child` columns (`Table.flatten`), and chosen lists
become child tables keyed by their parent (`list_flatten` + `list_parent_indices`).
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pyarrow.compute as pc


def flatten_structs(table: pa.Table) -> pa.Table:
    """Nested objects as `parent__child` columns, recursively (empty objects disappear)."""
    while any(pa.types.is_struct(f.type) for f in table.schema):
        table = table.flatten()
    return table.rename_columns([name.replace(".", "__") for name in table.column_names])


def to_table(rows: list[dict[str, Any]], schema: pa.Schema | None = None) -> pa.Table:
    """API objects as one flat Arrow table (types inferred unless `schema` is given).

    Raises pa.ArrowInvalid / pa.ArrowTypeError when one field holds values of different types
    across the objects; callers then hand the page to dlt's normalizer instead.
    """
    return flatten_structs(pa.Table.from_pylist(rows, schema=schema))


def explode(table: pa.Table, list_column: str, parent_key: str, parent_key_as: str) -> pa.Table | None:
    """The items of `list_column` as a child table, each with its parent's key as `parent_key_as`
    (objects flattened, scalars in `value`); None when no row has an item."""
    lists = table.column(list_column).combine_chunks()
    if pa.types.is_null(lists.type) or not pa.types.is_list(lists.type):
        return None
    items = pc.list_flatten(lists)
    if len(items) == 0 or pa.types.is_null(items.type):
        return None
    parents = pc.take(table.column(parent_key), pc.list_parent_indices(lists))
    child = pa.Table.from_struct_array(items) if pa.types.is_struct(items.type) else pa.table({"value": items})
    return flatten_structs(child.append_column(parent_key_as, parents))
