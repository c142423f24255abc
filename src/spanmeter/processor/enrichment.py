"""From a finished span's attributes to the cost attributes spanmeter adds.

Shared by :class:`~spanmeter.processor.CostSpanProcessor` (which runs it lazily, on the
exporter's thread) and :class:`~spanmeter.otel_exporter.SpanmeterSpanExporter` (which runs
it in ``export``): the same normaliser and the same price book as the receiver, so a cost
computed in the app and one computed at ingest are the same number.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any, Final

from opentelemetry.sdk.trace import ReadableSpan

from ..identity import default_hasher, looks_hashed
from ..money import usd_float
from ..normalise import GenAIRecord, normalize
from ..normalise.same_call import SameCallIndex
from ..pricing import CostPolicy, PriceBook, PriceResult, PricingStatus
from ..semantic_conventions.attributes import (
    DATA_MODES,
    DEPLOYMENT_ENVIRONMENT_NAME,
    ENDUSER_ID,
    GEN_AI_USAGE_COST,
    SPANMETER_COST_CACHE_READ_USD,
    SPANMETER_COST_CACHE_WRITE_USD,
    SPANMETER_COST_INPUT_USD,
    SPANMETER_COST_NANO_USD,
    SPANMETER_COST_OUTPUT_USD,
    SPANMETER_COST_REASONING_USD,
    SPANMETER_COST_REPORTED_USD,
    SPANMETER_DATA_MODE,
    SPANMETER_DUPLICATE_OF,
    SPANMETER_NOT_BILLABLE_REASON,
    SPANMETER_PRICING_EFFECTIVE_DATE,
    SPANMETER_PRICING_MODEL,
    SPANMETER_PRICING_PROVIDER,
    SPANMETER_PRICING_SOURCE,
    SPANMETER_PRICING_SOURCE_VERSION,
    SPANMETER_PRICING_STATUS,
    USER_ID,
)
from .cost_metrics import CostInstruments

__all__ = ["SpanEnricher"]

_logger = logging.getLogger(__name__)

_SAME_CALL_MEMORY: Final = 4096
"""GenAI spans remembered to pair the spans of one provider call: far more than one export
batch (512), which is where the two spans of a call almost always travel together."""

# Keys under which instrumentations put a user identifier. Raw values are replaced by
# their keyed hash on the copy that leaves the app (no PII by default).
_USER_ID_KEYS: Final = (
    USER_ID,
    ENDUSER_ID,
    "userId",
    "gen_ai.request.user",
    "langfuse.user.id",
    "traceloop.association.properties.user_id",
    "ai.telemetry.metadata.userId",
)

_PARTS: Final = (
    (SPANMETER_COST_INPUT_USD, "input_nano_usd"),
    (SPANMETER_COST_OUTPUT_USD, "output_nano_usd"),
    (SPANMETER_COST_CACHE_READ_USD, "cache_read_nano_usd"),
    (SPANMETER_COST_CACHE_WRITE_USD, "cache_write_nano_usd"),
    (SPANMETER_COST_REASONING_USD, "reasoning_nano_usd"),
)


def _attribute_dict(span: ReadableSpan) -> Mapping[str, Any]:
    """The span's attributes as the plain dict the SDK keeps them in, when it does.

    ``span.attributes`` is a ``MappingProxyType`` over the SDK's ``BoundedAttributes``, whose
    item access and ``in`` are Python methods (``in`` for a missing key raises and catches a
    ``KeyError``): read through them, the ~15 keys of a GenAI span cost the export thread
    ~2.5 us a span (15.8k of ~242k instructions, ``bench/instructions.py``), and the
    normaliser cannot use its per-shape memo, which needs a plain dict. A finished span's
    attributes no longer change, and nothing here writes to them. Any other layout (another
    SDK version, a ``ReadableSpan`` built by hand) is read through the public view.
    """
    inner: Any = getattr(getattr(span, "_attributes", None), "_dict", None)
    if inner.__class__ is dict:
        return inner
    return span.attributes or {}


class SpanEnricher:
    """Computes the attributes to add to a finished GenAI span. Never raises."""

    def __init__(
        self,
        price_book: PriceBook | None = None,
        *,
        policy: CostPolicy = CostPolicy.PREFER_PROVIDER,
        user_id_hasher: Callable[[str], str] | None = None,
        hash_user_ids: bool = True,
        default_data_mode: str | None = None,
        default_environment: str | None = None,
        metrics: CostInstruments | None = None,
    ) -> None:
        """Create an enricher.

        Args:
            price_book: Prices to use. Default: genai-prices plus ``SPANMETER_PRICING_FILE``.
            policy: What to do with a cost that already arrived on the span.
            user_id_hasher: Keyed hasher for user ids. Default: the process-wide one.
            hash_user_ids: Replace raw user ids on the exported copy by their hash.
            default_data_mode: Data mode stamped on GenAI spans that carry none.
            default_environment: ``deployment.environment.name`` stamped on GenAI spans
                whose span and resource carry no environment.
            metrics: Also count cost and tokens as OTel metrics (see :mod:`.cost_metrics`).
        """
        if default_data_mode is not None and default_data_mode not in DATA_MODES:
            raise ValueError(
                f"default_data_mode must be one of {sorted(DATA_MODES)}, not {default_data_mode!r}"
            )
        self._price_book = price_book if price_book is not None else PriceBook.from_env()
        self._policy = policy
        self._hasher = user_id_hasher if user_id_hasher is not None else default_hasher()
        self._hash_user_ids = hash_user_ids
        self._default_data_mode = default_data_mode
        self._default_environment = default_environment.strip() or None if default_environment else None
        self._metrics = metrics
        self._lock = threading.Lock()
        self._counts: dict[str, int] = {}
        # recent GenAI spans, to find two spans of one provider call; bounded (restarts when
        # full), and ~200 bytes a span
        self._same_calls: SameCallIndex[None] = SameCallIndex(
            replace_earlier=False, max_spans=_SAME_CALL_MEMORY
        )
        self._failed_once = False

    @property
    def price_book(self) -> PriceBook:
        """The price book this enricher prices with."""
        return self._price_book

    def stats(self) -> dict[str, int]:
        """Enriched GenAI spans by pricing status, plus ``errors``."""
        with self._lock:
            return dict(self._counts)

    def _count(self, key: str) -> None:
        with self._lock:
            self._counts[key] = self._counts.get(key, 0) + 1

    def extra_attributes_for(self, span: ReadableSpan) -> dict[str, Any] | None:
        """The attributes to add to ``span`` (None when it is not a GenAI span).

        A span that describes a provider call an earlier span already carries (the
        anthropic SDK's own span beside an instrumentation's, see
        :mod:`~spanmeter.normalise.same_call`) gets ``not_billable`` with the
        kept span's id, so that neither the receiver nor any other backend counts it.
        """
        try:  # zero-cost when it does not raise
            status_code = int(span.status.status_code.value)
        except AttributeError:  # typed as always set, but a span built by hand may have none
            status_code = None
        scope = span.instrumentation_scope
        context = span.context
        parent = span.parent
        return self.extra_attributes(
            _attribute_dict(span),
            span.resource.attributes,
            span_name=span.name,
            start_time_ns=span.start_time,
            end_time_ns=span.end_time,
            status_code=status_code,
            scope_name=scope.name if scope is not None else None,
            span_ids=(
                None
                if context is None
                else (context.trace_id, context.span_id, parent.span_id if parent is not None else None)
            ),
        )

    def extra_attributes(
        self,
        attributes: Mapping[str, Any],
        resource_attributes: Mapping[str, Any] | None = None,
        *,
        span_name: str | None = None,
        start_time_ns: int | None = None,
        end_time_ns: int | None = None,
        status_code: int | None = None,
        scope_name: str | None = None,
        span_ids: tuple[int, int, int | None] | None = None,
    ) -> dict[str, Any] | None:
        """The attributes to add to a span with these attributes; None when none apply.

        ``span_ids`` (trace id, span id, parent span id, as the SDK's ints) let the span be
        checked against the spans seen before for the same provider call."""
        try:
            if SPANMETER_PRICING_STATUS in attributes:
                return None  # priced upstream by spanmeter: keep that cost, do not re-price
            record = normalize(
                attributes,
                resource_attributes,
                span_name=span_name,
                start_time_ns=start_time_ns,
                end_time_ns=end_time_ns,
                status_code=status_code,
                scope_name=scope_name,
                user_id_hasher=self._hasher,
            )
            if record is None:
                return None
            if (
                span_ids is not None
                and record.billable
                and (record.input_tokens is not None or record.output_tokens is not None)  # has_usage
            ):
                self._check_same_call(record, span_ids)
            result = self._price_book.price_record(record, self._policy)
            self._count(result.status.value)
            if self._metrics is not None:
                self._metrics.record(record, result)
            return self._attributes(attributes, record, result)
        except Exception:  # telemetry must never break the host app
            self._count("errors")
            if not self._failed_once:
                self._failed_once = True
                _logger.exception("spanmeter: could not price a span (logged once)")
            return None

    def _check_same_call(self, record: GenAIRecord, span_ids: tuple[int, int, int | None]) -> None:
        """Demote ``record`` when an earlier span carries its provider call (that one has
        already been handed to the exporter, so the first one stays billable)."""
        trace_id, span_id, parent_id = span_ids
        span_bytes = span_id.to_bytes(8, "big")
        with self._lock:
            verdict = self._same_calls.add(
                None,
                record,
                trace_id.to_bytes(16, "big"),
                span_bytes,
                parent_id.to_bytes(8, "big") if parent_id else None,
            )
        if verdict is not None:
            record.billable = False
            record.duplicate_of = verdict.kept_span_id.hex()
            record.not_billable_reason = verdict.reason

    def _attributes(
        self, attributes: Mapping[str, Any], record: GenAIRecord, result: PriceResult
    ) -> dict[str, Any]:
        extra: dict[str, Any] = {SPANMETER_PRICING_STATUS: result.status.value}
        if record.duplicate_of is not None:
            extra[SPANMETER_DUPLICATE_OF] = record.duplicate_of
            extra[SPANMETER_NOT_BILLABLE_REASON] = record.not_billable_reason or "same_response_id"
        if result.total_nano_usd is not None:
            extra[GEN_AI_USAGE_COST] = usd_float(result.total_nano_usd)
            extra[SPANMETER_COST_NANO_USD] = result.total_nano_usd
            for key, field in _PARTS:
                part = getattr(result, field)
                if part is not None:
                    extra[key] = usd_float(part)
        if record.reported_cost_usd is not None and result.status is PricingStatus.PRICED:
            extra[SPANMETER_COST_REPORTED_USD] = float(record.reported_cost_usd)
        effective = result.effective_date.isoformat() if result.effective_date else None
        for key, value in (
            (SPANMETER_PRICING_SOURCE, result.source),
            (SPANMETER_PRICING_SOURCE_VERSION, result.source_version),
            (SPANMETER_PRICING_PROVIDER, result.matched_provider),
            (SPANMETER_PRICING_MODEL, result.matched_model),
            (SPANMETER_PRICING_EFFECTIVE_DATE, effective),
        ):
            if value is not None:
                extra[key] = value
        if record.data_mode is None and self._default_data_mode is not None:
            extra[SPANMETER_DATA_MODE] = self._default_data_mode
        if record.environment is None and self._default_environment is not None:
            extra[DEPLOYMENT_ENVIRONMENT_NAME] = self._default_environment
        if self._hash_user_ids and record.user_id is not None:
            # Only spans that carry a user id pay for this scan (a .get on the SDK's
            # attribute mapping costs a caught KeyError when the key is absent).
            for key in _USER_ID_KEYS:
                raw = attributes.get(key)
                if isinstance(raw, str) and raw and not looks_hashed(raw):
                    extra[key] = self._hasher(raw)
        return extra
