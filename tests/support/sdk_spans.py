"""Finished GenAI spans made by the real OTel SDK, for tests that export them themselves."""

from __future__ import annotations

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

__all__ = ["chat_spans"]


def chat_spans(count: int = 3) -> list[ReadableSpan]:
    """``count`` finished ``chat`` spans of an OpenAI model, each with its own ids."""
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    for _ in range(count):
        attributes = {"gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o-mini"}
        with provider.get_tracer("t").start_as_current_span("chat", attributes=attributes):
            pass
    provider.shutdown()
    return list(memory.get_finished_spans())
