"""Budget spend counters updated inside the write transaction: the store-agnostic contract.

Why a hook inside the transaction: a budget is only exact and race-free if the spend of a
batch is added in the same transaction that stores the batch. A separate pass (read the
rollups, compare, write a state) can miss or double count a batch committed in between, and
a check-then-increment from several threads fires the same alert twice. So the store calls a
:class:`LedgerHook` with the rows it is about to commit (new rows only: re-deliveries never
count), and the hook answers with plain data:

1. :meth:`LedgerHook.plan` turns the rows into :class:`SpendIncrement` values, one per
   (budget counter, scope key, window bucket) the batch touches;
2. the store adds them to its counters with an atomic upsert (SQLite:
   ``INSERT ... ON CONFLICT DO UPDATE ... RETURNING``) and hands back one
   :class:`SpendTotal` per increment: the total after this transaction and the level
   already alerted for that window;
3. :meth:`LedgerPlan.decide` compares and returns the :class:`LevelChange` values and the
   :class:`NewAlert` events to store, still in the same transaction, so a level is crossed
   (and alerted) exactly once however many writers race, and an alert is never lost between
   the counter update and the inbox.

Nothing here mentions SQL: the budgets package implements the hook, each store implements
the counters. The counters are keyed by an opaque ``counter`` id (a budget and everything
that defines what it counts) so that the store never needs to know what a budget is.

Example (what a store does inside its write transaction)::

    plan = hook.plan(new_rows)
    if plan is not None:
        totals = [...]                      # upsert plan.increments, read the new totals
        decision = plan.decide(totals)
        ...                                 # store decision.level_changes and decision.alerts
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from .rows import SpanRow

__all__ = [
    "BudgetSpend",
    "LedgerDecision",
    "LedgerHook",
    "LedgerPlan",
    "LevelChange",
    "NewAlert",
    "SpendIncrement",
    "SpendTotal",
    "WindowRecheck",
]


@dataclass(slots=True)
class SpendIncrement:
    """Spend of one transaction for one (counter, scope key, bucket).

    Read-only by convention, not frozen: one is built per counter per transaction, and a
    frozen dataclass costs four times as much to build.
    """

    counter: str
    """Opaque counter id chosen by the hook (one per budget definition)."""
    scope_key: str
    """Which instance of a ``*`` budget (e.g. ``tenant_id=acme``); ``''`` for a plain budget."""
    bucket_start_ns: int
    """Calendar budgets: the window start. Rolling budgets: the start of the hour bucket."""
    bucket_end_ns: int
    cost_nano_usd: int
    attempts: int
    unpriced: int
    """Attempts without a price: the spend is understated by whatever they cost."""
    rolling_since_ns: int | None = None
    """None for a calendar window, whose total is its bucket. For a rolling window: the
    total is the sum of the buckets starting at or after this instant, and the alerted
    level lives on an episode (see :class:`SpendTotal`) rather than on the bucket."""
    report_at: int = 0
    """The store may leave out of :meth:`LedgerPlan.decide` the totals below this: the hook
    says nothing can happen under it (the first threshold, or the spend at which the
    forecast would fire now). Most counters of most transactions are far below it, so
    they cost an upsert and nothing more."""


@dataclass(slots=True)
class SpendTotal:
    """What the store reports back for one increment, after applying it (read-only by
    convention, like :class:`SpendIncrement`)."""

    increment: SpendIncrement
    total_nano_usd: int
    """The window total including this transaction (rolling: the sum since ``rolling_since_ns``)."""
    alerted_level: int
    """Highest level already alerted for this window (rolling: this episode); 0 = none."""
    forecast_alerted: bool
    """Whether the forecast warning already fired for this window (rolling: episode)."""
    episode_since_ns: int | None = None
    """Rolling windows only: when the current episode began (None: no open episode)."""


@dataclass(frozen=True, slots=True)
class LevelChange:
    """A new alerted level for one window (calendar) or one episode (rolling)."""

    counter: str
    scope_key: str
    bucket_start_ns: int
    """The calendar window start; ignored for rolling windows."""
    alerted_level: int
    forecast_alerted: bool
    rolling: bool = False
    episode_since_ns: int = 0
    """Rolling windows: the start of the episode (kept while the level stays above 0)."""


@dataclass(frozen=True, slots=True)
class NewAlert:
    """An alert event to insert into the inbox (and the delivery outbox) atomically.

    ``dedupe_key`` is unique in the inbox: inserting the same key twice stores one event,
    which is what makes an alert fire once even if its producer runs again (a restarted
    scheduler, a re-evaluated rule).
    """

    dedupe_key: str
    kind: str
    """``budget.warning``, ``budget.exceeded``, ``budget.forecast``, ``rule.<kind>``."""
    severity: str
    """``info``, ``warning`` or ``critical``."""
    source: str
    """The budget or rule name."""
    subject: str
    """What it is about, as ``dim=value`` pairs (the scope key or the rule's subject)."""
    title: str
    """One line for people."""
    occurred_at_ns: int
    window_start_ns: int | None = None
    window_end_ns: int | None = None
    details: Mapping[str, Any] = field(default_factory=dict[str, Any])
    """JSON-ready numbers and filters (budget, spend, limit, baseline...)."""
    channels: tuple[str, ...] = ()
    """Delivery channels to queue in the outbox, by name."""


@dataclass(frozen=True, slots=True)
class LedgerDecision:
    """What :meth:`LedgerPlan.decide` asks the store to write."""

    level_changes: Sequence[LevelChange] = ()
    alerts: Sequence[NewAlert] = ()
    now_ns: int | None = None
    """The decider's clock, recorded as the alerts' insertion time (None: the store's clock)."""
    resolve: Sequence[tuple[str, str, str]] = ()
    """(source, subject, note): resolve the open budget alerts of that source and subject
    that have no calendar window (a rolling episode that ended)."""


@dataclass(frozen=True, slots=True)
class WindowRecheck:
    """One window whose stored totals are judged again, with no new spend: when a budget's
    limit changes and when rolling spend ages out. One object, so the store protocol and each
    backend's ledger name these once."""

    counter: str
    window: tuple[int, int]
    """Calendar: the window ``(start, end)``; rolling: the window's span."""
    rolling_since_ns: int | None
    """None for a calendar window; rolling: the sum runs over the buckets from here on."""
    decide: Callable[[Sequence[SpendTotal]], LedgerDecision]
    now_ns: int


@dataclass(frozen=True, slots=True)
class BudgetSpend:
    """One stored counter row, as read back for status pages and re-evaluation."""

    scope_key: str
    bucket_start_ns: int
    bucket_end_ns: int
    cost_nano_usd: int
    attempts: int
    unpriced: int
    alerted_level: int = 0
    forecast_alerted: bool = False


class LedgerPlan(Protocol):
    """The increments of one transaction, plus the rules to judge their totals."""

    @property
    def increments(self) -> Sequence[SpendIncrement]:
        """What to add, one entry per (counter, scope key, bucket)."""
        ...

    def decide(self, totals: Sequence[SpendTotal]) -> LedgerDecision:
        """Levels to record and alerts to insert, given the totals after the increments.

        Called inside the write transaction: must be fast, pure Python, and never do I/O.
        """
        ...


@runtime_checkable
class LedgerHook(Protocol):
    """Registered with a store; called once per write transaction with the new rows."""

    def plan(self, rows: Sequence[SpanRow]) -> LedgerPlan | None:
        """The increments for ``rows`` (new, deduplicated rows only); None if none apply."""
        ...
