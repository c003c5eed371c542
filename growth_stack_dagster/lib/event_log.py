"""Dagster's SQLite event log, storing a batch of asset events in one transaction per database.

A run over a range of partitions records one materialization per partition and asset: a demo's
120 days of 17 capture tables are about 2,000 of them. Dagster's run-sharded SQLite storage writes
each event on its own, opening two databases and committing (with fsync) each time, which costs more
than loading the events did. Dagster hands such a range to the storage as one batch when
DAGSTER_EVENT_BATCH_SIZE is set (`growth-stack run` sets it); this storage then writes the batch
with one transaction in the run's database and one in the index, the same rows `store_event`
writes one by one. Every other event is stored by Dagster's own code, unchanged.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from dagster._config import StringSource
from dagster._core.events.log import EventLogEntry
from dagster._core.events import ASSET_EVENTS
from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage
from dagster._core.storage.sqlalchemy_compat import db_result
from dagster._serdes import ConfigurableClassData

# The SQLite storage Dagster uses by default keeps its event logs here under DAGSTER_HOME.
RUNS_FOLDER = ("history", "runs")
# Enough to hold one asset's materializations for a few years of daily partitions in one batch.
EVENT_BATCH_SIZE = "2000"


class BatchingSqliteEventLogStorage(SqliteEventLogStorage):
    """SQLite event log under `<dagster_home>/history/runs` (where Dagster's default puts it), whose
    `store_event_batch` writes a batch of asset events of one run in one transaction per database.

    dagster.yaml:
        event_log_storage:
          module: growth_stack_dagster.lib.event_log
          class: BatchingSqliteEventLogStorage
          config: {dagster_home: {env: DAGSTER_HOME}}
    """

    def __init__(self, dagster_home: str, inst_data: ConfigurableClassData | None = None):
        self._dagster_home = dagster_home
        super().__init__(os.path.join(dagster_home, *RUNS_FOLDER), inst_data=inst_data)

    @classmethod
    def config_type(cls):
        return {"dagster_home": StringSource}

    @classmethod
    def from_config_value(cls, inst_data, config_value):
        return cls(inst_data=inst_data, **config_value)

    def store_event_batch(self, events: Sequence[EventLogEntry]) -> None:
        """Store asset events of one run (what Dagster batches) in two transactions; any other
        batch event by event, as Dagster does."""
        batchable = bool(events) and len({e.run_id for e in events}) == 1 and all(
            e.is_dagster_event and e.dagster_event_type in ASSET_EVENTS and e.get_dagster_event().asset_key
            for e in events)
        if not batchable:
            super().store_event_batch(events)
            return
        statements = [self.prepare_insert_event(e) for e in events]
        with self.run_connection(events[0].run_id) as conn:
            for statement in statements:
                conn.execute(statement)
        # Mirrored in the cross-run index, with their tags and the asset's latest event, as store_event does.
        with self.index_transaction() as conn:
            event_ids = []
            for statement in statements:
                with db_result(conn, statement) as result:
                    event_ids.append(result.inserted_primary_key[0])
            self._store_asset_event_tags(conn, events, event_ids)
            # The asset's row holds values of its latest event alone: of consecutive events of one
            # asset and type (a batch is one asset's partitions), writing the last gives the same row.
            for i, (event, event_id) in enumerate(zip(events, event_ids)):
                if i + 1 == len(events) or _kind(events[i + 1]) != _kind(event):
                    self._store_asset_event(conn, event, event_id)


def _kind(event: EventLogEntry) -> tuple:
    dagster_event = event.get_dagster_event()
    return dagster_event.asset_key, dagster_event.event_type_value
