"""Budget counters in SQLite, updated inside the ingest write transaction.

Per transaction (see :mod:`spanmeter.store.ledger` for the contract):

1. the hook's increments are added with one multi-row ``INSERT ... ON CONFLICT DO UPDATE
   ... RETURNING`` per ~1,000 increments (SQLite >= 3.35). The returned totals are exact:
   the transaction holds SQLite's write lock, so no other writer can add in between, and
   there is no read-then-write anywhere. A 512-span batch over 1,000 tenants touches ~175
   counters: one statement, a couple of microseconds per counter. Only the totals that
   could change something (at or over the increment's ``report_at``) go back to the hook;
2. rolling budgets add to hourly buckets the same way, then read their totals with one
   statement joining the touched keys to their buckets (a short primary-key range each)
   and to their open episode;
3. the hook decides; changed levels are written back (a few rows, only on transitions),
   and alerts go to the inbox and outbox (:mod:`.alerts`) in the same transaction.

Counters are stored under a 64-bit id hashed from the hook's counter name (the name is
kept in ``budget_counters``): every transaction rewrites the pages of the counters it
touches, so the smaller the rows the fewer pages go to the write-ahead log.

The whole step runs under a savepoint: if the hook itself fails (a bug, not a disk error),
the budget work of this transaction is rolled back and logged, and the spans are still
committed. Losing budget increments is bad; refusing spans until a budget bug is fixed is
worse, because it also stops cost reporting for everyone.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Generator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Final

from .. import budget_rows
from ..ledger import BudgetSpend, LedgerDecision, LedgerHook, SpendIncrement, SpendTotal, WindowRecheck
from ..ledger_sql import LedgerSQL, budget_spend, write_decision
from ..rows import SpanRow
from .alerts import ALERTS
from .writer import chunked

__all__ = ["SQL", "apply_ledger", "reevaluate_window"]

_CHUNK: Final = 1000
"""Increments per statement: 6 parameters each, far below SQLite's 32,766 variables."""

SQL: Final = LedgerSQL(
    calendar_spend=(
        "SELECT scope_key, cost_nano_usd, attempts, unpriced, alerted_level, forecast_alerted"
        " FROM budget_spend WHERE counter_id = ? AND bucket_start_ns = ?"
    ),
    rolling_spend=(
        "SELECT r.scope_key, sum(r.cost_nano_usd), sum(r.attempts), sum(r.unpriced),"
        " coalesce(max(e.alerted_level), 0), coalesce(max(e.forecast_alerted), 0)"
        " FROM budget_rolling r LEFT JOIN budget_episode e"
        " ON e.counter_id = r.counter_id AND e.scope_key = r.scope_key"
        " WHERE r.counter_id = ? AND r.bucket_start_ns >= ? GROUP BY r.scope_key"
    ),
    calendar_levels=(
        "UPDATE budget_spend SET alerted_level = ?, forecast_alerted = ?"
        " WHERE counter_id = ? AND bucket_start_ns = ? AND scope_key = ?"
    ),
    close_episode="DELETE FROM budget_episode WHERE counter_id = ? AND scope_key = ?",
    open_episode=(
        "INSERT INTO budget_episode (counter_id, scope_key, alerted_level, forecast_alerted, since_ns)"
        " VALUES (?, ?, ?, ?, ?) ON CONFLICT (counter_id, scope_key) DO UPDATE SET"
        " alerted_level = excluded.alerted_level, forecast_alerted = excluded.forecast_alerted,"
        " since_ns = excluded.since_ns"
    ),
    prune_calendar="DELETE FROM budget_spend WHERE bucket_start_ns < ?",
    prune_rolling="DELETE FROM budget_rolling WHERE bucket_start_ns < ?",
)
"""The ledger's reads and decision writes on SQLite (see :mod:`spanmeter.store.ledger_sql`)."""
_UPSERT_CALENDAR: Final = (
    "INSERT INTO budget_spend (counter_id, bucket_start_ns, scope_key, cost_nano_usd, attempts, unpriced)"
    " VALUES {values} ON CONFLICT (counter_id, bucket_start_ns, scope_key) DO UPDATE SET"
    " cost_nano_usd = cost_nano_usd + excluded.cost_nano_usd, attempts = attempts + excluded.attempts,"
    " unpriced = unpriced + excluded.unpriced"
    " RETURNING counter_id, bucket_start_ns, scope_key, cost_nano_usd, alerted_level, forecast_alerted"
)
_UPSERT_ROLLING: Final = (
    "INSERT INTO budget_rolling (counter_id, scope_key, bucket_start_ns, cost_nano_usd, attempts, unpriced)"
    " VALUES {values} ON CONFLICT (counter_id, scope_key, bucket_start_ns) DO UPDATE SET"
    " cost_nano_usd = cost_nano_usd + excluded.cost_nano_usd, attempts = attempts + excluded.attempts,"
    " unpriced = unpriced + excluded.unpriced"
)
_ROLLING_TOTALS: Final = (
    "WITH k (counter_id, scope_key, since) AS (VALUES {values})"
    " SELECT k.counter_id, k.scope_key,"
    " (SELECT coalesce(sum(r.cost_nano_usd), 0) FROM budget_rolling r WHERE r.counter_id = k.counter_id"
    "  AND r.scope_key = k.scope_key AND r.bucket_start_ns >= k.since),"
    " coalesce(e.alerted_level, 0), coalesce(e.forecast_alerted, 0), e.since_ns"
    " FROM k LEFT JOIN budget_episode e ON e.counter_id = k.counter_id AND e.scope_key = k.scope_key"
)


def _values(rows: int, width: int) -> str:
    one = "(" + ",".join("?" * width) + ")"
    return ",".join([one] * rows)


def _calendar_totals(conn: sqlite3.Connection, increments: Sequence[SpendIncrement]) -> list[SpendTotal]:
    """Add calendar increments; the totals the hook must judge (those at or over their
    increment's ``report_at``, or already alerted)."""
    totals: list[SpendTotal] = []
    for chunk in chunked(increments, _CHUNK):
        by_key = budget_rows.calendar_keys(chunk)
        params = [value for key, inc in by_key.items() for value in (*key, *_sums(inc))]
        sql = _UPSERT_CALENDAR.format(values=_values(len(chunk), 6))
        totals += budget_rows.calendar_totals(by_key, conn.execute(sql, params).fetchall())
    return totals


def _sums(inc: SpendIncrement) -> tuple[int, int, int]:
    return inc.cost_nano_usd, inc.attempts, inc.unpriced


def _rolling_totals(conn: sqlite3.Connection, increments: Sequence[SpendIncrement]) -> list[SpendTotal]:
    for chunk in chunked(increments, _CHUNK):
        params: list[object] = []
        for inc in chunk:
            params.extend(
                (
                    budget_rows.counter_id(inc.counter),
                    inc.scope_key,
                    inc.bucket_start_ns,
                    inc.cost_nano_usd,
                    inc.attempts,
                )
            )
            params.append(inc.unpriced)
        conn.execute(_UPSERT_ROLLING.format(values=_values(len(chunk), 6)), params)
    keyed = budget_rows.rolling_keys(increments)  # one total per (counter, scope key)
    totals: list[SpendTotal] = []
    for chunk in chunked(list(keyed.items()), _CHUNK):
        params = []
        for (ident, scope_key), inc in chunk:
            params.extend((ident, scope_key, inc.rolling_since_ns))
        sql = _ROLLING_TOTALS.format(values=_values(len(chunk), 3))
        totals += budget_rows.rolling_totals(keyed, conn.execute(sql, params))
    return totals


def _write_decision(conn: sqlite3.Connection, decision: LedgerDecision) -> int:
    return write_decision(conn, SQL, ALERTS, decision)


@dataclass(frozen=True, slots=True)
class _Steps:
    """The ledger's statements on one SQLite write connection."""

    conn: sqlite3.Connection

    def name_counters(self, names: set[str]) -> None:
        self.conn.executemany(
            "INSERT OR IGNORE INTO budget_counters (id, counter) VALUES (?, ?)",
            [(budget_rows.counter_id(name), name) for name in names],
        )

    def calendar_totals(self, increments: Sequence[SpendIncrement]) -> list[SpendTotal]:
        return _calendar_totals(self.conn, increments)

    def rolling_totals(self, increments: Sequence[SpendIncrement]) -> list[SpendTotal]:
        return _rolling_totals(self.conn, increments)

    def write_decision(self, decision: LedgerDecision) -> int:
        return _write_decision(self.conn, decision)


@contextmanager
def _savepoint(conn: sqlite3.Connection) -> Generator[None, None, None]:
    conn.execute("SAVEPOINT budget_ledger")
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK TO budget_ledger")
        conn.execute("RELEASE budget_ledger")
        raise
    conn.execute("RELEASE budget_ledger")


def apply_ledger(
    conn: sqlite3.Connection, hook: LedgerHook, rows: Sequence[SpanRow], stats: budget_rows.LedgerStats
) -> None:
    """Run ``hook`` over the transaction's new rows and write what it decides.

    Must be called inside the write transaction that stores ``rows``.
    """
    budget_rows.run_guarded(hook, rows, stats, _Steps(conn), _savepoint(conn))


def reevaluate_window(conn: sqlite3.Connection, recheck: WindowRecheck) -> int:
    """Judge stored totals again (no new spend) inside the caller's write transaction.

    Rolling budgets: every key with spend in the window or an open episode is judged (an
    episode whose spend aged out ends). Returns the number of alerts inserted.
    """
    counter, bucket, rolling_since_ns = recheck.counter, recheck.window, recheck.rolling_since_ns
    start, end = bucket
    calendar: list[BudgetSpend] = []
    rolling: list[tuple[object, ...]] = []
    if rolling_since_ns is None:
        calendar = budget_spend(conn, SQL, counter, start, end)
    else:
        rolling = conn.execute(
            "WITH k (scope_key) AS (SELECT DISTINCT scope_key FROM budget_rolling"
            "  WHERE counter_id = ?1 AND bucket_start_ns >= ?2"
            "  UNION SELECT scope_key FROM budget_episode WHERE counter_id = ?1)"
            " SELECT k.scope_key, coalesce(e.alerted_level, 0), coalesce(e.forecast_alerted, 0), e.since_ns,"
            " (SELECT coalesce(sum(r.cost_nano_usd), 0) FROM budget_rolling r WHERE r.counter_id = ?1"
            "  AND r.scope_key = k.scope_key AND r.bucket_start_ns >= ?2)"
            " FROM k LEFT JOIN budget_episode e ON e.counter_id = ?1 AND e.scope_key = k.scope_key",
            (budget_rows.counter_id(counter), rolling_since_ns),
        ).fetchall()
    totals = budget_rows.stored_totals(counter, bucket, calendar, rolling, rolling_since_ns)
    if not totals:
        return 0
    return _write_decision(conn, budget_rows.with_clock(recheck.decide(totals), recheck.now_ns))
