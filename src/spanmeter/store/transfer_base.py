""":class:`TransferBase`: the one implementation of :class:`~spanmeter.store.transfer.TransferStore`
that every backend configures with its own SQL.

What an export reads (which rows, in which key order, after which position) and what an
import does around its statements (one transaction holding the rows and the copy's
progress; an entry kept under its own id written with its child rows only if that id was
free) is the same on every backend, so it lives here once. A backend gives its parameter
marker and the few statements its engine spells its own way (:class:`TransferSQL`), and
overrides the steps it does differently: how a batch of rows goes in (``executemany`` or
``COPY`` and ``unnest``), how rollup groups are appended, and what follows rows inserted
under ids of their own (PostgreSQL moves the id sequence past them).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Final, cast

from . import transfer
from .alert_rows import EVENT_COLUMNS
from .analysis_types import RepriceAudit
from .repricing import AUDIT_FIELDS, audit_values
from .rollups import RollupSpec
from .rows import FIELD_NAMES, RowValues

__all__ = ["TransferBase", "TransferSQL", "exported_row"]

_LOWEST: Final = -(2**62)
"""Below every stored start time and minute: the position before the first row."""
_BILLABLE: Final = FIELD_NAMES.index("billable")
_BINARY: Final = (FIELD_NAMES.index("trace_id"), FIELD_NAMES.index("span_id"))
_AUDIT_COLUMNS: Final = ", ".join(("id", *AUDIT_FIELDS))
_AUDIT_ROW_COLUMNS: Final = (
    "start_time_ns, span_id, trace_id, old_cost_nano_usd, new_cost_nano_usd, old_status, new_status"
)
_HISTORY_COLUMNS: Final = "at_ns, state, actor, note"
_DELIVERY_COLUMNS: Final = "channel, state, attempts, next_attempt_ns, last_error, delivered_at_ns"

Entry = tuple[Sequence[object], Sequence[tuple[str, Sequence[Sequence[object]]]]]
"""An entry kept under its own id: its row, and its child rows as ``(statement, rows)``."""


@dataclass(frozen=True, slots=True)
class TransferSQL:
    """A backend's spelling of what the statements built here cannot share."""

    mark: str
    """The parameter marker (``?``, ``%s``)."""
    insert_logical_requests: str
    """Takes :data:`~spanmeter.store.transfer.LogicalKey` rows through
    :meth:`TransferBase._insert_bulk`; skips the keys already stored."""
    insert_provider_calls: str
    """Takes :data:`~spanmeter.store.transfer.ProviderCall` rows the same way."""
    row_order: str
    """The column that orders a table's rows as they were written (``rowid``, ``ctid``)."""

    def marks(self, count: int) -> str:
        """``count`` parameter markers, comma separated."""
        return ", ".join([self.mark] * count)


def exported_row(values: Sequence[Any]) -> RowValues:
    """A raw row as read back, in the types it was written with (``billable`` a bool, ids
    ``bytes``), whichever engine stored it."""
    row = list(values)
    row[_BILLABLE] = bool(row[_BILLABLE])
    for index in _BINARY:
        row[index] = bytes(row[index])
    return tuple(row)


def _plain(value: object) -> object:
    """A column value in the type it was written with (``bytea`` read as ``bytes``)."""
    return bytes(cast(Any, value)) if isinstance(value, memoryview) else value


class TransferBase:
    """The :class:`~spanmeter.store.transfer.TransferStore` methods on the host's connections.

    The host (a store class) sets ``_transfer_sql`` and implements :meth:`_reading` and
    :meth:`_transaction`; a backend overrides the steps its engine does its own way.
    """

    _transfer_sql: TransferSQL

    def _reading(self) -> AbstractContextManager[Any]:
        """A connection for one read."""
        raise NotImplementedError

    def _transaction(self) -> AbstractContextManager[Any]:
        """One write transaction."""
        raise NotImplementedError

    # -- what engines do differently ------------------------------------------------------

    def _insert_each(self, conn: Any, statement: str, rows: Sequence[Sequence[object]]) -> int:
        """Run ``statement`` once per row (``ON CONFLICT DO NOTHING``); how many rows went in."""
        raise NotImplementedError

    def _insert_bulk(self, conn: Any, statement: str, rows: Sequence[Sequence[object]]) -> int:
        """Insert ``rows`` with one of :class:`TransferSQL`'s bulk statements; how many went in."""
        return self._insert_each(conn, statement, rows)

    def _insert_requests(self, conn: Any, rows: Sequence[RowValues]) -> int:
        """Insert raw rows not stored yet; how many went in."""
        marks = self._transfer_sql.marks(len(FIELD_NAMES))
        insert = f"INSERT INTO requests ({', '.join(FIELD_NAMES)}) VALUES ({marks}) ON CONFLICT DO NOTHING"
        return self._insert_each(conn, insert, rows)

    def _append_rollups(self, conn: Any, spec: RollupSpec, groups: Sequence[transfer.RollupGroup]) -> None:
        """Append ``groups`` as partial rows of their buckets."""
        raise NotImplementedError

    def _ids_kept(self, conn: Any, table: str) -> None:
        """Rows went into ``table`` under ids of their own: the next id the store assigns
        must come after them (nothing to do where the next id is the highest plus one)."""

    # -- the same on every engine ---------------------------------------------------------

    def _save(self, conn: Any, progress: transfer.CopyProgress) -> None:
        conn.execute(
            f"INSERT INTO copy_progress VALUES ({self._transfer_sql.marks(5)}) ON CONFLICT (part, source)"
            " DO UPDATE SET position = excluded.position, rows = excluded.rows, done = excluded.done",
            (progress.part, progress.source, progress.position, progress.rows, progress.done),
        )

    def _import(self, progress: transfer.CopyProgress, insert: Callable[[Any], int]) -> int:
        """``insert(conn)`` and ``progress`` in one transaction; how many items went in."""
        with self._transaction() as conn:
            inserted = insert(conn)
            self._save(conn, progress)
        return max(inserted, 0)

    def _fetch(self, statement: str, params: Sequence[object] = ()) -> list[Any]:
        """The rows of one read statement."""
        with self._reading() as conn:
            return list(conn.execute(statement, params).fetchall())

    def _insert_rows(
        self, statement: str, rows: Sequence[Sequence[object]], *, bulk: bool = False
    ) -> Callable[[Any], int]:
        """An import step inserting ``rows`` (none: nothing) with ``statement``."""

        def insert(conn: Any) -> int:
            if not rows:
                return 0
            return (self._insert_bulk if bulk else self._insert_each)(conn, statement, rows)

        return insert

    def _insert_entries(self, table: str, insert: str, entries: Iterable[Entry]) -> Callable[[Any], int]:
        """An import step inserting each entry whose id is free, with its child rows (an
        entry already present is skipped whole); then the store's ids go on past them."""

        def insert_entries(conn: Any) -> int:
            inserted = 0
            for row, children in entries:
                if conn.execute(insert, row).rowcount != 1:
                    continue
                for statement, child_rows in children:
                    if child_rows:
                        self._insert_each(conn, statement, child_rows)
                inserted += 1
            if inserted:
                self._ids_kept(conn, table)
            return inserted

        return insert_entries

    def copy_progress(self, source: str) -> dict[str, transfer.CopyProgress]:
        """The recorded progress of every part copied from ``source``."""
        rows = self._fetch(
            f"SELECT part, source, position, rows, done FROM copy_progress WHERE source = {self._transfer_sql.mark}",
            (source,),
        )
        return {
            part: transfer.CopyProgress(part, src, pos, int(n), bool(done))
            for part, src, pos, n, done in rows
        }

    # -- logical requests and provider calls ----------------------------------------------

    def export_logical_requests(self, after: str | None, limit: int) -> list[transfer.LogicalKey]:
        """Logical-request keys by external id."""
        mark = self._transfer_sql.mark
        where = "" if after is None else f" WHERE external_request_id > {mark}"
        rows = self._fetch(
            f"SELECT external_request_id, first_start_ns FROM logical_requests{where}"
            f" ORDER BY external_request_id LIMIT {mark}",
            (limit,) if after is None else (after, limit),
        )
        return [(str(key), int(first)) for key, first in rows]

    def import_logical_requests(
        self, keys: Sequence[transfer.LogicalKey], progress: transfer.CopyProgress
    ) -> int:
        """Insert the keys not known yet."""
        return self._import(
            progress, self._insert_rows(self._transfer_sql.insert_logical_requests, keys, bulk=True)
        )

    def export_provider_calls(
        self, after: tuple[int, bytes] | None, limit: int
    ) -> list[transfer.ProviderCall]:
        """Provider-call claims by ``(minute, call_key)``."""
        minute, key = after if after is not None else (_LOWEST, b"")
        marks = self._transfer_sql.marks(2)
        rows = self._fetch(
            f"SELECT minute, call_key, trace_id, span_id FROM provider_calls WHERE (minute, call_key) > ({marks})"
            f" ORDER BY minute, call_key LIMIT {self._transfer_sql.mark}",
            (minute, key, limit),
        )
        return [(int(m), bytes(k), bytes(t), bytes(s)) for m, k, t, s in rows]

    def import_provider_calls(
        self, calls: Sequence[transfer.ProviderCall], progress: transfer.CopyProgress
    ) -> int:
        """Insert the claims not known yet."""
        return self._import(
            progress, self._insert_rows(self._transfer_sql.insert_provider_calls, calls, bulk=True)
        )

    # -- raw rows --------------------------------------------------------------------------

    def export_requests(self, after: transfer.DeliveryKey | None, limit: int) -> list[RowValues]:
        """Raw rows by delivery key (the unique index's order)."""
        start, span_id, trace_id = after if after is not None else (_LOWEST, b"", b"")
        mark = self._transfer_sql.mark
        rows = self._fetch(
            f"SELECT {', '.join(FIELD_NAMES)} FROM requests WHERE (start_time_ns, span_id, trace_id)"
            f" > ({self._transfer_sql.marks(3)}) ORDER BY start_time_ns, span_id, trace_id LIMIT {mark}",
            (start, span_id, trace_id, limit),
        )
        return [exported_row(values) for values in rows]

    def import_requests(self, rows: Sequence[RowValues], progress: transfer.CopyProgress) -> int:
        """Insert the rows not stored yet, as they are."""

        def insert(conn: Any) -> int:
            return self._insert_requests(conn, rows) if rows else 0

        return self._import(progress, insert)

    # -- rollups ---------------------------------------------------------------------------

    def rollup_buckets(
        self, granularity: transfer.Granularity, after: int | None, limit: int
    ) -> list[tuple[int, int]]:
        """Buckets holding rollup rows, with their row counts, by bucket."""
        spec = transfer.rollup_of(granularity)
        bucket, mark = spec.bucket_column, self._transfer_sql.mark
        rows = self._fetch(
            f"SELECT {bucket}, count(*) FROM {spec.table} WHERE {bucket} > {mark}"
            f" GROUP BY {bucket} ORDER BY {bucket} LIMIT {mark}",
            (_LOWEST if after is None else after, limit),
        )
        return [(int(bucket), int(count)) for bucket, count in rows]

    def import_rollups(
        self,
        granularity: transfer.Granularity,
        groups: Sequence[transfer.RollupGroup],
        progress: transfer.CopyProgress,
    ) -> int:
        """Append the groups as partial rows of their buckets (queries sum them with the rest,
        compaction merges them)."""
        spec = transfer.rollup_of(granularity)

        def append(conn: Any) -> int:
            if groups:
                self._append_rollups(conn, spec, groups)
            return len(groups)

        return self._import(progress, append)

    # -- re-pricing audit and revenue -------------------------------------------------------

    def export_reprice_audits(self, after: int | None, limit: int) -> list[transfer.ExportedAudit]:
        """Audit entries with their rows (in the order they were written), by id."""
        sql = self._transfer_sql
        with self._reading() as conn:
            audits = [
                RepriceAudit(*values)
                for values in conn.execute(
                    f"SELECT {_AUDIT_COLUMNS} FROM reprice_audit WHERE id > {sql.mark} ORDER BY id LIMIT {sql.mark}",
                    (-1 if after is None else after, limit),
                ).fetchall()
            ]
            return [
                transfer.ExportedAudit(
                    audit,
                    [
                        (row[0], bytes(row[1]), bytes(row[2]), *row[3:])
                        for row in conn.execute(
                            f"SELECT {_AUDIT_ROW_COLUMNS} FROM reprice_audit_rows WHERE audit_id = {sql.mark}"
                            f" ORDER BY {sql.row_order}",
                            (audit.id,),
                        ).fetchall()
                    ],
                )
                for audit in audits
            ]

    def import_reprice_audits(
        self, audits: Sequence[transfer.ExportedAudit], progress: transfer.CopyProgress
    ) -> int:
        """Insert the entries (and their rows) whose id is not used yet."""
        sql = self._transfer_sql
        insert_rows = (
            f"INSERT INTO reprice_audit_rows (audit_id, {_AUDIT_ROW_COLUMNS}) VALUES ({sql.marks(8)})"
        )
        entries: list[Entry] = [
            (
                (entry.audit.id, *audit_values(entry.audit)),
                [(insert_rows, [(entry.audit.id, *row) for row in entry.rows])],
            )
            for entry in audits
        ]
        insert = (
            f"INSERT INTO reprice_audit ({_AUDIT_COLUMNS}) VALUES ({sql.marks(len(AUDIT_FIELDS) + 1)})"
            " ON CONFLICT DO NOTHING"
        )
        return self._import(progress, self._insert_entries("reprice_audit", insert, entries))

    def export_revenue(self) -> list[transfer.RevenueRecord]:
        """Every revenue row with its import time."""
        rows = self._fetch(
            "SELECT tenant_id, period, start_ns, end_ns, revenue_nano_usd, imported_at_ns FROM revenue"
            " ORDER BY tenant_id, period"
        )
        return [(str(t), str(p), int(s), int(e), int(r), int(i)) for t, p, s, e, r, i in rows]

    def import_revenue(self, rows: Sequence[transfer.RevenueRecord], progress: transfer.CopyProgress) -> int:
        """Insert the rows whose tenant and period are not present yet."""
        insert = f"INSERT INTO revenue VALUES ({self._transfer_sql.marks(6)}) ON CONFLICT DO NOTHING"
        return self._import(progress, self._insert_rows(insert, rows))

    # -- budget ledger, API keys and alerts -------------------------------------------------

    def export_state_rows(
        self, table: transfer.StateTable, after: transfer.StateKey | None, limit: int
    ) -> list[transfer.StateRow]:
        """Rows of a state table by primary key."""
        table = transfer.state_table(table)
        sql = self._transfer_sql
        columns, key = ", ".join(table.columns), ", ".join(table.key)
        where = "" if after is None else f" WHERE ({key}) > ({sql.marks(len(after))})"
        rows = self._fetch(
            f"SELECT {columns} FROM {table.name}{where} ORDER BY {key} LIMIT {sql.mark}",
            (*(after or ()), limit),
        )
        return [tuple(_plain(value) for value in row) for row in rows]

    def import_state_rows(
        self, table: transfer.StateTable, rows: Sequence[transfer.StateRow], progress: transfer.CopyProgress
    ) -> int:
        """Insert the rows whose key is not present yet."""
        table = transfer.state_table(table)
        insert = (
            f"INSERT INTO {table.name} ({', '.join(table.columns)})"
            f" VALUES ({self._transfer_sql.marks(len(table.columns))}) ON CONFLICT DO NOTHING"
        )
        return self._import(progress, self._insert_rows(insert, rows))

    def export_alerts(self, after: int | None, limit: int) -> list[transfer.ExportedAlert]:
        """Events with their history and deliveries, by id."""
        mark = self._transfer_sql.mark
        with self._reading() as conn:
            events = conn.execute(
                f"SELECT {EVENT_COLUMNS} FROM alert_events WHERE id > {mark} ORDER BY id LIMIT {mark}",
                (-1 if after is None else after, limit),
            ).fetchall()
            if not events:
                return []
            span = (int(events[0][0]), int(events[-1][0]))
            between = f"WHERE event_id BETWEEN {mark} AND {mark}"
            return transfer.assemble_alerts(
                events,
                conn.execute(
                    f"SELECT event_id, {_HISTORY_COLUMNS} FROM alert_history {between} ORDER BY id", span
                ),
                conn.execute(
                    f"SELECT event_id, {_DELIVERY_COLUMNS} FROM alert_outbox {between} ORDER BY event_id, channel",
                    span,
                ),
            )

    def import_alerts(self, alerts: Sequence[transfer.ExportedAlert], progress: transfer.CopyProgress) -> int:
        """Insert the events whose id and dedupe key are not used yet, each with its
        history and deliveries."""
        sql = self._transfer_sql
        insert_history = f"INSERT INTO alert_history (event_id, {_HISTORY_COLUMNS}) VALUES ({sql.marks(5)})"
        insert_delivery = f"INSERT INTO alert_outbox (event_id, {_DELIVERY_COLUMNS}) VALUES ({sql.marks(7)})"
        entries: list[Entry] = [
            (
                alert.event,
                [
                    (insert_history, [(alert.id, *entry) for entry in alert.history]),
                    (insert_delivery, [(alert.id, *delivery) for delivery in alert.deliveries]),
                ],
            )
            for alert in alerts
        ]
        insert = (
            f"INSERT INTO alert_events ({EVENT_COLUMNS}) VALUES ({sql.marks(len(EVENT_COLUMNS.split(',')))})"
            " ON CONFLICT DO NOTHING"
        )
        return self._import(progress, self._insert_entries("alert_events", insert, entries))
