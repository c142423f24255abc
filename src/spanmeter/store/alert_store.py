""":class:`AlertStore`: the alerts inbox, its history, the delivery outbox and rule episodes,
around a backend's statements.

What a function does with its statements (which rows it writes, what it reads back, in which
order, what it records in the history) is the same on every backend and lives here once; a
backend passes its statements as an :class:`AlertSQL` table and overrides the few steps its
engine does differently (a list parameter, a batch insert, a lock, a claim, one
``UPDATE ... RETURNING``). The rules themselves (state changes, episodes, delivery
outcomes) are :mod:`spanmeter.store.alert_rows`'.

Write functions run inside a transaction the caller owns (the ingest transaction for budget
transitions, a short one of their own otherwise); read functions take a reader connection
and run one statement each where they can. Details and context are JSON text: they are
read by people and by webhooks, never filtered on in SQL.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .alert_rows import (
    EVENT_COLUMNS,
    SYSTEM_ACTOR,
    alert_record,
    context_text,
    event_params,
    kind_filter,
    new_state,
    rule_plan,
    with_attachments,
)
from .audit_log import AuditEvent
from .conditions import where_clause
from .inbox import AlertRecord, Delivery, DeliveryUpdate, RuleOutcome
from .ledger import NewAlert

__all__ = ["AlertSQL", "AlertStore"]


@dataclass(frozen=True, slots=True)
class AlertSQL:
    """A backend's statements, each with its parameters in the order given."""

    mark: str
    """The parameter marker (``?``, ``%s``), for the statements built here."""
    insert_event: str
    """:func:`~spanmeter.store.alert_rows.event_params`; returns the new id, nothing for a
    dedupe key already stored."""
    insert_history: str
    """(event id, at, state, actor, note)."""
    insert_outbox: str
    """(event id, channel, next attempt): one pending delivery, none if already queued."""
    select_state: str
    """(event id) -> its state."""
    update_state: str
    """(state, updated at, event id)."""
    open_budget_episodes: str
    """(source, subject) -> ids of unresolved budget events without a calendar window."""
    set_context: str
    """(context JSON, updated at, event id)."""
    open_rule_subjects: str
    """(rule) -> (subject, event id) of its open episodes."""
    event_by_key: str
    """(dedupe key) -> event id."""
    insert_rule_state: str
    """(rule, subject, event id, since)."""
    delete_rule_state: str
    """(rule, subject)."""
    record_delivery: str
    """(state, next attempt, error, delivered at, event id, channel): one attempt counted."""


class AlertStore:
    """The inbox, outbox and rule-episode functions on one backend's statements."""

    def __init__(self, statements: AlertSQL) -> None:
        self.sql = statements

    # -- what engines do differently ------------------------------------------------------

    def executemany(self, conn: Any, statement: str, rows: Iterable[Sequence[object]]) -> None:
        """Run ``statement`` once per row of parameters (none: nothing)."""
        conn.executemany(statement, rows)

    def _ids_condition(self, ids: list[int]) -> tuple[str, Sequence[object]]:
        """``event_id`` in ``ids``: the condition and its parameters."""
        raise NotImplementedError

    def _lock_rule(self, conn: Any, rule: str) -> None:
        """Serialise ``rule``'s evaluations until the caller commits (a single writer needs
        nothing)."""

    def record_audit(self, conn: Any, event: AuditEvent) -> None:
        """Write an audit entry inside the caller's transaction (the backend's statement)."""
        raise NotImplementedError

    def resolve_ended_windows(self, conn: Any, now_ns: int) -> int:
        """Resolve unresolved budget events whose window ended at or before ``now_ns``."""
        raise NotImplementedError

    def due_deliveries(self, conn: Any, now_ns: int, limit: int) -> list[Delivery]:
        """Pending deliveries due by ``now_ns``, oldest event first."""
        raise NotImplementedError

    # -- the same on every engine ---------------------------------------------------------

    def history(self, conn: Any, rows: Iterable[tuple[int, int, str, str, str]]) -> None:
        """Append ``(event id, at, state, actor, note)`` entries to the events' history."""
        self.executemany(conn, self.sql.insert_history, rows)

    def insert_alerts(self, conn: Any, alerts: Sequence[NewAlert], now_ns: int) -> list[int | None]:
        """Insert events, their first history entry and one outbox row per channel.

        An event whose ``dedupe_key`` is already stored (by this process or another) is
        skipped (None in the result), and so are its outbox rows: an alert is queued once,
        however often its producer runs.
        """
        ids: list[int | None] = []
        for alert in alerts:
            row = conn.execute(self.sql.insert_event, event_params(alert, now_ns)).fetchone()
            if row is None:
                ids.append(None)
                continue
            event_id = int(row[0])
            ids.append(event_id)
            self.history(conn, [(event_id, now_ns, "open", SYSTEM_ACTOR, alert.title)])
            channels = dict.fromkeys(alert.channels)
            self.executemany(
                conn, self.sql.insert_outbox, [(event_id, channel, now_ns) for channel in channels]
            )
        return ids

    def alert_counts(self, conn: Any) -> list[tuple[str, str, str, str, int]]:
        """``(kind, source, state, severity, count)`` over every stored event: one grouped
        scan, for the Prometheus gauges (a few thousand events at most after retention)."""
        return [
            (str(kind), str(source), str(state), str(severity), int(count))
            for kind, source, state, severity, count in conn.execute(
                "SELECT kind, source, state, severity, count(*) FROM alert_events"
                " GROUP BY kind, source, state, severity ORDER BY kind, source, state, severity"
            )
        ]

    def list_alerts(self, conn: Any, filters: Mapping[str, Any], limit: int) -> list[AlertRecord]:
        """Newest first (by id, i.e. insertion order); ``filters``: ``state``, ``kind`` (may
        end in ``*``), ``source`` and ``since_ns``, each None for any."""
        if limit < 1:
            raise ValueError(f"limit must be at least 1, got {limit!r}")
        mark = self.sql.mark
        prefix, kind_value = kind_filter(filters["kind"])
        kind_condition = (f"kind LIKE {mark} ESCAPE '\\'" if prefix else f"kind = {mark}", kind_value)
        where, params = where_clause(
            (f"state = {mark}", filters["state"]),
            kind_condition,
            (f"source = {mark}", filters["source"]),
            (f"occurred_at_ns >= {mark}", filters["since_ns"]),
        )
        rows = conn.execute(
            f"SELECT {EVENT_COLUMNS} FROM alert_events{where} ORDER BY id DESC LIMIT {mark}", [*params, limit]
        ).fetchall()
        return self._attached(conn, [alert_record(row) for row in rows])

    def _attached(self, conn: Any, records: list[AlertRecord]) -> list[AlertRecord]:
        """``records`` with their history and deliveries: one query each."""
        if not records:
            return records
        condition, params = self._ids_condition([record.id for record in records])
        history = conn.execute(
            f"SELECT event_id, at_ns, state, actor, note FROM alert_history WHERE event_id {condition}"
            " ORDER BY id",
            params,
        ).fetchall()
        deliveries = conn.execute(
            "SELECT event_id, channel, state, attempts, next_attempt_ns, last_error, delivered_at_ns"
            f" FROM alert_outbox WHERE event_id {condition} ORDER BY event_id, channel",
            params,
        ).fetchall()
        return with_attachments(records, history, deliveries)

    def get_alert(self, conn: Any, alert_id: int) -> AlertRecord | None:
        """One event with its history and deliveries."""
        statement = f"SELECT {EVENT_COLUMNS} FROM alert_events WHERE id = {self.sql.mark}"
        row = conn.execute(statement, (alert_id,)).fetchone()
        if row is None:
            return None
        return self._attached(conn, [alert_record(row)])[0]

    def change_state(
        self, conn: Any, alert_id: int, state: str, *, actor: str, note: str, now_ns: int
    ) -> None:
        """Move an event to ``state`` (a resolved event stays resolved) and record it; where
        the engine locks rows, the event's stays locked until the caller commits.

        Raises:
            LookupError: no such event.
        """
        row = conn.execute(self.sql.select_state, (alert_id,)).fetchone()
        if row is None:
            raise LookupError(f"no alert with id {alert_id!r}")
        conn.execute(self.sql.update_state, (new_state(str(row[0]), state), now_ns, alert_id))
        self.history(conn, [(alert_id, now_ns, state, actor, note)])

    def resolve_episodes(self, conn: Any, episodes: Sequence[tuple[str, str, str]], now_ns: int) -> int:
        """Resolve the open budget alerts without a calendar window of each (source, subject)."""
        resolved = 0
        for source, subject, note in episodes:
            ids = [
                int(event_id)
                for (event_id,) in conn.execute(self.sql.open_budget_episodes, (source, subject))
            ]
            for event_id in ids:
                self.change_state(conn, event_id, "resolved", actor=SYSTEM_ACTOR, note=note, now_ns=now_ns)
            resolved += len(ids)
        return resolved

    def set_context(self, conn: Any, alert_id: int, context: Mapping[str, Any], now_ns: int) -> None:
        """Attach the investigation context (JSON) to an event."""
        conn.execute(self.sql.set_context, (context_text(context), now_ns, alert_id))

    def open_rule_subjects(self, conn: Any, rule: str) -> dict[str, int]:
        """Subjects of ``rule`` with an open episode -> event id."""
        rows = conn.execute(self.sql.open_rule_subjects, (rule,))
        return {str(subject): int(event_id) for subject, event_id in rows}

    def apply_rule_outcomes(
        self, conn: Any, rule: str, outcomes: Sequence[RuleOutcome], now_ns: int
    ) -> list[int]:
        """Open episodes for newly firing subjects, close those that clearly stopped firing.

        Inside the caller's write transaction (and the rule's lock where the engine needs
        one), so the check (is an episode open?) and the change cannot interleave with
        another evaluation.
        """
        self._lock_rule(conn, rule)
        plan = rule_plan(rule, self.open_rule_subjects(conn, rule), outcomes)
        inserted: list[int] = []
        for subject, alert in plan.opening:
            (new_id,) = self.insert_alerts(conn, [alert], now_ns)
            if new_id is None:  # same episode key already stored: reattach rather than fire twice
                row = conn.execute(self.sql.event_by_key, (alert.dedupe_key,)).fetchone()
                assert row is not None
                new_id = int(row[0])
            else:
                inserted.append(new_id)
            conn.execute(self.sql.insert_rule_state, (rule, subject, new_id, now_ns))
        for subject, event_id, note in plan.closing:
            conn.execute(self.sql.delete_rule_state, (rule, subject))
            self.change_state(conn, event_id, "resolved", actor=SYSTEM_ACTOR, note=note, now_ns=now_ns)
        return inserted

    def record_delivery(self, conn: Any, event_id: int, channel: str, update: DeliveryUpdate) -> None:
        """Record one delivery attempt's outcome (and release its claim where deliveries are
        claimed)."""
        values = (update.state, update.next_attempt_ns, update.error, update.delivered_at_ns)
        conn.execute(self.sql.record_delivery, (*values, event_id, channel))
