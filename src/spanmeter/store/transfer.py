"""What a store offers so that ``spanmeter store copy`` can move it to another store.

Copying a store is not replaying its spans through the write path: rollups are kept
longer than raw rows (400 vs 30 days by default), so recomputing them from the raw rows
would lose every bucket older than the oldest row, and the write path would number the
logical requests anew. Instead each kind of state is exported as it is stored and
imported as it is, bypassing the write path's aggregation:

* raw rows with their ids, pricing, billable flags and ``duplicate_of`` (deduped on the
  delivery key, so a re-run inserts nothing twice);
* the logical-request keys (external id and the start of its first attempt) and the
  provider-call claims, so dedupe and logical-request counting go on exactly after the move;
* rollups as merged groups, whole buckets at a time;
* the re-pricing audit trail and imported revenue;
* the budget ledger (counter names, calendar windows with their alerted levels, rolling
  buckets, rolling episodes), row by row under its primary key (:data:`STATE_TABLES`), so
  a budget goes on exactly where it stood: spend already counted is not counted again and
  a level already alerted does not alert again;
* the alerts inbox: each event under its own id, with its history and its deliveries (the
  outbox rows, pending ones included, without a replica's claim), in one transaction, then
  the open rule episodes, which point at their event by that id;
* the API keys, revoked ones included (ids and secret hashes, never a secret).

Every import writes a :class:`CopyProgress` in the same transaction as the data, so an
interrupted copy resumes where it stopped and a repeated one finds nothing left to do.
The orchestration lives in :mod:`spanmeter.store.copy`; what an export reads and an import
does around its statements in :mod:`spanmeter.store.transfer_base`; the SQL in each backend.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final, Literal, Protocol, runtime_checkable

from .analysis_types import RepriceAudit
from .api import SpanStore
from .rollups import HOUR, MINUTE, RollupSpec
from .rows import RowValues

__all__ = [
    "STATE_TABLES",
    "AuditRowValues",
    "CopyProgress",
    "DeliveryKey",
    "ExportedAlert",
    "ExportedAudit",
    "Granularity",
    "LogicalKey",
    "ProviderCall",
    "RevenueRecord",
    "RollupGroup",
    "StateKey",
    "StateRow",
    "StateTable",
    "TransferStore",
    "assemble_alerts",
    "rollup_of",
    "state_table",
]

Granularity = Literal["minute", "hour"]
"""A rollup, by the width of its buckets."""
DeliveryKey = tuple[int, bytes, bytes]
"""``(start_time_ns, span_id, trace_id)``: the key a raw row is unique on, in both stores."""
LogicalKey = tuple[str, int]
"""``(external_request_id, first_start_ns)``."""
ProviderCall = tuple[int, bytes, bytes, bytes]
"""``(minute, call_key, trace_id, span_id)``: which span carries a provider call."""
RollupGroup = tuple[Any, ...]
"""``(bucket_s, *dimensions, *measures)`` in the rollup's column order, merged."""
AuditRowValues = tuple[Any, ...]
"""One changed row of an audit: ``(start_time_ns, span_id, trace_id, old_cost_nano_usd,
new_cost_nano_usd, old_status, new_status)``."""
RevenueRecord = tuple[str, str, int, int, int, int]
"""``(tenant_id, period, start_ns, end_ns, revenue_nano_usd, imported_at_ns)``."""
StateRow = tuple[Any, ...]
"""One row of a :class:`StateTable`, in its column order."""
StateKey = tuple[int | str, ...]
"""A :class:`StateTable` row's primary key, in its key order."""


@dataclass(frozen=True, slots=True)
class StateTable:
    """A table of budget or alert state that both backends define alike (same name, columns
    and primary key), copied row by row in primary-key order."""

    name: str
    columns: tuple[str, ...]
    key: tuple[str, ...]
    """The primary key's columns: the copy's order and position."""

    def key_of(self, row: StateRow) -> StateKey:
        """The primary key of ``row``."""
        return tuple(row[self.columns.index(name)] for name in self.key)


STATE_TABLES: Final[Mapping[str, StateTable]] = MappingProxyType(
    {
        table.name: table
        for table in (
            StateTable("budget_counters", ("id", "counter"), ("id",)),
            StateTable(
                "budget_spend",
                (
                    "counter_id",
                    "bucket_start_ns",
                    "scope_key",
                    "cost_nano_usd",
                    "attempts",
                    "unpriced",
                    "alerted_level",
                    "forecast_alerted",
                ),
                ("counter_id", "bucket_start_ns", "scope_key"),
            ),
            StateTable(
                "budget_rolling",
                ("counter_id", "scope_key", "bucket_start_ns", "cost_nano_usd", "attempts", "unpriced"),
                ("counter_id", "scope_key", "bucket_start_ns"),
            ),
            StateTable(
                "budget_episode",
                ("counter_id", "scope_key", "alerted_level", "forecast_alerted", "since_ns"),
                ("counter_id", "scope_key"),
            ),
            StateTable("alert_rule_state", ("rule", "subject", "event_id", "since_ns"), ("rule", "subject")),
            StateTable(
                "api_keys",
                (
                    "name",
                    "key_id",
                    "secret_hash",
                    "scope",
                    "tenants",
                    "created_at_ns",
                    "expires_at_ns",
                    "revoked_at_ns",
                ),
                ("key_id",),
            ),
        )
    }
)
"""The state tables copied row by row, by name: the budget ledger, the rule episodes and the
API keys (their ids and secret hashes: a key keeps working against the target)."""


def state_table(table: StateTable) -> StateTable:
    """``table`` if it is one of :data:`STATE_TABLES` (statements are built from its names).

    Raises:
        ValueError: any other table.
    """
    if STATE_TABLES.get(table.name) != table:
        raise ValueError(f"not a state table: {table.name!r}")
    return table


def rollup_of(granularity: str) -> RollupSpec:
    """The rollup of a granularity (exports and copies read and write one at a time).

    Raises:
        ValueError: a granularity other than ``minute`` or ``hour``.
    """
    if granularity not in ("minute", "hour"):
        raise ValueError(f"granularity must be minute or hour, got {granularity!r}")
    return MINUTE if granularity == "minute" else HOUR


@dataclass(frozen=True, slots=True)
class ExportedAudit:
    """A re-pricing audit entry with the rows it changed, as stored (its id kept)."""

    audit: RepriceAudit
    rows: Sequence[AuditRowValues]


@dataclass(frozen=True, slots=True)
class ExportedAlert:
    """An alert event as stored, its id kept, with its history and its deliveries."""

    event: tuple[Any, ...]
    """The event's columns in :data:`~spanmeter.store.alert_rows.EVENT_COLUMNS` order (id
    first, details and context as their JSON text)."""
    history: Sequence[tuple[int, str, str, str]]
    """``(at_ns, state, actor, note)``, oldest first."""
    deliveries: Sequence[tuple[str, str, int, int, str | None, int | None]]
    """``(channel, state, attempts, next_attempt_ns, last_error, delivered_at_ns)`` by channel."""

    @property
    def id(self) -> int:
        """The event's id."""
        return int(self.event[0])


def assemble_alerts(
    events: Sequence[Sequence[Any]], history: Iterable[Sequence[Any]], deliveries: Iterable[Sequence[Any]]
) -> list[ExportedAlert]:
    """The exported alerts of ``events`` (rows in ``EVENT_COLUMNS`` order), given their
    history entries and deliveries as ``(event_id, *columns)`` rows in the order they are
    kept (each backend reads the three tables its own way; the assembly is the same)."""
    history_of: dict[int, list[tuple[Any, ...]]] = {}
    for event_id, *entry in history:
        history_of.setdefault(int(event_id), []).append(tuple(entry))
    deliveries_of: dict[int, list[tuple[Any, ...]]] = {}
    for event_id, *delivery in deliveries:
        deliveries_of.setdefault(int(event_id), []).append(tuple(delivery))
    return [
        ExportedAlert(tuple(event), history_of.get(int(event[0]), []), deliveries_of.get(int(event[0]), []))
        for event in events
    ]


@dataclass(frozen=True, slots=True)
class CopyProgress:
    """How far the copy of one part from one source got, as recorded in the target."""

    part: str
    source: str
    """The source store, as :attr:`SpanStore.location` names it."""
    position: str
    """Where the next chunk starts: a JSON value the part defines (``""`` before the first)."""
    rows: int = 0
    """Rows (or groups, or entries) copied so far."""
    done: bool = False


@runtime_checkable
class TransferStore(SpanStore, Protocol):
    """A store that can be the source or the target of a copy.

    Readers return at most ``limit`` items after ``after`` (exclusive) in key order, so a
    copy pages through a large store with flat memory. Importers insert what is not there
    yet (keys already present are left alone) and record ``progress`` in the same
    transaction; each returns how many items it inserted.
    """

    def copy_progress(self, source: str) -> dict[str, CopyProgress]:
        """The recorded progress of every part copied from ``source`` into this store."""
        ...

    def export_logical_requests(self, after: str | None, limit: int) -> list[LogicalKey]:
        """Logical-request keys by external id."""
        ...

    def import_logical_requests(self, keys: Sequence[LogicalKey], progress: CopyProgress) -> int:
        """Insert logical-request keys."""
        ...

    def export_provider_calls(self, after: tuple[int, bytes] | None, limit: int) -> list[ProviderCall]:
        """Provider-call claims by ``(minute, call_key)``."""
        ...

    def import_provider_calls(self, calls: Sequence[ProviderCall], progress: CopyProgress) -> int:
        """Insert provider-call claims."""
        ...

    def export_requests(self, after: DeliveryKey | None, limit: int) -> list[RowValues]:
        """Raw rows (``FIELD_NAMES`` order) by delivery key."""
        ...

    def import_requests(self, rows: Sequence[RowValues], progress: CopyProgress) -> int:
        """Insert raw rows as they are: no dedupe by provider call, no rollups, no ledger."""
        ...

    def rollup_buckets(
        self, granularity: Granularity, after: int | None, limit: int
    ) -> list[tuple[int, int]]:
        """``(bucket_s, stored rows)`` of the buckets holding rollup rows, by bucket."""
        ...

    def import_rollups(
        self, granularity: Granularity, groups: Sequence[RollupGroup], progress: CopyProgress
    ) -> int:
        """Append merged rollup groups as partial rows (queries sum them with the rest)."""
        ...

    def export_reprice_audits(self, after: int | None, limit: int) -> list[ExportedAudit]:
        """Audit entries with their rows, by id."""
        ...

    def import_reprice_audits(self, audits: Sequence[ExportedAudit], progress: CopyProgress) -> int:
        """Insert audit entries under their own ids (an id already used is skipped)."""
        ...

    def export_revenue(self) -> list[RevenueRecord]:
        """Every revenue row with its import time."""
        ...

    def import_revenue(self, rows: Sequence[RevenueRecord], progress: CopyProgress) -> int:
        """Insert revenue rows (a tenant and period already present is left alone)."""
        ...

    def export_state_rows(self, table: StateTable, after: StateKey | None, limit: int) -> list[StateRow]:
        """Rows of one of :data:`STATE_TABLES` by primary key."""
        ...

    def import_state_rows(self, table: StateTable, rows: Sequence[StateRow], progress: CopyProgress) -> int:
        """Insert rows of one of :data:`STATE_TABLES` as they are (a key already present is
        left alone)."""
        ...

    def export_alerts(self, after: int | None, limit: int) -> list[ExportedAlert]:
        """Alert events with their history and deliveries, by id."""
        ...

    def import_alerts(self, alerts: Sequence[ExportedAlert], progress: CopyProgress) -> int:
        """Insert events under their own ids with their history and deliveries; an event
        whose id or dedupe key is already stored is skipped whole."""
        ...
