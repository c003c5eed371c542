"""Dagster's SQLite event log, storing a batch of asset events in one transaction per database.

A run over a range of partitions records one materialization per partition and asset: a demo's
120 days of 17 capture tables are about 2,000 of them. Dagster's run-sharded SQLite storage writes
each event on its own, opening two databases and committing (with fsync) each time, which costs more
than loading the events did. Dagster hands such a range to the storage as one batch when
DAGSTER_EVENT_BATCH_SIZE is set, but its SQLite storage still writes a batch event by event.
`batch_asset_events` makes it write the batch with one transaction in the run's database and one in
the index: the same rows `store_event` writes one by one. It applies to one process's instance
(`growth-stack run`), so the instance's dagster.yaml, and every other reader of it, stay Dagster's own.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import dagster as dg
from dagster._core.events import ASSET_EVENTS
from dagster._core.events.log import EventLogEntry
from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage
from dagster._core.storage.sqlalchemy_compat import db_result

# Enough to hold one asset's materializations for a few years of daily partitions in one batch.
EVENT_BATCH_SIZE = "2000"


def batch_asset_events(instance: dg.DagsterInstance) -> bool:
    """In this process, have `instance` store each asset's events for a range of partitions in one
    batch (DAGSTER_EVENT_BATCH_SIZE, unless already set) written in two transactions. Only for
    Dagster's default run-sharded SQLite event log (returns False and changes nothing otherwise)."""
    storage = instance.event_log_storage
    if type(storage) is not SqliteEventLogStorage:
        return False
    # Its store_event_batch for this instance object only: the class, and other instances, stay as they are.
    storage.store_event_batch = lambda events: store_asset_event_batch(storage, events)
    os.environ.setdefault("DAGSTER_EVENT_BATCH_SIZE", EVENT_BATCH_SIZE)
    return True


def store_asset_event_batch(storage: SqliteEventLogStorage, events: Sequence[EventLogEntry]) -> None:
    """Store asset events of one run (what Dagster batches) in one transaction in the run's database
    and one in the index; any other batch event by event, as Dagster does."""
    batchable = bool(events) and len({e.run_id for e in events}) == 1 and all(
        e.is_dagster_event and e.dagster_event_type in ASSET_EVENTS and e.get_dagster_event().asset_key
        for e in events)
    if not batchable:
        for event in events:
            storage.store_event(event)
        return
    statements = [storage.prepare_insert_event(e) for e in events]
    with storage.run_connection(events[0].run_id) as conn:
        for statement in statements:
            conn.execute(statement)
    # Mirrored in the cross-run index, with their tags and the asset's latest event, as store_event does.
    with storage.index_transaction() as conn:
        event_ids = []
        for statement in statements:
            with db_result(conn, statement) as result:
                event_ids.append(result.inserted_primary_key[0])
        storage._store_asset_event_tags(conn, events, event_ids)  # noqa: SLF001 - what store_event calls
        # The asset's row holds values of its latest event alone: of consecutive events of one
        # asset and type (a batch is one asset's partitions), writing the last gives the same row.
        for i, (event, event_id) in enumerate(zip(events, event_ids)):
            if i + 1 == len(events) or _kind(events[i + 1]) != _kind(event):
                storage._store_asset_event(conn, event, event_id)  # noqa: SLF001


def _kind(event: EventLogEntry) -> tuple:
    dagster_event = event.get_dagster_event()
    return dagster_event.asset_key, dagster_event.event_type_value
