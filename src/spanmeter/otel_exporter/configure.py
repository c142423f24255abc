"""``spanmeter.configure()``: the one line an app adds.

It wires ``TracerProvider -> CostSpanProcessor -> CountingBatchSpanProcessor ->
GuardedSpanExporter -> OTLP exporter``. When the app already has an SDK
``TracerProvider`` (its own exporters to Tempo, Jaeger, Honeycomb...), spanmeter's
pipeline is *added* to it, never replacing it: every span then carries the attribution
stamped at start (all backends see it), and spanmeter's own copy carries the cost.

Example::

    import spanmeter

    spanmeter.configure(endpoint="http://spanmeter:4318", service_name="checkout")
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from opentelemetry import trace
from opentelemetry.metrics import MeterProvider
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider

from ..pricing import CostPolicy, PriceBook
from ..processor import CostInstruments, CostSpanProcessor, SpanEnricher
from ..processor.openai_usage import instrument_openai_usage
from .batch import CountingBatchSpanProcessor
from .exporters import make_guarded_exporter
from .guarded import GuardedSpanExporter
from .span_defaults import SpanDefaults, span_defaults

__all__ = ["SpanmeterPipeline", "configure"]

_logger = logging.getLogger(__name__)

_lock = threading.Lock()
_pipelines: dict[int, SpanmeterPipeline] = {}


@dataclass(frozen=True)
class SpanmeterPipeline:
    """What :func:`configure` installed, for inspection and shutdown."""

    tracer_provider: TracerProvider
    processor: CostSpanProcessor
    batch_processor: CountingBatchSpanProcessor
    exporter: GuardedSpanExporter

    def stats(self) -> dict[str, int]:
        """Priced spans by status, exporter counters and spans dropped by the queue."""
        stats = self.processor.stats()
        stats.update({f"export.{name}": value for name, value in self.exporter.stats.as_dict().items()})
        stats["queue.dropped_spans"] = self.batch_processor.dropped_spans
        return stats

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Export what is queued now."""
        return self.processor.force_flush(timeout_millis)

    def shutdown(self) -> None:
        """Flush and stop spanmeter's pipeline (the app's other processors keep running)."""
        self.processor.shutdown()
        with _lock:
            _pipelines.pop(id(self.tracer_provider), None)


def configure(
    endpoint: str | None = None,
    *,
    service_name: str | None = None,
    protocol: str | None = None,
    headers: Mapping[str, str] | None = None,
    api_key: str | None = None,
    timeout_s: float | None = None,
    pricing_file: str | Path | None = None,
    price_book: PriceBook | None = None,
    policy: CostPolicy = CostPolicy.PREFER_PROVIDER,
    default_data_mode: str | None = None,
    default_environment: str | None = None,
    max_queue_size: int = 2048,
    tracer_provider: TracerProvider | None = None,
    openai_usage_details: bool = True,
    record_metrics: bool = False,
    meter_provider: MeterProvider | None = None,
) -> SpanmeterPipeline:
    """Send every span, with attribution and cost, to a spanmeter receiver.

    Calling it again for the same provider returns the pipeline already installed.

    Args:
        endpoint: Receiver URL, e.g. ``http://spanmeter:4318`` (HTTP) or
            ``http://spanmeter:4317`` with ``protocol="grpc"``. Default:
            ``SPANMETER_ENDPOINT``, then the standard ``OTEL_EXPORTER_OTLP_*`` variables.
        service_name: ``service.name`` of a provider created here (ignored, with a warning,
            when the app already has one; set it there).
        protocol: ``grpc`` or ``http/protobuf`` (default ``SPANMETER_PROTOCOL``, then HTTP).
        headers: Extra export headers (gRPC metadata).
        api_key: The receiver's API key (an ``ingest`` key: ``spanmeter keys create --scope
            ingest``), sent as ``authorization: Bearer <key>`` on every export, HTTP header or
            gRPC metadata. Default: ``SPANMETER_API_KEY``. Without one, a receiver whose
            store holds keys refuses the exports (401 / ``UNAUTHENTICATED``), counted in
            ``stats()`` like any failed export.
        timeout_s: Export timeout, retries included. Default 2 s.
        pricing_file: Price override YAML (default ``SPANMETER_PRICING_FILE``).
        price_book: A ready price book (wins over ``pricing_file``).
        policy: What to do with a cost already on a span.
        default_data_mode: Data mode for spans that carry none (``real``/``test``/``demo``;
            default ``SPANMETER_DATA_MODE``).
        default_environment: ``deployment.environment.name`` for spans whose span and
            resource carry none (default ``SPANMETER_ENVIRONMENT``).
        max_queue_size: Spans held while the exporter is busy; more are dropped and counted.
        tracer_provider: Provider to add to. Default: the global one, created if absent.
        openai_usage_details: Record the cached-prompt and reasoning token counts that the
            official OpenAI instrumentation omits (see :mod:`spanmeter.processor.openai_usage`).
        record_metrics: Also count cost and tokens as OTel metrics with bounded attributes
            (see :mod:`spanmeter.processor.cost_metrics`), on ``meter_provider`` (default:
            the global one).
        meter_provider: Meter provider for ``record_metrics``.

    Returns:
        The installed pipeline (``.stats()``, ``.force_flush()``, ``.shutdown()``).
    """
    with _lock:
        provider = tracer_provider if tracer_provider is not None else _global_sdk_provider(service_name)
        if id(provider) in _pipelines:  # called again: the pipeline already installed
            return _pipelines[id(provider)]
        book = price_book if price_book is not None else _prices(pricing_file)
        exporter = make_guarded_exporter(
            endpoint, protocol=protocol, headers=headers, timeout_s=timeout_s, api_key=api_key
        )
        batch = CountingBatchSpanProcessor(exporter, max_queue_size=max_queue_size)
        metrics = CostInstruments(meter_provider) if record_metrics else None
        enricher = _enricher(book, policy, span_defaults(default_data_mode, default_environment), metrics)
        return _install(provider, CostSpanProcessor(batch, enricher), batch, exporter, openai_usage_details)


def _prices(pricing_file: str | Path | None) -> PriceBook:
    """The override file's prices when one is given, else the environment's."""
    return PriceBook.from_file(pricing_file) if pricing_file else PriceBook.from_env()


def _enricher(
    price_book: PriceBook, policy: CostPolicy, defaults: SpanDefaults, metrics: CostInstruments | None
) -> SpanEnricher:
    """The span enricher, with the data mode and environment given to spans carrying none."""
    return SpanEnricher(
        price_book,
        policy=policy,
        default_data_mode=defaults.data_mode,
        default_environment=defaults.environment,
        metrics=metrics,
    )


def _install(
    provider: TracerProvider,
    processor: CostSpanProcessor,
    batch: CountingBatchSpanProcessor,
    exporter: GuardedSpanExporter,
    openai_usage_details: bool,
) -> SpanmeterPipeline:
    """Add the processor to the provider and remember the pipeline for it (called under
    ``_lock``, so a provider is never given two)."""
    provider.add_span_processor(processor)
    if openai_usage_details:
        instrument_openai_usage()
    pipeline = SpanmeterPipeline(provider, processor, batch, exporter)
    _pipelines[id(provider)] = pipeline
    return pipeline


def _global_sdk_provider(service_name: str | None) -> TracerProvider:
    current = trace.get_tracer_provider()
    if isinstance(current, TracerProvider):
        if service_name and current.resource.attributes.get(SERVICE_NAME) != service_name:
            _logger.warning("spanmeter: the app's TracerProvider already exists; service_name not applied")
        return current
    attributes = {SERVICE_NAME: service_name} if service_name else {}
    provider = TracerProvider(resource=Resource.create(attributes))
    trace.set_tracer_provider(provider)
    if trace.get_tracer_provider() is not provider:
        # Another provider won a race to become global; add to that one instead.
        winner = trace.get_tracer_provider()
        if isinstance(winner, TracerProvider):
            return winner
    return provider
