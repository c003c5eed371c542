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

dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)
# Under `dagster dev` this runs `dbt parse` so the manifest is always fresh; elsewhere
# (tests, CI, `growth-stack run`) the Makefile parses first.
dbt_project.prepare_if_dev()
