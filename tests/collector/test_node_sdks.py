"""The official Node SDKs (@segment/analytics-node, @rudderstack/rudder-sdk-node) work unchanged.

The packages are installed from npm by the test setup (`scripts/test-sdks.sh`: pinned in
tests/sdks/package.json, cached under the data folder), then `node_sdks.js` sends one call of each
type through each SDK to a real collector; the files it writes load into a real DuckDB file.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import duckdb

from growth_stack_dagster.capture import loader
from tests.collector.helpers import events_root, wait_lines
from tests.sdks.install import node_modules


def test_node_sdks(collector_url: str, gs_home: Path) -> None:
    modules = node_modules()
    script = Path(__file__).with_name("node_sdks.js")
    out = subprocess.run(["node", str(script), collector_url], env={**os.environ, "NODE_PATH": str(modules)},
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    lines = wait_lines(gs_home, 10, timeout=30)
    got = {m["messageId"]: (source, m["type"]) for source, m in lines}
    assert got == {
        **{f"node-seg-{t}": ("web", t) for t in ("track", "identify", "page", "screen", "group", "alias")},
        **{f"node-rud-{t}": ("ios", t) for t in ("track", "identify", "alias", "group")},
    }
    libraries = {m["messageId"]: m.get("context", {}).get("library", {}).get("name") for _, m in lines}
    assert libraries["node-seg-track"] == "@segment/analytics-node"
    assert libraries["node-rud-track"] == "analytics-node"

    days = sorted({m["receivedAt"][:10] for _, m in lines})
    with duckdb.connect(str(gs_home / "warehouse.duckdb")) as con:
        for day in days:
            loader.load_partition(con, events_root(gs_home), day)
        assert con.execute("SELECT id, user_id, event_text, a FROM events.node_track").fetchall() == [
            ("node-seg-track", "n1", "Node Track", 1)]
        assert con.execute("SELECT id, source FROM events.identifies ORDER BY id").fetchall() == [
            ("node-rud-identify", "ios"), ("node-seg-identify", "web")]
        assert con.execute("SELECT plan FROM events.users WHERE id = 'n1'").fetchall() == [("pro",)]
        assert con.execute("SELECT count(*) FROM events._discards").fetchone() == (0,)
