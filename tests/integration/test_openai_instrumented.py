"""The real openai client, instrumented by the official openai-v2 instrumentation, against a
local stub of OpenAI's API: spans must carry the exact cost and the attribution."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from decimal import ROUND_HALF_EVEN, Decimal

import openai
import pytest
from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from spanmeter import attribution
from spanmeter.identity import UserIdHasher
from spanmeter.processor.openai_usage import instrument_openai_usage, uninstrument_openai_usage
from support.openai_stub import StubUsage, openai_stub

# Published OpenAI prices for gpt-4o-mini, USD per 1M tokens (openai.com/api/pricing).
INPUT, CACHED_INPUT, OUTPUT = Decimal("0.15"), Decimal("0.075"), Decimal("0.60")


def nano(usd: Decimal) -> int:
    return int((usd * 1_000_000_000).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


def expected_parts(prompt: int, cached: int, completion: int) -> dict[str, int]:
    per_token = Decimal(1_000_000)
    return {
        "input": nano((prompt - cached) * INPUT / per_token),
        "cache_read": nano(cached * CACHED_INPUT / per_token),
        "output": nano(completion * OUTPUT / per_token),
    }


@pytest.fixture
def instrumented(tracer_provider: TracerProvider) -> Iterator[TracerProvider]:
    OpenAIInstrumentor().instrument(tracer_provider=tracer_provider)
    assert instrument_openai_usage()
    yield tracer_provider
    OpenAIInstrumentor().uninstrument()
    uninstrument_openai_usage()


SCOPE = {
    "endpoint_tag": "checkout.ai_summary",
    "prompt_version": "summary_v3",
    "tenant_id": "t_acme",
    "user_id": "alice@example.com",
    "external_request_id": "req_01",
    "data_mode": "real",
}


def _assert_span(span_exporter: InMemorySpanExporter, prompt: int, cached: int, completion: int) -> None:
    spans = span_exporter.get_finished_spans()
    assert len(spans) == 1
    attrs = spans[0].attributes or {}
    parts = expected_parts(prompt, cached, completion)
    total = sum(parts.values())
    assert attrs["gen_ai.usage.input_tokens"] == prompt
    assert attrs["gen_ai.usage.cache_read.input_tokens"] == cached
    assert attrs["spanmeter.pricing.status"] == "priced"
    assert attrs["spanmeter.pricing.model"] == "gpt-4o-mini"
    assert attrs["spanmeter.pricing.source"] == "genai-prices"
    assert attrs["spanmeter.cost.nano_usd"] == total
    assert attrs["gen_ai.usage.cost"] == pytest.approx(total / 1e9, rel=1e-12)
    assert attrs["spanmeter.cost.input"] == pytest.approx(parts["input"] / 1e9, rel=1e-12)
    assert attrs["spanmeter.cost.cache_read"] == pytest.approx(parts["cache_read"] / 1e9, rel=1e-12)
    assert attrs["spanmeter.cost.output"] == pytest.approx(parts["output"] / 1e9, rel=1e-12)
    assert attrs["spanmeter.endpoint_tag"] == "checkout.ai_summary"
    assert attrs["gen_ai.prompt.version"] == "summary_v3"
    assert attrs["spanmeter.tenant_id"] == "t_acme"
    assert attrs["spanmeter.external_request_id"] == "req_01"
    assert attrs["spanmeter.data_mode"] == "real"
    assert attrs["user.id"] == UserIdHasher(b"test-key")("alice@example.com")
    assert "alice@example.com" not in str(dict(attrs))


def test_chat_completion_with_cached_prompt_tokens(
    instrumented: TracerProvider, span_exporter: InMemorySpanExporter
) -> None:
    with openai_stub(StubUsage(prompt_tokens=2048, cached_tokens=1536, completion_tokens=333)) as (url, stub):
        with openai.OpenAI(base_url=url, api_key="test", max_retries=0) as client, attribution(**SCOPE):
            reply = client.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "Summarise my cart"}]
            )
    assert reply.choices[0].message.content == "Hello from the stub."
    assert stub.requests[0]["model"] == "gpt-4o-mini"
    _assert_span(span_exporter, 2048, 1536, 333)


def test_streamed_chat_completion_with_usage_chunk(
    instrumented: TracerProvider, span_exporter: InMemorySpanExporter
) -> None:
    with openai_stub(StubUsage(prompt_tokens=5000, cached_tokens=4096, completion_tokens=120)) as (url, _):
        with openai.OpenAI(base_url=url, api_key="test", max_retries=0) as client, attribution(**SCOPE):
            stream = client.chat.completions.create(
                model="gpt-4o-mini",
                messages=[{"role": "user", "content": "hi"}],
                stream=True,
                stream_options={"include_usage": True},
            )
            text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    assert text == "Hello from the stub."
    _assert_span(span_exporter, 5000, 4096, 120)


def test_async_client_streamed(instrumented: TracerProvider, span_exporter: InMemorySpanExporter) -> None:
    async def call(url: str) -> None:
        async with openai.AsyncOpenAI(base_url=url, api_key="test", max_retries=0) as client:
            with attribution(**SCOPE):
                stream = await client.chat.completions.create(
                    model="gpt-4o-mini",
                    messages=[{"role": "user", "content": "hi"}],
                    stream=True,
                    stream_options={"include_usage": True},
                )
                async for _ in stream:
                    pass

    with openai_stub(StubUsage(prompt_tokens=900, cached_tokens=0, completion_tokens=45)) as (url, _):
        asyncio.run(call(url))
    spans = span_exporter.get_finished_spans()
    assert len(spans) == 1
    attrs = spans[0].attributes or {}
    parts = expected_parts(900, 0, 45)
    assert attrs["spanmeter.cost.nano_usd"] == parts["input"] + parts["output"]
    assert "gen_ai.usage.cache_read.input_tokens" not in attrs


def test_api_error_is_the_apps_error_and_span_has_no_cost(
    instrumented: TracerProvider, span_exporter: InMemorySpanExporter
) -> None:
    with openai_stub(StubUsage(status=500)) as (url, _):
        with (
            openai.OpenAI(base_url=url, api_key="test", max_retries=0) as client,
            attribution(**SCOPE),
            pytest.raises(openai.InternalServerError),
        ):
            client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    (span,) = span_exporter.get_finished_spans()
    attrs = span.attributes or {}
    assert attrs["spanmeter.pricing.status"] == "no_usage"
    assert "gen_ai.usage.cost" not in attrs
    assert attrs["spanmeter.endpoint_tag"] == "checkout.ai_summary"


def test_stream_usage_fills_a_span_that_records_none(
    tracer_provider: TracerProvider, span_exporter: InMemorySpanExporter
) -> None:
    # OpenLLMetry's streaming span names the provider and model but records no token counts;
    # its span is current while the client posts, as here (its real package runs in the
    # instrumentation matrix, tests/instrumentations)
    assert instrument_openai_usage()
    tracer = tracer_provider.get_tracer("opentelemetry.instrumentation.openai.v1")
    try:
        with openai_stub(StubUsage(prompt_tokens=3000, cached_tokens=2048, completion_tokens=64)) as (url, _):
            with openai.OpenAI(base_url=url, api_key="test", max_retries=0) as client:
                with (
                    attribution(**SCOPE),
                    tracer.start_as_current_span(
                        "openai.chat",
                        attributes={"gen_ai.system": "openai", "gen_ai.request.model": "gpt-4o-mini"},
                    ),
                ):
                    stream = client.chat.completions.create(
                        model="gpt-4o-mini",
                        messages=[{"role": "user", "content": "hi"}],
                        stream=True,
                        stream_options={"include_usage": True},
                    )
                    for _ in stream:
                        pass
    finally:
        uninstrument_openai_usage()
    spans = span_exporter.get_finished_spans()
    assert len(spans) == 1
    attrs = spans[0].attributes or {}
    assert attrs["gen_ai.usage.input_tokens"] == 3000
    assert attrs["gen_ai.usage.output_tokens"] == 64
    parts = expected_parts(3000, 2048, 64)
    assert attrs["spanmeter.cost.nano_usd"] == sum(parts.values())


def test_stream_usage_never_overwrites_the_instrumentations_counts(
    tracer_provider: TracerProvider, span_exporter: InMemorySpanExporter
) -> None:
    assert instrument_openai_usage()
    tracer = tracer_provider.get_tracer("some.instrumentation")
    try:
        with openai_stub(StubUsage(prompt_tokens=3000, completion_tokens=64)) as (url, _):
            with openai.OpenAI(base_url=url, api_key="test", max_retries=0) as client:
                with tracer.start_as_current_span(
                    "chat", attributes={"gen_ai.system": "openai", "gen_ai.usage.prompt_tokens": 7}
                ):
                    for _ in client.chat.completions.create(
                        model="gpt-4o-mini",
                        messages=[{"role": "user", "content": "hi"}],
                        stream=True,
                        stream_options={"include_usage": True},
                    ):
                        pass
    finally:
        uninstrument_openai_usage()
    attrs = span_exporter.get_finished_spans()[0].attributes or {}
    assert attrs["gen_ai.usage.prompt_tokens"] == 7
    assert "gen_ai.usage.input_tokens" not in attrs and "gen_ai.usage.output_tokens" not in attrs


def test_a_wrapped_stream_is_still_an_openai_stream(tracer_provider: TracerProvider) -> None:
    # OpenLLMetry ends its span at once, without usage, on an answer that is not a Stream;
    # its span is current when the client posts, as this one is
    assert instrument_openai_usage()
    tracer = tracer_provider.get_tracer("opentelemetry.instrumentation.openai.v1")
    try:
        with openai_stub(StubUsage()) as (url, _):
            with openai.OpenAI(base_url=url, api_key="test", max_retries=0) as client:
                with tracer.start_as_current_span(
                    "openai.chat", attributes={"gen_ai.system": "openai"}
                ) as span:
                    stream = client.chat.completions.create(
                        model="gpt-4o-mini",
                        messages=[{"role": "user", "content": "hi"}],
                        stream=True,
                        stream_options={"include_usage": True},
                    )
                    with stream as entered:
                        assert isinstance(stream, openai.Stream) and isinstance(entered, openai.Stream)
                        assert type(stream).__name__ == "_StreamProxy"  # it is ours, wrapped
                        assert sum(1 for _ in entered) > 1
                    assert span.attributes is not None
                    assert span.attributes["gen_ai.usage.input_tokens"] == StubUsage().prompt_tokens
    finally:
        uninstrument_openai_usage()
