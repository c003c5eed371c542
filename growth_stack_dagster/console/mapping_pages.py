"""The console's mapping pages: pick a `sync_*` model (or write a read-only query and save it as one), pick
a destination and its fields, map columns to fields, preview the payloads and dry-run the sync, then save
the same declaration file an engineer writes by hand, and optionally launch the Dagster asset.

    GET       /syncs          the declared syncs and the sync_* models
    GET|POST  /syncs/edit     the mapping form (POST actions: fields, preview, dryrun, save)
    GET       /syncs/saved    what was saved, and how to see it in Dagster
    POST      /syncs/run      "Run now": launches the sync's Dagster asset (nothing else here sends anything)
    GET|POST  /queries        a read-only query, previewed, then saved as a new sync_* model

Every POST carries a CSRF token and must come from this console's own origin.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from growth_stack_dagster import config

log = logging.getLogger("growth_stack.console")
NAV = [("/syncs", "Syncs"), ("/queries", "Query")]


# ------------------------------------------------------------------------------------------------ helpers

def _friendly(handler):
    """A page that fails shows a sentence, never a stack trace; the operator's log has the details."""
    async def wrapped(request: Request) -> Response:
        try:
            return await handler(request)
        except Exception as exc:  # noqa: BLE001 - the last line of defence for a page
            log.exception("console page %s failed", request.url.path)
            from growth_stack_dagster.console.mapping import _short

            return _render(request, "mapping_message.html", status_code=500, title="Something went wrong",
                           message=f"This page could not be shown: {_short(exc)}. The console's log has the details.")
    wrapped.__name__ = handler.__name__
    return wrapped


def _render(request: Request, template: str, status_code: int = 200, **context) -> Response:
    from growth_stack_dagster.console.app import render

    return render(request, template, status_code=status_code, csrf=csrf_token(request), **context)


def csrf_token(request: Request) -> str:
    """The form token of this console process (an attacker's page cannot read it)."""
    state = request.app.state
    if not getattr(state, "csrf_secret", None):
        state.csrf_secret = secrets.token_bytes(32)
    return hmac.new(state.csrf_secret, b"growth-stack-console-form", hashlib.sha256).hexdigest()


def _same_origin(request: Request) -> bool:
    if request.headers.get("sec-fetch-site") == "cross-site":
        return False
    origin = request.headers.get("origin")
    if origin and origin != "null":
        own = f"{request.url.scheme}://{request.headers.get('host', request.url.netloc)}"
        return origin.rstrip("/") == own
    return True


async def _checked_form(request: Request):
    """The POSTed form, or None when the request is cross-site or lacks this console's token."""
    form = await request.form()
    token = str(form.get("csrf", ""))
    if not _same_origin(request) or not hmac.compare_digest(token, csrf_token(request)):
        return None
    return form


def _refused(request: Request) -> Response:
    return _render(request, "mapping_message.html", status_code=403, title="This form has expired",
                   message="The page was opened elsewhere or too long ago. Go back, reload the page and try again.")


def _project() -> Path:
    return config.dbt_project_dir()


def dbt_parse(project_dir: Path) -> tuple[bool, str]:
    """Run `dbt parse` on the project so the manifest holds what was just saved: (ok, dbt's error lines)."""
    dbt = Path(sys.executable).with_name("dbt")
    proc = subprocess.run([str(dbt), "parse", "--quiet", "--project-dir", str(project_dir), "--profiles-dir",
                           str(project_dir)], capture_output=True, text=True, timeout=300)
    if proc.returncode == 0:
        return True, ""
    lines = [ln for ln in (proc.stdout + "\n" + proc.stderr).splitlines()
             if ln.strip() and not ln.lstrip().startswith(("Traceback", "File \""))]
    return False, "\n".join(lines[-12:])


# ------------------------------------------------------------------------------------------------ /syncs

async def syncs_list(request: Request) -> Response:
    from growth_stack_dagster.activation.declarations import DeclarationError, parse_exposure
    from growth_stack_dagster.console import mapping

    try:
        manifest = mapping.manifest(_project())
    except DeclarationError as exc:
        return _render(request, "mapping_message.html", status_code=503, title="The dbt project is not parsed yet",
                       message=str(exc))
    declared, problems = [], []
    for exposure in sorted(manifest.get("exposures", {}).values(), key=lambda e: e["name"]):
        meta = (exposure.get("config") or {}).get("meta") or exposure.get("meta") or {}
        if "sync" not in meta:
            continue
        try:
            declared.append(parse_exposure(exposure, manifest))
        except DeclarationError as exc:
            problems.append(str(exc))
    models = mapping.sync_models(manifest)
    synced = {s.model for s in declared}
    return _render(request, "syncs.html", syncs=declared, problems=problems, models=models, synced=synced)


def _choices_from_form(form, columns: list[str]):
    from growth_stack_dagster.console.mapping import Choices, ColumnChoice

    dest_obj = str(form.get("target", ""))
    destination, _, obj = dest_obj.partition(":")
    column_choices = []
    for i, column in enumerate(columns):
        field = str(form.get(f"field_{i}", "")).strip()
        create_type = ""
        if field == "__new__":
            field = str(form.get(f"new_{i}", "")).strip()
            create_type = str(form.get(f"newtype_{i}", "string"))
        elif field == "__free__":
            field = str(form.get(f"free_{i}", "")).strip()
        column_choices.append(ColumnChoice(column=column, field=field,
                                           null_policy=str(form.get(f"null_{i}", "skip")),
                                           create_type=create_type,
                                           create_label=str(form.get(f"newlabel_{i}", "")).strip()))
    trigger = str(form.get("trigger", "on_model_update"))
    if trigger == "cron":
        trigger = str(form.get("cron", "")).strip() or "on_model_update"
    batch = str(form.get("batch_size", "")).strip()
    rate_n, rate_s = str(form.get("rate_requests", "")).strip(), str(form.get("rate_seconds", "")).strip()
    return Choices(
        name=str(form.get("name", "")).strip(), model=str(form.get("model", "")), destination=destination, object=obj,
        mode=str(form.get("mode", "upsert")), primary_key=str(form.get("primary_key", "")),
        match_field=str(form.get("match_field", "")), on_removal=str(form.get("on_removal", "nothing")),
        trigger=trigger, columns=column_choices, batch_size=int(batch) if batch.isdigit() else None,
        rate_limit=(int(rate_n), float(rate_s)) if rate_n.isdigit() and _is_number(rate_s) else None,
        label=str(form.get("label", "")).strip())


def _is_number(text: str) -> bool:
    try:
        return float(text) > 0
    except ValueError:
        return False


async def sync_edit(request: Request) -> Response:
    """The mapping form: GET opens it (for `?name=` an existing sync, for `?model=` a new one); POST acts."""
    from growth_stack_dagster.activation.declarations import DeclarationError
    from growth_stack_dagster.console import declaration_file, mapping
    from growth_stack_dagster.console.readonly import QueryRefused, table_preview

    form = None
    if request.method == "POST":
        form = await _checked_form(request)
        if form is None:
            return _refused(request)
    params = form if form is not None else request.query_params
    project = _project()
    try:
        manifest = mapping.manifest(project)
    except DeclarationError as exc:
        return _render(request, "mapping_message.html", status_code=503, title="The dbt project is not parsed yet",
                       message=str(exc))
    models = {m.name: m for m in mapping.sync_models(manifest)}
    name = str(params.get("name", "")).strip()
    existing_file = declaration_file.find_declaration_file(project, name) if name else None
    existing = declaration_file.read_declaration(existing_file, name) if existing_file else None
    model_name = str(params.get("model", "")) or (existing["model"] if existing else "")
    if model_name not in models:
        return _render(request, "mapping_message.html", status_code=404, title="Pick a model first",
                       message=f"There is no sync_* model named {model_name!r}. Open Syncs and pick one, or save "
                               "a query as a new model on the Query page.")
    model = models[model_name]
    preview, preview_error = None, None
    try:
        preview = await run_in_threadpool(table_preview, config.warehouse_path(), model.schema, model.table)
    except QueryRefused as exc:
        preview_error = str(exc)
    column_types = dict(preview.columns) if preview else {c: v["data_type"] for c, v in model.columns.items()}
    columns = list(model.columns) or list(column_types)

    if form is not None:
        choices = _choices_from_form(form, columns)
        action = str(form.get("action", "fields"))
    elif existing:
        choices = mapping.choices_from_declaration(name, model_name, existing["sync"], columns,
                                                   label=existing.get("label") or "")
        action = "open"
    else:
        first_target = _default_target(model_name)
        choices = mapping.Choices(name=name or model_name.removeprefix("sync_").replace("__", "_"), model=model_name,
                                  destination=first_target[0], object=first_target[1], mode="upsert",
                                  primary_key=next((c for c in columns if c.lower() in model.unique_columns), ""), match_field="",
                                  on_removal="nothing", trigger="on_model_update",
                                  columns=[mapping.ColumnChoice(column=c) for c in columns])
        action = "new"
    targets = mapping.destination_objects()
    if (choices.destination, choices.object) not in targets:
        choices.destination, choices.object = targets[0]
    fields, fields_warning = await run_in_threadpool(mapping.live_fields, choices.destination, choices.object)
    if action in ("new", "fields"):
        for choice in choices.columns:
            if not choice.field:
                choice.field = mapping.suggest_field(choice.column, fields) or ""
    if not choices.match_field or choices.match_field not in mapping.match_fields_of(choices.destination, choices.object):
        custom_unique = [c.field for c in choices.columns if c.field and fields and fields.get(c.field)
                         and fields[c.field].unique]
        choices.match_field = (mapping.match_fields_of(choices.destination, choices.object) or tuple(custom_unique)
                               or ("",))[0]
    warnings = {}
    for choice in choices.columns:
        spec = (fields or {}).get(choice.field)
        if choice.create_type:
            from growth_stack_dagster.activation.destinations.base import FieldSpec
            spec = FieldSpec(name=choice.field, type=choice.create_type)
        warning = mapping.type_warning(choice.column, column_types.get(choice.column, ""), spec)
        if warning:
            warnings[choice.column] = warning

    result: dict[str, Any] = {}
    if action in ("preview", "dryrun", "save"):
        sync = mapping.declaration_from_choices(choices, existing["sync"] if existing else None)
        target_file = existing_file or (declaration_file.declaration_path(project, choices.name)
                                        if declaration_file.NAME_PATTERN.fullmatch(choices.name) else None)
        rel = f"dbt_project/{target_file.relative_to(project)}" if target_file else "(new file)"
        try:
            declaration_file.check_name(choices.name)
            spec = mapping.spec_for(choices.name, model_name, sync, manifest, rel, label=choices.label)
        except (DeclarationError, ValueError) as exc:
            result["error"] = str(exc)
        else:
            if action == "save":
                outcome = await run_in_threadpool(_save, project, choices, sync, existing, existing_file)
                if "error" in outcome:
                    result["error"] = outcome["error"]
                else:
                    return RedirectResponse("/syncs/saved?" + urlencode({"name": choices.name,
                                                                         "changed": outcome["changed"]}),
                                            status_code=303)
            else:
                from growth_stack_dagster.activation.engine import plan_sync

                try:
                    plan = await run_in_threadpool(plan_sync, spec, sample=3)
                except (LookupError, FileNotFoundError) as exc:
                    result["error"] = str(exc)
                except Exception as exc:  # noqa: BLE001 - shown as a sentence, logged for the operator
                    log.warning("dry run of %s failed: %s", choices.name, type(exc).__name__)
                    result["error"] = f"The dry run could not finish: {mapping._short(exc)}"
                else:
                    result["plan"] = plan
                    result["kind"] = action
    return _render(request, "sync_edit.html", choices=choices, model=model, preview=preview,
                   preview_error=preview_error, column_types=column_types, fields=fields,
                   fields_warning=fields_warning, warnings=warnings, targets=targets,
                   modes=mapping.modes_of(choices.destination, choices.object),
                   match_fields=_match_options(mapping, choices, fields), mode_words=mapping.MODE_WORDS,
                   removal_words=mapping.REMOVAL_WORDS, null_words=mapping.NULL_WORDS,
                   field_types=mapping.field_types(), existing=existing, existing_file=existing_file,
                   result=result, unique_columns=model.unique_columns)


def _match_options(mapping, choices, fields) -> list[str]:
    options = list(mapping.match_fields_of(choices.destination, choices.object))
    for c in choices.columns:
        created_unique = bool(fields and c.field in fields and fields[c.field].unique)
        if created_unique and c.field not in options:
            options.append(c.field)
    return options


def _default_target(model_name: str) -> tuple[str, str]:
    """sync_<destination>__<object> names its target by convention."""
    from growth_stack_dagster.console import mapping

    rest = model_name.removeprefix("sync_")
    destination, _, obj = rest.partition("__")
    targets = mapping.destination_objects()
    if (destination, obj) in targets:
        return destination, obj
    return next((t for t in targets if t[0] == destination), targets[0])


def _save(project: Path, choices, sync: dict[str, Any], existing: dict | None, existing_file: Path | None) -> dict:
    """Write the declaration, re-parse the dbt project and check it loads; put the file back otherwise."""
    from growth_stack_dagster.activation.declarations import DeclarationError, load_syncs
    from growth_stack_dagster.console import declaration_file, mapping

    path = existing_file or declaration_file.declaration_path(project, choices.name)
    if existing_file is None and path.exists():
        return {"error": f"{path.name} already exists and declares another sync; choose another sync name."}
    before = path.read_text() if path.exists() else None
    text = declaration_file.render_declaration(before, name=choices.name, model=choices.model, sync=sync,
                                               label=choices.label or None)
    if text == before:
        return {"changed": "0"}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    ok, message = dbt_parse(project)
    error = None
    if not ok:
        error = f"dbt could not read the project with this declaration, so nothing was saved:\n{message}"
    else:
        try:
            load_syncs(mapping.manifest(project))
        except DeclarationError as exc:
            error = f"The saved declaration would not load, so nothing was saved: {exc}"
    if error:
        if before is None:
            path.unlink()
        else:
            path.write_text(before)
        dbt_parse(project)
        return {"error": error}
    return {"changed": "1"}


async def sync_saved(request: Request) -> Response:
    from growth_stack_dagster.console import declaration_file

    name = request.query_params.get("name", "")
    path = declaration_file.find_declaration_file(_project(), name) if name else None
    if path is None:
        return _render(request, "mapping_message.html", status_code=404, title="No such sync",
                       message=f"No declaration names a sync {name!r}.")
    changed = request.query_params.get("changed") != "0"
    return _render(request, "sync_saved.html", name=name, path=path, rel=f"dbt_project/{path.relative_to(_project())}",
                   text=path.read_text(), changed=changed)


async def sync_run(request: Request) -> Response:
    """"Run now": launch the sync's asset in Dagster (through its GraphQL API) and link to the run."""
    from growth_stack_dagster.activation.declarations import DeclarationError, load_syncs
    from growth_stack_dagster.console import dagster_client, mapping

    form = await _checked_form(request)
    if form is None:
        return _refused(request)
    name = str(form.get("name", ""))
    try:
        spec = load_syncs(mapping.manifest(_project())).get(name)
    except DeclarationError as exc:
        return _render(request, "mapping_message.html", status_code=400, title="The declarations do not load", message=str(exc))
    if spec is None:
        return _render(request, "mapping_message.html", status_code=404, title="No such sync",
                       message=f"No sync named {name!r} is declared (saved syncs appear after `dbt parse`).")
    key = ["destinations", spec.destination, spec.object, spec.name]
    try:
        run_id = await run_in_threadpool(dagster_client.launch_asset_run, request.app.state.dagster_url, key)
    except dagster_client.LaunchError as exc:
        return _render(request, "mapping_message.html", status_code=502, title="Dagster did not start the sync",
                       message=str(exc))
    return _render(request, "mapping_message.html", title="The sync is running in Dagster",
                   message=f"Run {run_id} materializes {'/'.join(key)}.",
                   link=(f"{request.app.state.dagster_url}/runs/{run_id}", "Open the run in the Dagster UI"))


# ------------------------------------------------------------------------------------------------ /queries

async def queries(request: Request) -> Response:
    from growth_stack_dagster.console import declaration_file, mapping
    from growth_stack_dagster.console.readonly import QueryRefused, preview_query

    form = None
    if request.method == "POST":
        form = await _checked_form(request)
        if form is None:
            return _refused(request)
    sql = str(form.get("sql", "")) if form is not None else ""
    values = {k: str(form.get(k, "")) for k in ("model", "key", "description")} if form is not None else {}
    preview, error, saved = None, None, None
    if form is not None:
        try:
            preview = await run_in_threadpool(preview_query, config.warehouse_path(), sql)
        except QueryRefused as exc:
            error = str(exc)
        if preview is not None and form.get("action") == "save":
            try:
                saved = await run_in_threadpool(_save_model, _project(), sql, preview, values)
            except ValueError as exc:
                error = str(exc)
    return _render(request, "queries.html", sql=sql, preview=preview, error=error, values=values, saved=saved)


def _save_model(project: Path, sql: str, preview, values: dict[str, str]) -> dict[str, str]:
    from growth_stack_dagster.console import declaration_file, mapping

    model = values.get("model", "").strip()
    key = values.get("key", "").strip()
    manifest = mapping.manifest(project)
    if any(n.get("name") == model for n in manifest.get("nodes", {}).values()):
        raise ValueError(f"A model named {model!r} already exists; choose another name.")
    sql_text, yaml_text = declaration_file.render_model_files(model=model, sql=sql, columns=preview.columns, key=key,
                                                              description=values.get("description", ""),
                                                              manifest=manifest)
    sql_path, yaml_path = declaration_file.model_paths(project, model)
    if sql_path.exists() or yaml_path.exists():
        raise ValueError(f"{sql_path.name} already exists; choose another name.")
    sql_path.write_text(sql_text)
    yaml_path.write_text(yaml_text)
    ok, message = dbt_parse(project)
    if not ok:
        sql_path.unlink()
        yaml_path.unlink()
        dbt_parse(project)
        raise ValueError(f"dbt could not read the new model, so nothing was saved:\n{message}")
    return {"model": model, "sql_path": f"dbt_project/{sql_path.relative_to(project)}",
            "yaml_path": f"dbt_project/{yaml_path.relative_to(project)}"}


ROUTES = [
    Route("/syncs", _friendly(syncs_list), name="syncs"),
    Route("/syncs/edit", _friendly(sync_edit), methods=["GET", "POST"], name="sync_edit"),
    Route("/syncs/saved", _friendly(sync_saved), name="sync_saved"),
    Route("/syncs/run", _friendly(sync_run), methods=["POST"], name="sync_run"),
    Route("/queries", _friendly(queries), methods=["GET", "POST"], name="queries"),
]
