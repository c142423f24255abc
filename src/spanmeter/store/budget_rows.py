"""What every store's budget counters share, whatever the SQL: counter ids, the rows of a
decision to write, the totals to judge again, the spend rows read back.

The ledger contract (:mod:`spanmeter.store.ledger`) says what a store does inside its write
transaction; each backend says it in its own SQL (``sqlite.budget_ledger``,
``postgres.budget_ledger``). The decisions between the statements (which totals the hook
must see, which episodes a decision opens or closes, how a stored row becomes a total) are
the same everywhere, so they live here once: two backends cannot judge the same spend
differently.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Final, Protocol

from ..timeunits import NS_PER_DAY
from .ledger import BudgetSpend, LedgerDecision, LedgerHook, SpendIncrement, SpendTotal
from .rows import SpanRow

_logger = logging.getLogger(__name__)

__all__ = [
    "LONGEST_CALENDAR_NS",
    "CalendarKey",
    "DecisionWrites",
    "LedgerStats",
    "LedgerSteps",
    "RollingKey",
    "calendar_keys",
    "calendar_totals",
    "counter_id",
    "decision_writes",
    "reportable",
    "rolling_keys",
    "rolling_totals",
    "run_guarded",
    "run_ledger",
    "spend_rows",
    "stored_totals",
    "with_clock",
]

LONGEST_CALENDAR_NS: Final = 32 * NS_PER_DAY
"""No calendar window (a month, a DST day) is longer: bounds the end of a window from its start."""


@lru_cache(maxsize=65_536)
def counter_id(counter: str) -> int:
    """The 64-bit id a counter name is stored under (a hash: no lookup, no collisions in practice)."""
    return int.from_bytes(hashlib.blake2b(counter.encode(), digest_size=8).digest(), "big", signed=True)


@dataclass(slots=True)
class LedgerStats:
    """What the ledger did since the store opened, for metrics and tests."""

    transactions: int = 0
    """Write transactions that ran the hook."""
    alerts: int = 0
    """Alerts inserted from ingest."""
    failures: int = 0
    """Hook failures: those transactions' spans were stored without budget accounting."""
    named: set[str] = field(default_factory=set[str])
    """Counters whose name is known to be in ``budget_counters``."""


CalendarKey = tuple[int, int, str]
"""A calendar counter row's key: counter id, window start, scope key."""
RollingKey = tuple[int, str]
"""A rolling counter's key: counter id, scope key (its hour buckets share one total)."""


def calendar_keys(increments: Sequence[SpendIncrement]) -> dict[CalendarKey, SpendIncrement]:
    """The increments by the counter row they add to.

    Raises:
        ValueError: two increments of one row (the hook merges per key; a repeat would be
            applied twice).
    """
    by_key: dict[CalendarKey, SpendIncrement] = {}
    for inc in increments:
        key = (counter_id(inc.counter), inc.bucket_start_ns, inc.scope_key)
        if key in by_key:
            raise ValueError(f"duplicate budget increment for {inc.counter!r} {key[1:]!r}")
        by_key[key] = inc
    return by_key


def rolling_keys(increments: Sequence[SpendIncrement]) -> dict[RollingKey, SpendIncrement]:
    """One increment per ``(counter id, scope key)``: the hour buckets of one key share its
    total (the first increment stands for them)."""
    keyed: dict[RollingKey, SpendIncrement] = {}
    for inc in increments:
        keyed.setdefault((counter_id(inc.counter), inc.scope_key), inc)
    return keyed


def calendar_totals(
    by_key: Mapping[CalendarKey, SpendIncrement], upserted: Iterable[tuple[Any, ...]]
) -> list[SpendTotal]:
    """The calendar totals the hook must judge (:func:`reportable`), from the upsert's
    returned ``(counter id, window start, scope key, total, level, forecast)`` rows."""
    totals: list[SpendTotal] = []
    for ident, start, scope_key, total, level, forecast in upserted:
        inc = by_key[(int(ident), int(start), str(scope_key))]
        if reportable(inc, int(total), int(level)):
            totals.append(SpendTotal(inc, int(total), int(level), bool(forecast)))
    return totals


def reportable(increment: SpendIncrement, total: int, level: int) -> bool:
    """Whether the hook must judge a calendar total: at or over the increment's
    ``report_at``, or already alerted (a level may have to be lowered)."""
    return total >= increment.report_at or level > 0


def rolling_totals(
    keyed: dict[RollingKey, SpendIncrement], rows: Iterable[tuple[Any, ...]]
) -> list[SpendTotal]:
    """The rolling totals to judge from ``(counter id, scope key, total, alerted level,
    forecast alerted, episode start)`` rows, one per key of ``keyed``."""
    return [
        SpendTotal(keyed[(ident, scope_key)], int(total), int(level), bool(forecast), episode)
        for ident, scope_key, total, level, forecast, episode in rows
    ]


@dataclass(frozen=True, slots=True)
class DecisionWrites:
    """A :class:`LedgerDecision` as the parameter rows of the statements that store it."""

    now_ns: int
    calendar_levels: list[tuple[int, int, int, int, str]]
    """``(alerted level, forecast alerted 0/1, counter id, window start, scope key)``."""
    closed_episodes: list[tuple[int, str]]
    """``(counter id, scope key)`` of rolling episodes that ended."""
    open_episodes: list[tuple[int, str, int, int, int]]
    """``(counter id, scope key, alerted level, forecast alerted 0/1, episode start)``."""


def decision_writes(decision: LedgerDecision, default_now_ns: int) -> DecisionWrites:
    """Split ``decision``'s level changes into calendar levels and rolling episodes."""
    calendar = [c for c in decision.level_changes if not c.rolling]
    rolling = [c for c in decision.level_changes if c.rolling]
    return DecisionWrites(
        now_ns=decision.now_ns if decision.now_ns is not None else default_now_ns,
        calendar_levels=[
            (c.alerted_level, int(c.forecast_alerted), counter_id(c.counter), c.bucket_start_ns, c.scope_key)
            for c in calendar
        ],
        closed_episodes=[
            (counter_id(c.counter), c.scope_key)
            for c in rolling
            if c.alerted_level == 0 and not c.forecast_alerted
        ],
        open_episodes=[
            (counter_id(c.counter), c.scope_key, c.alerted_level, int(c.forecast_alerted), c.episode_since_ns)
            for c in rolling
            if c.alerted_level > 0 or c.forecast_alerted
        ],
    )


def with_clock(decision: LedgerDecision, now_ns: int) -> LedgerDecision:
    """``decision`` with ``now_ns`` as its clock when it brought none."""
    if decision.now_ns is not None:
        return decision
    return LedgerDecision(decision.level_changes, decision.alerts, now_ns, decision.resolve)


def spend_rows(rows: Iterable[tuple[Any, ...]], start_ns: int, end_ns: int) -> list[BudgetSpend]:
    """Spend rows of one window from ``(scope_key, cost, attempts, unpriced, alerted level,
    forecast alerted)`` tuples, as both the calendar and the rolling query return them."""
    return [
        BudgetSpend(
            scope_key=scope_key,
            bucket_start_ns=start_ns,
            bucket_end_ns=end_ns,
            cost_nano_usd=int(cost),
            attempts=int(attempts),
            unpriced=int(unpriced),
            alerted_level=int(level),
            forecast_alerted=bool(forecast),
        )
        for scope_key, cost, attempts, unpriced, level, forecast in rows
    ]


def stored_totals(
    counter: str,
    bucket: tuple[int, int],
    calendar: Sequence[BudgetSpend],
    rolling: Iterable[tuple[Any, ...]],
    rolling_since_ns: int | None,
) -> list[SpendTotal]:
    """The stored totals of a window, to judge again without new spend.

    Calendar windows: one per ``calendar`` row. Rolling windows (``rolling_since_ns`` set):
    one per ``(scope key, alerted level, forecast alerted, episode start, total)`` row of
    ``rolling``, every key with spend in the window or an open episode.
    """
    start, end = bucket
    if rolling_since_ns is None:
        return [
            SpendTotal(
                SpendIncrement(counter, spend.scope_key, start, end, 0, 0, 0),
                spend.cost_nano_usd,
                spend.alerted_level,
                spend.forecast_alerted,
            )
            for spend in calendar
        ]
    return [
        SpendTotal(
            SpendIncrement(counter, scope_key, start, end, 0, 0, 0, rolling_since_ns=rolling_since_ns),
            int(total),
            int(level),
            bool(forecast),
            None if since is None else int(since),
        )
        for scope_key, level, forecast, since, total in rolling
    ]


class LedgerSteps(Protocol):
    """One backend's statements for the ledger, inside its write transaction."""

    def name_counters(self, names: set[str]) -> None:
        """Record the names behind these counters' ids (for people reading the tables)."""
        ...

    def calendar_totals(self, increments: Sequence[SpendIncrement]) -> list[SpendTotal]:
        """Add calendar increments; the totals :func:`reportable` keeps."""
        ...

    def rolling_totals(self, increments: Sequence[SpendIncrement]) -> list[SpendTotal]:
        """Add rolling increments; one total per (counter, scope key)."""
        ...

    def write_decision(self, decision: LedgerDecision) -> int:
        """Store the decision's levels, episodes and alerts; returns the alerts inserted."""
        ...


def run_ledger(hook: LedgerHook, rows: Sequence[SpanRow], stats: LedgerStats, steps: LedgerSteps) -> None:
    """Plan, count, judge and write one transaction's budget work (see :mod:`.ledger`);
    the caller wraps it in a savepoint and owns the failure handling."""
    plan = hook.plan(rows)
    if plan is None or not plan.increments:
        return
    increments = plan.increments
    fresh = {inc.counter for inc in increments} - stats.named
    if fresh:
        steps.name_counters(fresh)
        stats.named.update(fresh)
    calendar = [inc for inc in increments if inc.rolling_since_ns is None]
    rolling = [inc for inc in increments if inc.rolling_since_ns is not None]
    totals = steps.calendar_totals(calendar) if calendar else []
    if rolling:
        totals += steps.rolling_totals(rolling)
    decision = plan.decide(totals)
    if decision.level_changes or decision.alerts or decision.resolve:
        stats.alerts += steps.write_decision(decision)


def run_guarded(
    hook: LedgerHook,
    rows: Sequence[SpanRow],
    stats: LedgerStats,
    steps: LedgerSteps,
    savepoint: AbstractContextManager[object],
    *,
    retried: tuple[type[Exception], ...] = (),
) -> None:
    """:func:`run_ledger` under ``savepoint`` (rolled back if it raises), inside the write
    transaction that stores ``rows``.

    If the hook fails (a bug, not the database) the budget work of the transaction is rolled
    back, counted and logged, and the spans are still committed: losing budget increments is
    bad; refusing spans until a budget bug is fixed is worse, because it also stops cost
    reporting for everyone. An error of ``retried`` (the database's, on an engine where the
    whole transaction is retried) is raised as it is.
    """
    try:
        with savepoint:
            run_ledger(hook, rows, stats, steps)
        stats.transactions += 1
    except retried:
        stats.named.clear()
        raise
    except Exception:
        stats.failures += 1
        stats.named.clear()  # some of those names may have been rolled back
        _logger.exception(
            "spanmeter: budget ledger failed; %d spans stored without budget accounting", len(rows)
        )
