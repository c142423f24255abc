"""The audit trail in the SQLite store (:mod:`spanmeter.store.audit_log`)."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from typing import Any, Final

from ..audit_log import (
    COLUMNS,
    DEFAULT_LIMIT,
    AuditEvent,
    action_filter,
    check_limit,
    event_from_row,
    event_row,
)
from ..conditions import where_clause
from .migration_db import MigrationDB
from .schema import MIGRATIONS

__all__ = ["SQLiteAuditMixin", "insert_audit_event"]

_INSERT: Final = f"INSERT INTO audit_log ({COLUMNS}) VALUES (?, ?, ?, ?, ?)"


@MIGRATIONS(name="m_audit_001_audit_log")
def _m_audit_log(db: MigrationDB) -> None:
    """The audit trail: who did what to what, and when; read newest first, by time."""
    db.execute(
        "CREATE TABLE audit_log (id INTEGER PRIMARY KEY, at_ns INTEGER NOT NULL, actor TEXT NOT NULL,"
        " action TEXT NOT NULL, target TEXT NOT NULL, detail TEXT NOT NULL)"
    )
    db.execute("CREATE INDEX audit_log_at ON audit_log (at_ns)")


def insert_audit_event(conn: sqlite3.Connection, event: AuditEvent) -> AuditEvent:
    """Record ``event`` inside the caller's transaction; the event with its id."""
    cursor = conn.execute(_INSERT, event_row(event))
    return replace(event, id=int(cursor.lastrowid or 0))


class SQLiteAuditMixin:
    """The :class:`~spanmeter.store.audit_log.AuditLog` methods; the host class
    (:class:`~spanmeter.store.sqlite.SQLiteStore`) provides the connections."""

    def _reader(self) -> sqlite3.Connection:  # provided by SQLiteStore
        raise NotImplementedError

    def _transaction(self) -> Any:  # provided by SQLiteStore (a Transaction)
        raise NotImplementedError

    def record_audit_event(self, event: AuditEvent) -> AuditEvent:
        """Store one entry in a transaction of its own."""
        with self._transaction() as conn:
            return insert_audit_event(conn, event)

    def audit_events(
        self, *, since_ns: int | None = None, action: str | None = None, limit: int = DEFAULT_LIMIT
    ) -> list[AuditEvent]:
        """Entries newest first (see :class:`~spanmeter.store.audit_log.AuditLog`)."""
        prefix, value = action_filter(action)
        where, params = where_clause(
            ("at_ns >= ?", since_ns), ("action LIKE ? ESCAPE '\\'" if prefix else "action = ?", value)
        )
        rows = self._reader().execute(
            f"SELECT id, {COLUMNS} FROM audit_log{where} ORDER BY at_ns DESC, id DESC LIMIT ?",
            [*params, check_limit(limit)],
        )
        return [event_from_row(row) for row in rows]
