"""The contract between the sync engine and every destination (HubSpot, Customer.io, Amplitude,
Facebook audiences, Zendesk, webhooks).

The engine plans in the warehouse which records to send, then hands a destination batches of
`Record`s, all of one operation and at most `ObjectSpec.batch_size` long, through `send`, and
stores what each `RecordResult` says. A destination knows its API; it never touches the warehouse.
Retries of 429/5xx/timeouts happen in the `requests.Session` the engine gives it (urllib3 `Retry`);
a destination raises `BatchRejected` when the API refuses a whole batch (the engine splits it to
find the bad records) and `DestinationUnavailable` when retries are exhausted (the run stops and the
unsent records stay pending for the next run).
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Literal, Protocol

# What a sync does with its model (issue "Activate" §1).
MODES = ("upsert", "update", "insert", "mirror", "membership", "archive")
# What one record asks of the destination.
OPERATIONS = ("create", "update", "upsert", "delete", "add", "remove", "clear", "archive")
NULL_POLICIES = ("send", "skip", "clear")
ON_REMOVAL = ("nothing", "clear", "delete")
FIELD_TYPES = ("string", "number", "bool", "date", "datetime", "enumeration", "json")


@dataclasses.dataclass(frozen=True)
class FieldSpec:
    """One field of a destination object."""

    name: str
    type: str = "string"  # one of FIELD_TYPES
    label: str = ""
    options: tuple[str, ...] = ()  # allowed values of an enumeration
    custom: bool = False  # a field the sync creates on first run when the destination lacks it
    unique: bool = False  # the destination keeps its values unique (HubSpot `hasUniqueValue`)


@dataclasses.dataclass(frozen=True)
class ObjectSpec:
    """What a destination object accepts; the defaults of a declaration come from here."""

    name: str
    modes: frozenset[str]
    match_fields: tuple[str, ...]  # destination fields a record can be matched on
    batch_size: int  # the API's published per-request maximum
    rate_limit: tuple[int, float]  # (requests, per seconds): the API's published limit
    fields: dict[str, FieldSpec] | None  # None: any attribute name is accepted (Customer.io, Amplitude)
    idempotent: bool  # True when sending an accepted record again changes nothing at the destination


@dataclasses.dataclass(frozen=True)
class FieldMapping:
    column: str  # column of the sync model
    field: str  # destination field
    null_policy: str = "skip"  # one of NULL_POLICIES: send null, leave the field alone, or clear it


@dataclasses.dataclass(frozen=True)
class SyncSpec:
    """One declared sync (read from the dbt project by `activation.declarations`)."""

    name: str  # e.g. "hubspot_contacts_traits"
    model: str  # e.g. "sync_hubspot__contacts"
    destination: str  # e.g. "hubspot"
    object: str  # e.g. "contacts"
    mode: str  # one of MODES
    primary_key: str  # column of the model, unique
    match_field: str  # destination field matched on (HubSpot idProperty, Zendesk external_id, ...)
    mappings: tuple[FieldMapping, ...]
    on_removal: str = "nothing"  # one of ON_REMOVAL
    trigger: str = "on_model_update"  # "on_model_update" or a cron expression
    batch_size: int | None = None  # None: the object's published maximum
    rate_limit: tuple[int, float] | None = None  # None: the object's published limit
    options: dict[str, Any] = dataclasses.field(default_factory=dict)  # destination-specific (audience name, ...)
    source_file: str = ""  # the declaration's file, for error messages
    custom_fields: tuple[FieldSpec, ...] = ()  # fields the sync creates on first run (`create:` in a mapping)
    max_attempts: int = 5  # sends of one failing record (same payload) before it is only reported
    destination_id_column: str | None = None  # model column holding a known destination id (e.g. hubspot_company_id)
    label: str = ""  # the exposure's label, for people


@dataclasses.dataclass
class Record:
    key: str  # the model's primary key value
    operation: str  # one of OPERATIONS
    payload: dict[str, Any]  # destination field -> value after mapping and null policies (clear -> None)
    destination_id: str | None = None  # the id the destination returned when this sync created it


@dataclasses.dataclass
class RecordResult:
    key: str
    status: Literal["accepted", "rejected", "retry"]
    destination_id: str | None = None
    message: str = ""  # why rejected or to retry; never a secret or the record's personal data


class BatchRejected(Exception):
    """The destination refused a whole batch (a 4xx that names no record): split it and try the halves."""


class DestinationUnavailable(Exception):
    """Retries are exhausted (429, 5xx, timeouts): stop this run; unsent records stay pending."""


class Destination(Protocol):
    """A destination API. Constructed as `Cls(base_url, credential, session)`."""

    name: str
    objects: dict[str, ObjectSpec]

    def describe_fields(self, object_name: str) -> dict[str, FieldSpec] | None:
        """The object's fields as the API lists them now (HubSpot properties, Zendesk user fields),
        or None where the destination takes any attribute name."""

    def prepare(self, sync: SyncSpec) -> None:
        """Create what the sync needs and the destination lacks (custom properties, the audience);
        idempotent."""

    def send(self, sync: SyncSpec, records: list[Record]) -> list[RecordResult]:
        """Send one batch (one operation, at most the batch size); one result per record."""


def destination_base_url(name: str, sandbox_prefix: str | None = None) -> str:
    """`DESTINATIONS__<NAME>__BASE_URL`, else the sandbox's emulation (`$GROWTH_STACK_SANDBOX_URL/<name>`)."""
    from growth_stack_dagster import config

    value = os.environ.get(f"DESTINATIONS__{name.upper()}__BASE_URL")
    return (value or f"{config.sandbox_url()}/{sandbox_prefix or name}").rstrip("/")


def destination_credential(name: str, variable: str = "ACCESS_TOKEN") -> str:
    """`DESTINATIONS__<NAME>__<VARIABLE>`, else the sandbox token. Never log or store the result."""
    from growth_stack_dagster import config

    return os.environ.get(f"DESTINATIONS__{name.upper()}__{variable}") or config.sandbox_token()
