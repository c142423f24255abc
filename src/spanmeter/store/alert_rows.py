"""What every store's alerts inbox shares, whatever the SQL: how an event is stored and read
back, which state a change leads to, which rule episodes an evaluation opens and closes.

Each backend (``sqlite.alerts``, ``postgres.alerts``) runs its own statements; the rules
between them live here once, so an alert behaves the same on either store.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Final

from .inbox import AlertHistoryEntry, AlertRecord, Delivery, RuleOutcome
from .ledger import NewAlert

__all__ = [
    "ENDED_WINDOW_NOTE",
    "EVENT_COLUMNS",
    "SYSTEM_ACTOR",
    "RulePlan",
    "alert_record",
    "context_text",
    "event_params",
    "kind_filter",
    "new_state",
    "pending_deliveries",
    "rule_plan",
    "with_attachments",
]

SYSTEM_ACTOR: Final = "spanmeter"
"""Actor recorded for automatic state changes."""
ENDED_WINDOW_NOTE: Final = "window ended; budget reset"

EVENT_COLUMNS: Final = (
    "id, dedupe_key, kind, severity, source, subject, title, state, occurred_at_ns, updated_at_ns,"
    " window_start_ns, window_end_ns, details, context"
)
"""The event columns :func:`alert_record` reads, in its order."""


def event_params(alert: NewAlert, now_ns: int) -> tuple[object, ...]:
    """``(dedupe_key, kind, severity, source, subject, title, occurred, updated, window start,
    window end, details JSON)``: an event's insert parameters (its state is ``open``)."""
    return (
        alert.dedupe_key,
        alert.kind,
        alert.severity,
        alert.source,
        alert.subject,
        alert.title,
        alert.occurred_at_ns,
        now_ns,
        alert.window_start_ns,
        alert.window_end_ns,
        json.dumps(alert.details, sort_keys=True, default=str),
    )


def context_text(context: Mapping[str, Any]) -> str:
    """The investigation context as stored (JSON text)."""
    return json.dumps(context, sort_keys=True, default=str)


def alert_record(row: Sequence[Any]) -> AlertRecord:
    """An event from a row of :data:`EVENT_COLUMNS`."""
    (
        event_id,
        dedupe_key,
        kind,
        severity,
        source,
        subject,
        title,
        state,
        occurred,
        updated,
        window_start,
        window_end,
        details,
        context,
    ) = row
    return AlertRecord(
        id=int(event_id),
        dedupe_key=dedupe_key,
        kind=kind,
        severity=severity,
        source=source,
        subject=subject,
        title=title,
        state=state,
        occurred_at_ns=int(occurred),
        updated_at_ns=int(updated),
        window_start_ns=window_start,
        window_end_ns=window_end,
        details=json.loads(details),
        context=None if context is None else json.loads(context),
    )


def with_attachments(
    records: Sequence[AlertRecord],
    history_rows: Iterable[tuple[Any, ...]],
    delivery_rows: Iterable[tuple[Any, ...]],
) -> list[AlertRecord]:
    """``records`` with their history (``(event_id, at, state, actor, note)`` rows, oldest
    first) and deliveries (``(event_id, channel, state, attempts, next attempt, error,
    delivered at)`` rows)."""
    history: dict[int, list[AlertHistoryEntry]] = {}
    for event_id, at, state, actor, note in history_rows:
        history.setdefault(int(event_id), []).append(AlertHistoryEntry(int(at), state, actor, note))
    deliveries: dict[int, list[Delivery]] = {}
    for event_id, channel, state, attempts, next_attempt, error, delivered in delivery_rows:
        deliveries.setdefault(int(event_id), []).append(
            Delivery(int(event_id), channel, state, int(attempts), int(next_attempt), error, delivered)
        )
    return [
        replace(r, history=tuple(history.get(r.id, ())), deliveries=tuple(deliveries.get(r.id, ())))
        for r in records
    ]


def kind_filter(kind: str | None) -> tuple[bool, str | None]:
    """``(is a prefix, value)`` for a ``kind`` filter: ``budget.*`` becomes the LIKE pattern
    ``budget.%`` (with ``\\`` escaping), anything else an exact match."""
    if kind is None or not kind.endswith("*"):
        return False, kind
    prefix = kind[:-1].replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return True, prefix + "%"


def new_state(current: str, requested: str) -> str:
    """The state after asking for ``requested``: a resolved event stays resolved."""
    return current if current == "resolved" else requested


@dataclass(frozen=True, slots=True)
class RulePlan:
    """What one rule evaluation changes."""

    opening: list[tuple[str, NewAlert]]
    """``(subject, alert)`` of subjects newly firing (no open episode)."""
    closing: list[tuple[str, int, str]]
    """``(subject, event id, note)`` of open episodes whose condition clearly cleared."""


def rule_plan(rule: str, open_subjects: Mapping[str, int], outcomes: Sequence[RuleOutcome]) -> RulePlan:
    """Episodes to open and close, given the open ones (``subject -> event id``).

    Raises:
        ValueError: a firing outcome without its alert.
    """
    opening: list[tuple[str, NewAlert]] = []
    closing: list[tuple[str, int, str]] = []
    for outcome in outcomes:
        event_id = open_subjects.get(outcome.subject)
        if outcome.firing and event_id is None:
            if outcome.alert is None:
                raise ValueError(f"rule {rule!r}: a firing outcome for {outcome.subject!r} needs an alert")
            opening.append((outcome.subject, outcome.alert))
        elif outcome.firing is False and event_id is not None:
            closing.append((outcome.subject, event_id, outcome.note or "condition cleared"))
    return RulePlan(opening, closing)


def pending_deliveries(rows: Iterable[tuple[Any, ...]]) -> list[Delivery]:
    """Due deliveries from ``(event_id, channel, attempts, next attempt, last error)`` rows."""
    return [
        Delivery(
            event_id=int(event_id),
            channel=channel,
            state="pending",
            attempts=int(attempts),
            next_attempt_ns=int(next_attempt),
            last_error=error,
        )
        for event_id, channel, attempts, next_attempt, error in rows
    ]
