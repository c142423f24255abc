"""spanmeter.configure(): one line, added to the app's provider, resilient when the receiver is not."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import spanmeter
from spanmeter.otel_exporter import SpanmeterPipeline
from support.audit import io_on_this_thread
from support.otlp_capture import otlp_capture

GENAI = {
    "gen_ai.operation.name": "chat",
    "gen_ai.provider.name": "openai",
    "gen_ai.request.model": "gpt-4o",
    "gen_ai.usage.input_tokens": 1000,
    "gen_ai.usage.output_tokens": 100,
}


@pytest.fixture
def app_provider() -> Iterator[tuple[TracerProvider, InMemorySpanExporter]]:
    """The app's own provider, already exporting to its existing backend."""
    backend = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(backend))
    yield provider, backend
    provider.shutdown()


def test_configure_adds_to_the_apps_provider_and_sends_cost(
    app_provider: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    provider, backend = app_provider
    with otlp_capture() as receiver:
        pipeline = spanmeter.configure(receiver.url, tracer_provider=provider, timeout_s=5)
        assert spanmeter.configure(receiver.url, tracer_provider=provider) is pipeline  # idempotent
        with spanmeter.attribution(endpoint_tag="checkout.ai_summary", tenant_id="t1"):
            with provider.get_tracer("app").start_as_current_span("chat gpt-4o", attributes=GENAI):
                pass
            with provider.get_tracer("app").start_as_current_span("SELECT orders"):
                pass
        assert pipeline.force_flush()
        by_name = {s.name: s for s in receiver.spans}
    chat = by_name["chat gpt-4o"].attributes
    # gpt-4o: $2.50 input, $10.00 output per 1M tokens
    assert chat["spanmeter.cost.nano_usd"] == 1000 * 2500 + 100 * 10_000
    assert chat["spanmeter.endpoint_tag"] == "checkout.ai_summary"
    assert "gen_ai.usage.cost" not in by_name["SELECT orders"].attributes
    # the app's existing backend still gets every span, with attribution stamped
    (backend_chat,) = [s for s in backend.get_finished_spans() if s.name == "chat gpt-4o"]
    assert (backend_chat.attributes or {})["spanmeter.tenant_id"] == "t1"
    pipeline.shutdown()


EXPORT_TIMEOUT_S = 5


def _span_times(provider: TracerProvider, count: int) -> list[float]:
    tracer = provider.get_tracer("app")
    times = []
    for _ in range(count):
        start = time.perf_counter()
        with tracer.start_as_current_span("chat gpt-4o", attributes=GENAI):
            pass
        times.append(time.perf_counter() - start)
    return times


def _run_against(
    url: str, provider: TracerProvider, rounds: int
) -> tuple[list[float], list[str], SpanmeterPipeline]:
    """Spans on this (the app's) thread while the batch thread exports; their durations and
    the I/O audit events this thread raised."""
    pipeline = spanmeter.configure(url, tracer_provider=provider, timeout_s=EXPORT_TIMEOUT_S)
    _span_times(provider, 20)  # warm-up: first-use imports read files, and that is not export I/O
    times: list[float] = []
    with io_on_this_thread() as io_events:
        for _ in range(rounds):
            times += _span_times(provider, 200)
            time.sleep(0.3)  # let the batch thread try (and fail) to export meanwhile
    return times, io_events, pipeline


def test_receiver_down_app_keeps_its_speed_and_nothing_raises(
    app_provider: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    provider, _ = app_provider
    with otlp_capture() as receiver:
        url = receiver.url  # a port that is closed once the block ends
    times, io_events, pipeline = _run_against(url, provider, rounds=5)
    pipeline.force_flush(3000)
    stats = pipeline.stats()
    pipeline.shutdown()
    # the app's thread never does the export's I/O (the batch thread does), and no span
    # comes anywhere near the export timeout (the bound leaves a busy machine room to stall
    # a thread; how fast a span is, is measured in bench/processor_overhead.py)
    assert io_events == []
    assert max(times) < EXPORT_TIMEOUT_S / 5
    assert stats["export.failed_exports"] >= 1
    assert stats["export.exported_spans"] == 0


def test_receiver_answering_503_is_backed_off_with_retry_after(
    app_provider: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    provider, _ = app_provider
    with otlp_capture() as receiver:
        receiver.status, receiver.retry_after = 503, "30"
        times, io_events, pipeline = _run_against(receiver.url, provider, rounds=5)
        pipeline.force_flush(3000)
        requests_while_throttled = receiver.requests
        stats = pipeline.stats()
        pipeline.shutdown()
    assert io_events == []
    assert max(times) < EXPORT_TIMEOUT_S / 5
    assert stats["export.throttled_responses"] >= 1
    # after the first refused batch, the guard honours Retry-After: 30 s of silence,
    # batches dropped and counted instead of hammering the receiver
    assert requests_while_throttled <= 2
    assert stats["export.dropped_spans"] > 0


def test_span_defaults_come_from_the_environment_and_yield_to_the_span(
    app_provider: tuple[TracerProvider, InMemorySpanExporter], monkeypatch: pytest.MonkeyPatch
) -> None:
    """SPANMETER_DATA_MODE and SPANMETER_ENVIRONMENT (README's table) fill spans that carry
    neither; a span's own environment (or its resource's) wins."""
    monkeypatch.setenv("SPANMETER_DATA_MODE", "test")
    monkeypatch.setenv("SPANMETER_ENVIRONMENT", "staging")
    provider, _ = app_provider
    with otlp_capture() as receiver:
        pipeline = spanmeter.configure(receiver.url, tracer_provider=provider, timeout_s=5)
        tracer = provider.get_tracer("app")
        with tracer.start_as_current_span("plain", attributes=GENAI):
            pass
        own = {**GENAI, "deployment.environment.name": "prod"}
        with tracer.start_as_current_span("own", attributes=own):
            pass
        assert pipeline.force_flush()
        by_name = {s.name: s.attributes for s in receiver.spans}
    pipeline.shutdown()
    assert by_name["plain"]["deployment.environment.name"] == "staging"
    assert by_name["plain"]["spanmeter.data_mode"] == "test"
    assert by_name["own"]["deployment.environment.name"] == "prod"


def test_an_invalid_data_mode_variable_is_ignored_with_one_warning(caplog: pytest.LogCaptureFixture) -> None:
    from spanmeter.otel_exporter.span_defaults import span_defaults

    defaults = span_defaults(environ={"SPANMETER_DATA_MODE": "bogus", "SPANMETER_ENVIRONMENT": " qa "})
    assert defaults.data_mode is None and defaults.environment == "qa"
    assert sum("SPANMETER_DATA_MODE" in r.getMessage() for r in caplog.records) == 1
    with pytest.raises(ValueError, match="default_data_mode"):
        spanmeter.configure("http://127.0.0.1:9", tracer_provider=TracerProvider(), default_data_mode="bogus")
