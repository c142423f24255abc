"""The store interface: what the receiver, budgets and analysis may rely on, and nothing more.

Two implementations answer it: the embedded one (:mod:`spanmeter.store.sqlite`) and the
shared one for several receiver replicas (:mod:`spanmeter.store.postgres`), opened by
:func:`spanmeter.store.open_store`. Nothing here mentions SQL or either engine; results are
plain dataclasses, and the contract tests run every guarantee against both.

Guarantees every implementation gives:

* **Durable before return.** ``write_batch``/``write_batches`` return only once rows,
  rollups and dedupe state are committed together, atomically.
* **Re-deliveries count once.** A span delivered again (same trace id, span id and start
  time: an OTLP retry resends the same span) is reported as a duplicate and changes
  nothing, across restarts too. Two spans that share ids but not their start time are
  different spans to the store (a broken id generator, not a re-delivery).
* **Attempts vs logical requests.** Every stored billable attempt counts; attempts sharing
  an external request id count as one logical request, in the bucket and dimensions of
  the first attempt stored (see :mod:`spanmeter.store.rollups`).
* **Money is integer nano-USD**, summed exactly.

Example::

    store = open_store("spanmeter.db")          # or "postgresql://user@db:5432/spanmeter"
    result = store.write_batch(rows)            # WriteResult(inserted=..., duplicates=...)
    ranking = store.top("endpoint_tag", start_ns, end_ns, environment="prod")
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

from .analysis_types import AggregateResult, RepriceAudit, RepricedRow, RepricingRun, RevenueRow
from .rollups import TopDimension
from .rows import SpanRow

if TYPE_CHECKING:
    from .query_model import Filters  # the query model builds on these types

__all__ = [
    "BatchWriter",
    "RetentionResult",
    "SpanStore",
    "StoreBusy",
    "StoreStats",
    "TopGroup",
    "TopResult",
    "WriteResult",
    "WriterClosed",
]


class StoreBusy(Exception):
    """The store cannot take more rows now; the caller should ask its client to retry.

    The receiver turns it into OTLP's retryable throttling answer (HTTP 429/503 with
    ``Retry-After``, gRPC ``UNAVAILABLE``), so nothing is acknowledged that is not stored.
    """

    retry_after_s: float
    """A hint for the client's back-off, in seconds."""

    def __init__(self, message: str = "store busy, retry later", *, retry_after_s: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class WriterClosed(StoreBusy):
    """The writer is shutting down. Retryable too: another replica, or this one after a
    restart, will take the data."""


@dataclass(frozen=True, slots=True)
class WriteResult:
    """What one batch did."""

    inserted: int = 0
    """Rows stored."""
    duplicates: int = 0
    """Rows skipped as re-deliveries of an already stored span (or repeated in the batch)."""
    new_rows: Sequence[SpanRow] = field(default=(), compare=False, repr=False)
    """The rows of the batch that were stored (re-deliveries left out), in order; filled by
    stores that can say, for whoever counts what was stored (the Prometheus cost counters)
    without asking the store again."""
    first_attempts: Sequence[bool] = field(default=(), compare=False, repr=False)
    """Per row of :attr:`new_rows`: whether it counts a logical request (no external request
    id, or the first stored attempt of its id), as the rollups count it."""


@dataclass(frozen=True, slots=True)
class _TopMeasures:
    """The measures a ranking reports, for one group (:class:`TopGroup`) or for the whole
    window, all groups ranked or not (:class:`TopResult`)."""

    cost_nano_usd: int
    logical_requests: int
    attempts: int
    input_tokens: int
    output_tokens: int
    unpriced: int
    """Attempts without a cost: a ranking by cost is only as good as this is small."""

    @property
    def cost_per_logical_request_nano_usd(self) -> int | None:
        """Cost per logical request, floor-divided to whole nano-USD (under a nano-USD of
        error, and the integer stays exact to compare); None without logical requests."""
        return self.cost_nano_usd // self.logical_requests if self.logical_requests else None


@dataclass(frozen=True, slots=True)
class TopGroup(_TopMeasures):
    """One ranked value of the ``by`` dimension, with its measures."""

    key: str | None
    """The dimension value; None for attempts that did not carry it."""
    share: float
    """Fraction of the total cost of the window, for display only (never sum it)."""


@dataclass(frozen=True, slots=True)
class TopResult(_TopMeasures):
    """A ranking of one dimension by cost over an aligned window, plus the window's totals
    (the measures, over *all* groups of the window, not only the ranked ones)."""

    by: TopDimension
    window_start_ns: int
    """Start of the first bucket counted. Windows are aligned to the rollup's bucket: a
    bucket counts iff it starts in the requested ``[start_ns, end_ns)``."""
    window_end_ns: int
    """End of the last bucket counted (exclusive)."""
    bucket_seconds: int
    """Width of the buckets the answer was computed from (60 or 3600)."""
    groups: list[TopGroup]
    """At most ``limit`` groups, highest cost first (ties by key)."""
    group_count: int
    """Number of distinct values in the window, ranked or not."""


@dataclass(frozen=True, slots=True)
class StoreStats:
    """Size of the store, for ``doctor`` and the metrics endpoint."""

    requests: int
    """Raw rows."""
    logical_requests: int
    """Logical-request keys currently remembered."""
    rollup_rows: dict[str, int]
    """Rows per rollup table (partial rows until compacted)."""
    size_bytes: int
    """Bytes on disk, write-ahead log included."""


@dataclass(frozen=True, slots=True)
class RetentionResult:
    """What a retention pass deleted."""

    requests: int = 0
    logical_requests: int = 0
    rollup_rows: int = 0


@runtime_checkable
class BatchWriter(Protocol):
    """The one method :class:`~spanmeter.store.group_commit.GroupCommitWriter` needs."""

    def write_batches(self, batches: Sequence[Sequence[SpanRow]]) -> list[WriteResult]:
        """Store several batches in ONE transaction; one result per batch, in order.

        A span repeated across the batches counts once, in the first batch holding it.
        Raises whatever the commit raised, in which case nothing was stored.
        """
        ...


@runtime_checkable
class SpanStore(BatchWriter, Protocol):
    """Durable storage of GenAI attempts and their rollups, plus the queries over them."""

    def write_batch(self, rows: Sequence[SpanRow]) -> WriteResult:
        """Store one batch atomically (rows, rollups and dedupe state together)."""
        ...

    @property
    def location(self) -> str:
        """Where the store lives, for people: a file path, or a URL without its password."""
        ...

    def available(self) -> bool:
        """Can the store be reached now? A cheap check (cached for a moment by a store whose
        check costs a round trip), for readiness probes: never raises."""
        ...

    def top(
        self,
        by: TopDimension,
        start_ns: int,
        end_ns: int,
        *,
        where: Filters = ...,
        environment: str | None = None,
        data_mode: str | None = "real",
        limit: int = 50,
    ) -> TopResult:
        """Rank the values of ``by`` by cost over ``[start_ns, end_ns)``.

        Args:
            by: Dimension to rank. ``user_id`` (or a ``where`` on it) is answered from the
                hourly rollup, everything else from the minute rollup; see
                :class:`TopResult` for how the window is aligned. Without ``where``, whole
                hours and days come from coarse per-dimension tiers
                (:mod:`spanmeter.store.tiers`), with the same answer.
            start_ns: Window start, Unix ns.
            end_ns: Window end (exclusive), Unix ns.
            where: Exact-match filters on other dimensions of the same rollup; ``''``
                selects attempts that did not carry the dimension, a tuple any of its
                values (SQL ``IN``).
            environment: Only this environment; None for all.
            data_mode: Only this data mode (default ``real``: test and demo traffic stay
                out of cost reports); None for all.
            limit: Most groups returned; totals always cover all of them.

        Raises:
            ValueError: An unknown ``by``, a filter the rollup cannot answer, or ``limit < 1``.
        """
        ...

    def count_requests(
        self, start_ns: int | None = None, end_ns: int | None = None, *, data_mode: str | None = None
    ) -> int:
        """Raw rows whose start time lies in ``[start_ns, end_ns)`` (None: unbounded)."""
        ...

    def iter_requests(
        self, start_ns: int | None = None, end_ns: int | None = None, *, data_mode: str | None = None
    ) -> Iterator[SpanRow]:
        """Raw rows by start time, streamed (for exports and tests, not for dashboards)."""
        ...

    def stats(self) -> StoreStats:
        """Row counts and size on disk."""
        ...

    def apply_retention(self, now_ns: int, *, raw_days: int, rollup_days: int) -> RetentionResult:
        """Delete raw rows older than ``raw_days`` and rollups older than ``rollup_days``.

        Works in small transactions so ingest is never held up for long. Dedupe and
        logical-request keys go with the raw rows, so ``raw_days`` (at least 1) must exceed
        the longest delay between a span's start and its last re-delivery (OTLP client
        retries and Collector queues: minutes to hours).
        """
        ...

    def compact_rollups(self, now_ns: int | None = None, *, max_buckets: int = 16) -> int:
        """Merge the partial rollup rows of closed buckets and fold them into the coarse tiers.

        Queries are exact at any stage; compaction only keeps them fast (long windows read
        the tiers) and the rollups small. Bounded work per call (each step is one short
        transaction); call it when idle (``GroupCommitWriter(on_idle=...)``).

        Returns:
            Steps done, at most ``max_buckets``; 0 when nothing is left to compact.
        """
        ...

    def close(self) -> None:
        """Release connections. Pending writes must have been drained by the caller."""
        ...

    # -- analysis queries (investigate, compare, unit economics, quality, reprice, export) --

    def aggregate(
        self,
        dimensions: Sequence[str],
        start_ns: int,
        end_ns: int,
        *,
        where: Filters = ...,
        environment: str | None = None,
        data_mode: str | None = "real",
    ) -> AggregateResult:
        """All measures per group of ``dimensions`` over ``[start_ns, end_ns)``, from rollups.

        Windows are aligned as in :meth:`top`. ``user_id`` (as a dimension or filter) is
        answered from the hourly rollup, everything else from the minute rollup; one
        dimension (or none) without filters reads the coarse tiers, and under one filter on
        ``endpoint_tag`` or ``tenant_id`` the filter tier, with the same answer.

        Args:
            dimensions: Zero or more dimensions of one rollup (``outcome`` included); none
                gives one group holding the window's total.
            start_ns: Window start, Unix ns.
            end_ns: Window end (exclusive), Unix ns.
            where: Exact-match filters on dimensions of the same rollup (``''`` selects
                attempts that did not carry the dimension; a tuple: any of its values).
            environment: Only this environment; None for all.
            data_mode: Only this data mode (default ``real``); None for all.

        Raises:
            ValueError: A dimension or filter that no single rollup has.
        """
        ...

    def scan_requests(
        self,
        start_ns: int,
        end_ns: int,
        *,
        columns: Sequence[str],
        where: Filters = ...,
        environment: str | None = None,
        data_mode: str | None = "real",
        billable_only: bool = True,
    ) -> Iterator[tuple[Any, ...]]:
        """Selected columns of the raw rows whose event time lies in the window, streamed.

        For questions rollups cannot answer (percentiles, request vs response model, ids).
        Rows come in start-time order; rows without a start time (bucketed by arrival, as
        in the rollups) come last.

        Args:
            columns: :class:`~spanmeter.store.rows.SpanRow` field names, in the order wanted.
            where: Exact-match filters on text columns (``''`` matches a missing value; a
                tuple: any of its values).
            billable_only: Leave out outer spans that repeat their children's usage.

        Raises:
            ValueError: An unknown column or filter.
        """
        ...

    def iter_rollup_groups(
        self,
        granularity: Literal["minute", "hour"],
        start_ns: int,
        end_ns: int,
        *,
        where: Filters = ...,
        environment: str | None = None,
        data_mode: str | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Merged rollup rows (bucket, dimensions, measures), bucket by bucket (exports);
        ``where``: filters on that rollup's dimensions, as in :meth:`aggregate`.

        Raises:
            ValueError: a filter on a column the rollup does not have.
        """
        ...

    def apply_repricing(
        self, changes: Sequence[RepricedRow], run: RepricingRun, *, actor: str = "system"
    ) -> RepriceAudit:
        """Write new prices on stored rows, correct the rollups by the exact deltas, and
        record an audit entry (and a ``reprice.apply`` entry by ``actor`` in the audit trail,
        :mod:`spanmeter.store.audit_log`), all in one transaction.

        Raises:
            ValueError: A change alters more than the pricing fields.
            StaleRepricing: A row no longer holds the old pricing (nothing is applied).
        """
        ...

    def reprice_audits(self, limit: int = 50) -> list[RepriceAudit]:
        """Applied re-pricings, newest first."""
        ...

    def put_revenue(self, rows: Sequence[RevenueRow]) -> int:
        """Store revenue rows, replacing any with the same tenant and period; returns the count."""
        ...

    def revenue(self, start_ns: int | None = None, end_ns: int | None = None) -> list[RevenueRow]:
        """Revenue rows whose period overlaps ``[start_ns, end_ns)`` (None: unbounded)."""
        ...
