"""The official SDKs the tests drive, installed from npm by `scripts/test-sdks.sh` (pinned, cached)."""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


@functools.cache
def node_modules() -> Path:
    """The node_modules folder holding tests/sdks/package.json's packages (installed on first use).

    `GROWTH_STACK_NODE_MODULES` names a folder installed another way; else the script installs them
    once under `$GROWTH_STACK_SDK_CACHE` (default `$GROWTH_STACK_HOME/test_sdks`, as the session began).
    """
    if given := os.environ.get("GROWTH_STACK_NODE_MODULES"):
        return Path(given)
    if not shutil.which("node"):
        raise RuntimeError("Node.js is not installed: install Node.js 20 and npm to run the SDK tests.")
    out = subprocess.run(["bash", str(REPO / "scripts/test-sdks.sh")], capture_output=True, text=True,
                         timeout=600, env={**os.environ, "GROWTH_STACK_SDK_CACHE": _CACHE})
    if out.returncode != 0:
        raise RuntimeError(f"installing the test SDKs from npm failed:\n{out.stderr[-3000:]}")
    return Path(out.stdout.strip().splitlines()[-1])


# Read at import, as the session began: tests point GROWTH_STACK_HOME at temporary folders later.
_CACHE = os.environ.get("GROWTH_STACK_SDK_CACHE") or str(
    Path(os.environ.get("GROWTH_STACK_HOME") or REPO / ".growth_stack") / "test_sdks")
