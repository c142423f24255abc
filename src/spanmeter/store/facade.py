""":class:`StoreFacade`: the :class:`~spanmeter.store.api.SpanStore` methods whose body is the
same on every backend, written once.

Most of the interface is "lend the right connection, call the backend's statement function":
which connection that is (a SQLite thread's reader, a pooled PostgreSQL one; the write
transaction) is the backend's, through :meth:`StoreFacade._reading` and ``_transaction``,
and so are the modules holding its statements. What every store checks and computes before
it writes (the re-pricing's audit entry, the scope of a read) is done here, so both
backends answer the same question the same way.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from types import MappingProxyType, ModuleType
from typing import Any, Final, Generic, Literal, TypeVar

from .analysis_types import AggregateResult, RepriceAudit, RepricedRow, RepricingRun, RevenueRow
from .api import TopResult, WriteResult
from .audit_log import SYSTEM_ACTOR
from .budget_store_base import BudgetStoreBase
from .ledger import LedgerHook
from .query_model import OWN_PARAMETERS, Filters, ReadScope, RowScan, scope_filters
from .repricing import change_totals, check_changes
from .rollups import TopDimension
from .rows import SpanRow
from .transfer import rollup_of

__all__ = ["StoreFacade"]

_NO_FILTERS: Final[Mapping[str, str]] = MappingProxyType({})

C = TypeVar("C")


class StoreFacade(Generic[C]):
    """Reads, re-pricing, revenue and the budgets' hook, on the host's connections.

    The host sets ``_queries`` (``top``, ``count_requests``, ``iter_requests``),
    ``_analysis_queries`` (``aggregate``, ``scan_requests``, ``iter_rollup_groups``),
    ``_analysis_writes`` (``list_audits``, ``revenue``), ``_budget_ledger``
    (``apply_ledger``) and ``_budget_store``, and implements :meth:`_reading`,
    :meth:`_transaction`, :meth:`_record_repricing` and :meth:`write_batches`.
    """

    _queries: ModuleType
    _analysis_queries: ModuleType
    _analysis_writes: ModuleType
    _budget_ledger: ModuleType
    _budget_store: BudgetStoreBase[C]
    _ledger: LedgerHook | None

    def _reading(self) -> AbstractContextManager[C]:
        """A connection for one read (or one stream of rows)."""
        raise NotImplementedError

    def _transaction(self) -> AbstractContextManager[C]:
        """One write transaction (under the store's write lock)."""
        raise NotImplementedError

    def _record_repricing(
        self, changes: Sequence[RepricedRow], audit: RepriceAudit, actor: str
    ) -> RepriceAudit:
        """Write checked ``changes``, ``audit`` and its audit-trail entry by ``actor``
        (:func:`~spanmeter.store.audit_log.repricing_applied`) in one transaction; the audit
        with its id."""
        raise NotImplementedError

    def write_batches(self, batches: Sequence[Sequence[SpanRow]]) -> list[WriteResult]:
        """Store several batches in one transaction; one result per batch, in order."""
        raise NotImplementedError

    def _read(self, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        with self._reading() as conn:
            return function(conn, *args, **kwargs)

    def _stream(self, function: Callable[..., Iterator[Any]], *args: Any, **kwargs: Any) -> Iterator[Any]:
        """``function``'s rows, the connection lent for as long as they are read."""
        with self._reading() as conn:
            yield from function(conn, *args, **kwargs)

    # -- writes -------------------------------------------------------------------------

    def write_batch(self, rows: Sequence[SpanRow]) -> WriteResult:
        """Store one batch atomically; see :class:`~spanmeter.store.api.SpanStore`."""
        return self.write_batches([rows])[0]

    # -- budgets and alerts (spanmeter.budgets) ---------------------------------------------

    @property
    def budget_store(self) -> BudgetStoreBase[C]:
        """Budget counters, alerts inbox, outbox and rule reads (shared by every replica on a
        shared store)."""
        return self._budget_store

    @property
    def ledger(self) -> LedgerHook | None:
        """The hook registered with :meth:`attach_ledger`, if any."""
        return self._ledger

    def attach_ledger(self, hook: LedgerHook | None) -> None:
        """Run ``hook`` in every write transaction from now on (None detaches); see
        :mod:`spanmeter.store.ledger`."""
        self._ledger = hook

    def _apply_ledger(self, conn: C, rows: list[SpanRow]) -> None:
        hook = self._ledger
        if hook is not None:
            self._budget_ledger.apply_ledger(conn, hook, rows, self._budget_store.ledger_stats)

    # -- reads --------------------------------------------------------------------------

    def top(
        self,
        by: TopDimension,
        start_ns: int,
        end_ns: int,
        *,
        where: Filters = _NO_FILTERS,
        environment: str | None = None,
        data_mode: str | None = "real",
        limit: int = 50,
    ) -> TopResult:
        """Rank ``by`` by cost; see :meth:`SpanStore.top <spanmeter.store.api.SpanStore.top>`."""
        if limit < 1:
            raise ValueError(f"limit must be at least 1, got {limit!r}")
        scope = ReadScope(where, scope_filters(environment, data_mode))
        return self._read(self._queries.top, by, (start_ns, end_ns), scope, limit)

    def aggregate(
        self,
        dimensions: Sequence[str],
        start_ns: int,
        end_ns: int,
        *,
        where: Filters = _NO_FILTERS,
        environment: str | None = None,
        data_mode: str | None = "real",
    ) -> AggregateResult:
        """All measures per group; see :meth:`SpanStore.aggregate <spanmeter.store.api.SpanStore.aggregate>`."""
        scope = ReadScope(where, scope_filters(environment, data_mode))
        return self._read(self._analysis_queries.aggregate, dimensions, (start_ns, end_ns), scope)

    def count_requests(
        self, start_ns: int | None = None, end_ns: int | None = None, *, data_mode: str | None = None
    ) -> int:
        """Raw rows whose start time lies in ``[start_ns, end_ns)``."""
        return self._read(self._queries.count_requests, start_ns, end_ns, data_mode=data_mode)

    def iter_requests(
        self, start_ns: int | None = None, end_ns: int | None = None, *, data_mode: str | None = None
    ) -> Iterator[SpanRow]:
        """Raw rows in start-time order, streamed from one snapshot."""
        return self._stream(self._queries.iter_requests, start_ns, end_ns, data_mode=data_mode)

    def scan_requests(
        self,
        start_ns: int,
        end_ns: int,
        *,
        columns: Sequence[str],
        where: Filters = _NO_FILTERS,
        environment: str | None = None,
        data_mode: str | None = "real",
        billable_only: bool = True,
    ) -> Iterator[tuple[Any, ...]]:
        """Selected raw-row columns in the window, streamed; see :meth:`SpanStore.scan_requests
        <spanmeter.store.api.SpanStore.scan_requests>`."""
        filters = {**where, **scope_filters(environment, data_mode)}
        scan = RowScan(tuple(columns), (start_ns, end_ns), filters, billable_only)
        return self._stream(self._analysis_queries.scan_requests, scan)

    def iter_rollup_groups(
        self,
        granularity: Literal["minute", "hour"],
        start_ns: int,
        end_ns: int,
        *,
        where: Filters = _NO_FILTERS,
        environment: str | None = None,
        data_mode: str | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Merged rollup rows (bucket, dimensions, measures), bucket by bucket (exports);
        ``where``: filters on dimensions of that rollup.

        Raises:
            ValueError: a granularity other than ``minute`` or ``hour``.
        """
        spec = rollup_of(granularity)
        for name in where:
            if name not in spec.dimensions or name in OWN_PARAMETERS:
                raise ValueError(f"cannot filter {granularity} rollups on {name!r}")
        filters = {**where, **scope_filters(environment, data_mode)}
        return self._stream(self._analysis_queries.iter_rollup_groups, spec, (start_ns, end_ns), filters)

    # -- re-pricing and revenue ------------------------------------------------------------

    def apply_repricing(
        self, changes: Sequence[RepricedRow], run: RepricingRun, *, actor: str = SYSTEM_ACTOR
    ) -> RepriceAudit:
        """New prices on stored rows, rollup corrections, the audit and its audit-trail entry
        in one transaction; see
        :meth:`SpanStore.apply_repricing <spanmeter.store.api.SpanStore.apply_repricing>`."""
        check_changes(changes)
        applied = time.time_ns() if run.applied_at_ns is None else run.applied_at_ns
        rows_changed, before, after = change_totals(changes)
        window = (run.window_start_ns, run.window_end_ns)
        figures = (rows_changed, before, after, run.price_source, run.details)
        audit = RepriceAudit(0, applied, run.reason, *window, *figures)
        return self._record_repricing(changes, audit, actor)

    def reprice_audits(self, limit: int = 50) -> list[RepriceAudit]:
        """Applied re-pricings, newest first."""
        return self._read(self._analysis_writes.list_audits, limit)

    def put_revenue(self, rows: Sequence[RevenueRow]) -> int:
        """Store revenue rows, replacing any with the same tenant and period; returns the count."""
        with self._transaction() as conn:
            return self._analysis_writes.put_revenue(conn, rows, time.time_ns())

    def revenue(self, start_ns: int | None = None, end_ns: int | None = None) -> list[RevenueRow]:
        """Revenue rows whose period overlaps ``[start_ns, end_ns)`` (None: unbounded)."""
        return self._read(self._analysis_writes.revenue, start_ns, end_ns)
