"""The analysis half of :class:`~spanmeter.store.sqlite.SQLiteStore`, as a mixin.

Kept out of :mod:`.store` so the ingest-facing class stays small; the methods only open the
right connection or transaction and call :mod:`.analysis_queries` / :mod:`.analysis_writes`
(``apply_repricing`` first gathers its arguments into the audit entry it records).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator, Mapping, Sequence
from types import MappingProxyType
from typing import Any, Final, Literal

from ..analysis_types import AggregateResult, RepriceAudit, RepricedRow, RevenueRow
from ..rollups import HOUR, MINUTE
from . import analysis_queries, analysis_writes
from .maintenance import Transaction
from .writer import RowWriter

__all__ = ["SQLiteAnalysisMixin"]

_NO_FILTERS: Final[Mapping[str, str]] = MappingProxyType({})


class SQLiteAnalysisMixin:
    """Analysis queries and re-pricing writes; the host class provides the connections."""

    _writer: RowWriter

    def _reader(self) -> sqlite3.Connection:  # provided by SQLiteStore
        raise NotImplementedError

    def _transaction(self) -> Any:  # provided by SQLiteStore (a Transaction)
        raise NotImplementedError

    def aggregate(
        self,
        dimensions: Sequence[str],
        start_ns: int,
        end_ns: int,
        *,
        where: Mapping[str, str] = _NO_FILTERS,
        environment: str | None = None,
        data_mode: str | None = "real",
    ) -> AggregateResult:
        """Measures per group; see :meth:`SpanStore.aggregate <spanmeter.store.api.SpanStore.aggregate>`."""
        return analysis_queries.aggregate(
            self._reader(),
            dimensions,
            start_ns,
            end_ns,
            where=where,
            environment=environment,
            data_mode=data_mode,
        )

    def scan_requests(
        self,
        start_ns: int,
        end_ns: int,
        *,
        columns: Sequence[str],
        where: Mapping[str, str] = _NO_FILTERS,
        environment: str | None = None,
        data_mode: str | None = "real",
        billable_only: bool = True,
    ) -> Iterator[tuple[Any, ...]]:
        """Selected raw-row columns, streamed; see :meth:`SpanStore.scan_requests`."""
        return analysis_queries.scan_requests(
            self._reader(),
            start_ns,
            end_ns,
            columns=columns,
            where=where,
            environment=environment,
            data_mode=data_mode,
            billable_only=billable_only,
        )

    def iter_rollup_groups(
        self,
        granularity: Literal["minute", "hour"],
        start_ns: int,
        end_ns: int,
        *,
        environment: str | None = None,
        data_mode: str | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Merged rollup rows bucket by bucket; see :meth:`SpanStore.iter_rollup_groups`."""
        if granularity not in ("minute", "hour"):
            raise ValueError(f"granularity must be minute or hour, got {granularity!r}")
        spec = MINUTE if granularity == "minute" else HOUR
        return analysis_queries.iter_rollup_groups(
            self._reader(), spec, start_ns, end_ns, environment=environment, data_mode=data_mode
        )

    def apply_repricing(
        self,
        changes: Sequence[RepricedRow],
        *,
        reason: str,
        window_start_ns: int,
        window_end_ns: int,
        price_source: str,
        details: str,
        applied_at_ns: int | None = None,
    ) -> RepriceAudit:
        """Re-price rows and correct rollups atomically; see :meth:`SpanStore.apply_repricing`."""
        audit = RepriceAudit(
            0,  # assigned by the insert
            time.time_ns() if applied_at_ns is None else applied_at_ns,
            reason,
            window_start_ns,
            window_end_ns,
            len(changes),
            sum(change.old.cost_nano_usd or 0 for change in changes),
            sum(change.new.cost_nano_usd or 0 for change in changes),
            price_source,
            details,
        )
        transaction: Transaction = self._transaction
        return analysis_writes.apply_repricing(transaction, self._writer, changes, audit)

    def reprice_audits(self, limit: int = 50) -> list[RepriceAudit]:
        """Applied re-pricings, newest first."""
        return analysis_writes.list_audits(self._reader(), limit)

    def put_revenue(self, rows: Sequence[RevenueRow]) -> int:
        """Store revenue rows (replacing same tenant and period)."""
        return analysis_writes.put_revenue(self._transaction, rows, time.time_ns())

    def revenue(self, start_ns: int | None = None, end_ns: int | None = None) -> list[RevenueRow]:
        """Revenue rows overlapping the window."""
        return analysis_writes.revenue(self._reader(), start_ns, end_ns)
