"""The dbt project as Dagster sees it."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from dagster_dbt import DbtProject

from growth_stack_dagster import config

# The repository's dbt_project/, or $GROWTH_STACK_DBT_PROJECT_DIR (a copy, for trials and tests).
DBT_PROJECT_DIR = config.dbt_project_dir()

# This environment's dbt, whatever PATH says (the UI, the daemon and tests may not activate the venv).
DBT_EXECUTABLE = Path(sys.executable).with_name("dbt")

# dagster-dbt's preparer under `dagster dev` runs `dbt` from PATH: put this environment's first.
if shutil.which("dbt") is None:
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"

# What dbt writes, not what people edit: a change here never makes the manifest stale.
_NOT_SOURCES = {"target", "logs", "dbt_packages"}


def manifest_is_stale(project_dir: Path, manifest_path: Path) -> bool:
    """True when `manifest_path` is missing or older than a file or folder of the dbt project (a folder's
    time changes when a file in it is added, renamed or deleted); dbt's own output folders do not count."""
    if not manifest_path.exists():
        return True
    built = manifest_path.stat().st_mtime
    for folder, subfolders, files in os.walk(project_dir):
        if folder == str(project_dir):
            subfolders[:] = [d for d in subfolders if d not in _NOT_SOURCES]
        for name in [*subfolders, *files]:
            if os.stat(os.path.join(folder, name)).st_mtime > built:
                return True
    return False


dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)
# Under `dagster dev` (and in the runs it launches, which inherit its environment) this runs `dbt parse`
# when a file of the project changed since the manifest was written, so a reload picks up an edit; a fresh
# manifest is used as it is (the Makefile parses first, as it does for tests, CI and `growth-stack run`).
if manifest_is_stale(Path(DBT_PROJECT_DIR), Path(dbt_project.manifest_path)):
    dbt_project.prepare_if_dev()
