"""Environment-only setup: the OTel SDK entry points spanmeter registers.

* ``OTEL_PYTHON_CONFIGURATOR=spanmeter`` (with ``opentelemetry-instrument``) loads
  :class:`SpanmeterConfigurator`: attribution is stamped on every span, and every exporter
  named in ``OTEL_TRACES_EXPORTER`` receives GenAI spans with their cost.
* ``OTEL_TRACES_EXPORTER=otlp,spanmeter`` adds :class:`SpanmeterSpanExporter`, which sends
  to ``SPANMETER_ENDPOINT`` with the never-break-prod guard, pricing on its own thread.

Example::

    OTEL_PYTHON_CONFIGURATOR=spanmeter OTEL_SERVICE_NAME=checkout \\
    OTEL_EXPORTER_OTLP_ENDPOINT=http://spanmeter:4318 opentelemetry-instrument python app.py
"""

from __future__ import annotations

import inspect
import logging
import os
from collections.abc import Sequence
from typing import Any

from opentelemetry.sdk._configuration import (  # private, pinned <2 and covered by a contract test
    _initialize_components,  # pyright: ignore[reportPrivateUsage]
    _OTelSDKConfigurator,  # pyright: ignore[reportPrivateUsage]
)
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from ..environment_variables import SPANMETER_DATA_MODE, SPANMETER_OPENAI_USAGE_DETAILS
from ..processor import AttributionSpanProcessor, CostSpanProcessor, EnrichedSpan, SpanEnricher
from ..processor.openai_usage import instrument_openai_usage
from .batch import CountingBatchSpanProcessor
from .exporters import make_guarded_exporter

__all__ = ["SpanmeterConfigurator", "SpanmeterSpanExporter"]

_logger = logging.getLogger(__name__)


def _enricher_from_env() -> SpanEnricher:
    data_mode = os.environ.get(SPANMETER_DATA_MODE, "").strip().lower() or None
    try:
        return SpanEnricher(default_data_mode=data_mode)
    except ValueError:
        _logger.warning("spanmeter: ignoring invalid %s=%r", SPANMETER_DATA_MODE, data_mode)
        return SpanEnricher()


class SpanmeterSpanExporter(SpanExporter):
    """Traces exporter for ``OTEL_TRACES_EXPORTER=spanmeter``; built with no arguments."""

    def __init__(self) -> None:
        self._inner = make_guarded_exporter()
        self._enricher = _enricher_from_env()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        enrich = self._enricher.extra_attributes_for
        # Spans already wrapped by a CostSpanProcessor carry their cost; others get it here,
        # on the batch thread, when the encoder reads their attributes.
        enriched = [span if isinstance(span, EnrichedSpan) else EnrichedSpan(span, enrich) for span in spans]
        return self._inner.export(enriched)

    def shutdown(self) -> None:
        self._inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self._inner.force_flush(timeout_millis)


class SpanmeterConfigurator(_OTelSDKConfigurator):
    """SDK configurator: the standard OTel setup plus attribution and cost on every exporter."""

    def _configure(self, **kwargs: Any) -> None:
        enricher = _enricher_from_env()
        processors: list[SpanProcessor] = list(kwargs.get("span_processors") or [])
        if "export_span_processor" in inspect.signature(_initialize_components).parameters:
            processors.insert(0, AttributionSpanProcessor())

            def export_processor(exporter: SpanExporter) -> SpanProcessor:
                return CostSpanProcessor(
                    CountingBatchSpanProcessor(exporter), enricher, stamp_attribution=False
                )

            kwargs.setdefault("export_span_processor", export_processor)
        else:  # older SDKs: price on spanmeter's own exporter only
            processors.insert(
                0, CostSpanProcessor(CountingBatchSpanProcessor(make_guarded_exporter()), enricher)
            )
        kwargs["span_processors"] = processors
        # The SDK leaves _configure's **kwargs unannotated, the one untyped part used here.
        super()._configure(**kwargs)  # pyright: ignore[reportUnknownMemberType]
        if os.environ.get(SPANMETER_OPENAI_USAGE_DETAILS, "true").strip().lower() not in ("false", "0", "no"):
            instrument_openai_usage()
