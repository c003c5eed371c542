"""Sync declarations: dbt exposures under `dbt_project/models/activation/syncs/` whose `meta.sync` holds
the declaration, read from dbt's manifest into `SyncSpec`s and checked against the model's YAML and the
destination's object, so a wrong declaration fails when the code location loads, naming file and field.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from growth_stack_dagster.activation.destinations import destination_class
from growth_stack_dagster.activation.destinations.base import (
    FIELD_TYPES, MODES, NULL_POLICIES, ON_REMOVAL, FieldMapping, FieldSpec, SyncSpec,
)

SYNC_FOLDER = ("activation", "syncs")
_KNOWN_KEYS = {"destination", "object", "mode", "primary_key", "match_field", "mappings", "on_removal",
               "trigger", "batch_size", "rate_limit", "max_attempts", "options", "destination_id_column"}
_MAPPING_KEYS = {"column", "field", "null_policy", "create"}


class DeclarationError(ValueError):
    """A sync declaration that cannot run; the message names the file and the field."""


def manifest_path() -> Path:
    """dbt's manifest, written by `make dbt-parse` (`dbt parse`)."""
    from growth_stack_dagster import config

    return config.dbt_project_dir() / "target" / "manifest.json"


def load_manifest(path: Path | None = None) -> dict[str, Any]:
    """The parsed manifest; a sentence saying to run `make dbt-parse` when it is missing."""
    path = path or manifest_path()
    if not path.exists():
        raise DeclarationError(f"{path} does not exist: run `make dbt-parse` (or `dbt parse` in dbt_project/) "
                               "so the sync declarations can be read.")
    return json.loads(path.read_text())


def load_syncs(manifest: dict[str, Any] | None = None, *, check_destinations: bool = True) -> dict[str, SyncSpec]:
    """Every declared sync by name, validated; DeclarationError on the first invalid one."""
    manifest = manifest if manifest is not None else load_manifest()
    syncs: dict[str, SyncSpec] = {}
    for exposure in sorted(manifest.get("exposures", {}).values(), key=lambda e: e["name"]):
        meta = (exposure.get("config") or {}).get("meta") or exposure.get("meta") or {}
        if "sync" not in meta:
            continue
        spec = parse_exposure(exposure, manifest)
        if check_destinations:
            validate_against_destination(spec)
        syncs[spec.name] = spec
    return syncs


def _fail(where: str, field: str, message: str) -> DeclarationError:
    return DeclarationError(f"{where}: `{field}`: {message}")


def parse_exposure(exposure: dict[str, Any], manifest: dict[str, Any]) -> SyncSpec:
    """One exposure into a SyncSpec, checked against its model's YAML (columns, unique tests)."""
    where = f"dbt_project/{exposure.get('original_file_path', exposure['name'])}"
    meta = (exposure.get("config") or {}).get("meta") or exposure.get("meta") or {}
    decl = meta["sync"]
    if not isinstance(decl, dict):
        raise _fail(where, "meta.sync", "must be a mapping of the declaration's keys.")
    unknown = sorted(set(decl) - _KNOWN_KEYS)
    if unknown:
        raise _fail(where, f"meta.sync.{unknown[0]}", f"is not a declaration key; the keys are {sorted(_KNOWN_KEYS)}.")
    for key in ("destination", "object", "mode", "primary_key", "match_field", "mappings"):
        if not decl.get(key):
            raise _fail(where, f"meta.sync.{key}", "is required.")
    models = [n for n in exposure.get("depends_on", {}).get("nodes", []) if n.startswith("model.")]
    if len(models) != 1:
        raise _fail(where, "depends_on", f"must name exactly one sync_* model with ref(), not {len(models)}.")
    node = manifest["nodes"][models[0]]
    model = node["name"]
    columns = {c.lower() for c in node.get("columns", {})}
    mode = decl["mode"]
    if mode not in MODES:
        raise _fail(where, "meta.sync.mode", f"{mode!r} is not a mode; one of {', '.join(MODES)}.")
    on_removal = decl.get("on_removal", "delete" if mode == "mirror" else "nothing")
    if on_removal not in ON_REMOVAL:
        raise _fail(where, "meta.sync.on_removal", f"{on_removal!r} is not one of {', '.join(ON_REMOVAL)}.")

    def need_column(field: str, column: str) -> None:
        if column.lower() not in columns:
            listed = ", ".join(sorted(columns)) or "none"
            raise _fail(where, field, f"column {column!r} is not a column of {model} in its YAML (listed: {listed}); "
                                      "fix the name or list the column in the model's YAML.")

    key = decl["primary_key"]
    need_column("meta.sync.primary_key", key)
    if not _has_unique_test(manifest, models[0], key):
        raise _fail(where, "meta.sync.primary_key", f"column {key!r} of {model} has no `unique` data test; add "
                                                    "`data_tests: [unique, not_null]` to it in the model's YAML.")
    mappings, custom = [], []
    for i, raw in enumerate(decl["mappings"]):
        label = f"meta.sync.mappings[{i}]"
        if not isinstance(raw, dict) or not raw.get("column") or not raw.get("field"):
            raise _fail(where, label, "needs `column` and `field`.")
        extra = sorted(set(raw) - _MAPPING_KEYS)
        if extra:
            raise _fail(where, f"{label}.{extra[0]}", f"is not a mapping key; the keys are {sorted(_MAPPING_KEYS)}.")
        need_column(f"{label}.column", raw["column"])
        policy = raw.get("null_policy", "skip")
        if policy not in NULL_POLICIES:
            raise _fail(where, f"{label}.null_policy", f"{policy!r} is not one of {', '.join(NULL_POLICIES)}.")
        mappings.append(FieldMapping(column=raw["column"], field=raw["field"], null_policy=policy))
        if raw.get("create") is not None:
            create = raw["create"]
            ftype = create.get("type", "string") if isinstance(create, dict) else None
            if ftype not in FIELD_TYPES:
                raise _fail(where, f"{label}.create.type", f"{ftype!r} is not one of {', '.join(FIELD_TYPES)}.")
            custom.append(FieldSpec(name=raw["field"], type=ftype, label=str(create.get("label") or raw["field"]),
                                    options=tuple(str(o) for o in create.get("options", ())), custom=True,
                                    unique=bool(create.get("unique", False))))
    fields = [m.field for m in mappings]
    if len(set(fields)) != len(fields):
        raise _fail(where, "meta.sync.mappings", "maps two columns to one destination field.")
    id_column = decl.get("destination_id_column")
    if id_column:
        need_column("meta.sync.destination_id_column", id_column)
    rate = decl.get("rate_limit")
    rate_limit = None
    if rate is not None:
        try:
            rate_limit = (int(rate["requests"]), float(rate["per_seconds"]))
        except (TypeError, KeyError, ValueError):
            raise _fail(where, "meta.sync.rate_limit", "must be {requests: N, per_seconds: S}.") from None
    trigger = str(decl.get("trigger", "on_model_update"))
    if trigger != "on_model_update":
        from croniter import croniter

        if not croniter.is_valid(trigger):
            raise _fail(where, "meta.sync.trigger", f"{trigger!r} is neither `on_model_update` nor a cron expression.")
    return SyncSpec(
        name=exposure["name"], model=model, destination=decl["destination"], object=decl["object"], mode=mode,
        primary_key=key, match_field=decl["match_field"], mappings=tuple(mappings), on_removal=on_removal,
        trigger=trigger, batch_size=int(decl["batch_size"]) if decl.get("batch_size") else None,
        rate_limit=rate_limit, options=dict(decl.get("options") or {}), source_file=where,
        custom_fields=tuple(custom), max_attempts=int(decl.get("max_attempts", 5)),
        destination_id_column=id_column or None, label=exposure.get("label") or exposure["name"],
    )


def _has_unique_test(manifest: dict[str, Any], model_id: str, column: str) -> bool:
    for node in manifest["nodes"].values():
        if node.get("resource_type") != "test":
            continue
        meta = node.get("test_metadata") or {}
        if meta.get("name") != "unique" or node.get("attached_node") != model_id:
            continue
        if (node.get("column_name") or "").lower() == column.lower():
            return True
    return False


def validate_against_destination(spec: SyncSpec) -> None:
    """The destination's object: known, can do the mode, has the mapped fields and the match field."""
    where = spec.source_file
    try:
        cls = destination_class(spec.destination)
    except (ValueError, ImportError) as exc:
        raise _fail(where, "meta.sync.destination", str(exc)) from None
    obj = cls.objects.get(spec.object)
    if obj is None:
        raise _fail(where, "meta.sync.object", f"{spec.object!r} is not an object of {spec.destination}; "
                                               f"one of {', '.join(sorted(cls.objects))}.")
    if spec.mode not in obj.modes:
        raise _fail(where, "meta.sync.mode", f"{spec.destination} {spec.object} cannot do {spec.mode!r}; "
                                             f"it can do {', '.join(sorted(obj.modes))}.")
    custom = {f.name for f in spec.custom_fields}
    if obj.fields is not None:
        for i, m in enumerate(spec.mappings):
            if m.field not in obj.fields and m.field not in custom:
                raise _fail(where, f"meta.sync.mappings[{i}].field",
                            f"{m.field!r} is not a field of {spec.destination} {spec.object}; fix the name or "
                            "declare it with `create: {type: ...}` so the sync creates it.")
    if spec.match_field not in obj.match_fields and spec.match_field not in {f.name for f in spec.custom_fields if f.unique}:
        raise _fail(where, "meta.sync.match_field", f"{spec.destination} {spec.object} matches on "
                                                    f"{', '.join(obj.match_fields)}, not {spec.match_field!r} "
                                                    "(or on a created field declared `unique: true`).")
    if spec.batch_size is not None and not 0 < spec.batch_size <= obj.batch_size:
        raise _fail(where, "meta.sync.batch_size", f"must be between 1 and {obj.batch_size}, "
                                                   f"the most {spec.destination} accepts per request.")


def effective_batch_size(spec: SyncSpec, obj) -> int:
    """The declared batch size, else the object's published maximum."""
    return spec.batch_size or obj.batch_size


def effective_rate_limit(spec: SyncSpec, obj) -> tuple[int, float]:
    """The declared rate limit, else the object's published one."""
    return spec.rate_limit or obj.rate_limit
