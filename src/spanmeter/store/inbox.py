"""The alerts inbox, the delivery outbox and the rollup reads of alert rules: the contract.

Store-agnostic like :mod:`spanmeter.store.api`: plain dataclasses and one Protocol,
:class:`BudgetStore`, which the budgets package uses for everything it persists or reads
besides the in-transaction hook of :mod:`spanmeter.store.ledger`. The implementations are
:class:`spanmeter.store.sqlite.budget_store.SQLiteBudgetStore` and
:class:`spanmeter.store.postgres.budget_store.PostgresBudgetStore`.

Why events, history and outbox live in the store, next to the spans: an alert is inserted
in the same transaction as the spend (or the rule state) that caused it, and its outbox rows
with it, so neither a crash nor a restart can lose one or queue it twice.

Example::

    inbox = store.budget_store
    for alert in inbox.list_alerts(state="open"):
        print(alert.id, alert.title)
    inbox.acknowledge(alert.id, actor="alice", note="capped tenant acme", now_ns=time.time_ns())
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal, Protocol, runtime_checkable

from .ledger import BudgetSpend, LedgerHook, NewAlert, WindowRecheck

__all__ = [
    "ALERT_STATES",
    "DELIVERY_STATES",
    "AlertHistoryEntry",
    "AlertRecord",
    "BudgetStore",
    "Delivery",
    "DeliveryUpdate",
    "MeasureGroup",
    "RuleOutcome",
    "SupportsBudgets",
    "delivery_update",
]

AlertState = Literal["open", "acknowledged", "resolved"]
ALERT_STATES: Final = ("open", "acknowledged", "resolved")
"""An event is ``open`` when stored, ``acknowledged`` by a person, ``resolved`` when its
window ended or its rule's condition cleared (or by a person)."""
DeliveryState = Literal["pending", "delivered", "dead"]
DELIVERY_STATES: Final = ("pending", "delivered", "dead")


@dataclass(frozen=True, slots=True)
class AlertHistoryEntry:
    """One state change of an event."""

    at_ns: int
    state: str
    actor: str
    """``spanmeter`` for automatic changes, else whoever acknowledged."""
    note: str = ""


@dataclass(frozen=True, slots=True)
class Delivery:
    """One (event, channel) row of the outbox."""

    event_id: int
    channel: str
    state: str
    attempts: int
    next_attempt_ns: int
    last_error: str | None = None
    delivered_at_ns: int | None = None


@dataclass(frozen=True, slots=True)
class DeliveryUpdate:
    """What one delivery attempt writes to its outbox row: made by :func:`delivery_update`."""

    state: str
    next_attempt_ns: int
    error: str | None
    delivered_at_ns: int | None


def delivery_update(
    state: str, *, now_ns: int, next_attempt_ns: int | None = None, error: str | None = None
) -> DeliveryUpdate:
    """The outbox row's new values after an attempt.

    Raises:
        ValueError: an unknown state, or ``pending`` without a next attempt time.
    """
    if state not in DELIVERY_STATES:
        raise ValueError(f"unknown delivery state {state!r}")
    if state == "pending" and next_attempt_ns is None:
        raise ValueError("a pending delivery needs next_attempt_ns")
    return DeliveryUpdate(
        state=state,
        next_attempt_ns=next_attempt_ns if next_attempt_ns is not None else now_ns,
        error=error,
        delivered_at_ns=now_ns if state == "delivered" else None,
    )


@dataclass(frozen=True, slots=True)
class AlertRecord:
    """A stored alert event."""

    id: int
    dedupe_key: str
    kind: str
    severity: str
    source: str
    subject: str
    title: str
    state: str
    occurred_at_ns: int
    updated_at_ns: int
    window_start_ns: int | None
    window_end_ns: int | None
    details: Mapping[str, Any]
    context: Mapping[str, Any] | None
    """Investigation context (drivers, views), filled in after the event is stored."""
    history: tuple[AlertHistoryEntry, ...] = ()
    deliveries: tuple[Delivery, ...] = ()


@dataclass(frozen=True, slots=True)
class MeasureGroup:
    """Rollup sums for one combination of dimension values over a window."""

    key: tuple[str | None, ...]
    """Values of the requested dimensions, in order; None where the attempts lacked it."""
    attempts: int
    logical_requests: int
    cost_nano_usd: int
    input_tokens: int
    output_tokens: int
    errors: int
    unpriced: int


@dataclass(frozen=True, slots=True)
class RuleOutcome:
    """One subject's verdict from an alert rule evaluation."""

    subject: str
    firing: bool | None
    """True: condition holds. False: it clearly does not (an open episode resolves).
    None: not enough data to say (an open episode stays open)."""
    alert: NewAlert | None = None
    """The event to insert if this starts a new episode (required when ``firing``)."""
    note: str = ""


@runtime_checkable
class BudgetStore(Protocol):
    """Budget counters (read side), alert inbox, outbox, rule episodes and rollup measures."""

    # -- budget counters ------------------------------------------------------------------

    def budget_spend(self, counter: str, bucket_start_ns: int, bucket_end_ns: int) -> list[BudgetSpend]:
        """Every scope key's counter of the calendar window ``[bucket_start_ns, bucket_end_ns)``."""
        ...

    def rolling_spend(self, counter: str, since_ns: int, end_ns: int) -> list[BudgetSpend]:
        """Per scope key, the sum of the rolling buckets starting at or after ``since_ns``
        (reported as the bucket ``[since_ns, end_ns)``), with the open episode's levels."""
        ...

    def reevaluate_window(self, recheck: WindowRecheck) -> int:
        """Judge the stored totals of ``recheck.window`` again, in one write transaction.

        Used when a budget's limit changes and when rolling spend ages out. Its ``decide`` may
        also lower levels (a :class:`~spanmeter.store.ledger.LevelChange` below the stored
        one). Returns the number of alerts inserted.
        """
        ...

    def prune_budget_spend(self, calendar_before_ns: int, rolling_before_ns: int) -> int:
        """Delete calendar windows that ended before, and rolling buckets older than, the cutoffs."""
        ...

    # -- inbox ----------------------------------------------------------------------------

    def insert_alerts(self, alerts: Sequence[NewAlert], *, now_ns: int) -> list[int | None]:
        """Insert events (and their outbox rows); None for a ``dedupe_key`` already stored."""
        ...

    def list_alerts(
        self,
        *,
        state: str | None = None,
        kind: str | None = None,
        source: str | None = None,
        since_ns: int | None = None,
        limit: int = 50,
    ) -> list[AlertRecord]:
        """Newest first; ``kind`` may end in ``*`` (``budget.*``)."""
        ...

    def get_alert(self, alert_id: int) -> AlertRecord | None:
        """One event with its history and deliveries."""
        ...

    def alert_counts(self) -> list[tuple[str, str, str, str, int]]:
        """Stored events per ``(kind, source, state, severity)``, as ``(..., count)`` tuples
        (the Prometheus alert gauges)."""
        ...

    def acknowledge(
        self, alert_id: int, *, actor: str, note: str = "", now_ns: int, audit_actor: str | None = None
    ) -> AlertRecord:
        """Mark acknowledged (a no-op on a resolved event, still recorded in its history), with
        an ``alert.ack`` audit entry by ``audit_actor`` (default ``actor``: the name the
        history shows) in the same transaction.

        Raises:
            LookupError: no such event.
        """
        ...

    def resolve(
        self, alert_id: int, *, actor: str, note: str = "", now_ns: int, audit_actor: str | None = None
    ) -> AlertRecord:
        """Mark resolved by a person, with an ``alert.resolve`` audit entry by ``audit_actor``
        (default ``actor``) in the same transaction.

        Raises:
            LookupError: no such event.
        """
        ...

    def resolve_ended_windows(self, now_ns: int) -> int:
        """Resolve budget events whose window has ended (the budget reset); returns how many."""
        ...

    def set_alert_context(self, alert_id: int, context: Mapping[str, Any], *, now_ns: int) -> None:
        """Attach the investigation context to an event."""
        ...

    # -- rule episodes --------------------------------------------------------------------

    def apply_rule_outcomes(self, rule: str, outcomes: Sequence[RuleOutcome], *, now_ns: int) -> list[int]:
        """Open an episode (and insert its event) for each newly firing subject, resolve the
        episodes whose subject is clearly no longer firing; one transaction. Returns the ids
        of the events inserted."""
        ...

    def open_rule_subjects(self, rule: str) -> dict[str, int]:
        """Subjects of ``rule`` with an open episode -> their event id."""
        ...

    # -- outbox ---------------------------------------------------------------------------

    def due_deliveries(self, now_ns: int, *, limit: int = 100) -> list[Delivery]:
        """Pending deliveries whose next attempt is due, oldest event first."""
        ...

    def record_delivery(self, event_id: int, channel: str, update: DeliveryUpdate) -> None:
        """Record one attempt (made by :func:`delivery_update`): ``delivered``, ``pending``
        again (retry at its next attempt time) or ``dead`` (given up); a claim on the row,
        where deliveries are claimed, is released."""
        ...

    # -- cluster-wide work ----------------------------------------------------------------

    def lead(self, name: str) -> bool:
        """Whether this process runs the cluster-wide scheduled job ``name`` now (rules,
        resets, pruning): always on a store one process owns; on a store shared by several
        replicas, only on the one holding that job's leadership, which passes to another
        when it dies."""
        ...

    # -- rollups --------------------------------------------------------------------------

    def measures(
        self,
        by: Sequence[str],
        start_ns: int,
        end_ns: int,
        *,
        where: Mapping[str, str] = ...,
        environment: str | None = None,
        data_mode: str | None = "real",
    ) -> list[MeasureGroup]:
        """Rollup sums grouped by ``by`` (any dimensions of one rollup; ``()`` for totals)
        over the buckets starting in ``[start_ns, end_ns)``.

        Raises:
            ValueError: dimensions no single rollup has.
        """
        ...


@runtime_checkable
class SupportsBudgets(Protocol):
    """A :class:`~spanmeter.store.api.SpanStore` that can host budgets and alerts."""

    @property
    def budget_store(self) -> BudgetStore:
        """The inbox/outbox/counter side of this store."""
        ...

    @property
    def ledger(self) -> LedgerHook | None:
        """The hook registered, if any."""
        ...

    def attach_ledger(self, hook: LedgerHook | None) -> None:
        """Call ``hook`` in every write transaction from now on (None detaches)."""
        ...
