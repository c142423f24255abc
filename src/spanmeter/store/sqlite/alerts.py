"""The alerts inbox, its history, the delivery outbox and rule episodes, in SQLite.

Write functions run inside a transaction the caller owns (the ingest transaction for budget
transitions, a short one of their own otherwise); read functions take a reader connection
and run one statement each where they can. Details and context are JSON text: they are
read by people and by webhooks, never filtered on in SQL.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

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

__all__ = [
    "SYSTEM_ACTOR",
    "alert_counts",
    "apply_rule_outcomes",
    "change_state",
    "due_deliveries",
    "get_alert",
    "insert_alerts",
    "list_alerts",
    "open_rule_subjects",
    "record_delivery",
    "resolve_ended_windows",
    "resolve_episodes",
    "set_context",
]

_INSERT_EVENT: Final = (
    "INSERT INTO alert_events (dedupe_key, kind, severity, source, subject, title, state,"
    " occurred_at_ns, updated_at_ns, window_start_ns, window_end_ns, details)"
    " VALUES (?, ?, ?, ?, ?, ?, 'open', ?, ?, ?, ?, ?) ON CONFLICT (dedupe_key) DO NOTHING RETURNING id"
)


def _history(conn: sqlite3.Connection, rows: Iterable[tuple[int, int, str, str, str]]) -> None:
    conn.executemany(
        "INSERT INTO alert_history (event_id, at_ns, state, actor, note) VALUES (?, ?, ?, ?, ?)", rows
    )


def insert_alerts(conn: sqlite3.Connection, alerts: Sequence[NewAlert], now_ns: int) -> list[int | None]:
    """Insert events, their first history entry and one outbox row per channel.

    An event whose ``dedupe_key`` is already stored is skipped (None in the result), and so
    are its outbox rows: an alert is queued once, however often its producer runs.
    """
    ids: list[int | None] = []
    for alert in alerts:
        row = conn.execute(_INSERT_EVENT, event_params(alert, now_ns)).fetchone()
        if row is None:
            ids.append(None)
            continue
        event_id = int(row[0])
        ids.append(event_id)
        _history(conn, [(event_id, now_ns, "open", SYSTEM_ACTOR, alert.title)])
        conn.executemany(
            "INSERT OR IGNORE INTO alert_outbox (event_id, channel, state, attempts, next_attempt_ns)"
            " VALUES (?, ?, 'pending', 0, ?)",
            [(event_id, channel, now_ns) for channel in dict.fromkeys(alert.channels)],
        )
    return ids


def alert_counts(conn: sqlite3.Connection) -> list[tuple[str, str, str, str, int]]:
    """``(kind, source, state, severity, count)`` over every stored event: one grouped scan,
    for the Prometheus gauges (a few thousand events at most after retention)."""
    return [
        (str(kind), str(source), str(state), str(severity), int(count))
        for kind, source, state, severity, count in conn.execute(
            "SELECT kind, source, state, severity, count(*) FROM alert_events"
            " GROUP BY kind, source, state, severity ORDER BY kind, source, state, severity"
        )
    ]


def list_alerts(
    conn: sqlite3.Connection,
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
    kind_condition = ("kind LIKE ? ESCAPE '\\'" if prefix else "kind = ?", kind_value)
    where, params = where_clause(
        ("state = ?", state), kind_condition, ("source = ?", source), ("occurred_at_ns >= ?", since_ns)
    )
    rows = conn.execute(
        f"SELECT {EVENT_COLUMNS} FROM alert_events{where} ORDER BY id DESC LIMIT ?", [*params, limit]
    ).fetchall()
    return _attached(conn, [alert_record(row) for row in rows])


def _attached(conn: sqlite3.Connection, records: list[AlertRecord]) -> list[AlertRecord]:
    """``records`` with their history and deliveries: one query each."""
    if not records:
        return records
    ids = [record.id for record in records]
    marks = ",".join("?" * len(ids))
    history = conn.execute(
        f"SELECT event_id, at_ns, state, actor, note FROM alert_history WHERE event_id IN ({marks}) ORDER BY id",
        ids,
    )
    deliveries = conn.execute(
        "SELECT event_id, channel, state, attempts, next_attempt_ns, last_error, delivered_at_ns"
        f" FROM alert_outbox WHERE event_id IN ({marks}) ORDER BY event_id, channel",
        ids,
    ).fetchall()
    return with_attachments(records, history.fetchall(), deliveries)


def get_alert(conn: sqlite3.Connection, alert_id: int) -> AlertRecord | None:
    """One event with its history and deliveries."""
    row = conn.execute(f"SELECT {EVENT_COLUMNS} FROM alert_events WHERE id = ?", (alert_id,)).fetchone()
    if row is None:
        return None
    return _attached(conn, [alert_record(row)])[0]


def change_state(
    conn: sqlite3.Connection, alert_id: int, state: str, *, actor: str, note: str, now_ns: int
) -> None:
    """Move an event to ``state`` (a resolved event stays resolved) and record it.

    Raises:
        LookupError: no such event.
    """
    row = conn.execute("SELECT state FROM alert_events WHERE id = ?", (alert_id,)).fetchone()
    if row is None:
        raise LookupError(f"no alert with id {alert_id!r}")
    conn.execute(
        "UPDATE alert_events SET state = ?, updated_at_ns = ? WHERE id = ?",
        (new_state(row[0], state), now_ns, alert_id),
    )
    _history(conn, [(alert_id, now_ns, state, actor, note)])


def resolve_ended_windows(conn: sqlite3.Connection, now_ns: int) -> int:
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
    _history(conn, [(event_id, now_ns, "resolved", SYSTEM_ACTOR, ENDED_WINDOW_NOTE) for event_id in ids])
    return len(ids)


def resolve_episodes(conn: sqlite3.Connection, episodes: Sequence[tuple[str, str, str]], now_ns: int) -> int:
    """Resolve the open budget alerts without a calendar window of each (source, subject)."""
    resolved = 0
    for source, subject, note in episodes:
        ids = [
            int(event_id)
            for (event_id,) in conn.execute(
                "SELECT id FROM alert_events WHERE state IN ('open', 'acknowledged') AND source = ?"
                " AND subject = ? AND window_end_ns IS NULL AND kind LIKE 'budget.%'",
                (source, subject),
            )
        ]
        for event_id in ids:
            change_state(conn, event_id, "resolved", actor=SYSTEM_ACTOR, note=note, now_ns=now_ns)
        resolved += len(ids)
    return resolved


def set_context(conn: sqlite3.Connection, alert_id: int, context: Mapping[str, Any], now_ns: int) -> None:
    """Attach the investigation context (JSON) to an event."""
    conn.execute(
        "UPDATE alert_events SET context = ?, updated_at_ns = ? WHERE id = ?",
        (context_text(context), now_ns, alert_id),
    )


def open_rule_subjects(conn: sqlite3.Connection, rule: str) -> dict[str, int]:
    """Subjects of ``rule`` with an open episode -> event id."""
    return {
        subject: int(event_id)
        for subject, event_id in conn.execute(
            "SELECT subject, event_id FROM alert_rule_state WHERE rule = ?", (rule,)
        )
    }


def apply_rule_outcomes(
    conn: sqlite3.Connection, rule: str, outcomes: Sequence[RuleOutcome], now_ns: int
) -> list[int]:
    """Open episodes for newly firing subjects, close those that clearly stopped firing.

    Inside the caller's write transaction, so the check (is an episode open?) and the
    change cannot interleave with another evaluation.
    """
    plan = rule_plan(rule, open_rule_subjects(conn, rule), outcomes)
    inserted: list[int] = []
    for subject, alert in plan.opening:
        (new_id,) = insert_alerts(conn, [alert], now_ns)
        if new_id is None:  # same episode key already stored: reattach rather than fire twice
            row = conn.execute(
                "SELECT id FROM alert_events WHERE dedupe_key = ?", (alert.dedupe_key,)
            ).fetchone()
            new_id = int(row[0])
        else:
            inserted.append(new_id)
        conn.execute(
            "INSERT INTO alert_rule_state (rule, subject, event_id, since_ns) VALUES (?, ?, ?, ?)",
            (rule, subject, new_id, now_ns),
        )
    for subject, event_id, note in plan.closing:
        conn.execute("DELETE FROM alert_rule_state WHERE rule = ? AND subject = ?", (rule, subject))
        change_state(conn, event_id, "resolved", actor=SYSTEM_ACTOR, note=note, now_ns=now_ns)
    return inserted


def due_deliveries(conn: sqlite3.Connection, now_ns: int, limit: int) -> list[Delivery]:
    """Pending deliveries due by ``now_ns``, oldest event first."""
    return pending_deliveries(
        conn.execute(
            "SELECT event_id, channel, attempts, next_attempt_ns, last_error FROM alert_outbox"
            " WHERE state = 'pending' AND next_attempt_ns <= ? ORDER BY event_id, channel LIMIT ?",
            (now_ns, limit),
        )
    )


def record_delivery(
    conn: sqlite3.Connection,
    event_id: int,
    channel: str,
    *,
    state: str,
    now_ns: int,
    next_attempt_ns: int | None,
    error: str | None,
) -> None:
    """Record one delivery attempt's outcome.

    Raises:
        ValueError: an unknown state, or ``pending`` without a next attempt time.
    """
    update = delivery_update(state, now_ns=now_ns, next_attempt_ns=next_attempt_ns, error=error)
    conn.execute(
        "UPDATE alert_outbox SET state = ?, attempts = attempts + 1, next_attempt_ns = ?,"
        " last_error = ?, delivered_at_ns = ? WHERE event_id = ? AND channel = ?",
        (update.state, update.next_attempt_ns, update.error, update.delivered_at_ns, event_id, channel),
    )
