"""Budget counters on PostgreSQL, updated inside the ingest write transaction, exact across
every replica writing to the database.

Per transaction (the contract is :mod:`spanmeter.store.ledger`; the steps between the
statements are :func:`spanmeter.store.budget_rows.run_ledger`, shared with SQLite):

1. calendar increments are added with one ``INSERT ... SELECT FROM unnest(...) ON CONFLICT
   DO UPDATE SET cost = cost + excluded.cost ... RETURNING``. The upsert locks each counter
   row until commit, and a replica adding to the same row meanwhile waits, then adds to the
   committed total: the total returned is exact, and so is the alerted level returned with
   it, which the other replica's transaction raised before it committed. So a level crossed
   by two replicas at once is judged crossed by one of them only. Rows are locked in one
   order (counter id, window start, scope key in code-point order) by every transaction,
   so two replicas touching the same counters never deadlock;
2. rolling budgets first take a transaction advisory lock per (counter, scope key), in key
   order, then add to their hourly buckets and read the sum of the window with the open
   episode: no other replica can judge the same key until this transaction commits;
3. the decision's levels, episodes and alerts are written in the same transaction; an
   alert's ``dedupe_key`` is unique (``ON CONFLICT DO NOTHING``), a second safeguard.

The whole step runs under a savepoint: if the hook fails (a bug, not the database), the
budget work is rolled back and logged and the spans are still committed, as on SQLite. A
lost connection or a serialization failure is not caught: the transaction fails whole and
the exporter retries it, so no spend is lost.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import psycopg

from .. import budget_rows
from ..ledger import BudgetSpend, LedgerDecision, LedgerHook, SpendIncrement, SpendTotal, WindowRecheck
from ..ledger_sql import LedgerSQL, write_decision
from ..rows import SpanRow
from .alerts import ALERTS, lock_key
from .schema import BUDGET_SCOPE_LOCKS

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = ["SQL", "apply_ledger", "reevaluate_window"]

Conn = psycopg.Connection[tuple[Any, ...]]

SQL: Final = LedgerSQL(
    calendar_spend=(
        "SELECT scope_key, cost_nano_usd, attempts, unpriced, alerted_level, forecast_alerted"
        " FROM budget_spend WHERE counter_id = %s AND bucket_start_ns = %s"
    ),
    rolling_spend=(
        "SELECT r.scope_key, sum(r.cost_nano_usd), sum(r.attempts), sum(r.unpriced),"
        " coalesce(max(e.alerted_level), 0), coalesce(max(e.forecast_alerted), 0)"
        " FROM budget_rolling r LEFT JOIN budget_episode e"
        " ON e.counter_id = r.counter_id AND e.scope_key = r.scope_key"
        " WHERE r.counter_id = %s AND r.bucket_start_ns >= %s GROUP BY r.scope_key"
    ),
    calendar_levels=(
        "UPDATE budget_spend SET alerted_level = %s, forecast_alerted = %s"
        " WHERE counter_id = %s AND bucket_start_ns = %s AND scope_key = %s"
    ),
    close_episode="DELETE FROM budget_episode WHERE counter_id = %s AND scope_key = %s",
    open_episode=(
        "INSERT INTO budget_episode (counter_id, scope_key, alerted_level, forecast_alerted, since_ns)"
        " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (counter_id, scope_key) DO UPDATE SET"
        " alerted_level = excluded.alerted_level, forecast_alerted = excluded.forecast_alerted,"
        " since_ns = excluded.since_ns"
    ),
    prune_calendar="DELETE FROM budget_spend WHERE bucket_start_ns < %s",
    prune_rolling="DELETE FROM budget_rolling WHERE bucket_start_ns < %s",
)
"""The ledger's reads and decision writes on PostgreSQL (see :mod:`spanmeter.store.ledger_sql`)."""
_UPSERT_CALENDAR: Final = (
    "INSERT INTO budget_spend AS s (counter_id, bucket_start_ns, scope_key, cost_nano_usd, attempts, unpriced)"
    " SELECT * FROM unnest(%s::bigint[], %s::bigint[], %s::text[], %s::bigint[], %s::bigint[], %s::bigint[])"
    " ON CONFLICT (counter_id, bucket_start_ns, scope_key) DO UPDATE SET"
    " cost_nano_usd = s.cost_nano_usd + excluded.cost_nano_usd, attempts = s.attempts + excluded.attempts,"
    " unpriced = s.unpriced + excluded.unpriced"
    " RETURNING counter_id, bucket_start_ns, scope_key, cost_nano_usd, alerted_level, forecast_alerted"
)
_UPSERT_ROLLING: Final = (
    "INSERT INTO budget_rolling AS r (counter_id, scope_key, bucket_start_ns, cost_nano_usd, attempts, unpriced)"
    " SELECT * FROM unnest(%s::bigint[], %s::text[], %s::bigint[], %s::bigint[], %s::bigint[], %s::bigint[])"
    " ON CONFLICT (counter_id, scope_key, bucket_start_ns) DO UPDATE SET"
    " cost_nano_usd = r.cost_nano_usd + excluded.cost_nano_usd, attempts = r.attempts + excluded.attempts,"
    " unpriced = r.unpriced + excluded.unpriced"
)
_ROLLING_TOTALS: Final = (
    "SELECT k.counter_id, k.scope_key,"
    " (SELECT coalesce(sum(r.cost_nano_usd), 0) FROM budget_rolling r WHERE r.counter_id = k.counter_id"
    "  AND r.scope_key = k.scope_key AND r.bucket_start_ns >= k.since),"
    " coalesce(e.alerted_level, 0), coalesce(e.forecast_alerted, 0), e.since_ns"
    " FROM unnest(%s::bigint[], %s::text[], %s::bigint[]) AS k (counter_id, scope_key, since)"
    " LEFT JOIN budget_episode e ON e.counter_id = k.counter_id AND e.scope_key = k.scope_key"
)
_STORED_ROLLING: Final = (
    "WITH k (scope_key) AS (SELECT DISTINCT scope_key FROM budget_rolling"
    "  WHERE counter_id = %(id)s AND bucket_start_ns >= %(since)s"
    "  UNION SELECT scope_key FROM budget_episode WHERE counter_id = %(id)s)"
    " SELECT k.scope_key, coalesce(e.alerted_level, 0), coalesce(e.forecast_alerted, 0), e.since_ns,"
    " (SELECT coalesce(sum(r.cost_nano_usd), 0) FROM budget_rolling r WHERE r.counter_id = %(id)s"
    "  AND r.scope_key = k.scope_key AND r.bucket_start_ns >= %(since)s)"
    " FROM k LEFT JOIN budget_episode e ON e.counter_id = %(id)s AND e.scope_key = k.scope_key"
)


def _columns(rows: Iterable[tuple[object, ...]], width: int) -> list[list[object]]:
    """Rows as ``width`` column lists (the arrays ``unnest`` takes)."""
    columns: list[list[object]] = [[] for _ in range(width)]
    for row in rows:
        for column, value in zip(columns, row, strict=True):
            column.append(value)
    return columns


def _lock_scopes(conn: Conn, scopes: Iterable[tuple[str, str]]) -> None:
    """Take the advisory locks of these rolling ``(counter, scope key)`` pairs, in key order
    (the same in every transaction: no deadlock between replicas)."""
    keys = sorted({lock_key(counter, scope_key) for counter, scope_key in scopes})
    if keys:
        conn.execute(
            "SELECT pg_advisory_xact_lock(%s, k) FROM unnest(%s::integer[]) AS k", (BUDGET_SCOPE_LOCKS, keys)
        ).fetchall()


@dataclass(frozen=True, slots=True)
class _Steps:
    """The ledger's statements on one PostgreSQL write connection."""

    conn: Conn

    def name_counters(self, names: set[str]) -> None:
        rows = sorted(
            (budget_rows.counter_id(name), name) for name in names
        )  # one lock order for every replica
        self.conn.execute(
            "INSERT INTO budget_counters (id, counter) SELECT * FROM unnest(%s::bigint[], %s::text[])"
            " ON CONFLICT DO NOTHING",
            _columns(rows, 2),
        )

    def calendar_totals(self, increments: Sequence[SpendIncrement]) -> list[SpendTotal]:
        by_key = budget_rows.calendar_keys(increments)
        ordered = sorted(by_key)  # the order rows are locked in, the same in every transaction
        rows = [
            (*key, by_key[key].cost_nano_usd, by_key[key].attempts, by_key[key].unpriced) for key in ordered
        ]
        return budget_rows.calendar_totals(by_key, self.conn.execute(_UPSERT_CALENDAR, _columns(rows, 6)))

    def rolling_totals(self, increments: Sequence[SpendIncrement]) -> list[SpendTotal]:
        _lock_scopes(self.conn, ((inc.counter, inc.scope_key) for inc in increments))
        rows = sorted(
            (
                budget_rows.counter_id(inc.counter),
                inc.scope_key,
                inc.bucket_start_ns,
                inc.cost_nano_usd,
                inc.attempts,
                inc.unpriced,
            )
            for inc in increments
        )
        self.conn.execute(_UPSERT_ROLLING, _columns(rows, 6))
        keyed = budget_rows.rolling_keys(increments)  # one total per (counter, scope key)
        wanted = [(ident, scope_key, inc.rolling_since_ns) for (ident, scope_key), inc in keyed.items()]
        found = [
            (int(ident), str(scope_key), total, level, forecast, None if since is None else int(since))
            for ident, scope_key, total, level, forecast, since in self.conn.execute(
                _ROLLING_TOTALS, _columns(wanted, 3)
            )
        ]
        return budget_rows.rolling_totals(keyed, found)

    def write_decision(self, decision: LedgerDecision) -> int:
        return write_decision(self.conn, SQL, ALERTS, decision)


def apply_ledger(
    conn: Conn, hook: LedgerHook, rows: Sequence[SpanRow], stats: budget_rows.LedgerStats
) -> None:
    """Run ``hook`` over the transaction's new rows and write what it decides.

    Must be called inside the write transaction that stores ``rows``.
    """
    # a savepoint inside the write transaction; the database failing is not the hook's bug:
    # the whole transaction fails and is retried
    budget_rows.run_guarded(
        hook, rows, stats, _Steps(conn), conn.transaction(), retried=(psycopg.OperationalError,)
    )


def reevaluate_window(conn: Conn, recheck: WindowRecheck) -> int:
    """Judge stored totals again (no new spend) inside the caller's write transaction, with
    the same locks ingest takes (in the same order), so no replica's ingest interleaves.
    Returns the number of alerts inserted."""
    counter, bucket, rolling_since_ns = recheck.counter, recheck.window, recheck.rolling_since_ns
    start, end = bucket
    ident = budget_rows.counter_id(counter)
    calendar: list[BudgetSpend] = []
    rolling: list[tuple[Any, ...]] = []
    if rolling_since_ns is None:
        cursor = conn.execute(
            "SELECT scope_key, cost_nano_usd, attempts, unpriced, alerted_level, forecast_alerted"
            ' FROM budget_spend WHERE counter_id = %s AND bucket_start_ns = %s ORDER BY scope_key COLLATE "C"'
            " FOR UPDATE",
            (ident, start),
        )
        calendar = budget_rows.spend_rows(cursor, start, end)
    else:
        params = {"id": ident, "since": rolling_since_ns}
        _lock_scopes(conn, ((counter, str(row[0])) for row in conn.execute(_STORED_ROLLING, params)))
        rolling = conn.execute(_STORED_ROLLING, params).fetchall()  # read again under the locks
    totals = budget_rows.stored_totals(counter, bucket, calendar, rolling, rolling_since_ns)
    if not totals:
        return 0
    return _Steps(conn).write_decision(budget_rows.with_clock(recheck.decide(totals), recheck.now_ns))
