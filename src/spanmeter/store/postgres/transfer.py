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
from typing import Any, Final

import psycopg

from ...timeunits import NS_PER_DAY
from .. import transfer
from ..rollups import MEASURES, RollupSpec
from ..rows import FIELD_NAMES, RowValues
from ..transfer_base import TransferBase, TransferSQL
from .sql_text import sql
from .staging import COPY_STAGE, MOVE, STAGE

__all__ = ["PostgresTransferMixin"]

Conn = psycopg.Connection[tuple[Any, ...]]

_SQL: Final = TransferSQL(
    mark="%s",
    insert_logical_requests=(
        "INSERT INTO logical_requests SELECT * FROM unnest(%s::text[], %s::bigint[]) ON CONFLICT DO NOTHING"
    ),
    insert_provider_calls=(
        "INSERT INTO provider_calls SELECT * FROM"
        " unnest(%s::bigint[], %s::bytea[], %s::bytea[], %s::bytea[]) ON CONFLICT DO NOTHING"
    ),
    row_order="ctid",
)
_START: Final = FIELD_NAMES.index("start_time_ns")


class PostgresTransferMixin(TransferBase):
    """The :class:`~spanmeter.store.transfer.TransferStore` methods
    (:class:`~spanmeter.store.transfer_base.TransferBase`'s) on PostgreSQL; the host class
    (:class:`~spanmeter.store.postgres.store.PostgresStore`) provides the connections."""

    _transfer_sql = _SQL

    def _ensure_days(self, days: Generator[int, None, None] | Sequence[int]) -> None:  # PostgresStore
        raise NotImplementedError

    def _transaction(self) -> AbstractContextManager[Conn]:  # provided by PostgresStore
        raise NotImplementedError

    def _insert_each(self, conn: Conn, statement: str, rows: Sequence[Sequence[object]]) -> int:
        with conn.cursor() as cursor:
            cursor.executemany(sql(statement), rows)
            return cursor.rowcount

    def _insert_bulk(self, conn: Conn, statement: str, rows: Sequence[Sequence[object]]) -> int:
        """One statement, the rows passed as one array per column (``unnest``)."""
        return conn.execute(sql(statement), [list(column) for column in zip(*rows, strict=True)]).rowcount

    def _insert_requests(self, conn: Conn, rows: Sequence[RowValues]) -> int:
        """``COPY`` into the staging table, then moved on the delivery key."""
        conn.execute(sql(STAGE))
        with conn.cursor().copy(sql(COPY_STAGE)) as copy:
            for row in rows:
                copy.write_row(row)
        inserted = conn.execute(sql(MOVE)).rowcount
        conn.execute("TRUNCATE requests_stage")
        return inserted

    def _append_rollups(self, conn: Conn, spec: RollupSpec, groups: Sequence[transfer.RollupGroup]) -> None:
        """``COPY``: partial rows, which queries sum and compaction merges like any other."""
        columns = ", ".join((spec.bucket_column, *spec.dimensions, *MEASURES))
        with conn.cursor().copy(sql(f"COPY {spec.table} ({columns}) FROM STDIN")) as copy:
            for group in groups:
                copy.write_row(group)

    def _ids_kept(self, conn: Conn, table: str) -> None:
        """Move the table's identity sequence past the highest id."""
        conn.execute(
            sql(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")
        )

    def import_requests(self, rows: Sequence[RowValues], progress: transfer.CopyProgress) -> int:
        """Insert the rows not stored yet, as they are (their day partitions made first)."""
        self._ensure_days([row[_START] // NS_PER_DAY for row in rows if row[_START] > 0])
        return super().import_requests(rows, progress)
