"""``CostSpanProcessor``: attribution at span start, cost at span end, never in the way.

It wraps the processor that exports (usually a ``BatchSpanProcessor``):

* ``on_start`` stamps the attribution in force (see :mod:`.attribution`) onto the span,
  from the OTel context or from W3C baggage sent by an upstream service;
* ``on_end`` hands the delegate an :class:`~.enriched_span.EnrichedSpan` for GenAI spans,
  whose ``gen_ai.usage.cost``, ``spanmeter.cost.*`` and ``spanmeter.pricing.*`` attributes
  are computed on first read, i.e. on the exporter's thread; other spans pass straight
  through.

Every hook catches its own errors (logged once) so the app never sees one, and the work on
the app's thread is a few dictionary lookups.

Example::

    provider.add_span_processor(CostSpanProcessor(BatchSpanProcessor(OTLPSpanExporter())))
"""

from __future__ import annotations

import logging
import threading
from typing import cast

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor

from ..normalise import is_genai_candidate
from .attribution import current_attribution
from .enriched_span import EnrichedSpan
from .enrichment import SpanEnricher

__all__ = ["AttributionSpanProcessor", "CostSpanProcessor"]

_logger = logging.getLogger(__name__)


class _LogOnce:
    """Logs the first failure of each hook with its traceback, then only counts."""

    __slots__ = ("_lock", "counts")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counts: dict[str, int] = {}

    def failed(self, hook: str) -> None:
        with self._lock:
            first = hook not in self.counts
            self.counts[hook] = self.counts.get(hook, 0) + 1
        if first:
            _logger.exception("spanmeter: %s failed (logged once; the app is not affected)", hook)


def _stamp_attribution(span: Span, parent_context: Context | None) -> None:
    dimensions = current_attribution(parent_context)
    if dimensions:
        existing = span.attributes
        # Keep what the instrumentation set explicitly; attribution fills the gaps.
        missing = {key: value for key, value in dimensions.items() if existing is None or key not in existing}
        if missing:
            span.set_attributes(missing)


class AttributionSpanProcessor(SpanProcessor):
    """Only stamps attribution at span start (for pipelines that price elsewhere)."""

    def __init__(self) -> None:
        self._errors = _LogOnce()

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        try:
            _stamp_attribution(span, parent_context)
        except Exception:  # telemetry must never break the host app
            self._errors.failed("on_start")


class CostSpanProcessor(SpanProcessor):
    """Wraps ``delegate``; stamps attribution and gives it GenAI spans with their cost."""

    def __init__(
        self,
        delegate: SpanProcessor,
        enricher: SpanEnricher | None = None,
        *,
        stamp_attribution: bool = True,
    ) -> None:
        """Create the processor.

        Args:
            delegate: The processor that exports spans (e.g. ``BatchSpanProcessor``).
            enricher: How spans are priced. Default: genai-prices plus the override file
                named by ``SPANMETER_PRICING_FILE``.
            stamp_attribution: Stamp attribution in ``on_start``. Turn off when an
                :class:`AttributionSpanProcessor` on the same provider already does.
        """
        # An app's hints are not checked at run time: a wrong delegate fails here, not per span.
        if not isinstance(cast(object, delegate), SpanProcessor):
            raise TypeError(f"delegate must be a SpanProcessor, not {type(delegate).__name__}")
        self._delegate = delegate
        self._enricher = enricher if enricher is not None else SpanEnricher()
        self._stamp = stamp_attribution
        self._errors = _LogOnce()
        self._enrich = self._enricher.extra_attributes_for

    @property
    def delegate(self) -> SpanProcessor:
        """The wrapped processor."""
        return self._delegate

    @property
    def enricher(self) -> SpanEnricher:
        """The enricher that prices spans."""
        return self._enricher

    def stats(self) -> dict[str, int]:
        """Priced spans by status, plus hook failures (``failed.<hook>``)."""
        stats = self._enricher.stats()
        stats.update({f"failed.{hook}": count for hook, count in self._errors.counts.items()})
        return stats

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        if self._stamp:
            try:
                _stamp_attribution(span, parent_context)
            except Exception:  # telemetry must never break the host app
                self._errors.failed("on_start")
        try:
            self._delegate.on_start(span, parent_context)
        except Exception:  # telemetry must never break the host app
            self._errors.failed("delegate.on_start")

    def on_end(self, span: ReadableSpan) -> None:
        out = span
        try:
            if is_genai_candidate(span.attributes or {}):
                out = EnrichedSpan(span, self._enrich)
        except Exception:  # telemetry must never break the host app
            self._errors.failed("on_end")
        try:
            self._delegate.on_end(out)
        except Exception:  # telemetry must never break the host app
            self._errors.failed("delegate.on_end")

    def shutdown(self) -> None:
        try:
            self._delegate.shutdown()
        except Exception:  # telemetry must never break the host app
            self._errors.failed("delegate.shutdown")

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        try:
            return self._delegate.force_flush(timeout_millis)
        except Exception:  # telemetry must never break the host app
            self._errors.failed("delegate.force_flush")
            return False
