"""The dbt project as Dagster sees it."""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import sys
from functools import cached_property
from pathlib import Path

from dagster_dbt import DbtCliResource, DbtProject
from packaging import version

from growth_stack_dagster import config

# The repository's dbt_project/, or $GROWTH_STACK_DBT_PROJECT_DIR (a copy, for trials and tests).
DBT_PROJECT_DIR = config.dbt_project_dir()

# This environment's dbt, whatever PATH says (the UI, the daemon and tests may not activate the venv).
DBT_EXECUTABLE = Path(sys.executable).with_name("dbt")

# dagster-dbt's preparer under `dagster dev` runs `dbt` from PATH: put this environment's first.
if shutil.which("dbt") is None:
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"


# numpy asks the kernel to back large arrays with transparent huge pages. Where the kernel compacts memory
# to find them when they are first touched (transparent_hugepage/defrag = madvise, as on our machines), a
# fresh GiB can take seconds: more than the identity stitch's own work (README, Benchmarks). dbt runs its
# Python models in its own process, started from here, whose numpy reads this when it is imported.
os.environ.setdefault("NUMPY_MADVISE_HUGEPAGE", "0")


class DbtResource(DbtCliResource):
    """dagster-dbt's `DbtCliResource`, told its dbt's version instead of asking for it.

    Before each dbt command dagster-dbt runs `dbt --version`, and that asks pypi.org for the latest
    dbt-core and dbt-duckdb (a 1 s timeout each): about 1.8 s of every dbt step, and a request to the
    internet from every run. When the executable is this environment's own dbt, as it is here, the
    installed dbt-core's version is the answer; any other executable is still asked."""

    @cached_property
    def _cli_version(self) -> version.Version:
        if Path(self.dbt_executable) == DBT_EXECUTABLE:
            return version.parse(importlib.metadata.version("dbt-core"))
        return super()._cli_version


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
