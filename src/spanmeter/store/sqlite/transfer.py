"""Export and import for ``spanmeter store copy`` on SQLite (see :mod:`spanmeter.store.transfer`).

Imports bypass the write path: rows go in as they were stored, rollup groups are appended
as partial rows (positive ``seq``, bucket marked dirty) that compaction later folds into
the tiers like any other, alert events keep their ids (so history, deliveries and rule
episodes still point at them), and every import records its progress in ``copy_progress``
in the same transaction.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any, Final

from .. import transfer
from ..alert_rows import EVENT_COLUMNS
from ..analysis_types import RepriceAudit
from ..rows import FIELD_NAMES, RowValues
from .analysis_writes import append_partial_rows
from .maintenance import Transaction
from .migration_db import MigrationDB
from .schema import MIGRATIONS
from .writer import RowWriter

__all__ = ["SQLiteTransferMixin"]

_BILLABLE: Final = FIELD_NAMES.index("billable")
_AUDIT_COLUMNS: Final = (
    "id, applied_at_ns, reason, window_start_ns, window_end_ns, rows_changed,"
    " cost_before_nano_usd, cost_after_nano_usd, price_source, details"
)
_AUDIT_ROW_COLUMNS: Final = (
    "start_time_ns, span_id, trace_id, old_cost_nano_usd, new_cost_nano_usd, old_status, new_status"
)
_HISTORY_COLUMNS: Final = "at_ns, state, actor, note"
_DELIVERY_COLUMNS: Final = "channel, state, attempts, next_attempt_ns, last_error, delivered_at_ns"
_EVENT_COUNT: Final = len(EVENT_COLUMNS.split(","))


@MIGRATIONS(name="m_copy_001_copy_progress")
def _m_copy_progress(db: MigrationDB) -> None:
    """How far ``spanmeter store copy`` got, per part and source: kept in the target, so a
    copy resumes after an interruption and a repeated one copies nothing twice."""
    db.execute(
        "CREATE TABLE copy_progress (part TEXT NOT NULL, source TEXT NOT NULL, position TEXT NOT NULL,"
        " rows INTEGER NOT NULL, done INTEGER NOT NULL, PRIMARY KEY (part, source)) WITHOUT ROWID"
    )


def _save(conn: sqlite3.Connection, progress: transfer.CopyProgress) -> None:
    conn.execute(
        "INSERT INTO copy_progress VALUES (?, ?, ?, ?, ?) ON CONFLICT (part, source) DO UPDATE SET"
        " position = excluded.position, rows = excluded.rows, done = excluded.done",
        (progress.part, progress.source, progress.position, progress.rows, int(progress.done)),
    )


class SQLiteTransferMixin:
    """The :class:`~spanmeter.store.transfer.TransferStore` methods; the host class
    (:class:`~spanmeter.store.sqlite.SQLiteStore`) provides the connections."""

    _writer: RowWriter

    def _reader(self) -> sqlite3.Connection:  # provided by SQLiteStore
        raise NotImplementedError

    def _transaction(self) -> Any:  # provided by SQLiteStore (a Transaction)
        raise NotImplementedError

    def _insert_new(
        self, statement: str, rows: Sequence[Sequence[Any]], progress: transfer.CopyProgress
    ) -> int:
        """Insert ``rows`` with ``statement`` (which skips those already present) and record
        ``progress`` in one transaction; how many rows were new."""
        transaction: Transaction = self._transaction
        with transaction() as conn:
            before = conn.total_changes
            conn.executemany(statement, rows)
            inserted = conn.total_changes - before
            _save(conn, progress)
        return inserted

    def copy_progress(self, source: str) -> dict[str, transfer.CopyProgress]:
        """The recorded progress of every part copied from ``source``."""
        rows = self._reader().execute(
            "SELECT part, source, position, rows, done FROM copy_progress WHERE source = ?", (source,)
        )
        return {
            part: transfer.CopyProgress(part, src, pos, int(n), bool(done))
            for part, src, pos, n, done in rows
        }

    # -- logical requests and provider calls ----------------------------------------------

    def export_logical_requests(self, after: str | None, limit: int) -> list[transfer.LogicalKey]:
        """Logical-request keys by external id."""
        select = "SELECT external_request_id, first_start_ns FROM logical_requests"
        order = " ORDER BY external_request_id LIMIT ?"
        conn = self._reader()
        rows = (
            conn.execute(select + order, (limit,))
            if after is None
            else conn.execute(select + " WHERE external_request_id > ?" + order, (after, limit))
        )
        return [(str(key), int(first)) for key, first in rows]

    def import_logical_requests(
        self, keys: Sequence[transfer.LogicalKey], progress: transfer.CopyProgress
    ) -> int:
        """Insert the keys not known yet."""
        return self._insert_new(
            "INSERT INTO logical_requests VALUES (?, ?) ON CONFLICT DO NOTHING", keys, progress
        )

    def export_provider_calls(
        self, after: tuple[int, bytes] | None, limit: int
    ) -> list[transfer.ProviderCall]:
        """Provider-call claims by ``(minute, call_key)``."""
        minute, key = after if after is not None else (-(2**62), b"")
        rows = self._reader().execute(
            "SELECT minute, call_key, trace_id, span_id FROM provider_calls"
            " WHERE (minute, call_key) > (?, ?) ORDER BY minute, call_key LIMIT ?",
            (minute, key, limit),
        )
        return [(int(m), bytes(k), bytes(t), bytes(s)) for m, k, t, s in rows]

    def import_provider_calls(
        self, calls: Sequence[transfer.ProviderCall], progress: transfer.CopyProgress
    ) -> int:
        """Insert the claims not known yet."""
        return self._insert_new(
            "INSERT INTO provider_calls VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING", calls, progress
        )

    # -- raw rows --------------------------------------------------------------------------

    def export_requests(self, after: transfer.DeliveryKey | None, limit: int) -> list[RowValues]:
        """Raw rows by delivery key (the unique index's order)."""
        start, span_id, trace_id = after if after is not None else (-(2**62), b"", b"")
        rows = self._reader().execute(
            f"SELECT {', '.join(FIELD_NAMES)} FROM requests WHERE (start_time_ns, span_id, trace_id) > (?, ?, ?)"
            " ORDER BY start_time_ns, span_id, trace_id LIMIT ?",
            (start, span_id, trace_id, limit),
        )
        exported: list[RowValues] = []
        for values in rows:
            row = list(values)
            row[_BILLABLE] = bool(row[_BILLABLE])
            exported.append(tuple(row))
        return exported

    def import_requests(self, rows: Sequence[RowValues], progress: transfer.CopyProgress) -> int:
        """Insert the rows not stored yet, as they are."""
        insert = (
            f"INSERT INTO requests ({', '.join(FIELD_NAMES)}) VALUES ({', '.join('?' * len(FIELD_NAMES))})"
            " ON CONFLICT DO NOTHING"
        )
        return self._insert_new(insert, rows, progress)

    # -- rollups ---------------------------------------------------------------------------

    def rollup_buckets(
        self, granularity: transfer.Granularity, after: int | None, limit: int
    ) -> list[tuple[int, int]]:
        """Buckets holding rollup rows, with their row counts, by bucket."""
        spec = transfer.rollup_of(granularity)
        rows = self._reader().execute(
            f"SELECT {spec.bucket_column}, count(*) FROM {spec.table} WHERE {spec.bucket_column} > ?"
            f" GROUP BY {spec.bucket_column} ORDER BY {spec.bucket_column} LIMIT ?",
            (-(2**62) if after is None else after, limit),
        )
        return [(int(bucket), int(count)) for bucket, count in rows]

    def import_rollups(
        self,
        granularity: transfer.Granularity,
        groups: Sequence[transfer.RollupGroup],
        progress: transfer.CopyProgress,
    ) -> int:
        """Append the groups as partial rows of their buckets, marked for compaction."""
        spec = transfer.rollup_of(granularity)
        transaction: Transaction = self._transaction
        with transaction() as conn:
            append_partial_rows(conn, self._writer, spec, groups)
            _save(conn, progress)
        return len(groups)

    # -- re-pricing audit and revenue -------------------------------------------------------

    def export_reprice_audits(self, after: int | None, limit: int) -> list[transfer.ExportedAudit]:
        """Audit entries with their rows, by id."""
        conn = self._reader()
        audits = [
            RepriceAudit(*values)
            for values in conn.execute(
                f"SELECT {_AUDIT_COLUMNS} FROM reprice_audit WHERE id > ? ORDER BY id LIMIT ?",
                (-1 if after is None else after, limit),
            )
        ]
        exported: list[transfer.ExportedAudit] = []
        for audit in audits:
            rows = conn.execute(
                f"SELECT {_AUDIT_ROW_COLUMNS} FROM reprice_audit_rows WHERE audit_id = ? ORDER BY rowid",
                (audit.id,),
            ).fetchall()
            exported.append(transfer.ExportedAudit(audit, [tuple(row) for row in rows]))
        return exported

    def import_reprice_audits(
        self, audits: Sequence[transfer.ExportedAudit], progress: transfer.CopyProgress
    ) -> int:
        """Insert the entries (and their rows) whose id is not used yet."""
        transaction: Transaction = self._transaction
        inserted = 0
        with transaction() as conn:
            for entry in audits:
                audit = entry.audit
                cursor = conn.execute(
                    f"INSERT INTO reprice_audit ({_AUDIT_COLUMNS}) VALUES ({','.join('?' * 10)})"
                    " ON CONFLICT DO NOTHING",
                    (
                        audit.id,
                        audit.applied_at_ns,
                        audit.reason,
                        audit.window_start_ns,
                        audit.window_end_ns,
                        audit.rows_changed,
                        audit.cost_before_nano_usd,
                        audit.cost_after_nano_usd,
                        audit.price_source,
                        audit.details,
                    ),
                )
                if cursor.rowcount != 1:
                    continue
                conn.executemany(
                    f"INSERT INTO reprice_audit_rows (audit_id, {_AUDIT_ROW_COLUMNS}) VALUES ({','.join('?' * 8)})",
                    [(audit.id, *row) for row in entry.rows],
                )
                inserted += 1
            _save(conn, progress)
        return inserted

    def export_revenue(self) -> list[transfer.RevenueRecord]:
        """Every revenue row with its import time."""
        rows = self._reader().execute(
            "SELECT tenant_id, period, start_ns, end_ns, revenue_nano_usd, imported_at_ns FROM revenue"
            " ORDER BY tenant_id, period"
        )
        return [(str(t), str(p), int(s), int(e), int(r), int(i)) for t, p, s, e, r, i in rows]

    def import_revenue(self, rows: Sequence[transfer.RevenueRecord], progress: transfer.CopyProgress) -> int:
        """Insert the rows whose tenant and period are not present yet."""
        return self._insert_new(
            "INSERT INTO revenue VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING", rows, progress
        )

    # -- budget ledger and alerts -----------------------------------------------------------

    def export_state_rows(
        self, table: transfer.StateTable, after: transfer.StateKey | None, limit: int
    ) -> list[transfer.StateRow]:
        """Rows of a state table by primary key."""
        table = transfer.state_table(table)
        columns, key = ", ".join(table.columns), ", ".join(table.key)
        where = "" if after is None else f" WHERE ({key}) > ({', '.join('?' * len(after))})"
        rows = self._reader().execute(
            f"SELECT {columns} FROM {table.name}{where} ORDER BY {key} LIMIT ?", (*(after or ()), limit)
        )
        return [tuple(row) for row in rows]

    def import_state_rows(
        self, table: transfer.StateTable, rows: Sequence[transfer.StateRow], progress: transfer.CopyProgress
    ) -> int:
        """Insert the rows whose key is not present yet."""
        table = transfer.state_table(table)
        return self._insert_new(
            f"INSERT INTO {table.name} ({', '.join(table.columns)})"
            f" VALUES ({', '.join('?' * len(table.columns))}) ON CONFLICT DO NOTHING",
            rows,
            progress,
        )

    def export_alerts(self, after: int | None, limit: int) -> list[transfer.ExportedAlert]:
        """Events with their history and deliveries, by id."""
        conn = self._reader()
        events = conn.execute(
            f"SELECT {EVENT_COLUMNS} FROM alert_events WHERE id > ? ORDER BY id LIMIT ?",
            (-1 if after is None else after, limit),
        ).fetchall()
        if not events:
            return []
        span = (int(events[0][0]), int(events[-1][0]))
        return transfer.assemble_alerts(
            events,
            conn.execute(
                f"SELECT event_id, {_HISTORY_COLUMNS} FROM alert_history WHERE event_id BETWEEN ? AND ?"
                " ORDER BY id",
                span,
            ),
            conn.execute(
                f"SELECT event_id, {_DELIVERY_COLUMNS} FROM alert_outbox WHERE event_id BETWEEN ? AND ?"
                " ORDER BY event_id, channel",
                span,
            ),
        )

    def import_alerts(self, alerts: Sequence[transfer.ExportedAlert], progress: transfer.CopyProgress) -> int:
        """Insert the events whose id and dedupe key are not used yet, each with its
        history and deliveries."""
        transaction: Transaction = self._transaction
        inserted = 0
        with transaction() as conn:
            for alert in alerts:
                cursor = conn.execute(
                    f"INSERT INTO alert_events ({EVENT_COLUMNS}) VALUES ({','.join('?' * _EVENT_COUNT)})"
                    " ON CONFLICT DO NOTHING",
                    alert.event,
                )
                if cursor.rowcount != 1:
                    continue
                conn.executemany(
                    f"INSERT INTO alert_history (event_id, {_HISTORY_COLUMNS}) VALUES (?, ?, ?, ?, ?)",
                    [(alert.id, *entry) for entry in alert.history],
                )
                conn.executemany(
                    f"INSERT INTO alert_outbox (event_id, {_DELIVERY_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [(alert.id, *delivery) for delivery in alert.deliveries],
                )
                inserted += 1
            _save(conn, progress)
        return inserted
