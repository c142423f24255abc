"""Export and import for ``spanmeter store copy`` on PostgreSQL (see
:mod:`spanmeter.store.transfer`).

Imports bypass the write path: raw rows are ``COPY``-ed into a staging table and moved with
``ON CONFLICT DO NOTHING`` on the delivery key, rollup groups are appended as partial rows
(which queries sum and compaction merges like any other), and every import records its
progress in ``copy_progress`` inside the same transaction. Audit entries and alert events
keep their ids, so each identity sequence is moved past the highest one afterwards. Copied
deliveries are not claimed by any replica: a pending one is due to whichever takes it first.
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from contextlib import AbstractContextManager
from typing import Any, Final, cast

import psycopg

from ...timeunits import NS_PER_DAY
from .. import transfer
from ..alert_rows import EVENT_COLUMNS
from ..analysis_types import RepriceAudit
from ..repricing import AUDIT_FIELDS
from ..rollups import MEASURES
from ..rows import FIELD_NAMES, RowValues
from .sql_text import sql

__all__ = ["PostgresTransferMixin"]

Conn = psycopg.Connection[tuple[Any, ...]]

_COLUMNS: Final = ", ".join(FIELD_NAMES)
_STAGE: Final = (
    f"CREATE TEMP TABLE IF NOT EXISTS requests_import ON COMMIT DELETE ROWS AS"
    f" SELECT {_COLUMNS} FROM requests WITH NO DATA"
)
_MOVE: Final = (
    f"INSERT INTO requests ({_COLUMNS}) SELECT {_COLUMNS} FROM requests_import"
    " ON CONFLICT (start_time_ns, span_id, trace_id) DO NOTHING"
)
_BINARY: Final = (FIELD_NAMES.index("trace_id"), FIELD_NAMES.index("span_id"))
_AUDIT_ROW_COLUMNS: Final = (
    "start_time_ns, span_id, trace_id, old_cost_nano_usd, new_cost_nano_usd, old_status, new_status"
)
_LOWEST: Final = -(2**62)
_HISTORY_COLUMNS: Final = "at_ns, state, actor, note"
_DELIVERY_COLUMNS: Final = "channel, state, attempts, next_attempt_ns, last_error, delivered_at_ns"
_EVENT_COUNT: Final = len(EVENT_COLUMNS.split(","))


def _save(conn: Conn, progress: transfer.CopyProgress) -> None:
    conn.execute(
        "INSERT INTO copy_progress VALUES (%s, %s, %s, %s, %s) ON CONFLICT (part, source) DO UPDATE SET"
        " position = excluded.position, rows = excluded.rows, done = excluded.done",
        (progress.part, progress.source, progress.position, progress.rows, progress.done),
    )


def _plain(value: object) -> object:
    """A column value as SQLite would return it (``bytea`` as ``bytes``)."""
    return bytes(cast(Any, value)) if isinstance(value, memoryview) else value


def _exported_row(values: Sequence[Any]) -> RowValues:
    row = list(values)
    for index in _BINARY:
        row[index] = bytes(row[index])
    return tuple(row)


class PostgresTransferMixin:
    """The :class:`~spanmeter.store.transfer.TransferStore` methods; the host class
    (:class:`~spanmeter.store.postgres.store.PostgresStore`) provides the connections."""

    def _reader(self) -> AbstractContextManager[Conn]:  # provided by PostgresStore
        raise NotImplementedError

    def _transaction(self) -> AbstractContextManager[Conn]:  # provided by PostgresStore
        raise NotImplementedError

    def _ensure_days(self, days: Generator[int, None, None] | Sequence[int]) -> None:  # PostgresStore
        raise NotImplementedError

    def copy_progress(self, source: str) -> dict[str, transfer.CopyProgress]:
        """The recorded progress of every part copied from ``source``."""
        with self._reader() as conn:
            rows = conn.execute(
                "SELECT part, source, position, rows, done FROM copy_progress WHERE source = %s", (source,)
            ).fetchall()
        return {
            part: transfer.CopyProgress(part, src, pos, int(n), bool(done))
            for part, src, pos, n, done in rows
        }

    # -- logical requests and provider calls ----------------------------------------------

    def export_logical_requests(self, after: str | None, limit: int) -> list[transfer.LogicalKey]:
        """Logical-request keys by external id."""
        with self._reader() as conn:
            if after is None:
                rows = conn.execute(
                    "SELECT external_request_id, first_start_ns FROM logical_requests"
                    " ORDER BY external_request_id LIMIT %s",
                    (limit,),
                ).fetchall()
            else:
                rows = conn.execute(
                    "SELECT external_request_id, first_start_ns FROM logical_requests"
                    " WHERE external_request_id > %s ORDER BY external_request_id LIMIT %s",
                    (after, limit),
                ).fetchall()
        return [(str(key), int(first)) for key, first in rows]

    def import_logical_requests(
        self, keys: Sequence[transfer.LogicalKey], progress: transfer.CopyProgress
    ) -> int:
        """Insert the keys not known yet."""
        with self._transaction() as conn:
            inserted = 0
            if keys:
                ids, firsts = zip(*keys, strict=True)
                inserted = conn.execute(
                    "INSERT INTO logical_requests SELECT * FROM unnest(%s::text[], %s::bigint[])"
                    " ON CONFLICT DO NOTHING",
                    (list(ids), list(firsts)),
                ).rowcount
            _save(conn, progress)
        return max(inserted, 0)

    def export_provider_calls(
        self, after: tuple[int, bytes] | None, limit: int
    ) -> list[transfer.ProviderCall]:
        """Provider-call claims by ``(minute, call_key)``."""
        minute, key = after if after is not None else (_LOWEST, b"")
        with self._reader() as conn:
            rows = conn.execute(
                "SELECT minute, call_key, trace_id, span_id FROM provider_calls"
                " WHERE (minute, call_key) > (%s, %s) ORDER BY minute, call_key LIMIT %s",
                (minute, key, limit),
            ).fetchall()
        return [(int(m), bytes(k), bytes(t), bytes(s)) for m, k, t, s in rows]

    def import_provider_calls(
        self, calls: Sequence[transfer.ProviderCall], progress: transfer.CopyProgress
    ) -> int:
        """Insert the claims not known yet."""
        with self._transaction() as conn:
            inserted = 0
            if calls:
                columns = [list(column) for column in zip(*calls, strict=True)]
                inserted = conn.execute(
                    "INSERT INTO provider_calls SELECT * FROM"
                    " unnest(%s::bigint[], %s::bytea[], %s::bytea[], %s::bytea[]) ON CONFLICT DO NOTHING",
                    columns,
                ).rowcount
            _save(conn, progress)
        return max(inserted, 0)

    # -- raw rows --------------------------------------------------------------------------

    def export_requests(self, after: transfer.DeliveryKey | None, limit: int) -> list[RowValues]:
        """Raw rows by delivery key (the unique index's order)."""
        start, span_id, trace_id = after if after is not None else (_LOWEST, b"", b"")
        with self._reader() as conn:
            rows = conn.execute(
                sql(
                    f"SELECT {_COLUMNS} FROM requests WHERE (start_time_ns, span_id, trace_id) > (%s, %s, %s)"
                    " ORDER BY start_time_ns, span_id, trace_id LIMIT %s"
                ),
                (start, span_id, trace_id, limit),
            ).fetchall()
        return [_exported_row(values) for values in rows]

    def import_requests(self, rows: Sequence[RowValues], progress: transfer.CopyProgress) -> int:
        """Insert the rows not stored yet, as they are (their day partitions made first)."""
        start_at = FIELD_NAMES.index("start_time_ns")
        self._ensure_days([row[start_at] // NS_PER_DAY for row in rows if row[start_at] > 0])
        with self._transaction() as conn:
            inserted = 0
            if rows:
                conn.execute(sql(_STAGE))
                with conn.cursor().copy(sql(f"COPY requests_import ({_COLUMNS}) FROM STDIN")) as copy:
                    for row in rows:
                        copy.write_row(row)
                inserted = conn.execute(sql(_MOVE)).rowcount
                conn.execute("TRUNCATE requests_import")
            _save(conn, progress)
        return max(inserted, 0)

    # -- rollups ---------------------------------------------------------------------------

    def rollup_buckets(
        self, granularity: transfer.Granularity, after: int | None, limit: int
    ) -> list[tuple[int, int]]:
        """Buckets holding rollup rows, with their row counts, by bucket."""
        spec = transfer.rollup_of(granularity)
        with self._reader() as conn:
            rows = conn.execute(
                sql(
                    f"SELECT {spec.bucket_column}, count(*) FROM {spec.table} WHERE {spec.bucket_column} > %s"
                    f" GROUP BY {spec.bucket_column} ORDER BY {spec.bucket_column} LIMIT %s"
                ),
                (_LOWEST if after is None else after, limit),
            ).fetchall()
        return [(int(bucket), int(count)) for bucket, count in rows]

    def import_rollups(
        self,
        granularity: transfer.Granularity,
        groups: Sequence[transfer.RollupGroup],
        progress: transfer.CopyProgress,
    ) -> int:
        """Append the groups as partial rows of their buckets."""
        spec = transfer.rollup_of(granularity)
        columns = ", ".join((spec.bucket_column, *spec.dimensions, *MEASURES))
        with self._transaction() as conn:
            if groups:
                with conn.cursor().copy(sql(f"COPY {spec.table} ({columns}) FROM STDIN")) as copy:
                    for group in groups:
                        copy.write_row(group)
            _save(conn, progress)
        return len(groups)

    # -- re-pricing audit and revenue -------------------------------------------------------

    def export_reprice_audits(self, after: int | None, limit: int) -> list[transfer.ExportedAudit]:
        """Audit entries with their rows, by id."""
        columns = ", ".join(("id", *AUDIT_FIELDS))
        with self._reader() as conn:
            audits = [
                RepriceAudit(*values)
                for values in conn.execute(
                    sql(f"SELECT {columns} FROM reprice_audit WHERE id > %s ORDER BY id LIMIT %s"),
                    (-1 if after is None else after, limit),
                )
            ]
            exported: list[transfer.ExportedAudit] = []
            for audit in audits:
                rows = conn.execute(
                    sql(
                        f"SELECT {_AUDIT_ROW_COLUMNS} FROM reprice_audit_rows WHERE audit_id = %s"
                        " ORDER BY ctid"
                    ),
                    (audit.id,),
                ).fetchall()
                exported.append(
                    transfer.ExportedAudit(
                        audit, [(row[0], bytes(row[1]), bytes(row[2]), *row[3:]) for row in rows]
                    )
                )
        return exported

    def import_reprice_audits(
        self, audits: Sequence[transfer.ExportedAudit], progress: transfer.CopyProgress
    ) -> int:
        """Insert the entries (and their rows) whose id is not used yet; the id sequence then
        continues after the highest id."""
        columns = ", ".join(("id", *AUDIT_FIELDS))
        inserted = 0
        with self._transaction() as conn:
            for entry in audits:
                audit = entry.audit
                added = conn.execute(
                    sql(
                        f"INSERT INTO reprice_audit ({columns}) VALUES ({', '.join(['%s'] * (len(AUDIT_FIELDS) + 1))})"
                        " ON CONFLICT (id) DO NOTHING"
                    ),
                    (audit.id, *(getattr(audit, name) for name in AUDIT_FIELDS)),
                ).rowcount
                if added != 1:
                    continue
                with conn.cursor() as cursor:
                    cursor.executemany(
                        sql(
                            f"INSERT INTO reprice_audit_rows (audit_id, {_AUDIT_ROW_COLUMNS})"
                            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
                        ),
                        [(audit.id, *row) for row in entry.rows],
                    )
                inserted += 1
            if inserted:
                conn.execute(
                    "SELECT setval(pg_get_serial_sequence('reprice_audit', 'id'),"
                    " (SELECT max(id) FROM reprice_audit))"
                )
            _save(conn, progress)
        return inserted

    def export_revenue(self) -> list[transfer.RevenueRecord]:
        """Every revenue row with its import time."""
        with self._reader() as conn:
            rows = conn.execute(
                "SELECT tenant_id, period, start_ns, end_ns, revenue_nano_usd, imported_at_ns FROM revenue"
                " ORDER BY tenant_id, period"
            ).fetchall()
        return [(str(t), str(p), int(s), int(e), int(r), int(i)) for t, p, s, e, r, i in rows]

    def import_revenue(self, rows: Sequence[transfer.RevenueRecord], progress: transfer.CopyProgress) -> int:
        """Insert the rows whose tenant and period are not present yet."""
        inserted = 0
        with self._transaction() as conn:
            for row in rows:
                inserted += max(
                    conn.execute(
                        "INSERT INTO revenue VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING", row
                    ).rowcount,
                    0,
                )
            _save(conn, progress)
        return inserted

    # -- budget ledger and alerts -----------------------------------------------------------

    def export_state_rows(
        self, table: transfer.StateTable, after: transfer.StateKey | None, limit: int
    ) -> list[transfer.StateRow]:
        """Rows of a state table by primary key."""
        table = transfer.state_table(table)
        columns, key = ", ".join(table.columns), ", ".join(table.key)
        where = "" if after is None else f" WHERE ({key}) > ({', '.join(['%s'] * len(after))})"
        with self._reader() as conn:
            rows = conn.execute(
                sql(f"SELECT {columns} FROM {table.name}{where} ORDER BY {key} LIMIT %s"),
                (*(after or ()), limit),
            ).fetchall()
        return [tuple(_plain(value) for value in row) for row in rows]

    def import_state_rows(
        self, table: transfer.StateTable, rows: Sequence[transfer.StateRow], progress: transfer.CopyProgress
    ) -> int:
        """Insert the rows whose key is not present yet."""
        table = transfer.state_table(table)
        inserted = 0
        with self._transaction() as conn:
            if rows:
                columns = ", ".join(table.columns)
                with conn.cursor() as cursor:
                    cursor.executemany(
                        sql(
                            f"INSERT INTO {table.name} ({columns})"
                            f" VALUES ({', '.join(['%s'] * len(table.columns))}) ON CONFLICT DO NOTHING"
                        ),
                        rows,
                    )
                    inserted = cursor.rowcount
            _save(conn, progress)
        return max(inserted, 0)

    def export_alerts(self, after: int | None, limit: int) -> list[transfer.ExportedAlert]:
        """Events with their history and deliveries, by id."""
        with self._reader() as conn:
            events = conn.execute(
                sql(f"SELECT {EVENT_COLUMNS} FROM alert_events WHERE id > %s ORDER BY id LIMIT %s"),
                (-1 if after is None else after, limit),
            ).fetchall()
            if not events:
                return []
            span = (int(events[0][0]), int(events[-1][0]))
            return transfer.assemble_alerts(
                events,
                conn.execute(
                    sql(
                        f"SELECT event_id, {_HISTORY_COLUMNS} FROM alert_history"
                        " WHERE event_id BETWEEN %s AND %s ORDER BY id"
                    ),
                    span,
                ),
                conn.execute(
                    sql(
                        f"SELECT event_id, {_DELIVERY_COLUMNS} FROM alert_outbox"
                        " WHERE event_id BETWEEN %s AND %s ORDER BY event_id, channel"
                    ),
                    span,
                ),
            )

    def import_alerts(self, alerts: Sequence[transfer.ExportedAlert], progress: transfer.CopyProgress) -> int:
        """Insert the events whose id and dedupe key are not used yet, each with its
        history and deliveries; the event id sequence then continues after the highest id."""
        inserted = 0
        with self._transaction() as conn:
            for alert in alerts:
                added = conn.execute(
                    sql(
                        f"INSERT INTO alert_events ({EVENT_COLUMNS})"
                        f" VALUES ({', '.join(['%s'] * _EVENT_COUNT)}) ON CONFLICT DO NOTHING"
                    ),
                    alert.event,
                ).rowcount
                if added != 1:
                    continue
                with conn.cursor() as cursor:
                    if alert.history:
                        cursor.executemany(
                            sql(
                                f"INSERT INTO alert_history (event_id, {_HISTORY_COLUMNS})"
                                " VALUES (%s, %s, %s, %s, %s)"
                            ),
                            [(alert.id, *entry) for entry in alert.history],
                        )
                    if alert.deliveries:
                        cursor.executemany(
                            sql(
                                f"INSERT INTO alert_outbox (event_id, {_DELIVERY_COLUMNS})"
                                " VALUES (%s, %s, %s, %s, %s, %s, %s)"
                            ),
                            [(alert.id, *delivery) for delivery in alert.deliveries],
                        )
                inserted += 1
            if inserted:
                conn.execute(
                    "SELECT setval(pg_get_serial_sequence('alert_events', 'id'),"
                    " (SELECT max(id) FROM alert_events))"
                )
            _save(conn, progress)
        return inserted
