"""The capture assets run by Dagster with a real DuckDBResource."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import duckdb
from dagster_duckdb import DuckDBResource

from growth_stack_dagster import config, resources
from growth_stack_dagster.capture.assets import DECLARED_TABLES, events_load
from growth_stack_dagster.capture.defs import defs
from tests.capture.payloads import DAY1, customerio_body, envelope, stamp, write


def test_materialize_a_partition_reports_rows_duplicates_and_discards(gs_home: Path) -> None:
    root = config.events_dir()
    msg = stamp({"type": "track", "messageId": "t-1", "userId": "u1", "event": "Order Completed",
                 "properties": {"order_id": "o1", "total": 10.0}}, DAY1)
    write(root, "web", DAY1, [msg, msg, stamp({"type": "page", "messageId": "p-1", "anonymousId": "a"}, DAY1),
                              b'{"torn":'])
    write(root, "customerio", DAY1, [envelope(customerio_body("opened", "01JOPENED"), DAY1)])
    warehouse = gs_home / "warehouse.duckdb"

    result = dg.materialize([events_load], partition_key=DAY1,
                            resources={"duckdb": DuckDBResource(database=str(warehouse))})
    assert result.success
    mats = {m.asset_key.path[-1]: m.metadata for m in result.get_asset_materialization_events()
            for m in [m.event_specific_data.materialization]}
    assert set(mats) == set(DECLARED_TABLES)
    assert mats["order_completed"]["rows"].value == 1
    assert mats["tracks"]["rows"].value == 2  # the order and the email open
    assert mats["email_opened"]["rows"].value == 1
    assert mats["pages"]["duplicates_dropped"].value == 1
    assert mats["_discards"]["rows"].value == 1 and mats["pages"]["discards"].value == 1
    assert mats["pages"]["rows_per_table"].value["pages"] == 1

    with duckdb.connect(str(warehouse), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM events.tracks").fetchone() == (2,)


def test_capture_assets_share_the_daily_partitions_pool_and_tags() -> None:
    assert events_load.partitions_def == resources.events_daily_partitions
    assert all(events_load.group_names_by_key[k] == "capture" for k in events_load.keys)
    assert dg.AssetKey(["events", "order_completed"]) in events_load.keys
    assert events_load.op.pool == resources.WAREHOUSE_POOL
    assert events_load.op.tags[resources.WRITER_TAG_KEY] == "duckdb"
    assert events_load.op.retry_policy == resources.default_retry_policy
    assert [s.name for s in defs.sensors] == ["event_files_sensor"]
    assert [j.name for j in defs.jobs] == ["capture_events_job"]
