""":class:`BudgetStoreBase`: the one implementation of :class:`~spanmeter.store.inbox.BudgetStore`
that every backend configures with its own SQL.

What a method does around its statements (which connection, read or write transaction, the
state change read back, an empty outcome list answered without a transaction) is the same on
every backend, so it lives here once; a backend passes its connection factories and the
module of its budget counters (``budget_ledger``), its alerts' statements (an
:class:`~spanmeter.store.alert_store.AlertStore`) and its ``aggregate``, and
overrides only what really differs (PostgreSQL claims due deliveries and asks a leader).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from types import MappingProxyType, ModuleType
from typing import Any, Final, Generic, TypeVar

from . import ledger_sql
from .alert_store import AlertStore
from .analysis_types import AggregateResult
from .audit_log import alert_changed
from .budget_rows import LedgerStats
from .inbox import AlertRecord, Delivery, DeliveryUpdate, MeasureGroup, RuleOutcome
from .ledger import BudgetSpend, NewAlert, WindowRecheck
from .query_model import ReadScope, measure_groups, scope_filters

__all__ = ["BudgetStoreBase", "Connections"]

_NO_FILTERS: Final[Mapping[str, str]] = MappingProxyType({})

C = TypeVar("C")
Connections = Callable[[], AbstractContextManager[C]]
"""Lends one connection for the ``with`` block: a transaction's, or a reader's."""


class BudgetStoreBase(Generic[C]):
    """Implements :class:`~spanmeter.store.inbox.BudgetStore` with a backend's statements.

    Args:
        transaction: Opens one write transaction.
        reader: Lends a connection for one read.
        ledger: The backend's budget counter module (its ``SQL``, a
            :class:`~spanmeter.store.ledger_sql.LedgerSQL`, and ``reevaluate_window``).
        alerts: The backend's inbox, outbox and rule-episode statements.
        aggregate: The backend's aggregate query (``conn, dimensions, window, scope``),
            which the rules' measures are read through.
    """

    def __init__(
        self,
        transaction: Connections[C],
        reader: Connections[C],
        *,
        ledger: ModuleType,
        alerts: AlertStore,
        aggregate: Callable[..., AggregateResult],
    ) -> None:
        self._transaction = transaction
        self._reader = reader
        self._ledger = ledger
        self._alerts = alerts
        self._aggregate = aggregate
        self.ledger_stats = LedgerStats()
        """Hook runs, alerts and failures of the in-transaction ledger."""

    def _read(self, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        with self._reader() as conn:
            return function(conn, *args, **kwargs)

    def _write(self, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        with self._transaction() as conn:
            return function(conn, *args, **kwargs)

    # -- budget counters ------------------------------------------------------------------

    def budget_spend(self, counter: str, bucket_start_ns: int, bucket_end_ns: int) -> list[BudgetSpend]:
        """Every scope key's counter of one calendar window."""
        return self._read(ledger_sql.budget_spend, self._ledger.SQL, counter, bucket_start_ns, bucket_end_ns)

    def rolling_spend(self, counter: str, since_ns: int, end_ns: int) -> list[BudgetSpend]:
        """Per scope key, the rolling buckets since ``since_ns`` summed."""
        return self._read(ledger_sql.rolling_spend, self._ledger.SQL, counter, since_ns, end_ns)

    def reevaluate_window(self, recheck: WindowRecheck) -> int:
        """Judge a window's stored totals again in one write transaction (under ingest's
        locks where the backend has them)."""
        return self._write(self._ledger.reevaluate_window, recheck)

    def prune_budget_spend(self, calendar_before_ns: int, rolling_before_ns: int) -> int:
        """Delete ended calendar windows and old rolling buckets."""
        return self._write(ledger_sql.prune, self._ledger.SQL, calendar_before_ns, rolling_before_ns)

    # -- inbox ----------------------------------------------------------------------------

    def insert_alerts(self, alerts: Sequence[NewAlert], *, now_ns: int) -> list[int | None]:
        """Insert events and their outbox rows; None for a dedupe key already stored."""
        return self._write(self._alerts.insert_alerts, alerts, now_ns)

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
        filters = {"state": state, "kind": kind, "source": source, "since_ns": since_ns}
        return self._read(self._alerts.list_alerts, filters, limit)

    def get_alert(self, alert_id: int) -> AlertRecord | None:
        """One event with history and deliveries."""
        return self._read(self._alerts.get_alert, alert_id)

    def alert_counts(self) -> list[tuple[str, str, str, str, int]]:
        """Events per (kind, source, state, severity)."""
        return self._read(self._alerts.alert_counts)

    def _changed(
        self, alert_id: int, state: str, actor: str, note: str, now_ns: int, audit_actor: str | None
    ) -> AlertRecord:
        """The change, its history entry and its audit entry in one transaction."""
        action = "alert.ack" if state == "acknowledged" else "alert.resolve"
        who = audit_actor or actor
        event = alert_changed(action, alert_id, who, by=actor, note=note, at_ns=now_ns)
        with self._transaction() as conn:
            self._alerts.change_state(conn, alert_id, state, actor=actor, note=note, now_ns=now_ns)
            self._alerts.record_audit(conn, event)
            record = self._alerts.get_alert(conn, alert_id)
        assert record is not None
        return record

    def acknowledge(
        self, alert_id: int, *, actor: str, note: str = "", now_ns: int, audit_actor: str | None = None
    ) -> AlertRecord:
        """Mark acknowledged, audited as ``audit_actor`` (default ``actor``); raises
        LookupError for an unknown id (nothing recorded)."""
        return self._changed(alert_id, "acknowledged", actor, note, now_ns, audit_actor)

    def resolve(
        self, alert_id: int, *, actor: str, note: str = "", now_ns: int, audit_actor: str | None = None
    ) -> AlertRecord:
        """Mark resolved, audited as ``audit_actor`` (default ``actor``); raises LookupError
        for an unknown id (nothing recorded)."""
        return self._changed(alert_id, "resolved", actor, note, now_ns, audit_actor)

    def resolve_ended_windows(self, now_ns: int) -> int:
        """Resolve budget events whose window has ended."""
        return self._write(self._alerts.resolve_ended_windows, now_ns)

    def set_alert_context(self, alert_id: int, context: Mapping[str, Any], *, now_ns: int) -> None:
        """Attach the investigation context."""
        self._write(self._alerts.set_context, alert_id, context, now_ns)

    # -- rule episodes --------------------------------------------------------------------

    def apply_rule_outcomes(self, rule: str, outcomes: Sequence[RuleOutcome], *, now_ns: int) -> list[int]:
        """Open and close rule episodes in one transaction; ids of the events inserted."""
        if not outcomes:
            return []
        return self._write(self._alerts.apply_rule_outcomes, rule, outcomes, now_ns)

    def open_rule_subjects(self, rule: str) -> dict[str, int]:
        """Subjects with an open episode -> event id."""
        return self._read(self._alerts.open_rule_subjects, rule)

    # -- outbox ---------------------------------------------------------------------------

    def due_deliveries(self, now_ns: int, *, limit: int = 100) -> list[Delivery]:
        """Pending deliveries due now."""
        return self._read(self._alerts.due_deliveries, now_ns, limit)

    def record_delivery(self, event_id: int, channel: str, update: DeliveryUpdate) -> None:
        """Record one delivery attempt (and release its claim where deliveries are claimed)."""
        self._write(self._alerts.record_delivery, event_id, channel, update)

    # -- cluster-wide work ----------------------------------------------------------------

    def lead(self, name: str) -> bool:
        """Always True: one process owns the store, so it leads every job."""
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
        scope = ReadScope(where, scope_filters(environment, data_mode))
        result: AggregateResult = self._read(self._aggregate, by, (start_ns, end_ns), scope)
        return measure_groups(result)
