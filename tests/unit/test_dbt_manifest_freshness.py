"""Under `dagster dev` the code location parses dbt only when a project file changed since the manifest."""

from __future__ import annotations

import os
from pathlib import Path

from growth_stack_dagster.transform.project import manifest_is_stale


def _project(tmp_path: Path) -> tuple[Path, Path]:
    (tmp_path / "models" / "marts").mkdir(parents=True)
    (tmp_path / "dbt_project.yml").write_text("name: p\n")
    (tmp_path / "models" / "marts" / "customers.sql").write_text("select 1 as customer_id\n")
    manifest = tmp_path / "target" / "manifest.json"
    manifest.parent.mkdir()
    manifest.write_text("{}")
    # the manifest written a second after every project file
    later = max(p.stat().st_mtime for p in tmp_path.rglob("*")) + 1
    os.utime(manifest, (later, later))
    return tmp_path, manifest


def test_a_manifest_newer_than_every_project_file_is_fresh(tmp_path: Path) -> None:
    project, manifest = _project(tmp_path)
    assert not manifest_is_stale(project, manifest)
    (project / "target" / "run_results.json").write_text("{}")  # dbt's own output does not count
    assert not manifest_is_stale(project, manifest)


def test_an_edited_added_or_removed_model_or_a_missing_manifest_is_stale(tmp_path: Path) -> None:
    project, manifest = _project(tmp_path)
    model = project / "models" / "marts" / "customers.sql"
    edited = manifest.stat().st_mtime + 1
    os.utime(model, (edited, edited))
    assert manifest_is_stale(project, manifest)

    project, manifest = _project(tmp_path / "added")
    added = project / "models" / "marts" / "orders.sql"
    added.write_text("select 1 as order_id\n")
    os.utime(added, (edited + 1, edited + 1))  # written after the parse
    assert manifest_is_stale(project, manifest)

    project, manifest = _project(tmp_path / "missing")
    manifest.unlink()
    assert manifest_is_stale(project, manifest)
