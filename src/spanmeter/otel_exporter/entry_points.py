"""Environment-only setup: the OTel SDK entry points spanmeter registers.

* ``OTEL_PYTHON_CONFIGURATOR=spanmeter`` (with ``opentelemetry-instrument``, from the
  ``spanmeter[instrument]`` extra) loads :class:`SpanmeterConfigurator`: attribution is
  stamped on every span, and every exporter named in ``OTEL_TRACES_EXPORTER`` (default:
  OTLP/HTTP to ``OTEL_EXPORTER_OTLP_ENDPOINT``) receives GenAI spans with their cost.
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

from ..environment_variables import SPANMETER_OPENAI_USAGE_DETAILS
from ..processor import AttributionSpanProcessor, CostSpanProcessor, EnrichedSpan, SpanEnricher
from ..processor.openai_usage import instrument_openai_usage
from .batch import CountingBatchSpanProcessor
from .env_plan import plan_trace_export
from .exporters import make_guarded_exporter
from .span_defaults import span_defaults

__all__ = ["SpanmeterConfigurator", "SpanmeterSpanExporter"]

_logger = logging.getLogger(__name__)

_announced = False
"""Where spans go is logged once per process, however often the configurator runs."""


def _enricher_from_env() -> SpanEnricher:
    defaults = span_defaults()
    return SpanEnricher(default_data_mode=defaults.data_mode, default_environment=defaults.environment)


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
    """SDK configurator: the standard OTel setup plus attribution and cost on every exporter.

    Before the SDK's setup it fills the environment gaps that would otherwise send nothing
    (see :mod:`.env_plan`), logs once where spans go (INFO) or that none will be exported
    (WARNING), and it never raises into the app: a failure is logged and the app runs on.
    """

    def _configure(self, **kwargs: Any) -> None:
        try:
            self._configure_spanmeter(**kwargs)
        except Exception:
            _logger.exception("spanmeter: configuring OpenTelemetry failed; the app runs without it")

    def _configure_spanmeter(self, **kwargs: Any) -> None:
        plan = plan_trace_export(os.environ)
        for name, value in plan.environ_defaults.items():
            os.environ.setdefault(name, value)
        global _announced
        if not _announced:
            _announced = True
            if plan.warning:
                _logger.warning("%s", plan.warning)
            else:
                _logger.info("%s", plan.summary())
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
