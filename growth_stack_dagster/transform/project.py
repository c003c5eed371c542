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

# The folders of the dbt project whose files make up the manifest (not target/ or logs/).
DBT_SOURCE_PARTS = ("dbt_project.yml", "profiles.yml", "models", "macros", "seeds", "snapshots", "tests", "analyses")


def manifest_is_stale(project_dir: Path, manifest: Path) -> bool:
    """True when `manifest` is missing or older than a file of the dbt project in `project_dir`."""
    if not manifest.exists():
        return True
    built = manifest.stat().st_mtime
    for part in DBT_SOURCE_PARTS:
        path = project_dir / part
        files = path.rglob("*") if path.is_dir() else [path] if path.exists() else []
        if any(f.stat().st_mtime > built for f in files):
            return True
    return False


dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)
# Under `dagster dev` this runs `dbt parse` when a project file changed since the manifest was written
# (every run's step processes load this module: parsing in each of them queues them on dagster-dbt's
# manifest lock, which times out after 60 s on a busy machine); elsewhere (tests, CI, `growth-stack run`)
# the Makefile parses first.
if manifest_is_stale(Path(DBT_PROJECT_DIR), Path(dbt_project.manifest_path)):
    dbt_project.prepare_if_dev()
