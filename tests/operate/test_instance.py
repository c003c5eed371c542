"""The project's Dagster instance: a dagster.yaml Dagster accepts (no first-visit dialog, freshness on,
tick retention, writer pool of 1), rewritten while it is the project's, left alone once edited by hand;
and the .env that lets a bare `dagster dev` in the repository root use it."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import yaml

from growth_stack_dagster.instance import DAGSTER_YAML, MANAGED_MARKER, ensure_dagster_home, write_dotenv


def test_dagster_accepts_the_instance_settings(gs_home: Path) -> None:
    dagster_home = ensure_dagster_home()
    settings = yaml.safe_load((dagster_home / "dagster.yaml").read_text())
    assert settings["nux"] == {"enabled": False} and settings["freshness"] == {"enabled": True}
    assert settings["concurrency"]["pools"]["default_limit"] == 1
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        assert instance.nux_enabled is False
        assert instance.run_coordinator.__class__.__name__ == "QueuedRunCoordinator"


def test_the_managed_file_is_rewritten_and_an_edited_one_kept(gs_home: Path) -> None:
    dagster_home = ensure_dagster_home()
    path = dagster_home / "dagster.yaml"
    path.write_text(MANAGED_MARKER + " old settings\ntelemetry:\n  enabled: false\n")
    ensure_dagster_home()
    assert path.read_text() == DAGSTER_YAML
    path.write_text("# mine\ntelemetry:\n  enabled: false\n")
    ensure_dagster_home()
    assert path.read_text().startswith("# mine")


def test_dotenv_only_for_the_default_home_and_never_over_the_users(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    root.mkdir()
    (root / "workspace.yaml").write_text("load_from: []\n")
    default_home = root / ".growth_stack" / "dagster_home"
    assert write_dotenv(root, default_home) == root / ".env"
    assert f"DAGSTER_HOME={default_home}" in (root / ".env").read_text()
    assert write_dotenv(root, tmp_path / "elsewhere" / "dagster_home") is None
    assert not (root / ".env").exists()  # ours named another home: removed
    (root / ".env").write_text("MY_SETTING=1\n")
    assert write_dotenv(root, default_home) is None and (root / ".env").read_text() == "MY_SETTING=1\n"
