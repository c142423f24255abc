"""Cost counters on ``/metrics``: spend, requests, attempts and tokens, with bounded labels.

What is counted: every row the store *committed as new*. The hook is a
:class:`~spanmeter.ingest.sink.RowSink` wrapper (:meth:`CostMetrics.metered`) that adds a
batch's rows when its commit answer arrives: an answer with no duplicates counts the whole
batch, an all-duplicates answer (an OTLP retry after a lost ack, the common case) counts
nothing, and the rare mixed answer is resolved against the store (rows this request
inserted carry its arrival time), so a re-delivered span never counts twice.

Cost of the hook: one grouping pass per committed batch (C-level ``itemgetter`` keys and
``sum(map(...))`` per label set), on the thread that resolves commits, never per span in
the transport; see ``bench/cost_metrics.py`` and ``bench/README.md`` for the figure.

Labels: ``endpoint_tag``, ``prompt_version``, ``provider``, ``model``, ``environment``,
``data_mode`` and ``tenant``. User ids are never a label. Tenants are capped: at most
``top_tenants`` tenants get their own series, everything else goes to ``tenant="other"``;
spans without a tenant have no ``tenant`` label at all. The label sets themselves are
capped too (``max_label_sets``, default 2,000): the other five labels come from clients, and
past the cap a new label set's unseen values are folded into ``other``
(:mod:`spanmeter.prometheus.label_sets`); ``spanmeter_metrics_label_overflow_total`` counts
the attempts folded, per label.

Why sticky promotion (and not a top-N recomputed at each scrape): a counter series must
never go backwards. If a tenant could leave the top N, either its series would vanish
(``sum`` drops) or ``other`` would have to shrink. So a tenant, once labelled, keeps its
label for the life of the process; spend from before its promotion stays in ``other``, so
the sum over all tenant series equals the total at every instant. Slots are filled:

* at start, from the store: the top spenders of the last 7 days, so that labels are stable
  across restarts and identical on every replica sharing a store;
* at scrape time, once the process has ranked ``promotion_delay_s`` of traffic, with the
  biggest unlabelled spenders since start (never on the ingest path).

Money: sums are integer nano-USD here; the float in the exposition is ``nano / 1e9``,
correctly rounded, so the series of one scrape add up to the store's total exactly (to the
float representation).

Example::

    metrics = CostMetrics(top_tenants=20, store=store)
    registry.register(metrics)
    sink = metrics.metered(sink)          # the one call site, in ReceiverService
"""

from __future__ import annotations

import heapq
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future
from operator import itemgetter
from typing import Final

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from ..ingest.sink import RowSink
from ..store import SpanStore, WriteResult
from ..store.rows import FIELD_NAMES, RowValues
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
OTHER_TENANT: Final = "other"
"""The ``tenant`` label of every tenant without a slot (a tenant literally named ``other``
is counted there too)."""
COST_LABELS: Final = (
    "endpoint_tag",
    "prompt_version",
    "provider",
    "model",
    "environment",
    "data_mode",
    "tenant",
)
"""Labels of every cost counter, in order."""
TOKEN_TYPES: Final = ("input", "cache_read_input", "cache_write_input", "output", "reasoning_output")
"""Values of the ``type`` label of ``spanmeter_tokens_total``. They overlap as in OTel:
``input`` includes both cache kinds, ``output`` includes reasoning."""

_MAX_LABEL_CHARS: Final = 128
_SEED_WINDOW_NS: Final = 7 * 86_400 * 1_000_000_000
_RECENT_REQUEST_IDS: Final = 200_000
"""External request ids remembered to count logical requests (~20 MB at most)."""
_TALLY_LIMIT: Final = 100_000
"""Unlabelled tenants whose spend is ranked; past it the smaller half is forgotten."""
_MAX_DEFERRED: Final = 256
"""Mixed (partly duplicate) batches held for resolution at scrape time before resolving inline."""

_idx = FIELD_NAMES.index
_label_values: Final = itemgetter(
    _idx("endpoint_tag"),
    _idx("prompt_version"),
    _idx("provider"),
    _idx("model"),
    _idx("environment"),
    _idx("data_mode"),
)
_TENANT: Final = _idx("tenant_id")
_COST: Final = _idx("cost_nano_usd")
_MEASURE_FIELDS: Final = (
    _idx("input_tokens"),
    _idx("cache_read_tokens"),
    _idx("cache_write_tokens"),
    _idx("output_tokens"),
    _idx("reasoning_tokens"),
)
_OUTCOME: Final = _idx("outcome")
_EXTERNAL_ID: Final = _idx("external_request_id")
_RECEIVED_AT: Final = _idx("received_at_ns")
_delivery_key: Final = itemgetter(_idx("trace_id"), _idx("span_id"), _idx("start_time_ns"))
_START: Final = _idx("start_time_ns")

# Positions in a series' measure list.
_M_COST, _M_ATTEMPTS, _M_REQUESTS, _M_FAILED, _M_UNPRICED = range(5)
_M_TOKENS: Final = 5  # then one per TOKEN_TYPES entry
_MEASURE_COUNT: Final = _M_TOKENS + len(TOKEN_TYPES)


def _nonzero(values: Iterable[int | None]) -> int:
    return sum(filter(None, values))


def _label(value: str | None) -> str:
    return "" if value is None else value[:_MAX_LABEL_CHARS]


class CostMetrics(Collector):
    """The cost counters of one receiver: fed per committed batch, collected per scrape.

    Args:
        top_tenants: Tenants that get a series of their own (0: every tenant is ``other``).
        store: Read access to the store: seeds the tenant slots and resolves mixed batches.
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
        self._store = store
        self._promotion_delay_s = promotion_delay_s
        self._clock = clock
        self._started = clock()
        self._lock = threading.Lock()
        self._series: dict[tuple[str, ...], list[int]] = {}
        self._cap = LabelSetCap(max_label_sets)
        self._labelled: set[str] = set()
        self._labelled_view: frozenset[str] = frozenset()
        """A copy of ``_labelled`` read without the lock on the ingest path (swapped whole)."""
        self._tally: dict[str, int] = {}
        self._recent_ids: OrderedDict[str, None] = OrderedDict()
        self._deferred: list[Sequence[RowValues]] = []
        if store is not None and top_tenants:
            self._seed(store)

    @property
    def labelled_tenants(self) -> frozenset[str]:
        """Tenants with their own series (sticky for the life of this object)."""
        return self._labelled_view

    def metered(self, sink: RowSink) -> MeteredSink:
        """``sink``, counting each batch once its commit answer arrives."""
        return MeteredSink(sink, self)

    # -- ingest side ------------------------------------------------------------------------

    def count_committed(self, rows: Sequence[RowValues], result: WriteResult) -> None:
        """Count the rows a commit stored as new (see the module docstring)."""
        if not result.inserted:
            return  # a full re-delivery: nothing new
        if not result.duplicates:
            self._add(rows)
            return
        with self._lock:
            if len(self._deferred) < _MAX_DEFERRED:
                self._deferred.append(rows)
                return
        self._add(self._resolve(rows))

    def _add(self, rows: Sequence[RowValues]) -> None:
        # Tenants are capped per row first, so a batch over 1,000 tenants makes a handful of
        # groups rather than one per row (the per-group work is what costs).
        labelled = self._labelled_view
        spend: dict[str, int] = {}  # this batch's spend of tenants without a label
        groups: dict[tuple[tuple[str | None, ...], str], list[RowValues]] = {}
        for row in rows:
            tenant = row[_TENANT]
            if tenant is None:
                tenant = ""
            elif tenant not in labelled:
                cost = row[_COST]
                if cost:
                    spend[tenant] = spend.get(tenant, 0) + cost
                tenant = OTHER_TENANT
            key = (_label_values(row), tenant)
            group = groups.get(key)
            if group is None:
                groups[key] = [row]
            else:
                group.append(row)
        sums: list[tuple[tuple[str, ...], list[int], list[str]]] = []
        for (values, tenant), members in groups.items():
            costs = [row[_COST] for row in members]
            measures = [0] * _MEASURE_COUNT
            measures[_M_COST] = _nonzero(costs)
            measures[_M_ATTEMPTS] = len(members)
            measures[_M_FAILED] = sum(1 for row in members if row[_OUTCOME] == "error")
            measures[_M_UNPRICED] = costs.count(None)
            for offset, field in enumerate(_MEASURE_FIELDS):
                measures[_M_TOKENS + offset] = _nonzero([row[field] for row in members])
            ids = [row[_EXTERNAL_ID] for row in members]
            without_id = ids.count(None)
            measures[_M_REQUESTS] = without_id
            labels = (*map(_label, values), tenant[:_MAX_LABEL_CHARS])
            sums.append(
                (labels, measures, [i for i in ids if i is not None] if without_id < len(ids) else [])
            )
        with self._lock:
            recent = self._recent_ids
            series = self._series
            for labels, measures, external_ids in sums:
                for external_id in external_ids:  # first sight in this process = a logical request
                    if external_id in recent:
                        recent.move_to_end(external_id)
                    else:
                        recent[external_id] = None
                        measures[_M_REQUESTS] += 1
                        if len(recent) > _RECENT_REQUEST_IDS:
                            recent.popitem(last=False)
                totals = series.get(labels)
                if totals is None:  # a new label set: the cap decides where it is counted
                    labels = self._cap.admit(labels, measures[_M_ATTEMPTS], series)
                    totals = series.get(labels)
                    if totals is None:
                        series[labels] = measures
                        continue
                for position, value in enumerate(measures):
                    totals[position] += value
            tally = self._tally
            for tenant, cost in spend.items():
                tally[tenant] = tally.get(tenant, 0) + cost
            if len(tally) > _TALLY_LIMIT:
                self._tally = dict(heapq.nlargest(_TALLY_LIMIT // 2, tally.items(), key=itemgetter(1)))

    def _resolve(self, rows: Sequence[RowValues]) -> list[RowValues]:
        """The rows of a mixed batch that this request stored: they carry its arrival time
        (one per request), earlier deliveries carry theirs. Rare (an OTLP retry resends the
        same request, which is all duplicates), so one store read per mixed batch is fine."""
        store = self._store
        if store is None or not rows:
            _logger.warning("cost metrics: a partly duplicate batch cannot be resolved without a store")
            return []
        received_at = rows[0][_RECEIVED_AT]
        events = [row[_START] if row[_START] > 0 else row[_RECEIVED_AT] for row in rows]
        stored: set[tuple[bytes, bytes, int]] = set()
        for trace_id, span_id, start, arrival in store.scan_requests(
            min(events),
            max(events) + 1,
            columns=("trace_id", "span_id", "start_time_ns", "received_at_ns"),
            data_mode=None,
            billable_only=False,
        ):
            if arrival == received_at:
                stored.add((trace_id, span_id, start))
        new: list[RowValues] = []
        for row in rows:
            key = _delivery_key(row)
            if key in stored:
                stored.discard(key)  # a span repeated inside the batch is stored once
                new.append(row)
        return new

    # -- scrape side ------------------------------------------------------------------------

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
        self._labelled_view = frozenset(self._labelled)

    def _promote(self) -> None:
        free = self.top_tenants - len(self._labelled)
        if free <= 0 or not self._tally or self._clock() - self._started < self._promotion_delay_s:
            return
        for tenant, spend in heapq.nlargest(free, self._tally.items(), key=itemgetter(1)):
            if spend > 0 and tenant != OTHER_TENANT:
                self._labelled.add(tenant)
                del self._tally[tenant]
        self._labelled_view = frozenset(self._labelled)

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        """Resolve deferred batches, fill free tenant slots, then expose every series."""
        with self._lock:
            deferred, self._deferred = self._deferred, []
        for rows in deferred:
            try:
                self._add(self._resolve(rows))
            except Exception:
                _logger.exception("cost metrics: could not resolve a partly duplicate batch")
        with self._lock:
            self._promote()
            snapshot = [(labels, list(measures)) for labels, measures in self._series.items()]
            labelled = len(self._labelled)
            overflow = list(self._cap.overflow)
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
            cost.add_metric(values, measures[_M_COST] / 1_000_000_000)
            attempts.add_metric(values, measures[_M_ATTEMPTS])
            requests.add_metric(values, measures[_M_REQUESTS])
            failed.add_metric(values, measures[_M_FAILED])
            unpriced.add_metric(values, measures[_M_UNPRICED])
            for offset, token_type in enumerate(TOKEN_TYPES):
                tokens.add_metric([*values, token_type], measures[_M_TOKENS + offset])
        slots = GaugeMetricFamily(
            "spanmeter_metrics_tenant_slots",
            "Tenant label slots of the cost counters: total (the configured N) and used.",
            labels=("slots",),
        )
        slots.add_metric(["total"], self.top_tenants)
        slots.add_metric(["used"], labelled)
        label_sets = GaugeMetricFamily(
            "spanmeter_metrics_label_sets",
            "Label sets of the cost counters: the configured cap (total) and the series used.",
            labels=("sets",),
        )
        label_sets.add_metric(["total"], self._cap.max_label_sets)
        label_sets.add_metric(["used"], len(snapshot))
        folded = CounterMetricFamily(
            "spanmeter_metrics_label_overflow",
            "Attempts whose label value was folded into 'other' because the label sets were at their cap.",
            labels=("label",),
        )
        for label, count in zip(CLIENT_DIMENSIONS, overflow, strict=True):
            folded.add_metric([label], count)
        yield from (cost, attempts, requests, failed, unpriced, tokens, slots, label_sets, folded)

    def describe(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        """Nothing: the registry then calls :meth:`collect` only at scrape time."""
        return iter(())


class MeteredSink:
    """A :class:`~spanmeter.ingest.sink.RowSink` that tells :class:`CostMetrics` what each
    commit stored. Everything else is the wrapped sink's."""

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
        count = self._metrics.count_committed

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
                count(rows, result)
            except Exception:  # metrics must never fail an export
                _logger.exception("cost metrics: could not count a committed batch")
            counted.set_result(result)

        future.add_done_callback(committed)
        return counted

    def close(self) -> object:
        """Close the wrapped sink."""
        return self.sink.close()
