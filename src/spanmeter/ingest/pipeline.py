"""The ingest pipeline: decoded OTLP request -> normalise -> price -> store rows.

One instance is the receiver's :class:`~spanmeter.receiver.IngestHandler`. It blocks the
calling transport thread until the store has committed the batch (durable before ack), and
turns a full store queue into :class:`~spanmeter.receiver.Overloaded`, which the transport
answers with OTLP's retryable throttling statuses: nothing is dropped, nothing is counted
twice (the store deduplicates redelivered spans by trace and span id).

Bad spans never fail the request: a span with unusable ids is rejected and counted in the
partial-success answer; a span with unusable values (negative or absurd token counts,
wrong types) is stored with the offending fields dropped and its pricing status saying
why. Each problem is logged once per request, never per span, and never with values.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from ..identity import UserIdHasher, default_hasher
from ..pricing import CostPolicy, PriceBook
from ..receiver.contract import IngestResult, Overloaded
from ..semantic_conventions import is_genai_candidate, normalize
from ..store import GroupCommitWriter, SpanRow, StoreBusy
from .extract import SERVICE_NAME, iter_spans
from .metrics import IngestMetrics

__all__ = ["IngestPipeline"]

_logger = logging.getLogger(__name__)

_ZERO_TRACE = bytes(16)
_ZERO_SPAN = bytes(8)


class IngestPipeline:
    """Callable ingest handler: one OTLP request in, an OTLP outcome out."""

    def __init__(
        self,
        writer: GroupCommitWriter,
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
            writer: Group-commit writer in front of the store.
            price_book: Prices; the receiver's book is authoritative (an app-side cost is
                used only where the receiver cannot price a span, per ``policy``).
            metrics: Self-observability counters.
            policy: What to do with a cost that arrived on the span.
            user_id_hasher: Keyed hasher for user ids arriving raw (default: from env).
            commit_timeout_s: Longest wait for the commit before answering retryable.
            retry_after_s: Retry-After sent when the store cannot keep up.
            clock: Wall clock in ns, for the arrival time (tests inject one).
        """
        self._writer = writer
        self._prices = price_book
        self._metrics = metrics
        self._policy = policy
        self._hasher = user_id_hasher if user_id_hasher is not None else default_hasher()
        self._commit_timeout = commit_timeout_s
        self._retry_after = retry_after_s
        self._clock = clock

    def __call__(self, request: ExportTraceServiceRequest) -> IngestResult:
        started = time.perf_counter()
        received_at = self._clock()
        rows: list[SpanRow] = []
        problems: Counter[str] = Counter()
        seen = non_genai = not_billable = rejected = 0
        for item in iter_spans(request):
            seen += 1
            span = item.span
            trace_id, span_id = span.trace_id, span.span_id
            if len(trace_id) != 16 or len(span_id) != 8 or trace_id == _ZERO_TRACE or span_id == _ZERO_SPAN:
                rejected += 1
                problems["invalid trace or span id"] += 1
                continue
            attributes = item.attributes
            if not attributes or not is_genai_candidate(attributes):
                non_genai += 1
                continue
            record = normalize(
                attributes,
                item.resource,
                span_name=span.name,
                start_time_ns=span.start_time_unix_nano or None,
                end_time_ns=span.end_time_unix_nano or None,
                status_code=span.status.code,
                scope_name=item.scope_name,
                user_id_hasher=self._hasher,
            )
            if record is None:
                non_genai += 1
                continue
            if not record.billable:
                not_billable += 1
                continue
            for issue in record.issues:
                problems[issue.split(":", 1)[-1].strip() or issue] += 1
            price = self._prices.price_record(record, self._policy)
            self._metrics.count_pricing(price.status.value)
            service = item.resource.get(SERVICE_NAME)
            rows.append(
                SpanRow.from_record(
                    record,
                    price,
                    trace_id=trace_id,
                    span_id=span_id,
                    received_at_ns=received_at,
                    service_name=service if isinstance(service, str) else None,
                )
            )
        self._metrics.spans_received.inc(seen)
        self._metrics.spans_non_genai.inc(non_genai)
        self._metrics.spans_not_billable.inc(not_billable)
        if rejected:
            self._metrics.spans_rejected.inc(rejected)
        if rows:
            self._commit(rows)
        self._metrics.export_latency.observe(time.perf_counter() - started)
        if problems:
            summary = "; ".join(f"{reason} ({count} spans)" for reason, count in problems.most_common(5))
            _logger.warning(
                "ingest: %d spans of one request had problems: %s", sum(problems.values()), summary
            )
        message = ""
        if rejected:
            message = f"{rejected} spans rejected: invalid trace or span id"
        elif problems:
            message = "some values were unusable and dropped: " + "; ".join(
                f"{reason} ({count})" for reason, count in problems.most_common(3)
            )
        return IngestResult(rejected_spans=rejected, error_message=message)

    def _commit(self, rows: list[SpanRow]) -> None:
        try:
            future = self._writer.submit(rows)
        except StoreBusy as busy:
            self._metrics.throttled.inc()
            raise Overloaded(f"store busy: {busy}", retry_after_s=self._retry_after) from None
        try:
            result = future.result(timeout=self._commit_timeout)
        except TimeoutError:
            # Not acknowledged, so the client retries; if the commit lands later, the
            # retry is deduplicated by (trace_id, span_id).
            self._metrics.throttled.inc()
            raise Overloaded("store commit is slow", retry_after_s=self._retry_after) from None
        except Exception as error:
            _logger.exception("ingest: store commit failed")
            raise Overloaded(
                f"store error: {type(error).__name__}", retry_after_s=self._retry_after
            ) from error
        self._metrics.spans_stored.inc(result.inserted)
        self._metrics.spans_duplicate.inc(result.duplicates)
