"""The alerts inbox, its history, the delivery outbox and rule episodes, on PostgreSQL,
shared by every replica.

What several replicas need beyond SQLite's single writer (the rules themselves are
:mod:`spanmeter.store.alert_rows`, shared with SQLite):

* an event is inserted with ``ON CONFLICT (dedupe_key) DO NOTHING``: two replicas raising
  the same alert at once store it once, and queue its deliveries once;
* due deliveries are *claimed*: ``SELECT ... FOR UPDATE SKIP LOCKED`` picks rows no other
  replica is claiming, and ``claimed_until_ns`` keeps them from other replicas' workers
  while this one delivers. Recording the attempt clears the claim; a replica that died
  with a claim leaves it to expire, and another replica's worker retries the delivery;
* state changes lock the event row (``FOR UPDATE``) and resolving ended windows is one
  ``UPDATE ... RETURNING``, so concurrent maintenance never records a change twice;
* one rule's evaluations queue on a transaction advisory lock, so the check (is an episode
  open?) and the change cannot interleave even if two replicas evaluate at once.

The functions are :class:`~spanmeter.store.alert_store.AlertStore`'s on these statements;
write functions run in a transaction the caller owns, reads take an autocommit connection.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, Final

from ..alert_rows import ENDED_WINDOW_NOTE, SYSTEM_ACTOR, pending_deliveries
from ..alert_store import AlertSQL, AlertStore
from ..audit_log import AuditEvent
from ..inbox import Delivery
from .audit import insert_audit_event
from .schema import RULE_LOCKS
from .sql_text import sql

if TYPE_CHECKING:
    import psycopg

__all__ = ["ALERTS", "PostgresAlerts", "lock_key"]

_SQL: Final = AlertSQL(
    mark="%s",
    insert_event=(
        "INSERT INTO alert_events (dedupe_key, kind, severity, source, subject, title, state,"
        " occurred_at_ns, updated_at_ns, window_start_ns, window_end_ns, details)"
        " VALUES (%s, %s, %s, %s, %s, %s, 'open', %s, %s, %s, %s, %s) ON CONFLICT (dedupe_key) DO NOTHING"
        " RETURNING id"
    ),
    insert_history="INSERT INTO alert_history (event_id, at_ns, state, actor, note) VALUES (%s, %s, %s, %s, %s)",
    insert_outbox=(
        "INSERT INTO alert_outbox (event_id, channel, state, attempts, next_attempt_ns)"
        " VALUES (%s, %s, 'pending', 0, %s) ON CONFLICT DO NOTHING"
    ),
    select_state="SELECT state FROM alert_events WHERE id = %s FOR UPDATE",
    update_state="UPDATE alert_events SET state = %s, updated_at_ns = %s WHERE id = %s",
    open_budget_episodes=(
        "SELECT id FROM alert_events WHERE state IN ('open', 'acknowledged') AND source = %s"
        " AND subject = %s AND window_end_ns IS NULL AND kind LIKE 'budget.%%' ORDER BY id"
    ),
    set_context="UPDATE alert_events SET context = %s, updated_at_ns = %s WHERE id = %s",
    open_rule_subjects="SELECT subject, event_id FROM alert_rule_state WHERE rule = %s",
    event_by_key="SELECT id FROM alert_events WHERE dedupe_key = %s",
    insert_rule_state="INSERT INTO alert_rule_state (rule, subject, event_id, since_ns) VALUES (%s, %s, %s, %s)",
    delete_rule_state="DELETE FROM alert_rule_state WHERE rule = %s AND subject = %s",
    record_delivery=(
        "UPDATE alert_outbox SET state = %s, attempts = attempts + 1, next_attempt_ns = %s,"
        " last_error = %s, delivered_at_ns = %s, claimed_until_ns = NULL WHERE event_id = %s AND channel = %s"
    ),
)
_CLAIM: Final = (
    "UPDATE alert_outbox AS o SET claimed_until_ns = %s FROM ("
    " SELECT event_id, channel FROM alert_outbox"
    " WHERE state = 'pending' AND next_attempt_ns <= %s AND coalesce(claimed_until_ns, 0) <= %s"
    " ORDER BY event_id, channel LIMIT %s FOR UPDATE SKIP LOCKED) AS due"
    " WHERE o.event_id = due.event_id AND o.channel = due.channel"
    " RETURNING o.event_id, o.channel, o.attempts, o.next_attempt_ns, o.last_error"
)


def lock_key(*parts: str) -> int:
    """A 32-bit key for the second half of a two-key advisory lock (a hash: a collision
    only makes two keys queue on each other)."""
    digest = hashlib.blake2b("\0".join(parts).encode(), digest_size=4).digest()
    return int.from_bytes(digest, "big", signed=True)


class PostgresAlerts(AlertStore):
    """The alert statements on a PostgreSQL connection, safe with several replicas."""

    def executemany(
        self, conn: psycopg.Connection[tuple[Any, ...]], statement: str, rows: Iterable[Sequence[object]]
    ) -> None:
        rows = list(rows)
        if rows:
            with conn.cursor() as cursor:
                cursor.executemany(sql(statement), rows)

    def _ids_condition(self, ids: list[int]) -> tuple[str, tuple[list[int]]]:
        return "= ANY(%s)", (ids,)

    def _lock_rule(self, conn: psycopg.Connection[tuple[Any, ...]], rule: str) -> None:
        """One rule's evaluations queue on a transaction advisory lock."""
        conn.execute("SELECT pg_advisory_xact_lock(%s, %s)", (RULE_LOCKS, lock_key(rule)))

    def record_audit(self, conn: psycopg.Connection[tuple[Any, ...]], event: AuditEvent) -> None:
        insert_audit_event(conn, event)

    def resolve_ended_windows(self, conn: psycopg.Connection[tuple[Any, ...]], now_ns: int) -> int:
        """Resolve unresolved budget events whose window ended at or before ``now_ns``; one
        statement, so two replicas doing it at once resolve (and record) each event once."""
        ids = [
            int(event_id)
            for (event_id,) in conn.execute(
                "UPDATE alert_events SET state = 'resolved', updated_at_ns = %s"
                " WHERE state IN ('open', 'acknowledged') AND window_end_ns <= %s AND kind LIKE 'budget.%%'"
                " RETURNING id",
                (now_ns, now_ns),
            )
        ]
        self.history(
            conn,
            [(event_id, now_ns, "resolved", SYSTEM_ACTOR, ENDED_WINDOW_NOTE) for event_id in sorted(ids)],
        )
        return len(ids)

    def due_deliveries(
        self, conn: psycopg.Connection[tuple[Any, ...]], now_ns: int, limit: int, claim_ns: int = 0
    ) -> list[Delivery]:
        """Claim pending deliveries due by ``now_ns`` that no other worker holds, until
        ``now_ns + claim_ns``; oldest event first."""
        rows = conn.execute(_CLAIM, (now_ns + claim_ns, now_ns, now_ns, limit)).fetchall()
        return pending_deliveries(sorted(rows, key=lambda row: (int(row[0]), str(row[1]))))


ALERTS: Final = PostgresAlerts(_SQL)
"""The alerts of every PostgreSQL store (the statements hold no state)."""
