"""The budget ledger's reads, decision writes and pruning around a backend's statements.

How the counters are judged is :mod:`spanmeter.store.budget_rows`'; what a backend does with
the statements that read and write them (which parameters, what a decision writes, in which
order, which alerts it inserts and resolves) is the same on every backend and lives here
once. A backend passes its :class:`LedgerSQL` and its
:class:`~spanmeter.store.alert_store.AlertStore`; the increments of a write transaction
(batched upserts, locks) stay the backend's.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from .alert_store import AlertStore
from .budget_rows import LONGEST_CALENDAR_NS, counter_id, decision_writes, spend_rows
from .ledger import BudgetSpend, LedgerDecision

__all__ = ["LedgerSQL", "budget_spend", "prune", "rolling_spend", "write_decision"]


@dataclass(frozen=True, slots=True)
class LedgerSQL:
    """A backend's ledger statements, each with its parameters in the order given."""

    calendar_spend: str
    """(counter id, window start) -> scope key, cost, attempts, unpriced, level, forecast."""
    rolling_spend: str
    """(counter id, since) -> the same per scope key, rolling buckets summed."""
    calendar_levels: str
    """(level, forecast, counter id, window start, scope key)."""
    close_episode: str
    """(counter id, scope key)."""
    open_episode: str
    """(counter id, scope key, level, forecast, since): inserted or updated."""
    prune_calendar: str
    """(start before)."""
    prune_rolling: str
    """(start before)."""


def budget_spend(
    conn: Any, sql: LedgerSQL, counter: str, bucket_start_ns: int, bucket_end_ns: int
) -> list[BudgetSpend]:
    """Every scope key's row of one calendar window: one primary-key range."""
    cursor = conn.execute(sql.calendar_spend, (counter_id(counter), bucket_start_ns))
    return spend_rows(cursor, bucket_start_ns, bucket_end_ns)


def rolling_spend(conn: Any, sql: LedgerSQL, counter: str, since_ns: int, end_ns: int) -> list[BudgetSpend]:
    """Per scope key, the rolling buckets since ``since_ns`` summed, with the open episode."""
    cursor = conn.execute(sql.rolling_spend, (counter_id(counter), since_ns))
    return spend_rows(cursor, since_ns, end_ns)


def write_decision(conn: Any, sql: LedgerSQL, alerts: AlertStore, decision: LedgerDecision) -> int:
    """Store a decision's levels and episodes, resolve and insert its alerts; the number of
    alerts inserted (one already stored under its dedupe key is not)."""
    writes = decision_writes(decision, time.time_ns())
    alerts.executemany(conn, sql.calendar_levels, writes.calendar_levels)
    alerts.executemany(conn, sql.close_episode, writes.closed_episodes)
    alerts.executemany(conn, sql.open_episode, writes.open_episodes)
    if decision.resolve:
        alerts.resolve_episodes(conn, decision.resolve, writes.now_ns)
    if not decision.alerts:
        return 0
    return sum(
        1 for event_id in alerts.insert_alerts(conn, decision.alerts, writes.now_ns) if event_id is not None
    )


def prune(conn: Any, sql: LedgerSQL, calendar_before_ns: int, rolling_before_ns: int) -> int:
    """Delete calendar windows ended before, and rolling buckets older than, the cutoffs."""
    deleted = conn.execute(sql.prune_calendar, (calendar_before_ns - LONGEST_CALENDAR_NS,)).rowcount
    deleted += conn.execute(sql.prune_rolling, (rolling_before_ns,)).rowcount
    return max(deleted, 0)
