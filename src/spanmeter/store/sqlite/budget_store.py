""":class:`SQLiteBudgetStore`: the budgets-and-alerts side of :class:`~.store.SQLiteStore`.

It shares the store's single write connection (through the store's transaction factory,
so its short transactions queue behind ingest like retention does) and its per-thread
read connections. Reached as ``store.budget_store``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import Any, Final

from ..budget_rows import LedgerStats
from ..inbox import AlertRecord, Delivery, MeasureGroup, RuleOutcome
from ..ledger import BudgetSpend, LedgerDecision, NewAlert, SpendTotal
from ..query_model import measure_groups
from . import alerts as inbox
from . import budget_ledger
from .analysis_queries import aggregate
from .maintenance import Transaction

__all__ = ["SQLiteBudgetStore"]

_NO_FILTERS: Final[Mapping[str, str]] = MappingProxyType({})


class SQLiteBudgetStore:
    """Implements :class:`~spanmeter.store.inbox.BudgetStore` on the store's connections.

    Args:
        transaction: Opens one write transaction under the store's write lock.
        reader: This thread's read connection.
    """

    def __init__(self, transaction: Transaction, reader: Callable[[], sqlite3.Connection]) -> None:
        self._transaction = transaction
        self._reader = reader
        self.ledger_stats = LedgerStats()
        """Hook runs, alerts and failures of the in-transaction ledger."""

    # -- budget counters ------------------------------------------------------------------

    def budget_spend(self, counter: str, bucket_start_ns: int, bucket_end_ns: int) -> list[BudgetSpend]:
        """Every scope key's counter of one calendar window."""
        return budget_ledger.budget_spend(self._reader(), counter, bucket_start_ns, bucket_end_ns)

    def rolling_spend(self, counter: str, since_ns: int, end_ns: int) -> list[BudgetSpend]:
        """Per scope key, the rolling buckets since ``since_ns`` summed."""
        return budget_ledger.rolling_spend(self._reader(), counter, since_ns, end_ns)

    def reevaluate_window(
        self,
        counter: str,
        window: tuple[int, int],
        rolling_since_ns: int | None,
        decide: Callable[[Sequence[SpendTotal]], LedgerDecision],
        *,
        now_ns: int,
    ) -> int:
        """Judge a window's stored totals again in one write transaction."""
        with self._transaction() as conn:
            return budget_ledger.reevaluate_window(conn, counter, window, rolling_since_ns, decide, now_ns)

    def prune_budget_spend(self, calendar_before_ns: int, rolling_before_ns: int) -> int:
        """Delete ended calendar windows and old rolling buckets."""
        with self._transaction() as conn:
            return budget_ledger.prune(conn, calendar_before_ns, rolling_before_ns)

    # -- inbox ----------------------------------------------------------------------------

    def insert_alerts(self, alerts: Sequence[NewAlert], *, now_ns: int) -> list[int | None]:
        """Insert events and their outbox rows; None for an already stored dedupe key."""
        with self._transaction() as conn:
            return inbox.insert_alerts(conn, alerts, now_ns)

    def list_alerts(
        self,
        *,
        state: str | None = None,
        kind: str | None = None,
        source: str | None = None,
        since_ns: int | None = None,
        limit: int = 50,
    ) -> list[AlertRecord]:
        """Newest first."""
        return inbox.list_alerts(
            self._reader(), state=state, kind=kind, source=source, since_ns=since_ns, limit=limit
        )

    def get_alert(self, alert_id: int) -> AlertRecord | None:
        """One event with history and deliveries."""
        return inbox.get_alert(self._reader(), alert_id)

    def alert_counts(self) -> list[tuple[str, str, str, str, int]]:
        """Events per (kind, source, state, severity)."""
        return inbox.alert_counts(self._reader())

    def _change(self, alert_id: int, state: str, actor: str, note: str, now_ns: int) -> AlertRecord:
        with self._transaction() as conn:
            inbox.change_state(conn, alert_id, state, actor=actor, note=note, now_ns=now_ns)
            record = inbox.get_alert(conn, alert_id)
        assert record is not None
        return record

    def acknowledge(self, alert_id: int, *, actor: str, note: str = "", now_ns: int) -> AlertRecord:
        """Mark acknowledged; raises LookupError for an unknown id."""
        return self._change(alert_id, "acknowledged", actor, note, now_ns)

    def resolve(self, alert_id: int, *, actor: str, note: str = "", now_ns: int) -> AlertRecord:
        """Mark resolved; raises LookupError for an unknown id."""
        return self._change(alert_id, "resolved", actor, note, now_ns)

    def resolve_ended_windows(self, now_ns: int) -> int:
        """Resolve budget events whose window has ended."""
        with self._transaction() as conn:
            return inbox.resolve_ended_windows(conn, now_ns)

    def set_alert_context(self, alert_id: int, context: Mapping[str, Any], *, now_ns: int) -> None:
        """Attach the investigation context."""
        with self._transaction() as conn:
            inbox.set_context(conn, alert_id, context, now_ns)

    # -- rule episodes --------------------------------------------------------------------

    def apply_rule_outcomes(self, rule: str, outcomes: Sequence[RuleOutcome], *, now_ns: int) -> list[int]:
        """Open and close rule episodes in one transaction; ids of the events inserted."""
        if not outcomes:
            return []
        with self._transaction() as conn:
            return inbox.apply_rule_outcomes(conn, rule, outcomes, now_ns)

    def open_rule_subjects(self, rule: str) -> dict[str, int]:
        """Subjects with an open episode -> event id."""
        return inbox.open_rule_subjects(self._reader(), rule)

    # -- outbox ---------------------------------------------------------------------------

    def due_deliveries(self, now_ns: int, *, limit: int = 100) -> list[Delivery]:
        """Pending deliveries due now."""
        return inbox.due_deliveries(self._reader(), now_ns, limit)

    def record_delivery(
        self,
        event_id: int,
        channel: str,
        *,
        state: str,
        now_ns: int,
        next_attempt_ns: int | None = None,
        error: str | None = None,
    ) -> None:
        """Record one delivery attempt."""
        with self._transaction() as conn:
            inbox.record_delivery(
                conn,
                event_id,
                channel,
                state=state,
                now_ns=now_ns,
                next_attempt_ns=next_attempt_ns,
                error=error,
            )

    # -- cluster-wide work ----------------------------------------------------------------

    def lead(self, name: str) -> bool:
        """Always True: one process owns a SQLite file, so it leads every job."""
        return True

    # -- rollups --------------------------------------------------------------------------

    def measures(
        self,
        by: Sequence[str],
        start_ns: int,
        end_ns: int,
        *,
        where: Mapping[str, str] = _NO_FILTERS,
        environment: str | None = None,
        data_mode: str | None = "real",
    ) -> list[MeasureGroup]:
        """Rollup sums grouped by ``by``: the store's one aggregate query, in the rules' terms."""
        result = aggregate(
            self._reader(), by, start_ns, end_ns, where=where, environment=environment, data_mode=data_mode
        )
        return measure_groups(result)
