"""The mapping page's logic, free of HTTP: which models and destinations there are, which field suits
which column, and how the page's choices become a sync declaration — checked, previewed and dry-run by
the very code the sync engine runs (`activation.declarations`, `activation.engine.plan_sync`).
"""

from __future__ import annotations

import copy
import dataclasses
import re
from pathlib import Path
from typing import Any

from growth_stack_dagster.activation.declarations import load_manifest, parse_exposure, validate_against_destination
from growth_stack_dagster.activation.destinations import DESTINATIONS, destination_class
from growth_stack_dagster.activation.destinations.base import (
    FIELD_TYPES, MODES, FieldSpec, SyncSpec, destination_base_url, destination_credential,
)

# What each mode and removal policy means, in the words the page shows.
MODE_WORDS = {
    "upsert": "Create records that are missing and update the others",
    "update": "Only update records that already exist (never create)",
    "insert": "Only create new records (never update)",
    "mirror": "Create, update, and delete the records this sync created when their rows leave",
    "membership": "Add rows to the list or audience, remove them when they leave",
    "archive": "Archive the records of the rows",
}
REMOVAL_WORDS = {
    "nothing": "Leave the record as it is",
    "clear": "Clear the mapped fields",
    "delete": "Delete or remove it (only records this sync created)",
}
NULL_WORDS = {"skip": "leave the field as it is", "send": "send an empty value", "clear": "clear the field"}
_DEFAULT_NULL_POLICY = "skip"


@dataclasses.dataclass
class ModelInfo:
    name: str
    description: str
    schema: str
    table: str
    columns: dict[str, dict[str, str]]  # name -> {description, data_type}
    unique_columns: set[str]


def sync_models(manifest: dict[str, Any]) -> list[ModelInfo]:
    """Every `sync_*` model of the dbt project, with its YAML columns and the columns tested unique."""
    unique: dict[str, set[str]] = {}
    for node in manifest.get("nodes", {}).values():
        meta = node.get("test_metadata") or {}
        if node.get("resource_type") == "test" and meta.get("name") == "unique" and node.get("column_name"):
            unique.setdefault(node.get("attached_node") or "", set()).add(node["column_name"].lower())
    models = []
    for unique_id, node in manifest.get("nodes", {}).items():
        if node.get("resource_type") != "model" or not node["name"].startswith("sync_"):
            continue
        columns = {name: {"description": col.get("description") or "", "data_type": col.get("data_type") or ""}
                   for name, col in (node.get("columns") or {}).items()}
        models.append(ModelInfo(name=node["name"], description=(node.get("description") or "").strip(),
                                schema=node["schema"], table=node.get("alias") or node["name"], columns=columns,
                                unique_columns=unique.get(unique_id, set())))
    return sorted(models, key=lambda m: m.name)


def destination_objects() -> list[tuple[str, str]]:
    """(destination, object) pairs that a sync can target, in a stable order."""
    out = []
    for name in DESTINATIONS:
        try:
            cls = destination_class(name)
        except ImportError:
            continue
        out.extend((name, obj) for obj in cls.objects)
    return out


def live_fields(destination: str, object_name: str) -> tuple[dict[str, FieldSpec] | None, str | None]:
    """The object's fields as the destination's own API lists them (HubSpot properties, Zendesk user fields),
    else the fields the connector knows; None for destinations that take any attribute name.
    Returns (fields, a sentence when the API could not be asked)."""
    from growth_stack_dagster.activation.http import destination_session

    cls = destination_class(destination)
    static = cls.objects[object_name].fields
    describe = getattr(cls, "describe_fields", None)
    if describe is None:
        return static, None
    try:
        dest = cls(destination_base_url(destination), destination_credential(destination),
                   destination_session(idempotent=True))
        fields = dest.describe_fields(object_name)
    except Exception as exc:  # noqa: BLE001 - any failure to reach the API shows as a sentence, not a trace
        return static, (f"Could not list the fields from {destination}'s API ({_short(exc)}); showing the fields "
                        "this connector knows.")
    if fields is None:
        return static, None
    merged = dict(static or {})
    merged.update(fields)
    return merged, None


def _short(exc: Exception) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:200]


def field_type_of(column_type: str) -> str:
    """The destination field type a warehouse column type carries (one of FIELD_TYPES)."""
    t = column_type.upper()
    if t.startswith(("BOOL",)):
        return "bool"
    if re.match(r"(TINYINT|SMALLINT|INTEGER|INT|BIGINT|HUGEINT|UTINYINT|USMALLINT|UINTEGER|UBIGINT|DECIMAL|NUMERIC|"
                r"DOUBLE|FLOAT|REAL)", t):
        return "number"
    if t.startswith("TIMESTAMP"):
        return "datetime"
    if t == "DATE":
        return "date"
    if t.startswith(("STRUCT", "MAP", "JSON")) or t.endswith("[]"):
        return "json"
    return "string"


def type_warning(column: str, column_type: str, field: FieldSpec | None) -> str | None:
    """A sentence when the column's values do not fit the field's type (e.g. text onto a number property)."""
    if field is None or not column_type:
        return None
    have, want = field_type_of(column_type), field.type
    fits = {
        "string": {"string", "number", "bool", "date", "datetime", "enumeration"},
        "number": {"number"},
        "bool": {"bool"},
        "date": {"date", "datetime", "string"},
        "datetime": {"datetime", "date", "string"},
        "enumeration": {"string", "bool", "number"},
        "json": {"json", "string"},
    }
    if have in fits.get(want, {want}):
        return None
    words = {"string": "text", "number": "number", "bool": "yes/no", "date": "date", "datetime": "date and time",
             "enumeration": "choice", "json": "structured"}
    return (f"{column} holds {words.get(have, have)} values but {field.name} is a {words.get(want, want)} field: "
            "the destination may refuse or change them.")


def _norm(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", text.lower())


def suggest_field(column: str, fields: dict[str, FieldSpec] | None) -> str | None:
    """The destination field a column most likely maps to, by name (`first_name` -> `firstname`,
    `is_high_value` -> `gs_is_high_value`), or None."""
    if not fields:
        return None
    target = _norm(column)
    by_norm = {}
    for name, spec in fields.items():
        by_norm.setdefault(_norm(name), name)
        by_norm.setdefault(_norm(spec.label or ""), name)
    for candidate in (target, "gs" + target, "hs" + target):
        if candidate in by_norm:
            return by_norm[candidate]
    return None


@dataclasses.dataclass
class ColumnChoice:
    column: str
    field: str = ""  # "" = not sent
    null_policy: str = _DEFAULT_NULL_POLICY
    create_type: str = ""  # set when the field is new and the sync creates it
    create_label: str = ""


@dataclasses.dataclass
class Choices:
    """What the page's form says; turned into a declaration by `declaration_from_choices`."""

    name: str
    model: str
    destination: str
    object: str
    mode: str
    primary_key: str
    match_field: str
    on_removal: str
    trigger: str
    columns: list[ColumnChoice]
    batch_size: int | None = None
    rate_limit: tuple[int, float] | None = None
    label: str = ""


def _effective(sync: dict[str, Any], key: str) -> Any:
    defaults = {"on_removal": "delete" if sync.get("mode") == "mirror" else "nothing",
                "trigger": "on_model_update", "batch_size": None, "rate_limit": None}
    return sync.get(key, defaults.get(key))


def declaration_from_choices(choices: Choices, existing: dict[str, Any] | None = None) -> dict[str, Any]:
    """The `meta.sync` mapping for these choices. Starting from the `existing` declaration, only what the
    choices change is changed, so unchanged choices give back exactly the existing declaration."""
    sync = copy.deepcopy(existing) if existing else {}
    wanted: dict[str, Any] = {
        "destination": choices.destination, "object": choices.object, "mode": choices.mode,
        "primary_key": choices.primary_key, "match_field": choices.match_field,
    }
    for key, value in wanted.items():
        if sync.get(key) != value:
            sync[key] = value
    old_by_column: dict[str, dict[str, Any]] = {}
    for entry in sync.get("mappings") or []:
        old_by_column.setdefault(entry.get("column"), entry)
    mappings = []
    for choice in choices.columns:
        if not choice.field:
            continue
        entry = dict(old_by_column.get(choice.column) or {"column": choice.column})
        if entry.get("field") != choice.field:
            entry["field"] = choice.field
            entry.pop("create", None)
        if entry.get("null_policy", _DEFAULT_NULL_POLICY) != choice.null_policy:
            entry["null_policy"] = choice.null_policy
        if choice.create_type:
            create = {"type": choice.create_type, "label": choice.create_label or choice.field}
            old = entry.get("create") or {}
            if old.get("type") != create["type"] or (old.get("label") or entry["field"]) != create["label"]:
                entry["create"] = {**old, **create}
        mappings.append(entry)
    # keep the hand-written order for columns already mapped, new ones after them
    order = {entry.get("column"): i for i, entry in enumerate(sync.get("mappings") or [])}
    mappings.sort(key=lambda e: order.get(e["column"], len(order)))
    if mappings != (sync.get("mappings") or []):
        sync["mappings"] = mappings
    removal_default = "delete" if choices.mode == "mirror" else "nothing"
    if _effective(sync, "on_removal") != choices.on_removal:
        sync["on_removal"] = choices.on_removal
    elif "on_removal" not in sync and choices.on_removal != removal_default:
        sync["on_removal"] = choices.on_removal
    if _effective(sync, "trigger") != choices.trigger:
        sync["trigger"] = choices.trigger
    if _effective(sync, "batch_size") != choices.batch_size:
        if choices.batch_size is None:
            sync.pop("batch_size", None)
        else:
            sync["batch_size"] = choices.batch_size
    old_rate = sync.get("rate_limit")
    old_rate_tuple = (int(old_rate["requests"]), float(old_rate["per_seconds"])) if old_rate else None
    if old_rate_tuple != choices.rate_limit:
        if choices.rate_limit is None:
            sync.pop("rate_limit", None)
        else:
            requests_, seconds = choices.rate_limit
            sync["rate_limit"] = {"requests": requests_, "per_seconds": int(seconds) if seconds == int(seconds) else seconds}
    return sync


def choices_from_declaration(name: str, model: str, sync: dict[str, Any], columns: list[str],
                             label: str = "") -> Choices:
    """The page's form filled from an existing declaration."""
    by_column = {}
    for entry in sync.get("mappings") or []:
        by_column.setdefault(entry.get("column"), entry)
    column_choices = []
    for column in columns:
        entry = by_column.get(column) or {}
        create = entry.get("create") or {}
        column_choices.append(ColumnChoice(column=column, field=entry.get("field", ""),
                                           null_policy=entry.get("null_policy", _DEFAULT_NULL_POLICY),
                                           create_type=create.get("type", "") if create else "",
                                           create_label=create.get("label", "") if create else ""))
    rate = sync.get("rate_limit")
    return Choices(
        name=name, model=model, destination=sync.get("destination", ""), object=sync.get("object", ""),
        mode=sync.get("mode", "upsert"), primary_key=sync.get("primary_key", ""),
        match_field=sync.get("match_field", ""), on_removal=_effective(sync, "on_removal"),
        trigger=_effective(sync, "trigger"), columns=column_choices,
        batch_size=int(sync["batch_size"]) if sync.get("batch_size") else None,
        rate_limit=(int(rate["requests"]), float(rate["per_seconds"])) if rate else None, label=label)


def spec_for(name: str, model: str, sync: dict[str, Any], manifest: dict[str, Any], source_file: str,
             label: str = "") -> SyncSpec:
    """The declaration checked exactly as the code location checks it when it loads (a DeclarationError
    naming the field otherwise), without writing anything."""
    unique_id = next((uid for uid, node in manifest.get("nodes", {}).items()
                      if node.get("resource_type") == "model" and node["name"] == model), None)
    if unique_id is None:
        raise ValueError(f"There is no model named {model!r} in the dbt project.")
    exposure = {"name": name, "label": label or name, "original_file_path": source_file,
                "depends_on": {"nodes": [unique_id]}, "meta": {"sync": sync}}
    spec = parse_exposure(exposure, manifest)
    validate_against_destination(spec)
    return spec


def field_types() -> tuple[str, ...]:
    return FIELD_TYPES


def modes_of(destination: str, object_name: str) -> list[str]:
    obj = destination_class(destination).objects[object_name]
    return [m for m in MODES if m in obj.modes]


def match_fields_of(destination: str, object_name: str) -> tuple[str, ...]:
    return destination_class(destination).objects[object_name].match_fields


def manifest(project_dir: Path) -> dict[str, Any]:
    """The dbt manifest of the project the console edits."""
    return load_manifest(Path(project_dir) / "target" / "manifest.json")
