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
from typing import Final

from .. import transfer
from ..rollups import RollupSpec
from ..transfer_base import TransferBase, TransferSQL
from .analysis_writes import append_partial_rows
from .migration_db import MigrationDB
from .schema import MIGRATIONS
from .writer import RowWriter

__all__ = ["SQLiteTransferMixin"]

_SQL: Final = TransferSQL(
    mark="?",
    insert_logical_requests="INSERT INTO logical_requests VALUES (?, ?) ON CONFLICT DO NOTHING",
    insert_provider_calls="INSERT INTO provider_calls VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
    row_order="rowid",
)


@MIGRATIONS(name="m_copy_001_copy_progress")
def _m_copy_progress(db: MigrationDB) -> None:
    """How far ``spanmeter store copy`` got, per part and source: kept in the target, so a
    copy resumes after an interruption and a repeated one copies nothing twice."""
    db.execute(
        "CREATE TABLE copy_progress (part TEXT NOT NULL, source TEXT NOT NULL, position TEXT NOT NULL,"
        " rows INTEGER NOT NULL, done INTEGER NOT NULL, PRIMARY KEY (part, source)) WITHOUT ROWID"
    )


class SQLiteTransferMixin(TransferBase):
    """The :class:`~spanmeter.store.transfer.TransferStore` methods
    (:class:`~spanmeter.store.transfer_base.TransferBase`'s) on SQLite; the host class
    (:class:`~spanmeter.store.sqlite.SQLiteStore`) provides the connections."""

    _transfer_sql = _SQL
    _writer: RowWriter

    def _insert_each(self, conn: sqlite3.Connection, statement: str, rows: Sequence[Sequence[object]]) -> int:
        before = conn.total_changes
        conn.executemany(statement, rows)
        return conn.total_changes - before

    def _append_rollups(
        self, conn: sqlite3.Connection, spec: RollupSpec, groups: Sequence[transfer.RollupGroup]
    ) -> None:
        """Partial rows (positive ``seq``), their buckets marked dirty for compaction."""
        append_partial_rows(conn, self._writer, spec, groups)
