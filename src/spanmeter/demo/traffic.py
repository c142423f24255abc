"""The demo's app side: GenAI spans made by the real OTel SDK and shipped by ``spanmeter.configure()``.

Each synthetic attempt becomes one span, started and ended at its own (past) times with
the SDK's ``start_span(start_time=...)`` and ``span.end(end_time=...)``, so two days of
traffic take seconds while every budget window, rollup and alert rule still sees the
spans at their event times. The attribution comes from ``spanmeter.attribution(...)``
scopes, the way an app sets it; the usage attributes are the OTel GenAI ones an
instrumentation records. The path is the production one: TracerProvider ->
CostSpanProcessor (cost added) -> batch processor -> OTLP/HTTP exporter -> receiver.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import Status, StatusCode

from ..otel_exporter import SpanmeterPipeline, configure
from ..processor import attribution
from ..semantic_conventions import attributes as keys
from ..store import SpanRow

__all__ = ["DemoApp"]

_EXPORT_TIMEOUT_S: Final = 10.0
"""Generous: the demo must not drop a batch because a busy laptop answered late."""
_QUEUE: Final = 65_536
"""The app sends an hour of traffic at once, then flushes; the queue holds it all."""


class DemoApp:
    """An instrumented app whose GenAI calls are replayed from synthetic rows.

    Args:
        endpoint: The receiver's OTLP/HTTP URL.
        service_name: ``service.name`` of the app.
        environment: ``deployment.environment.name`` of the app (a resource attribute).
    """

    def __init__(self, endpoint: str, *, service_name: str = "demo-app", environment: str = "prod") -> None:
        self.provider = TracerProvider(
            resource=Resource.create(
                {"service.name": service_name, keys.DEPLOYMENT_ENVIRONMENT_NAME: environment}
            )
        )
        self.pipeline: SpanmeterPipeline = configure(
            endpoint, tracer_provider=self.provider, timeout_s=_EXPORT_TIMEOUT_S, max_queue_size=_QUEUE
        )
        self._tracer = self.provider.get_tracer("spanmeter.demo")
        self.sent = 0
        """Spans ended so far."""

    def call(self, row: SpanRow) -> None:
        """One GenAI call (one attempt), with the attribution and usage of ``row``."""
        with attribution(
            endpoint_tag=row.endpoint_tag,
            prompt_name=row.prompt_name,
            prompt_version=row.prompt_version,
            tenant_id=row.tenant_id,
            user_id=row.user_id,
            external_request_id=row.external_request_id,
        ):
            span = self._tracer.start_span(f"chat {row.request_model}", start_time=row.start_time_ns)
            attributes: dict[str, str | int] = {
                keys.GEN_AI_OPERATION_NAME: row.operation or "chat",
                keys.GEN_AI_PROVIDER_NAME: row.provider or "",
                keys.GEN_AI_REQUEST_MODEL: row.request_model or "",
                keys.GEN_AI_RESPONSE_MODEL: row.response_model or "",
            }
            if row.input_tokens is not None and row.output_tokens is not None:  # a throttled call has none
                attributes[keys.GEN_AI_USAGE_INPUT_TOKENS] = row.input_tokens
                attributes[keys.GEN_AI_USAGE_OUTPUT_TOKENS] = row.output_tokens
            if row.cache_read_tokens:
                attributes[keys.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] = row.cache_read_tokens
            if row.error_type:
                attributes[keys.ERROR_TYPE] = row.error_type
                span.set_status(Status(StatusCode.ERROR, row.error_type))
            span.set_attributes(attributes)
            span.end(end_time=row.end_time_ns)
        self.sent += 1

    def replay(self, rows: Sequence[SpanRow]) -> bool:
        """Make every call of ``rows``, then wait until the receiver acknowledged them all
        (it acknowledges only what it committed). False if the flush timed out."""
        for row in rows:
            self.call(row)
        return self.pipeline.force_flush()

    def stats(self) -> dict[str, int]:
        """The pipeline's counters: spans priced, exported, failed and dropped."""
        return self.pipeline.stats()

    def close(self) -> None:
        """Flush and shut the SDK pipeline down."""
        self.pipeline.shutdown()
        self.provider.shutdown()
