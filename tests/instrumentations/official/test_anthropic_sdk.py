"""The anthropic SDK's own tracing (anthropic 2.x: one ``anthropic.messages.create`` CLIENT
span per call, scope ``com.anthropic.sdk.python``, on by default), with no instrumentation
beside it."""

from __future__ import annotations

import asyncio

import anthropic
import pytest

from support.matrix import CLAUDE_HAIKU_3_5, CLAUDE_SONNET_4_5, MatrixApp, anthropic_cost
from support.provider_stub import AnthropicUsage, ProviderStub

MESSAGES = [{"role": "user", "content": "Summarise my cart"}]
SONNET = AnthropicUsage(
    input_tokens=1000,
    cache_read_input_tokens=3000,
    cache_creation_input_tokens=500,
    output_tokens=250,
    model="claude-sonnet-4-5-20250929",
)
SONNET_COST = anthropic_cost(
    CLAUDE_SONNET_4_5, input_tokens=1000, cache_read=3000, cache_write=500, output_tokens=250
)


def client(stub: ProviderStub) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=stub.url, api_key="test", max_retries=0)


def test_message_with_cache_reads_and_writes_priced_once(app: MatrixApp, stub: ProviderStub) -> None:
    stub.anthropic = SONNET
    with app.call("anthropic-sdk") as tenant, client(stub) as sdk:
        message = sdk.messages.create(model="claude-sonnet-4-5", max_tokens=1024, messages=MESSAGES)
    assert message.content[0].text == "Hello from the stub."
    stored = app.stored(tenant)
    row = stored.assert_exactly_once(SONNET_COST)
    assert (row.pricing_status, row.pricing_model) == ("priced", "claude-sonnet-4-5")
    # OTel semantics: input includes cache reads and writes
    assert (row.input_tokens, row.cache_read_tokens, row.cache_write_tokens, row.output_tokens) == (
        4500,
        3000,
        500,
        250,
    )
    assert len(stored.rows) == 1


def test_streamed_message_priced_once(app: MatrixApp, stub: ProviderStub) -> None:
    stub.anthropic = SONNET
    with app.call("anthropic-sdk-stream") as tenant, client(stub) as sdk:
        stream = sdk.messages.create(
            model="claude-sonnet-4-5", max_tokens=1024, messages=MESSAGES, stream=True
        )
        text = "".join(event.delta.text for event in stream if event.type == "content_block_delta")
    assert text == "Hello from the stub."
    stored = app.stored(tenant)
    row = stored.assert_exactly_once(SONNET_COST)
    assert (row.input_tokens, row.output_tokens) == (4500, 250)
    assert len(stored.rows) == 1


def test_stream_helper_priced_once(app: MatrixApp, stub: ProviderStub) -> None:
    stub.anthropic = AnthropicUsage(input_tokens=2000, output_tokens=400, model="claude-3-5-haiku-20241022")
    with app.call("anthropic-sdk-helper") as tenant, client(stub) as sdk:
        with sdk.messages.stream(
            model="claude-3-5-haiku-20241022", max_tokens=1024, messages=MESSAGES
        ) as stream:
            assert stream.get_final_text() == "Hello from the stub."
    stored = app.stored(tenant)
    stored.assert_exactly_once(
        anthropic_cost(CLAUDE_HAIKU_3_5, input_tokens=2000, cache_read=0, cache_write=0, output_tokens=400)
    )
    assert len(stored.rows) == 1


def test_async_streamed_message_priced_once(app: MatrixApp, stub: ProviderStub) -> None:
    stub.anthropic = SONNET

    async def call() -> None:
        async with anthropic.AsyncAnthropic(base_url=stub.url, api_key="test", max_retries=0) as sdk:
            stream = await sdk.messages.create(
                model="claude-sonnet-4-5", max_tokens=1024, messages=MESSAGES, stream=True
            )
            async for _ in stream:
                pass

    with app.call("anthropic-sdk-async") as tenant:
        asyncio.run(call())
    app.stored(tenant).assert_exactly_once(SONNET_COST)


def test_tracing_off_by_environment_emits_nothing(
    app: MatrixApp, stub: ProviderStub, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ANTHROPIC_OPEN_TELEMETRY=false (read when the client is made) turns the span off: the
    setting the other groups use to run an instrumentation alone."""
    monkeypatch.setenv("ANTHROPIC_OPEN_TELEMETRY", "false")
    stub.anthropic = SONNET
    with app.call("anthropic-sdk-off") as tenant, client(stub) as sdk:
        sdk.messages.create(model="claude-sonnet-4-5", max_tokens=1024, messages=MESSAGES)
    assert app.stored(tenant).rows == []
