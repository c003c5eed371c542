"""A preview of a mart's first rows in its materialization metadata, so that the UI shows what a model
holds without opening the warehouse."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import dagster as dg

PREVIEW_ROWS = 10
# dbt folders (fqn[1]) whose models are business tables worth previewing
PREVIEWED_FOLDERS = ("marts", "activation")
_MAX_CELL = 60


def markdown_table(columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A Markdown table of `rows` under `columns`; long cells are cut and pipes escaped."""
    def cell(value: Any) -> str:
        text = "" if value is None else str(value)
        text = text.replace("|", "\\|").replace("\n", " ")
        return text if len(text) <= _MAX_CELL else text[: _MAX_CELL - 1] + "…"

    lines = ["| " + " | ".join(cell(c) for c in columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def read_preview(warehouse: Path, schema: str, table: str, limit: int = PREVIEW_ROWS) -> str | None:
    """The first `limit` rows of `schema.table` as a Markdown table, read-only; None if unreadable."""
    import duckdb

    try:
        with duckdb.connect(str(warehouse), read_only=True) as con:
            rel = con.sql(f'SELECT * FROM "{schema}"."{table}" LIMIT {int(limit)}')
            return markdown_table(rel.columns, rel.fetchall())
    except duckdb.Error:
        return None


def previewed_relations(manifest_path: Path) -> dict[str, tuple[str, str]]:
    """{dbt unique_id: (schema, table)} of the models whose materializations carry a preview."""
    manifest = json.loads(Path(manifest_path).read_text())
    return {uid: (node["schema"], node.get("alias") or node["name"])
            for uid, node in manifest["nodes"].items()
            if node["resource_type"] == "model" and len(node["fqn"]) > 2 and node["fqn"][1] in PREVIEWED_FOLDERS
            and node.get("config", {}).get("materialized") != "ephemeral"}


def with_previews(events: Iterable[Any], warehouse: Path, manifest_path: Path | None = None) -> Iterator[Any]:
    """The dbt events, each mart's Output or AssetMaterialization with a `preview` (Markdown) added.
    Call after dbt has exited: the warehouse is then free to read."""
    if manifest_path is None:
        from growth_stack_dagster.transform.project import dbt_project

        manifest_path = dbt_project.manifest_path
    relations = previewed_relations(manifest_path)
    for event in events:
        metadata = getattr(event, "metadata", None) or {}
        unique_id = metadata.get("unique_id")
        unique_id = getattr(unique_id, "value", unique_id)
        if isinstance(event, (dg.Output, dg.AssetMaterialization)) and unique_id in relations:
            preview = read_preview(warehouse, *relations[unique_id])
            if preview is not None:
                event = event.with_metadata({**metadata, "preview": dg.MetadataValue.md(preview)})
        yield event
