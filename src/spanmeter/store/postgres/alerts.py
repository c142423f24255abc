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

Write functions run in a transaction the caller owns; reads take an autocommit connection.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final

from ..alert_rows import (
    ENDED_WINDOW_NOTE,
    EVENT_COLUMNS,
    SYSTEM_ACTOR,
    alert_record,
    context_text,
    delivery_update,
    event_params,
    kind_filter,
    new_state,
    pending_deliveries,
    rule_plan,
    with_attachments,
)
from ..conditions import where_clause
from ..inbox import AlertRecord, Delivery, RuleOutcome
from ..ledger import NewAlert
from .schema import RULE_LOCKS
from .sql_text import sql

if TYPE_CHECKING:
    import psycopg

__all__ = [
    "alert_counts",
    "apply_rule_outcomes",
    "change_state",
    "due_deliveries",
    "get_alert",
    "insert_alerts",
    "list_alerts",
    "lock_key",
    "open_rule_subjects",
    "record_delivery",
    "resolve_ended_windows",
    "resolve_episodes",
    "set_context",
]

_INSERT_EVENT: Final = (
    "INSERT INTO alert_events (dedupe_key, kind, severity, source, subject, title, state,"
    " occurred_at_ns, updated_at_ns, window_start_ns, window_end_ns, details)"
    " VALUES (%s, %s, %s, %s, %s, %s, 'open', %s, %s, %s, %s, %s) ON CONFLICT (dedupe_key) DO NOTHING"
    " RETURNING id"
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


def _history(
    conn: psycopg.Connection[tuple[Any, ...]], rows: Iterable[tuple[int, int, str, str, str]]
) -> None:
    rows = list(rows)
    if rows:
        with conn.cursor() as cursor:
            cursor.executemany(
                "INSERT INTO alert_history (event_id, at_ns, state, actor, note) VALUES (%s, %s, %s, %s, %s)",
                rows,
            )


def insert_alerts(
    conn: psycopg.Connection[tuple[Any, ...]], alerts: Sequence[NewAlert], now_ns: int
) -> list[int | None]:
    """Insert events, their first history entry and one outbox row per channel; None for an
    event whose ``dedupe_key`` is already stored (by this replica or another)."""
    ids: list[int | None] = []
    for alert in alerts:
        row = conn.execute(_INSERT_EVENT, event_params(alert, now_ns)).fetchone()
        if row is None:
            ids.append(None)
            continue
        event_id = int(row[0])
        ids.append(event_id)
        _history(conn, [(event_id, now_ns, "open", SYSTEM_ACTOR, alert.title)])
        channels = list(dict.fromkeys(alert.channels))
        if channels:
            conn.execute(
                "INSERT INTO alert_outbox (event_id, channel, state, attempts, next_attempt_ns)"
                " SELECT %s, channel, 'pending', 0, %s FROM unnest(%s::text[]) AS channel ON CONFLICT DO NOTHING",
                (event_id, now_ns, channels),
            )
    return ids


def alert_counts(conn: psycopg.Connection[tuple[Any, ...]]) -> list[tuple[str, str, str, str, int]]:
    """``(kind, source, state, severity, count)`` over every stored event."""
    return [
        (str(kind), str(source), str(state), str(severity), int(count))
        for kind, source, state, severity, count in conn.execute(
            "SELECT kind, source, state, severity, count(*) FROM alert_events"
            " GROUP BY kind, source, state, severity ORDER BY kind, source, state, severity"
        )
    ]


def _attached(conn: psycopg.Connection[tuple[Any, ...]], records: list[AlertRecord]) -> list[AlertRecord]:
    """``records`` with their history and deliveries: one query each."""
    if not records:
        return records
    ids = [record.id for record in records]
    history = conn.execute(
        "SELECT event_id, at_ns, state, actor, note FROM alert_history WHERE event_id = ANY(%s) ORDER BY id",
        (ids,),
    ).fetchall()
    deliveries = conn.execute(
        "SELECT event_id, channel, state, attempts, next_attempt_ns, last_error, delivered_at_ns"
        " FROM alert_outbox WHERE event_id = ANY(%s) ORDER BY event_id, channel",
        (ids,),
    ).fetchall()
    return with_attachments(records, history, deliveries)


def list_alerts(
    conn: psycopg.Connection[tuple[Any, ...]],
    *,
    state: str | None,
    kind: str | None,
    source: str | None,
    since_ns: int | None,
    limit: int,
) -> list[AlertRecord]:
    """Newest first (by id, i.e. insertion order)."""
    if limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit!r}")
    prefix, kind_value = kind_filter(kind)
    kind_condition = ("kind LIKE %s ESCAPE '\\'" if prefix else "kind = %s", kind_value)
    where, params = where_clause(
        ("state = %s", state), kind_condition, ("source = %s", source), ("occurred_at_ns >= %s", since_ns)
    )
    rows = conn.execute(
        sql(f"SELECT {EVENT_COLUMNS} FROM alert_events{where} ORDER BY id DESC LIMIT %s"), [*params, limit]
    ).fetchall()
    return _attached(conn, [alert_record(row) for row in rows])


def get_alert(conn: psycopg.Connection[tuple[Any, ...]], alert_id: int) -> AlertRecord | None:
    """One event with its history and deliveries."""
    row = conn.execute(sql(f"SELECT {EVENT_COLUMNS} FROM alert_events WHERE id = %s"), (alert_id,)).fetchone()
    if row is None:
        return None
    return _attached(conn, [alert_record(row)])[0]


def change_state(
    conn: psycopg.Connection[tuple[Any, ...]],
    alert_id: int,
    state: str,
    *,
    actor: str,
    note: str,
    now_ns: int,
) -> None:
    """Move an event to ``state`` (a resolved event stays resolved) and record it; the event
    row stays locked until the caller commits.

    Raises:
        LookupError: no such event.
    """
    row = conn.execute("SELECT state FROM alert_events WHERE id = %s FOR UPDATE", (alert_id,)).fetchone()
    if row is None:
        raise LookupError(f"no alert with id {alert_id!r}")
    conn.execute(
        "UPDATE alert_events SET state = %s, updated_at_ns = %s WHERE id = %s",
        (new_state(str(row[0]), state), now_ns, alert_id),
    )
    _history(conn, [(alert_id, now_ns, state, actor, note)])


def resolve_ended_windows(conn: psycopg.Connection[tuple[Any, ...]], now_ns: int) -> int:
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
    _history(
        conn, [(event_id, now_ns, "resolved", SYSTEM_ACTOR, ENDED_WINDOW_NOTE) for event_id in sorted(ids)]
    )
    return len(ids)


def resolve_episodes(
    conn: psycopg.Connection[tuple[Any, ...]], episodes: Sequence[tuple[str, str, str]], now_ns: int
) -> int:
    """Resolve the open budget alerts without a calendar window of each (source, subject)."""
    resolved = 0
    for source, subject, note in episodes:
        ids = [
            int(event_id)
            for (event_id,) in conn.execute(
                "SELECT id FROM alert_events WHERE state IN ('open', 'acknowledged') AND source = %s"
                " AND subject = %s AND window_end_ns IS NULL AND kind LIKE 'budget.%%' ORDER BY id",
                (source, subject),
            )
        ]
        for event_id in ids:
            change_state(conn, event_id, "resolved", actor=SYSTEM_ACTOR, note=note, now_ns=now_ns)
        resolved += len(ids)
    return resolved


def set_context(
    conn: psycopg.Connection[tuple[Any, ...]], alert_id: int, context: Mapping[str, Any], now_ns: int
) -> None:
    """Attach the investigation context (JSON text) to an event."""
    conn.execute(
        "UPDATE alert_events SET context = %s, updated_at_ns = %s WHERE id = %s",
        (context_text(context), now_ns, alert_id),
    )


def open_rule_subjects(conn: psycopg.Connection[tuple[Any, ...]], rule: str) -> dict[str, int]:
    """Subjects of ``rule`` with an open episode -> event id."""
    return {
        str(subject): int(event_id)
        for subject, event_id in conn.execute(
            "SELECT subject, event_id FROM alert_rule_state WHERE rule = %s", (rule,)
        )
    }


def apply_rule_outcomes(
    conn: psycopg.Connection[tuple[Any, ...]], rule: str, outcomes: Sequence[RuleOutcome], now_ns: int
) -> list[int]:
    """Open episodes for newly firing subjects, close those that clearly stopped firing,
    under the rule's advisory lock (held until the caller commits)."""
    conn.execute("SELECT pg_advisory_xact_lock(%s, %s)", (RULE_LOCKS, lock_key(rule)))
    plan = rule_plan(rule, open_rule_subjects(conn, rule), outcomes)
    inserted: list[int] = []
    for subject, alert in plan.opening:
        (new_id,) = insert_alerts(conn, [alert], now_ns)
        if new_id is None:  # same episode key already stored: reattach rather than fire twice
            row = conn.execute(
                "SELECT id FROM alert_events WHERE dedupe_key = %s", (alert.dedupe_key,)
            ).fetchone()
            assert row is not None
            new_id = int(row[0])
        else:
            inserted.append(new_id)
        conn.execute(
            "INSERT INTO alert_rule_state (rule, subject, event_id, since_ns) VALUES (%s, %s, %s, %s)",
            (rule, subject, new_id, now_ns),
        )
    for subject, event_id, note in plan.closing:
        conn.execute("DELETE FROM alert_rule_state WHERE rule = %s AND subject = %s", (rule, subject))
        change_state(conn, event_id, "resolved", actor=SYSTEM_ACTOR, note=note, now_ns=now_ns)
    return inserted


def due_deliveries(
    conn: psycopg.Connection[tuple[Any, ...]], now_ns: int, limit: int, claim_ns: int
) -> list[Delivery]:
    """Claim pending deliveries due by ``now_ns`` that no other worker holds, until
    ``now_ns + claim_ns``; oldest event first."""
    rows = conn.execute(_CLAIM, (now_ns + claim_ns, now_ns, now_ns, limit)).fetchall()
    return pending_deliveries(sorted(rows, key=lambda row: (int(row[0]), str(row[1]))))


def record_delivery(
    conn: psycopg.Connection[tuple[Any, ...]],
    event_id: int,
    channel: str,
    *,
    state: str,
    now_ns: int,
    next_attempt_ns: int | None,
    error: str | None,
) -> None:
    """Record one delivery attempt's outcome and release its claim.

    Raises:
        ValueError: an unknown state, or ``pending`` without a next attempt time.
    """
    update = delivery_update(state, now_ns=now_ns, next_attempt_ns=next_attempt_ns, error=error)
    conn.execute(
        "UPDATE alert_outbox SET state = %s, attempts = attempts + 1, next_attempt_ns = %s,"
        " last_error = %s, delivered_at_ns = %s, claimed_until_ns = NULL WHERE event_id = %s AND channel = %s",
        (update.state, update.next_attempt_ns, update.error, update.delivered_at_ns, event_id, channel),
    )
