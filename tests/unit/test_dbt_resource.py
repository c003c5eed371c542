"""The project's dbt resource knows its dbt's version without running `dbt --version`, which asks
pypi.org for the latest releases before every dbt step."""

from __future__ import annotations

import importlib.metadata
import os
import subprocess
import sys

import dagster_dbt.core.resource
from packaging import version

from growth_stack_dagster.transform import project


def test_this_environments_dbt_version_is_read_without_running_dbt(monkeypatch):
    ran = []
    monkeypatch.setattr(dagster_dbt.core.resource, "check_output", lambda args, **_: ran.append(args))
    resource = project.DbtResource(project_dir=project.dbt_project, dbt_executable=str(project.DBT_EXECUTABLE))
    assert resource._cli_version == version.parse(importlib.metadata.version("dbt-core"))
    assert ran == []


def test_another_dbt_executable_is_still_asked(monkeypatch, tmp_path):
    other = tmp_path / "dbt"
    other.write_text("#!/bin/sh\n")
    other.chmod(0o755)
    ran = []

    def dbt_version(args, **_):
        ran.append(args)
        return b"Core:\n  - installed: 1.10.3\n"

    monkeypatch.setattr(dagster_dbt.core.resource, "check_output", dbt_version)
    resource = project.DbtResource(project_dir=project.dbt_project, dbt_executable=os.fspath(other))
    assert resource._cli_version == version.parse("1.10.3")
    assert ran == [[os.fspath(other), "--version"]]


def test_dbt_started_from_the_code_location_runs_numpy_without_huge_page_advice():
    """dbt runs its Python models (the identity stitch among them) in a process started from the code location,
    which inherits its environment: there numpy does not ask for transparent huge pages (README, Benchmarks)."""
    child = subprocess.run([sys.executable, "-c", "import numpy._core.multiarray as m; print(m._get_madvise_hugepage())"],
                           capture_output=True, text=True, check=True)
    assert child.stdout.strip() == "False"
