"""The audit trail's statements around a backend's connections (:mod:`spanmeter.store.audit_log`
holds its rules).

How an entry is written (inside the caller's transaction, its id read back) and how the trail
is read (newest first, filtered by time and action) is the same on every backend; a backend
gives its parameter marker and its connections.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import replace
from typing import Any

from .audit_log import (
    COLUMNS,
    DEFAULT_LIMIT,
    AuditEvent,
    action_filter,
    check_limit,
    event_from_row,
    event_row,
)
from .conditions import where_clause

__all__ = ["AuditBase", "insert_audit_event"]


def insert_audit_event(conn: Any, mark: str, event: AuditEvent) -> AuditEvent:
    """Record ``event`` inside the caller's transaction (``mark``: the backend's parameter
    marker); the event with its id."""
    marks = ", ".join([mark] * len(COLUMNS.split(",")))
    row = conn.execute(
        f"INSERT INTO audit_log ({COLUMNS}) VALUES ({marks}) RETURNING id", event_row(event)
    ).fetchone()
    return replace(event, id=None if row is None else int(row[0]))


class AuditBase:
    """The :class:`~spanmeter.store.audit_log.AuditLog` methods on the host's connections.

    The host sets ``_mark`` and implements :meth:`_reading` and :meth:`_short_transaction`.
    """

    _mark: str
    """The parameter marker (``?``, ``%s``)."""

    def _reading(self) -> AbstractContextManager[Any]:
        """A connection for one read."""
        raise NotImplementedError

    def _short_transaction(self) -> AbstractContextManager[Any]:
        """One short write transaction of its own."""
        raise NotImplementedError

    def record_audit_event(self, event: AuditEvent) -> AuditEvent:
        """Store one entry in a transaction of its own."""
        with self._short_transaction() as conn:
            return insert_audit_event(conn, self._mark, event)

    def audit_events(
        self, *, since_ns: int | None = None, action: str | None = None, limit: int = DEFAULT_LIMIT
    ) -> list[AuditEvent]:
        """Entries newest first (see :class:`~spanmeter.store.audit_log.AuditLog`)."""
        mark = self._mark
        prefix, value = action_filter(action)
        where, params = where_clause(
            (f"at_ns >= {mark}", since_ns),
            (f"action LIKE {mark} ESCAPE '\\'" if prefix else f"action = {mark}", value),
        )
        with self._reading() as conn:
            rows = conn.execute(
                f"SELECT id, {COLUMNS} FROM audit_log{where} ORDER BY at_ns DESC, id DESC LIMIT {mark}",
                [*params, check_limit(limit)],
            ).fetchall()
        return [event_from_row(row) for row in rows]
