"""The official OpenTelemetry OpenAI instrumentation (openai-v2): the real openai client
against the stub, through spanmeter.configure() to a real receiver."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import openai
import pytest
from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor

from support.matrix import GPT_4O_MINI, MatrixApp, openai_cost
from support.provider_stub import OpenAIUsage, ProviderStub

MESSAGES = [{"role": "user", "content": "Summarise my cart"}]


@pytest.fixture(scope="module", autouse=True)
def instrumented(app: MatrixApp) -> Iterator[None]:
    OpenAIInstrumentor().instrument(tracer_provider=app.provider)
    yield
    OpenAIInstrumentor().uninstrument()


def test_chat_completion_cached_prompt_priced_once(app: MatrixApp, stub: ProviderStub) -> None:
    stub.openai = OpenAIUsage(prompt_tokens=2048, cached_tokens=1536, completion_tokens=333)
    with (
        app.call("openai-v2") as tenant,
        openai.OpenAI(base_url=stub.openai_base_url, api_key="test", max_retries=0) as client,
    ):
        reply = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert reply.choices[0].message.content == "Hello from the stub."
    stored = app.stored(tenant)
    row = stored.assert_exactly_once(
        openai_cost(GPT_4O_MINI, prompt_tokens=2048, cached_tokens=1536, completion_tokens=333)
    )
    assert (row.pricing_status, row.pricing_model) == ("priced", "gpt-4o-mini")
    assert (row.input_tokens, row.cache_read_tokens, row.output_tokens) == (2048, 1536, 333)
    assert len(stored.rows) == 1


def test_streamed_chat_completion_with_usage_chunk_priced_once(app: MatrixApp, stub: ProviderStub) -> None:
    stub.openai = OpenAIUsage(prompt_tokens=5000, cached_tokens=4096, completion_tokens=120)
    with (
        app.call("openai-v2-stream") as tenant,
        openai.OpenAI(base_url=stub.openai_base_url, api_key="test", max_retries=0) as client,
    ):
        stream = client.chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
        )
        text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    assert text == "Hello from the stub."
    stored = app.stored(tenant)
    row = stored.assert_exactly_once(
        openai_cost(GPT_4O_MINI, prompt_tokens=5000, cached_tokens=4096, completion_tokens=120)
    )
    assert (row.input_tokens, row.cache_read_tokens, row.output_tokens) == (5000, 4096, 120)
    assert len(stored.rows) == 1


def test_async_streamed_chat_completion_priced_once(app: MatrixApp, stub: ProviderStub) -> None:
    stub.openai = OpenAIUsage(prompt_tokens=900, cached_tokens=0, completion_tokens=45)

    async def call() -> None:
        async with openai.AsyncOpenAI(base_url=stub.openai_base_url, api_key="test", max_retries=0) as client:
            stream = await client.chat.completions.create(
                model="gpt-4o-mini", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
            )
            async for _ in stream:
                pass

    with app.call("openai-v2-async") as tenant:
        asyncio.run(call())
    stored = app.stored(tenant)
    stored.assert_exactly_once(
        openai_cost(GPT_4O_MINI, prompt_tokens=900, cached_tokens=0, completion_tokens=45)
    )
    assert len(stored.rows) == 1
