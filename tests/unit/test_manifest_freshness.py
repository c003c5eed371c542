"""`dagster dev` re-parses the dbt project only when a file of it changed after the manifest was written."""

from __future__ import annotations

import os
from pathlib import Path

from growth_stack_dagster.transform.project import manifest_is_stale


def _age(path: Path, seconds_ago: float) -> None:
    stamp = path.stat().st_mtime - seconds_ago
    os.utime(path, (stamp, stamp))


def test_a_manifest_is_stale_when_missing_or_older_than_a_file_or_folder_of_the_project(tmp_path: Path) -> None:
    project = tmp_path / "dbt_project"
    models = project / "models"
    models.mkdir(parents=True)
    model = models / "a.sql"
    model.write_text("select 1 as a\n")
    manifest = project / "target" / "manifest.json"
    assert manifest_is_stale(project, manifest)

    manifest.parent.mkdir()
    manifest.write_text("{}")
    for path in (model, models, project):
        _age(path, 60)
    assert not manifest_is_stale(project, manifest)
    # dbt's own output does not count
    (project / "logs").mkdir()
    (project / "logs" / "dbt.log").write_text("")
    (project / "target" / "run_results.json").write_text("{}")
    assert not manifest_is_stale(project, manifest)

    model.write_text("select 2 as a\n")  # an edit
    assert manifest_is_stale(project, manifest)
    _age(model, 60)
    _age(models, 60)
    assert not manifest_is_stale(project, manifest)
    model.unlink()  # a deletion changes the folder
    assert manifest_is_stale(project, manifest)
    _age(models, 60)
    assert not manifest_is_stale(project, manifest)
    (models / "b.sql").write_text("select 1 as b\n")  # an addition
    assert manifest_is_stale(project, manifest)
