"""GuardedSpanExporter and CountingBatchSpanProcessor: bounded, quiet, honest counters."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from spanmeter.otel_exporter import CountingBatchSpanProcessor, GuardedSpanExporter, parse_retry_after


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class ScriptedExporter(SpanExporter):
    def __init__(self) -> None:
        self.results: list[SpanExportResult] = []
        self.calls = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.calls += 1
        return self.results.pop(0) if self.results else SpanExportResult.SUCCESS


SPANS: Sequence[ReadableSpan] = [ReadableSpan("a"), ReadableSpan("b")]


def test_failure_pauses_exponentially_and_drops_without_calling_the_endpoint() -> None:
    clock, inner = FakeClock(), ScriptedExporter()
    guard = GuardedSpanExporter(inner, initial_pause_s=1, max_pause_s=4, clock=clock)
    inner.results = [SpanExportResult.FAILURE] * 4
    assert guard.export(SPANS) is SpanExportResult.FAILURE  # pause 1 s
    assert guard.paused_for() == pytest.approx(1)
    assert guard.export(SPANS) is SpanExportResult.FAILURE  # dropped during the pause
    assert inner.calls == 1
    clock.now += 1.01
    guard.export(SPANS)  # second failure: pause 2 s
    assert guard.paused_for() == pytest.approx(2, abs=0.02)
    clock.now += 2.01
    guard.export(SPANS)  # third: 4 s
    clock.now += 4.01
    guard.export(SPANS)  # fourth: capped at 4 s
    assert guard.paused_for() == pytest.approx(4, abs=0.02)
    assert guard.stats.dropped_spans == 2
    assert guard.stats.failed_spans == 8
    clock.now += 4.01
    assert guard.export(SPANS) is SpanExportResult.SUCCESS
    assert guard.paused_for() == 0
    assert guard.stats.exported_spans == 2


def test_retry_after_from_a_throttling_receiver_sets_the_pause() -> None:
    clock, inner = FakeClock(), ScriptedExporter()
    guard = GuardedSpanExporter(inner, initial_pause_s=1, max_pause_s=60, clock=clock)
    guard.observe_response(503, "17")
    inner.results = [SpanExportResult.FAILURE]
    guard.export(SPANS)
    assert guard.paused_for() == pytest.approx(17)
    assert guard.stats.throttled_responses == 1


@pytest.mark.parametrize(
    ("header", "expected"),
    [("5", 5.0), ("0", 0.0), ("-3", None), ("nan", None), ("soon", None), (None, None)],
)
def test_parse_retry_after(header: str | None, expected: float | None) -> None:
    assert parse_retry_after(header) == expected


def test_parse_retry_after_http_date() -> None:
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:10 GMT", now=1445412480.0) == pytest.approx(10)


class BlockedExporter(SpanExporter):
    def __init__(self) -> None:
        self.release = threading.Event()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.release.wait(10)
        return SpanExportResult.SUCCESS


def test_full_queue_drops_are_counted_and_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    exporter = BlockedExporter()
    processor = CountingBatchSpanProcessor(exporter, max_queue_size=16, max_export_batch_size=4)
    provider = TracerProvider()
    provider.add_span_processor(processor)
    tracer = provider.get_tracer("t")
    with caplog.at_level(logging.WARNING):
        for i in range(200):
            with tracer.start_as_current_span(f"s{i}"):
                pass
    assert processor.dropped_spans >= 200 - 16 - 4
    assert caplog.text.count("span queue full") == 1
    assert "Queue full" not in caplog.text  # the SDK's per-span warning never fires
    exporter.release.set()
    provider.shutdown()
