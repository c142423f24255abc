"""Cost counters on ``/metrics``: spend, requests, attempts and tokens, with bounded labels.

What is counted: every row the store *committed as new*, as the store itself says: its
write result carries the rows it inserted (re-deliveries left out, exactly, whatever the
mix in a batch) and, per row, whether it started a logical request by the store's own
dedupe of external request ids (the one the rollups and the JSON API use, so it holds
across restarts and replicas sharing a store).

Where the per-row work runs: not on the receiver's ingest path. A
:class:`~spanmeter.prometheus.cost_sums.CostSummer` sums each commit's rows per label set
where the commit happens (in the store process, or on the writer thread in the one-process
mode) and this collector only :meth:`CostMetrics.merge` s those compact sums, a few hundred
label sets per transaction at most; see :mod:`spanmeter.prometheus.cost_sums` for why, and
``bench/cost_metrics.py`` and ``bench/README.md`` for the figures. Either way the sums are
merged *before* the batch's future resolves, so an acknowledged export is counted by the
next scrape.

Labels: ``endpoint_tag``, ``prompt_version``, ``provider``, ``model``, ``environment``,
``data_mode`` and ``tenant``. User ids are never a label. Tenants are capped: at most
``top_tenants`` tenants get their own series, everything else goes to ``tenant="other"``;
spans without a tenant have no ``tenant`` label at all. The label sets themselves are
capped too (``max_label_sets``, default 2,000): the other five labels come from clients, and
past the cap a new label set's unseen values are folded into ``other``
(:mod:`spanmeter.prometheus.label_sets`, applied here on merge, once per new label set);
``spanmeter_metrics_label_overflow_total`` counts the attempts folded, per label.

Why sticky promotion (and not a top-N recomputed at each scrape): a counter series must
never go backwards. If a tenant could leave the top N, either its series would vanish
(``sum`` drops) or ``other`` would have to shrink. So a tenant, once labelled, keeps its
label for the life of the process; spend from before its promotion stays in ``other``, so
the sum over all tenant series equals the total at every instant. Slots are filled:

* at start, from the store: the top spenders of the last 7 days, so that labels are stable
  across restarts and identical on every replica sharing a store;
* at scrape time, once the process has ranked ``promotion_delay_s`` of traffic, with the
  biggest unlabelled spenders since start (never on the ingest path).

Each change of the labelled set is a new :class:`~spanmeter.prometheus.cost_sums.TenantView`,
handed to whoever sums (:meth:`CostMetrics.watch_tenants`: the store process gets it in
order with the batches).

Money: sums are integer nano-USD here; the float in the exposition is ``nano / 1e9``,
correctly rounded, so the series of one scrape add up to the store's total exactly (to the
float representation).

Example::

    metrics = CostMetrics(top_tenants=20, store=store)
    registry.register(metrics)
    sink = metrics.metered(LocalRowSink(writer))      # one process: sums on the writer thread
    # or, with a store process (ReceiverService wires it): the child sums with
    # metrics.summer_factory(), the client hands its sums to metrics.merge, and
    # metrics.watch_tenants(client.configure_observer) keeps the child's tenant view current
"""

from __future__ import annotations

import heapq
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from functools import partial
from operator import itemgetter
from typing import Final

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from ..ingest.sink import RowSink
from ..money import usd_float
from ..store import SpanStore, WriteResult
from ..store.rows import RowValues
from ..timeunits import NS_PER_DAY
from .cost_sums import (
    COST_LABELS,
    M_ATTEMPTS,
    M_COST,
    M_FAILED,
    M_REQUESTS,
    M_TOKENS,
    M_UNPRICED,
    OTHER_TENANT,
    TOKEN_TYPES,
    CostSummer,
    CostSums,
    TenantView,
)
from .label_sets import CLIENT_DIMENSIONS, DEFAULT_MAX_LABEL_SETS, LabelSetCap

__all__ = [
    "COST_LABELS",
    "DEFAULT_PROMOTION_DELAY_S",
    "DEFAULT_TOP_TENANTS",
    "OTHER_TENANT",
    "TOKEN_TYPES",
    "CostMetrics",
    "MeteredSink",
]

_logger = logging.getLogger(__name__)

DEFAULT_TOP_TENANTS: Final = 20
"""Tenants with their own series by default."""
DEFAULT_PROMOTION_DELAY_S: Final = 300.0
"""Traffic ranked before free tenant slots are filled at scrape time (5 minutes)."""

_SEED_WINDOW_NS: Final = 7 * NS_PER_DAY
_TALLY_LIMIT: Final = 100_000
"""Unlabelled tenants whose spend is ranked; past it the smaller half is forgotten."""


class CostMetrics(Collector):
    """The cost counters of one receiver: fed per committed transaction, collected per scrape.

    Args:
        top_tenants: Tenants that get a series of their own (0: every tenant is ``other``).
        store: Read access to the store: seeds the tenant slots.
        promotion_delay_s: Seconds of traffic ranked before free slots are filled.
        max_label_sets: Label sets with client values before overflow is folded into
            ``other`` (see :mod:`spanmeter.prometheus.label_sets`).
        clock: Monotonic seconds (tests inject one).

    Raises:
        ValueError: A negative ``top_tenants``, ``promotion_delay_s`` or ``max_label_sets``.
    """

    def __init__(
        self,
        *,
        top_tenants: int = DEFAULT_TOP_TENANTS,
        store: SpanStore | None = None,
        promotion_delay_s: float = DEFAULT_PROMOTION_DELAY_S,
        max_label_sets: int = DEFAULT_MAX_LABEL_SETS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if top_tenants < 0:
            raise ValueError(f"top_tenants must not be negative, got {top_tenants!r}")
        if promotion_delay_s < 0:
            raise ValueError(f"promotion_delay_s must not be negative, got {promotion_delay_s!r}")
        self.top_tenants = top_tenants
        self._promotion_delay_s = promotion_delay_s
        self._clock = clock
        self._started = clock()
        self._lock = threading.Lock()
        self._series: dict[tuple[str, ...], list[int]] = {}
        self._cap = LabelSetCap(max_label_sets)
        self._labelled: set[str] = set()
        self._tally: dict[str, int] = {}
        self._watchers: list[Callable[[TenantView], object]] = []
        self._watch_lock = threading.Lock()
        if store is not None and top_tenants:
            self._seed(store)
        self._view = self._make_view()
        self._summer = CostSummer(self._view)
        """Sums on the committing thread in the one-process mode (:meth:`metered`)."""

    @property
    def labelled_tenants(self) -> frozenset[str]:
        """Tenants with their own series (sticky for the life of this object)."""
        return self._view.labelled

    @property
    def tenant_view(self) -> TenantView:
        """The tenant labels as a summer needs them (a new object at each change)."""
        return self._view

    def summer_factory(self) -> Callable[[], CostSummer]:
        """A picklable factory of a summer that starts from the current tenant view (for
        the store process's settings; follow it up with :meth:`watch_tenants`)."""
        return partial(CostSummer, self._view)

    def watch_tenants(self, watcher: Callable[[TenantView], object]) -> None:
        """Call ``watcher`` with each new tenant view from now on (on the scrape thread).

        The store process's summer learns of promotions this way, in order with the batches:
        rows summed before it learns count under ``other``, as sticky promotion promises.
        """
        self._watchers.append(watcher)

    def metered(self, sink: RowSink) -> MeteredSink:
        """``sink`` (in this process), counting each batch before its future resolves."""
        return MeteredSink(sink, self)

    # -- ingest side ------------------------------------------------------------------------

    def count(self, results: Sequence[WriteResult]) -> None:
        """Sum what ``results`` stored, in this thread, and merge it (the one-process mode)."""
        self.merge(self._summer.observe(results))

    def merge(self, sums: CostSums | None) -> None:
        """Add one commit's sums (from a :class:`~spanmeter.prometheus.cost_sums.CostSummer`).

        The label-set cap is applied here, once per label set without a series yet; a
        transaction whose label sets all have series costs one dict lookup and ten
        additions per label set.
        """
        if not sums:
            return
        added, spend = sums
        with self._lock:
            series = self._series
            for labels, measures in added.items():
                totals = series.get(labels)
                if totals is None:  # a new label set: the cap decides where it is counted
                    labels = self._cap.admit(labels, measures[M_ATTEMPTS], series)
                    totals = series.get(labels)
                    if totals is None:
                        series[labels] = list(measures)
                        continue
                totals[:] = map(int.__add__, totals, measures)
            if spend and len(self._labelled) < self.top_tenants:
                tally = self._tally
                labelled = self._labelled
                for tenant, cost in spend.items():
                    # Summed before the summer learned of this tenant's promotion: ranked no more.
                    if tenant not in labelled:
                        tally[tenant] = tally.get(tenant, 0) + cost
                if len(tally) > _TALLY_LIMIT:
                    self._tally = dict(heapq.nlargest(_TALLY_LIMIT // 2, tally.items(), key=itemgetter(1)))

    # -- scrape side ------------------------------------------------------------------------

    def _make_view(self) -> TenantView:
        return TenantView(frozenset(self._labelled), rank_unlabelled=len(self._labelled) < self.top_tenants)

    def _seed(self, store: SpanStore) -> None:
        now = time.time_ns()
        try:
            ranking = store.top(
                "tenant_id", now - _SEED_WINDOW_NS, now, data_mode=None, limit=self.top_tenants
            )
        except Exception:  # metrics must never stop the receiver from starting
            _logger.exception("cost metrics: could not read the top tenants from the store")
            return
        self._labelled.update(
            group.key for group in ranking.groups if group.key is not None and group.key != OTHER_TENANT
        )

    def _promote(self) -> TenantView | None:
        """Fill free slots (under the lock); the new view if the labels changed."""
        free = self.top_tenants - len(self._labelled)
        if free <= 0 or not self._tally or self._clock() - self._started < self._promotion_delay_s:
            return None
        promoted = False
        for tenant, spend in heapq.nlargest(free, self._tally.items(), key=itemgetter(1)):
            if spend > 0 and tenant != OTHER_TENANT:
                self._labelled.add(tenant)
                del self._tally[tenant]
                promoted = True
        if not promoted:
            return None
        if len(self._labelled) >= self.top_tenants:
            self._tally = {}  # every slot is used: nothing is ranked any more
        self._view = view = self._make_view()
        self._summer.view = view
        return view

    def _hand_on_view(self) -> None:
        # Under a lock of its own and reading the view only here: two scrapes promoting at
        # once must not hand on their views out of order (the last one handed on is the
        # latest, so a summer never keeps an older labelled set).
        with self._watch_lock:
            view = self._view
            for watcher in self._watchers:
                try:
                    watcher(view)
                except Exception:  # a closed store process: metrics must never fail a scrape
                    _logger.exception("cost metrics: could not hand on the new tenant labels")

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        """Fill free tenant slots, then expose every series."""
        with self._lock:
            view = self._promote()
            snapshot = [(labels, list(measures)) for labels, measures in self._series.items()]
            labelled = len(self._labelled)
            overflow = list(self._cap.overflow)
        if view is not None:
            self._hand_on_view()
        yield from _cost_families(snapshot)
        yield from self._capacity_families(labelled, len(snapshot), overflow)

    def _capacity_families(
        self, labelled: int, label_sets: int, overflow: list[int]
    ) -> list[GaugeMetricFamily | CounterMetricFamily]:
        """How full the label caps are (tenant slots, label sets) and how many attempts were
        folded into ``other`` at the cap: what an operator checks before trusting a label."""
        slots = GaugeMetricFamily(
            "spanmeter_metrics_tenant_slots",
            "Tenant label slots of the cost counters: total (the configured N) and used.",
            labels=("slots",),
        )
        slots.add_metric(["total"], self.top_tenants)
        slots.add_metric(["used"], labelled)
        sets = GaugeMetricFamily(
            "spanmeter_metrics_label_sets",
            "Label sets of the cost counters: the configured cap (total) and the series used.",
            labels=("sets",),
        )
        sets.add_metric(["total"], self._cap.max_label_sets)
        sets.add_metric(["used"], label_sets)
        folded = CounterMetricFamily(
            "spanmeter_metrics_label_overflow",
            "Attempts whose label value was folded into 'other' because the label sets were at their cap.",
            labels=("label",),
        )
        for label, count in zip(CLIENT_DIMENSIONS, overflow, strict=True):
            folded.add_metric([label], count)
        return [slots, sets, folded]

    def describe(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        """Nothing: the registry then calls :meth:`collect` only at scrape time."""
        return iter(())


def _cost_families(snapshot: list[tuple[tuple[str, ...], list[int]]]) -> list[CounterMetricFamily]:
    """The cost counters (cost, attempts, logical requests, failed, unpriced, tokens by
    type) with a sample per label set of ``snapshot``."""
    cost = CounterMetricFamily(
        "spanmeter_cost_usd",
        "Cost of committed GenAI attempts in USD (exact nano-USD sums; tenants capped to the top N + other).",
        labels=COST_LABELS,
    )
    attempts = CounterMetricFamily(
        "spanmeter_attempts",
        "Committed GenAI attempts (each retry of a request counts).",
        labels=COST_LABELS,
    )
    requests = CounterMetricFamily(
        "spanmeter_requests",
        "Logical requests: attempts without an external request id, plus the first attempt of each id.",
        labels=COST_LABELS,
    )
    failed = CounterMetricFamily(
        "spanmeter_failed_attempts", "Committed attempts whose outcome is an error.", labels=COST_LABELS
    )
    unpriced = CounterMetricFamily(
        "spanmeter_unpriced_attempts",
        "Committed attempts without a price (unknown model or no usage): spend is understated by them.",
        labels=COST_LABELS,
    )
    tokens = CounterMetricFamily(
        "spanmeter_tokens",
        "Tokens of committed attempts by type (input includes cache reads and writes; output includes reasoning).",
        labels=(*COST_LABELS, "type"),
    )
    for labels, measures in snapshot:
        values = list(labels)
        cost.add_metric(values, usd_float(measures[M_COST]))
        attempts.add_metric(values, measures[M_ATTEMPTS])
        requests.add_metric(values, measures[M_REQUESTS])
        failed.add_metric(values, measures[M_FAILED])
        unpriced.add_metric(values, measures[M_UNPRICED])
        for offset, token_type in enumerate(TOKEN_TYPES):
            tokens.add_metric([*values, token_type], measures[M_TOKENS + offset])
    return [cost, attempts, requests, failed, unpriced, tokens]


class MeteredSink:
    """A :class:`~spanmeter.ingest.sink.RowSink` in this process whose batches are counted by
    :class:`CostMetrics` (summed on the committing thread) before their futures resolve.
    Everything else is the wrapped sink's. The store process does not need it: its sums
    arrive with its answers and are merged before the batches' futures resolve."""

    def __init__(self, sink: RowSink, metrics: CostMetrics) -> None:
        self.sink = sink
        self._metrics = metrics

    @property
    def pending_rows(self) -> int:
        """Rows accepted and not yet committed."""
        return self.sink.pending_rows

    def submit(self, rows: Sequence[RowValues]) -> Future[WriteResult]:
        """Submit to the wrapped sink; the returned future resolves once the batch is counted.

        Why a future of our own rather than a callback on the sink's: a waiter on the sink's
        future wakes *before* its callbacks run, so the export could be acknowledged and a
        scrape right after it miss the batch. Resolving after counting makes every
        acknowledged export visible on the next scrape.
        """
        future = self.sink.submit(rows)
        counted: Future[WriteResult] = Future()
        count = self._metrics.count

        def committed(done: Future[WriteResult]) -> None:
            if done.cancelled():
                counted.cancel()
                return
            error = done.exception()
            if error is not None:  # nothing stored, nothing acknowledged: the client retries
                counted.set_exception(error)
                return
            result = done.result()
            try:
                count((result,))
            except Exception:  # metrics must never fail an export
                _logger.exception("cost metrics: could not count a committed batch")
            counted.set_result(result)

        future.add_done_callback(committed)
        return counted

    def close(self) -> object:
        """Close the wrapped sink."""
        return self.sink.close()
