"""The ingest pipeline: decoded OTLP request -> normalise -> price -> store rows.

One instance is the receiver's :class:`~spanmeter.receiver.IngestHandler`. It blocks the
calling transport thread until the store has committed the batch (durable before ack), and
turns a full store queue into :class:`~spanmeter.receiver.Overloaded`, which the transport
answers with OTLP's retryable throttling statuses: nothing is dropped, nothing is counted
twice (the store deduplicates redelivered spans by trace and span id).

Bad spans never fail the request: a span with unusable ids is rejected and counted in the
partial-success answer; a span with unusable values (negative or absurd token counts,
wrong types, a time past what a 64-bit column holds) is stored with the offending fields
dropped and its pricing status or issues saying why. Rows the store still refuses (see
:func:`~spanmeter.store.batches.check_batches`) are rejected, not retried: that request
alone, never another client's batch in the same group commit. Each problem is logged once per request, never per span, and never with values.

Cost per span is what bounds a Python receiver (see bench/README.md), so the hot loop is
flat: attributes are filtered while iterating them (string values read first), rows are
built as plain tuples (:func:`~spanmeter.store.rows.priced_values`, from the price's cost
columns without a ``PriceResult``) that cross to a store process cheaply, metrics are counted once per request, and one request at a time holds
the CPU part (the commits of several requests still overlap, which feeds group commit).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future
from operator import attrgetter, itemgetter
from typing import Any, Final

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from ..identity import UserIdHasher, default_hasher
from ..normalise import GenAIRecord, is_genai_candidate, normalize
from ..normalise.same_call import SameCallIndex
from ..pricing import CostPolicy, PriceBook
from ..receiver.contract import IngestResult, Overloaded
from ..semantic_conventions import NORMALIZER_KEYS
from ..store import GroupCommitWriter, StoreBusy, WriteResult
from ..store.batches import RefusedBatch
from ..store.rows import FIELD_NAMES, RowValues, priced_values
from .extract import (
    INGEST_REQUEST_TYPE,
    RESOURCE_WANTED,
    SERVICE_NAME,
    any_value,
    as_ingest_request,
    wanted_attributes,
)
from .metrics import IngestMetrics
from .sink import LocalRowSink, RowSink

__all__ = ["IngestPipeline"]

_logger = logging.getLogger(__name__)

_ZERO_TRACE: Final = bytes(16)
_ZERO_SPAN: Final = bytes(8)
_INVALID_IDS: Final = "invalid trace or span id"
_OTHER_TENANT: Final = "tenant_id not one of this API key's tenants"
_NO_TENANT: Final = "no tenant_id, and this API key has several tenants"
_REJECTIONS: Final = frozenset({_INVALID_IDS, _OTHER_TENANT, _NO_TENANT})
"""Problems that reject a span (the others drop a value and keep the span)."""
_pricing_status_of: Final = itemgetter(FIELD_NAMES.index("pricing_status"))
_RECEIVED_AT: Final = FIELD_NAMES.index("received_at_ns")
_SERVICE: Final = FIELD_NAMES.index("service_name")
_TENANT: Final = FIELD_NAMES.index("tenant_id")
_USER_MEMO_LIMIT: Final = 65_536
"""Hashed user ids remembered (~10 MB at most); cleared when full."""


class _Remembering:
    """A user-id hasher behind a cache sized for a receiver, which sees every app's users.

    The hasher's own cache holds 4,096 ids (right for one app process); past that every
    span pays the ``looks_hashed`` check or an HMAC again (~0.4-2 us). Results are the
    hasher's; failures are not cached, so they surface per span as before.
    """

    __slots__ = ("_hasher", "_memo")

    def __init__(self, hasher: Callable[[str], str]) -> None:
        self._hasher = hasher
        self._memo: dict[str, str] = {}

    def __call__(self, user_id: str) -> str:
        hashed = self._memo.get(user_id)
        if hashed is None:
            hashed = self._hasher(user_id)
            if len(self._memo) >= _USER_MEMO_LIMIT:
                self._memo.clear()
            self._memo[user_id] = hashed
        return hashed


_record_of: Final = itemgetter(1)
_span_id_of: Final = itemgetter(3)
_parent_id_of: Final = itemgetter(4)
_response_id_of: Final = attrgetter("response_id")


def _may_pair(calls: list[tuple[int, GenAIRecord, bytes, bytes, bytes]]) -> bool:
    """Whether two spans of the request could describe one call: a repeated response id,
    or a span whose parent is another billable span of the request. Nearly every request
    has neither, and then the pairing is skipped: this costs a few C-level passes over the
    request's spans (no Python loop: ~0.3k instructions a span, against ~1.5k for the loop
    it replaced), :class:`~spanmeter.normalise.same_call.SameCallIndex` several
    microseconds. Span ids alone (and response ids without their provider) may only
    over-report, which the index then settles exactly. An empty parent id (a root span) is
    never a span id: those were checked to be 8 bytes."""
    if not set(map(_span_id_of, calls)).isdisjoint(map(_parent_id_of, calls)):
        return True
    response_ids: list[str] = list(filter(None, map(_response_id_of, map(_record_of, calls))))
    return len(set(response_ids)) != len(response_ids)


def _span_attributes(span_attributes: Any) -> dict[str, Any]:
    """The span attributes the normaliser reads, as Python values.

    :func:`~spanmeter.ingest.extract.wanted_attributes`, inlined for the span's map: iterating
    it yields key strings, and only the wanted keys' values become objects (anything else is
    re-parsed as one first)."""
    attributes: dict[str, Any] = {}
    wanted = NORMALIZER_KEYS
    for key in span_attributes:
        if key in wanted:
            value = span_attributes[key]
            text = value.string_value
            if text:
                attributes[key] = text
            else:
                # A non-zero int_value can only be the oneof's member (token counts): one
                # read instead of WhichOneof plus a read.
                number = value.int_value
                attributes[key] = number if number else any_value(value)
    return attributes


def _tenant_rows(
    rows: list[RowValues], counts: tuple[int, int, int, int], tenants: frozenset[str], problems: Counter[str]
) -> tuple[list[RowValues], tuple[int, int, int, int]]:
    """The rows an ingest key limited to ``tenants`` may write, the counts with the others
    rejected: a row of another tenant is rejected; a row naming none gets the key's tenant
    when it has exactly one, and is rejected when it has several (which one is unknowable).
    Only requests with such a key pay for this pass."""
    only = next(iter(tenants)) if len(tenants) == 1 else None
    kept: list[RowValues] = []
    for row in rows:
        tenant = row[_TENANT]
        if tenant is None:
            if only is None:
                problems[_NO_TENANT] += 1
                continue
            row = (*row[:_TENANT], only, *row[_TENANT + 1 :])
        elif tenant not in tenants:
            problems[_OTHER_TENANT] += 1
            continue
        kept.append(row)
    seen, non_genai, not_billable, rejected = counts
    return kept, (seen, non_genai, not_billable, rejected + len(rows) - len(kept))


class IngestPipeline:
    """Callable ingest handler: one OTLP request in, an OTLP outcome out."""

    request_type: Final = INGEST_REQUEST_TYPE
    """What the receiver should parse protobuf bodies into (span attributes as a map, whose
    iteration is cheaper; see :data:`~spanmeter.ingest.extract.INGEST_REQUEST_TYPE`). Any
    ``ExportTraceServiceRequest`` is accepted too, at the cost of one re-parse."""

    def __init__(
        self,
        sink: RowSink | GroupCommitWriter,
        price_book: PriceBook,
        *,
        metrics: IngestMetrics,
        policy: CostPolicy = CostPolicy.PREFER_PROVIDER,
        user_id_hasher: UserIdHasher | None = None,
        commit_timeout_s: float = 30.0,
        retry_after_s: float = 1.0,
        clock: Callable[[], int] = time.time_ns,
    ) -> None:
        """Create the pipeline.

        Args:
            sink: Where committed rows go: a :class:`~spanmeter.ingest.sink.RowSink`, or a
                group-commit writer in this process.
            price_book: Prices; the receiver's book is authoritative (an app-side cost is
                used only where the receiver cannot price a span, per ``policy``).
            metrics: Self-observability counters.
            policy: What to do with a cost that arrived on the span.
            user_id_hasher: Keyed hasher for user ids arriving raw (default: from env).
            commit_timeout_s: Longest wait for the commit before answering retryable.
            retry_after_s: Retry-After sent when the store cannot keep up.
            clock: Wall clock in ns, for the arrival time (tests inject one).
        """
        self._sink: RowSink = LocalRowSink(sink) if isinstance(sink, GroupCommitWriter) else sink
        self._prices = price_book
        self._metrics = metrics
        self._policy = policy
        self._hasher = _Remembering(user_id_hasher if user_id_hasher is not None else default_hasher())
        self._commit_timeout = commit_timeout_s
        self._retry_after = retry_after_s
        self._clock = clock
        self._cpu = threading.Lock()

    def __call__(
        self, request: ExportTraceServiceRequest, tenants: frozenset[str] | None = None
    ) -> IngestResult:
        """Ingest one request; ``tenants``: those of the API key it came with (None: any),
        see :func:`_tenant_rows`."""
        started = time.perf_counter()
        # One request at a time turns its spans into rows: the work holds the GIL anyway, and
        # interleaving eight requests on it only adds switches and cache misses. The waits
        # for commits (the long part) still overlap, which is what group commit feeds on.
        with self._cpu:
            rows, counts, problems = self._rows(request, self._clock())
            if tenants is not None:
                rows, counts = _tenant_rows(rows, counts, tenants, problems)
            future = self._submit(rows) if rows else None
        seen, non_genai, not_billable, rejected = counts
        metrics = self._metrics
        metrics.spans_received.inc(seen)
        metrics.spans_non_genai.inc(non_genai)
        metrics.spans_not_billable.inc(not_billable)
        if rejected:
            metrics.spans_rejected.inc(rejected)
        if future is not None:
            refused = self._wait(future)
            if refused is None:
                metrics.count_pricing_many(Counter(map(_pricing_status_of, rows)))
            else:  # the store cannot take these rows, now or on a retry: rejected, not retryable
                rejected += len(rows)
                metrics.spans_rejected.inc(len(rows))
                problems[f"refused by the store: {refused}"] += len(rows)
        metrics.export_latency.observe(time.perf_counter() - started)
        if problems:
            summary = "; ".join(f"{reason} ({count} spans)" for reason, count in problems.most_common(5))
            _logger.warning(
                "ingest: %d spans of one request had problems: %s", sum(problems.values()), summary
            )
        message = ""
        if rejected:
            reasons = "; ".join(
                reason for reason in problems if reason in _REJECTIONS or reason.startswith("refused")
            )
            message = f"{rejected} spans rejected: {reasons}"
        elif problems:
            message = "some values were unusable and dropped: " + "; ".join(
                f"{reason} ({count})" for reason, count in problems.most_common(3)
            )
        return IngestResult(rejected_spans=rejected, error_message=message)

    def _rows(
        self, request: Any, received_at: int
    ) -> tuple[list[RowValues], tuple[int, int, int, int], Counter[str]]:
        """The stored rows of a request, the span counts, and the problems found.

        ``request`` is an :data:`~spanmeter.ingest.extract.INGEST_REQUEST_TYPE`. The spans
        of each scope go through :meth:`_scope_rows`; the spans of the request that may
        describe one provider call are then settled together. Metrics are counted per
        request, not per span.
        """
        request = as_ingest_request(request)
        rows: list[RowValues] = []
        problems: Counter[str] = Counter()
        calls: list[tuple[int, GenAIRecord, bytes, bytes, bytes]] = []
        seen = non_genai = not_billable = rejected = 0
        for resource_spans in request.resource_spans:
            resource = wanted_attributes(resource_spans.resource.attributes, RESOURCE_WANTED)
            service: Any = resource.get(SERVICE_NAME)
            if not isinstance(service, str):
                service = None
            for scope_spans in resource_spans.scope_spans:
                spans = scope_spans.spans
                seen += len(spans)
                skipped, outer, invalid = self._scope_rows(
                    spans, scope_spans.scope, resource, service, received_at, rows, calls, problems
                )
                non_genai += skipped
                not_billable += outer
                rejected += invalid
        if len(calls) > 1 and _may_pair(calls):
            not_billable += self._same_calls(rows, calls, self._policy)
        return rows, (seen, non_genai, not_billable, rejected), problems

    def _scope_rows(
        self,
        spans: Any,
        scope: Any,
        resource: dict[str, Any],
        service: str | None,
        received_at: int,
        rows: list[RowValues],
        calls: list[tuple[int, GenAIRecord, bytes, bytes, bytes]],
        problems: Counter[str],
    ) -> tuple[int, int, int]:
        """Append the rows of one scope's spans; returns (not GenAI, not billable, rejected).

        One flat loop, on purpose: this runs for every span at tens of thousands of spans a
        second, so nothing is built per span besides the attribute dict, the record and the
        row tuple. A span that may share its provider call with another is noted in ``calls``.
        """
        append = rows.append
        hasher, policy, price_fields = self._hasher, self._policy, self._prices.price_record_fields
        scope_name, scope_version = scope.name, scope.version
        non_genai = not_billable = rejected = 0
        for span in spans:
            trace_id, span_id = span.trace_id, span.span_id
            if len(trace_id) != 16 or len(span_id) != 8 or trace_id == _ZERO_TRACE or span_id == _ZERO_SPAN:
                rejected += 1
                problems[_INVALID_IDS] += 1
                continue
            attributes = _span_attributes(span.attributes)
            if not attributes or not is_genai_candidate(attributes):
                non_genai += 1
                continue
            record = normalize(
                attributes,
                resource,
                span_name=span.name,
                start_time_ns=span.start_time_unix_nano or None,
                end_time_ns=span.end_time_unix_nano or None,
                status_code=span.status.code,
                scope_name=scope_name,
                scope_version=scope_version,
                user_id_hasher=hasher,
            )
            if record is None:
                non_genai += 1
                continue
            if not record.billable:
                not_billable += 1
                if record.duplicate_of is None:
                    continue  # an outer span summing its children: not stored
                # the app's processor found it describes another span's call: kept,
                # not billable, with the id of the span that carries the cost
            elif record.input_tokens is not None or record.output_tokens is not None:
                calls.append((len(rows), record, trace_id, span_id, span.parent_span_id))
            if record.issues:
                for issue in record.issues:
                    problems[issue.split(":", 1)[-1].strip() or issue] += 1
            append(
                priced_values(record, price_fields(record, policy), trace_id, span_id, received_at, service)
            )
        return non_genai, not_billable, rejected

    def _same_calls(
        self,
        rows: list[RowValues],
        calls: list[tuple[int, GenAIRecord, bytes, bytes, bytes]],
        policy: CostPolicy,
    ) -> int:
        """Demote the spans of this request that describe a call another span carries (see
        :mod:`~spanmeter.normalise.same_call`): their rows are rebuilt not
        billable, with the reason and the kept span's id. Returns how many."""
        index: SameCallIndex[int] = SameCallIndex(replace_earlier=True)
        by_row = {position: (record, trace_id, span_id) for position, record, trace_id, span_id, _ in calls}
        demoted = 0
        for position, record, trace_id, span_id, parent in calls:
            verdict = index.add(position, record, trace_id, span_id, parent)
            if verdict is None:
                continue
            duplicate, dup_trace, dup_span = by_row[verdict.duplicate]
            duplicate.billable = False
            duplicate.duplicate_of = verdict.kept_span_id.hex()
            duplicate.not_billable_reason = verdict.reason
            old = rows[verdict.duplicate]
            rows[verdict.duplicate] = priced_values(
                duplicate,
                self._prices.price_record_fields(duplicate, policy),
                dup_trace,
                dup_span,
                old[_RECEIVED_AT],
                old[_SERVICE],
            )
            demoted += 1
        return demoted

    def _submit(self, rows: list[RowValues]) -> Future[WriteResult]:
        try:
            return self._sink.submit(rows)
        except StoreBusy as busy:
            self._metrics.throttled.inc()
            raise Overloaded(f"store busy: {busy}", retry_after_s=self._retry_after) from None

    def _wait(self, future: Future[WriteResult]) -> str | None:
        """Wait for the commit; None once committed, or why the store refused the rows."""
        try:
            result = future.result(timeout=self._commit_timeout)
        except RefusedBatch as refused:
            return str(refused)
        except TimeoutError:
            # Not acknowledged, so the client retries; if the commit lands later, the
            # retry is deduplicated by (trace_id, span_id).
            self._metrics.throttled.inc()
            raise Overloaded("store commit is slow", retry_after_s=self._retry_after) from None
        except StoreBusy as busy:  # refused after queueing, or the store unreachable
            self._metrics.throttled.inc()
            raise Overloaded(f"store busy: {busy}", retry_after_s=self._retry_after) from None
        except Exception as error:
            _logger.exception("ingest: store commit failed")
            raise Overloaded(
                f"store error: {type(error).__name__}", retry_after_s=self._retry_after
            ) from error
        self._metrics.spans_stored.inc(result.inserted)
        self._metrics.spans_duplicate.inc(result.duplicates)
        return None
