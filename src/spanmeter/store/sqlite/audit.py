"""The audit trail in the SQLite store (:mod:`spanmeter.store.audit_log`)."""

from __future__ import annotations

import sqlite3
from typing import Final

from .. import audit_store
from ..audit_log import AuditEvent
from ..audit_store import AuditBase
from .migration_db import MigrationDB
from .schema import MIGRATIONS

__all__ = ["SQLiteAuditMixin", "insert_audit_event"]

_MARK: Final = "?"


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
    return audit_store.insert_audit_event(conn, _MARK, event)


class SQLiteAuditMixin(AuditBase):
    """The :class:`~spanmeter.store.audit_log.AuditLog` methods
    (:class:`~spanmeter.store.audit_store.AuditBase`'s); the host class
    (:class:`~spanmeter.store.sqlite.SQLiteStore`) provides the connections."""

    _mark = _MARK
