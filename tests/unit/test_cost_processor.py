"""CostSpanProcessor: GenAI spans get their cost; others pass untouched; nothing raises."""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import Any

import pytest
from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from spanmeter.identity import UserIdHasher
from spanmeter.processor import CostSpanProcessor, EnrichedSpan, SpanEnricher

# Published prices, USD per 1M tokens: claude-sonnet-4-5 $3 input, $15 output,
# $0.30 cache read, $3.75 cache write (5-minute).
SONNET = {"input": Decimal(3), "output": Decimal(15), "read": Decimal("0.30"), "write": Decimal("3.75")}


def chat_span(provider: TracerProvider, **extra: Any) -> None:
    attributes: dict[str, Any] = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "anthropic",
        "gen_ai.request.model": "claude-sonnet-4-5",
        "gen_ai.usage.input_tokens": 10_000,
        "gen_ai.usage.cache_read.input_tokens": 6_000,
        "gen_ai.usage.cache_creation.input_tokens": 2_000,
        "gen_ai.usage.output_tokens": 500,
    }
    attributes.update(extra)
    with provider.get_tracer("t").start_as_current_span("chat claude-sonnet-4-5", attributes=attributes):
        pass


def test_genai_span_gets_exact_cost_and_provenance(
    tracer_provider: TracerProvider, span_exporter: InMemorySpanExporter
) -> None:
    chat_span(tracer_provider)
    (span,) = span_exporter.get_finished_spans()
    attrs = span.attributes or {}
    per_token = Decimal(1_000_000)
    input_usd = 2_000 * SONNET["input"] / per_token
    read_usd = 6_000 * SONNET["read"] / per_token
    write_usd = 2_000 * SONNET["write"] / per_token
    output_usd = 500 * SONNET["output"] / per_token
    total_nano = int((input_usd + read_usd + write_usd + output_usd) * 1_000_000_000)
    assert attrs["spanmeter.cost.nano_usd"] == total_nano
    assert attrs["spanmeter.cost.cache_write"] == pytest.approx(float(write_usd))
    assert attrs["spanmeter.cost.cache_read"] == pytest.approx(float(read_usd))
    assert attrs["spanmeter.pricing.provider"] == "anthropic"
    assert attrs["spanmeter.pricing.source_version"]
    assert span.dropped_attributes == 0


def test_non_genai_spans_pass_through_unwrapped() -> None:
    seen: list[ReadableSpan] = []

    class Recorder(SpanProcessor):
        def on_end(self, span: ReadableSpan) -> None:
            seen.append(span)

    provider = TracerProvider()
    provider.add_span_processor(CostSpanProcessor(Recorder()))
    with provider.get_tracer("t").start_as_current_span(
        "GET /health", attributes={"http.method": "GET"}
    ) as s:
        pass
    chat_span(provider)
    assert not isinstance(seen[0], EnrichedSpan)
    assert seen[0].context == s.get_span_context()
    assert isinstance(seen[1], EnrichedSpan)


def test_unknown_model_is_counted_never_zero(
    tracer_provider: TracerProvider, span_exporter: InMemorySpanExporter
) -> None:
    chat_span(tracer_provider, **{"gen_ai.request.model": "acme-llm-9000", "gen_ai.provider.name": "acme"})
    attrs = span_exporter.get_finished_spans()[0].attributes or {}
    assert attrs["spanmeter.pricing.status"] == "unknown_model"
    assert "gen_ai.usage.cost" not in attrs
    assert "spanmeter.cost.nano_usd" not in attrs


def test_spans_priced_upstream_are_not_repriced(
    tracer_provider: TracerProvider, span_exporter: InMemorySpanExporter
) -> None:
    chat_span(tracer_provider, **{"spanmeter.pricing.status": "priced", "spanmeter.cost.nano_usd": 123})
    attrs = span_exporter.get_finished_spans()[0].attributes or {}
    assert attrs["spanmeter.cost.nano_usd"] == 123
    assert "gen_ai.usage.cost" not in attrs


def test_raw_user_ids_from_instrumentations_are_hashed_on_the_copy(
    tracer_provider: TracerProvider, span_exporter: InMemorySpanExporter
) -> None:
    chat_span(
        tracer_provider, **{"gen_ai.request.user": "dave@example.com", "enduser.id": "dave@example.com"}
    )
    attrs = span_exporter.get_finished_spans()[0].attributes or {}
    hashed = UserIdHasher(b"test-key")("dave@example.com")
    assert attrs["gen_ai.request.user"] == hashed
    assert attrs["enduser.id"] == hashed


class Exploding(SpanProcessor):
    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        raise RuntimeError("boom on start")

    def on_end(self, span: ReadableSpan) -> None:
        raise RuntimeError("boom on end")


def test_failures_never_reach_the_app_and_are_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    provider = TracerProvider()
    processor = CostSpanProcessor(Exploding())
    provider.add_span_processor(processor)
    with caplog.at_level(logging.ERROR):
        for _ in range(5):
            chat_span(provider)
    assert processor.stats()["failed.delegate.on_end"] == 5
    assert caplog.text.count("delegate.on_end failed") == 1


class BrokenEnricher(SpanEnricher):
    def extra_attributes_for(self, span: ReadableSpan) -> dict[str, Any] | None:
        raise RuntimeError("pricing bug")


def test_a_failing_enricher_keeps_the_span_without_cost(caplog: pytest.LogCaptureFixture) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(CostSpanProcessor(SimpleSpanProcessor(exporter), BrokenEnricher()))
    with caplog.at_level(logging.ERROR):
        chat_span(provider)  # must not raise
        (span,) = exporter.get_finished_spans()
        attrs = span.attributes or {}  # enrichment runs here, lazily, and fails
    assert attrs["gen_ai.usage.input_tokens"] == 10_000  # the span itself is intact
    assert "gen_ai.usage.cost" not in attrs
    assert "enrichment failed" in caplog.text


def test_delegate_must_be_a_processor() -> None:
    with pytest.raises(TypeError):
        CostSpanProcessor(object())  # type: ignore[arg-type]
