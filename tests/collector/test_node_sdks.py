"""The official Node SDKs (@segment/analytics-node, @rudderstack/rudder-sdk-node) work unchanged.

Needs `node` and the two packages: `npm install --prefix <dir> @segment/analytics-node
@rudderstack/rudder-sdk-node`, then `GROWTH_STACK_NODE_MODULES=<dir>/node_modules`; skipped otherwise.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.collector.helpers import wait_lines

NODE_MODULES = os.environ.get("GROWTH_STACK_NODE_MODULES", "")
pytestmark = pytest.mark.skipif(
    not (shutil.which("node") and NODE_MODULES and (Path(NODE_MODULES) / "@segment/analytics-node").exists()
         and (Path(NODE_MODULES) / "@rudderstack/rudder-sdk-node").exists()),
    reason="needs node and GROWTH_STACK_NODE_MODULES with @segment/analytics-node and @rudderstack/rudder-sdk-node",
)


def test_node_sdks(collector_url: str, gs_home: Path) -> None:
    script = Path(__file__).with_name("node_sdks.js")
    out = subprocess.run(["node", str(script), collector_url], env={**os.environ, "NODE_PATH": NODE_MODULES},
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    lines = wait_lines(gs_home, 10)
    got = {m["messageId"]: (source, m["type"]) for source, m in lines}
    assert got == {
        **{f"node-seg-{t}": ("web", t) for t in ("track", "identify", "page", "screen", "group", "alias")},
        **{f"node-rud-{t}": ("ios", t) for t in ("track", "identify", "alias", "group")},
    }
