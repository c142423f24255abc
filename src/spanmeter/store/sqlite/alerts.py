"""The alerts inbox, its history, the delivery outbox and rule episodes, in SQLite: the
statements of :class:`~spanmeter.store.alert_store.AlertStore`, and the steps SQLite takes its
own way (an id list as ``IN (?, ...)``, ended windows resolved by id)."""

from __future__ import annotations

import sqlite3
from typing import Final

from ..alert_rows import ENDED_WINDOW_NOTE, SYSTEM_ACTOR, pending_deliveries
from ..alert_store import AlertSQL, AlertStore
from ..audit_log import AuditEvent
from ..inbox import Delivery
from .audit import insert_audit_event

__all__ = ["ALERTS", "SQLiteAlerts"]

_SQL: Final = AlertSQL(
    mark="?",
    insert_event=(
        "INSERT INTO alert_events (dedupe_key, kind, severity, source, subject, title, state,"
        " occurred_at_ns, updated_at_ns, window_start_ns, window_end_ns, details)"
        " VALUES (?, ?, ?, ?, ?, ?, 'open', ?, ?, ?, ?, ?) ON CONFLICT (dedupe_key) DO NOTHING RETURNING id"
    ),
    insert_history="INSERT INTO alert_history (event_id, at_ns, state, actor, note) VALUES (?, ?, ?, ?, ?)",
    insert_outbox=(
        "INSERT OR IGNORE INTO alert_outbox (event_id, channel, state, attempts, next_attempt_ns)"
        " VALUES (?, ?, 'pending', 0, ?)"
    ),
    select_state="SELECT state FROM alert_events WHERE id = ?",
    update_state="UPDATE alert_events SET state = ?, updated_at_ns = ? WHERE id = ?",
    open_budget_episodes=(
        "SELECT id FROM alert_events WHERE state IN ('open', 'acknowledged') AND source = ?"
        " AND subject = ? AND window_end_ns IS NULL AND kind LIKE 'budget.%'"
    ),
    set_context="UPDATE alert_events SET context = ?, updated_at_ns = ? WHERE id = ?",
    open_rule_subjects="SELECT subject, event_id FROM alert_rule_state WHERE rule = ?",
    event_by_key="SELECT id FROM alert_events WHERE dedupe_key = ?",
    insert_rule_state="INSERT INTO alert_rule_state (rule, subject, event_id, since_ns) VALUES (?, ?, ?, ?)",
    delete_rule_state="DELETE FROM alert_rule_state WHERE rule = ? AND subject = ?",
    record_delivery=(
        "UPDATE alert_outbox SET state = ?, attempts = attempts + 1, next_attempt_ns = ?,"
        " last_error = ?, delivered_at_ns = ? WHERE event_id = ? AND channel = ?"
    ),
)


class SQLiteAlerts(AlertStore):
    """The alert statements on a SQLite connection (one writer: nothing to lock or claim)."""

    def _ids_condition(self, ids: list[int]) -> tuple[str, list[int]]:
        return f"IN ({','.join('?' * len(ids))})", ids

    def record_audit(self, conn: sqlite3.Connection, event: AuditEvent) -> None:
        insert_audit_event(conn, event)

    def resolve_ended_windows(self, conn: sqlite3.Connection, now_ns: int) -> int:
        """Resolve unresolved budget events whose window ended at or before ``now_ns``."""
        ids = [
            int(event_id)
            for (event_id,) in conn.execute(
                "SELECT id FROM alert_events WHERE state IN ('open', 'acknowledged')"
                " AND window_end_ns <= ? AND kind LIKE 'budget.%'",
                (now_ns,),
            )
        ]
        if not ids:
            return 0
        conn.executemany(
            "UPDATE alert_events SET state = 'resolved', updated_at_ns = ? WHERE id = ?",
            [(now_ns, event_id) for event_id in ids],
        )
        self.history(
            conn, [(event_id, now_ns, "resolved", SYSTEM_ACTOR, ENDED_WINDOW_NOTE) for event_id in ids]
        )
        return len(ids)

    def due_deliveries(self, conn: sqlite3.Connection, now_ns: int, limit: int) -> list[Delivery]:
        """Pending deliveries due by ``now_ns``, oldest event first."""
        return pending_deliveries(
            conn.execute(
                "SELECT event_id, channel, attempts, next_attempt_ns, last_error FROM alert_outbox"
                " WHERE state = 'pending' AND next_attempt_ns <= ? ORDER BY event_id, channel LIMIT ?",
                (now_ns, limit),
            )
        )


ALERTS: Final = SQLiteAlerts(_SQL)
"""The alerts of every SQLite store (the statements hold no state)."""
