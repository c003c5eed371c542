"""The sync declaration files the mapping page reads and writes: the same YAML a technical user writes by
hand (a dbt exposure under `models/activation/syncs/<name>.yml`, see `activation.declarations`).

Files are edited in ruamel.yaml's round-trip mode and only where a value changed, so saving a declaration
unchanged leaves the file byte-identical and hand-written comments survive an edit. Also writes a query
typed on the page as a new `sync_*` model (SQL file plus its YAML), so it is reviewed like any model.
"""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq

SYNC_DIR = Path("models") / "activation" / "syncs"
MODEL_DIR = Path("models") / "activation"
NAME_PATTERN = re.compile(r"[a-z][a-z0-9_]{0,62}")


def _yaml() -> YAML:
    # The layout of the declarations in this repository: 2-space maps, lists indented under their key.
    yaml = YAML()
    yaml.preserve_quotes = True
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.width = 4096
    return yaml


def check_name(name: str, what: str = "sync name") -> str:
    """`name` if it is lower-case letters, digits and underscores starting with a letter; ValueError otherwise."""
    if not NAME_PATTERN.fullmatch(name or ""):
        raise ValueError(f"The {what} {name!r} must start with a letter and hold only lower-case letters, digits "
                         "and underscores (e.g. hubspot_contacts_traits).")
    return name


def declaration_path(project_dir: Path, name: str) -> Path:
    return Path(project_dir) / SYNC_DIR / f"{check_name(name)}.yml"


def find_declaration_file(project_dir: Path, name: str) -> Path | None:
    """The file under `models/activation/syncs/` that declares exposure `name`, whatever the file's name."""
    folder = Path(project_dir) / SYNC_DIR
    if not folder.exists():
        return None
    for path in sorted(folder.glob("*.y*ml")):
        doc = _yaml().load(path.read_text())
        for exposure in (doc or {}).get("exposures") or []:
            if exposure.get("name") == name:
                return path
    return None


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _flow_map(values: dict[str, Any]) -> CommentedMap:
    node = CommentedMap(values)
    node.fa.set_flow_style()
    return node


def _merge(node: Any, new: Any) -> Any:
    """`new` written into `node` in place where it differs; returns the node to keep at that place."""
    if _plain(node) == new:
        return node
    if isinstance(node, CommentedMap) and isinstance(new, dict):
        for key in [k for k in node if k not in new]:
            del node[key]
        for key, value in new.items():
            node[key] = _merge(node[key], value) if key in node else _fresh(value)
        return node
    if isinstance(node, CommentedSeq) and isinstance(new, list):
        # mappings are matched by their column, so an entry keeps its own style and comments when others move
        by_column = {item.get("column"): item for item in node if isinstance(item, CommentedMap) and "column" in item}
        items = []
        for i, value in enumerate(new):
            old = by_column.get(value.get("column")) if isinstance(value, dict) and by_column else (
                node[i] if i < len(node) else None)
            items.append(_merge(old, value) if old is not None else _fresh(value))
        if [id(x) for x in items] != [id(x) for x in node]:
            node[:] = items
        return node
    return _fresh(new)


def _fresh(value: Any) -> Any:
    """A new node for `value`: a short mapping of plain values in flow style (`{column: x, field: y}`), as
    the hand-written declarations have them; anything larger in block style."""
    if isinstance(value, dict):
        if len(value) <= 4 and all(not isinstance(v, (dict, list)) for v in value.values()):
            return _flow_map(value)
        return CommentedMap({k: _fresh(v) for k, v in value.items()})
    if isinstance(value, list):
        return CommentedSeq([_fresh(item) for item in value])
    return value


def read_declaration(path: Path, name: str) -> dict[str, Any]:
    """The exposure `name` in `path` as plain data: {name, label, description, model, sync}."""
    doc = _yaml().load(Path(path).read_text())
    for exposure in doc.get("exposures") or []:
        if exposure.get("name") == name:
            refs = [str(d) for d in exposure.get("depends_on") or []]
            model = re.search(r"ref\(\s*['\"]([^'\"]+)['\"]\s*\)", refs[0]).group(1) if refs else ""
            return {"name": name, "label": exposure.get("label"), "description": exposure.get("description"),
                    "model": model, "sync": _plain((exposure.get("meta") or {}).get("sync") or {})}
    raise KeyError(f"{path} declares no sync named {name!r}.")


def render_declaration(existing: str | None, *, name: str, model: str, sync: dict[str, Any], label: str | None = None,
                       description: str | None = None, owner: str = "Growth team") -> str:
    """The text of a declaration file with exposure `name` set to these values.

    `existing` is the file's current text (None for a new file): it is edited in place, only where a value
    differs, keeping comments, key order and quoting; other exposures in it are untouched."""
    yaml = _yaml()
    exposure_values: dict[str, Any] = {
        "name": name, "label": label or name, "type": "application", "owner": {"name": owner},
        "depends_on": [f"ref('{model}')"], "description": description or f"Declared on the console's mapping page.",
        "meta": {"sync": sync},
    }
    if existing is None:
        doc = CommentedMap({"version": 2, "exposures": CommentedSeq([_fresh(exposure_values)])})
        doc.yaml_set_start_comment(f"The sync {name}: {model} -> {sync.get('destination')} {sync.get('object')}.\n"
                                   "Written by the console's mapping page; edit it here or there.")
        out = io.StringIO()
        yaml.dump(doc, out)
        return out.getvalue()
    doc = yaml.load(existing)
    exposures = doc.setdefault("exposures", CommentedSeq())
    target = next((e for e in exposures if e.get("name") == name), None)
    if target is None:
        exposures.append(_fresh(exposure_values))
    else:
        # keep what the page does not manage (owner, url, tags, ...); the page owns label, description, meta.sync
        for key, value in (("label", label), ("description", description)):
            if value is not None and _plain(target.get(key)) != value:
                target[key] = value
        refs = [str(d) for d in target.get("depends_on") or []]
        if not any(re.search(rf"ref\(\s*['\"]{re.escape(model)}['\"]\s*\)", r) for r in refs):
            target["depends_on"] = _fresh([f"ref('{model}')"])
        meta = target.setdefault("meta", CommentedMap())
        meta["sync"] = _merge(meta["sync"], sync) if "sync" in meta else _fresh(sync)
    out = io.StringIO()
    yaml.dump(doc, out)
    return out.getvalue()


# ----------------------------------------------------------------------------------------- models from queries

_RELATION = re.compile(r'(?<![\w."])("?)([A-Za-z_][\w$]*)\1\s*\.\s*("?)([A-Za-z_][\w$]*)\3(?![\w"(])')


def refs_for_relations(sql: str, manifest: dict[str, Any]) -> str:
    """`sql` with each `schema.table` that names a dbt model or source written as `{{ ref() }}` or
    `{{ source() }}`, so the saved model sits in the lineage; other names are left as they are."""
    relations: dict[tuple[str, str], str] = {}
    for node in manifest.get("nodes", {}).values():
        if node.get("resource_type") in ("model", "seed", "snapshot"):
            table = node.get("alias") or node["name"]
            relations[(node["schema"].lower(), table.lower())] = "{{ ref('" + node["name"] + "') }}"
    for source in manifest.get("sources", {}).values():
        table = source.get("identifier") or source["name"]
        relations[(source["schema"].lower(), table.lower())] = (
            "{{ source('" + source["source_name"] + "', '" + source["name"] + "') }}")

    def replace(match: re.Match) -> str:
        return relations.get((match.group(2).lower(), match.group(4).lower()), match.group(0))

    return _RELATION.sub(replace, sql)


def render_model_files(*, model: str, sql: str, columns: list[tuple[str, str]], key: str, description: str,
                       manifest: dict[str, Any]) -> tuple[str, str]:
    """(SQL text, YAML text) of a new `sync_*` model saved from a query typed on the console."""
    check_name(model, "model name")
    if not model.startswith("sync_"):
        raise ValueError(f"A model for a sync is named sync_<destination>__<object> (e.g. sync_hubspot__contacts); "
                         f"{model!r} does not start with sync_.")
    names = [c for c, _ in columns]
    if key not in names:
        raise ValueError(f"The key column {key!r} is not a column of the query ({', '.join(names)}).")
    if len({n.lower() for n in names}) != len(names):
        raise ValueError("Two columns of the query have the same name; give each a distinct alias.")
    body = refs_for_relations(sql.strip().rstrip(";").strip(), manifest)
    sql_text = (f"{{#- {description.strip() or 'Saved from the console.'}\n"
                f"    Saved from a query on the console's mapping page. Grain: one row per {key}. -#}}\n\n"
                f"{body}\n")
    yaml = _yaml()
    column_nodes = CommentedSeq()
    for name, dtype in columns:
        entry = CommentedMap({"name": name, "data_type": dtype.lower(),
                              "description": f"{name} ({dtype.lower()}), from the saved query."})
        if name == key:
            entry["data_tests"] = _fresh(["unique", "not_null"])
        column_nodes.append(entry)
    # Like every activation model, an enforced contract: a later edit that changes a column's type fails the
    # build instead of changing what the sync sends. The types are the ones the preview of this query showed.
    contract = CommentedMap({"enforced": True})
    contract.fa.set_flow_style()
    doc = CommentedMap({"version": 2, "models": CommentedSeq([CommentedMap({
        "name": model, "description": description.strip() or f"Saved from the console. Grain: one row per {key}.",
        "config": CommentedMap({"contract": contract}), "columns": column_nodes})])})
    out = io.StringIO()
    yaml.dump(doc, out)
    return sql_text, out.getvalue()


def model_paths(project_dir: Path, model: str) -> tuple[Path, Path]:
    """Where a saved query's model and its YAML go."""
    folder = Path(project_dir) / MODEL_DIR
    return folder / f"{model}.sql", folder / f"_{model}.yml"
