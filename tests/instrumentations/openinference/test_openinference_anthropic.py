"""OpenInference's Anthropic instrumentation, alone (the SDK's own span off) and
beside the anthropic SDK's own span (on by default in anthropic 2.x)."""

from __future__ import annotations

import anthropic
import pytest

from support.matrix import CLAUDE_SONNET_4_5, MatrixApp, anthropic_cost
from support.provider_stub import AnthropicUsage, ProviderStub

MESSAGES = [{"role": "user", "content": "Summarise my cart"}]
USAGE = AnthropicUsage(
    input_tokens=1000,
    cache_read_input_tokens=3000,
    cache_creation_input_tokens=500,
    output_tokens=250,
    model="claude-sonnet-4-5-20250929",
)


def cost(output_tokens: int = 250) -> int:
    return anthropic_cost(
        CLAUDE_SONNET_4_5, input_tokens=1000, cache_read=3000, cache_write=500, output_tokens=output_tokens
    )


@pytest.fixture(params=[False, True], ids=["alone", "with-sdk-span"])
def sdk_span(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> bool:
    """Whether the anthropic SDK's own span is on (read when the client is made)."""
    if not request.param:
        monkeypatch.setenv("ANTHROPIC_OPEN_TELEMETRY", "false")
    return bool(request.param)


def client(stub: ProviderStub) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=stub.url, api_key="test", max_retries=0)


def test_message_priced_once(app: MatrixApp, stub: ProviderStub, sdk_span: bool) -> None:
    stub.anthropic = USAGE
    with app.call("openinference-anthropic") as tenant, client(stub) as sdk:
        message = sdk.messages.create(model="claude-sonnet-4-5", max_tokens=1024, messages=MESSAGES)
    assert message.content[0].text == "Hello from the stub."
    stored = app.stored(tenant)
    row = stored.assert_exactly_once(cost())
    assert (row.pricing_status, row.pricing_model) == ("priced", "claude-sonnet-4-5")
    assert (row.input_tokens, row.cache_read_tokens, row.cache_write_tokens, row.output_tokens) == (
        4500,
        3000,
        500,
        250,
    )
    # beside the SDK's span: one call, two spans, the second stored as not billable
    assert stored.statuses() == (["not_billable", "priced"] if sdk_span else ["priced"])


def stream_message(app: MatrixApp, stub: ProviderStub, name: str) -> str:
    stub.anthropic = USAGE
    with app.call(name) as tenant, client(stub) as sdk:
        stream = sdk.messages.create(
            model="claude-sonnet-4-5", max_tokens=1024, messages=MESSAGES, stream=True
        )
        text = "".join(event.delta.text for event in stream if event.type == "content_block_delta")
    assert text == "Hello from the stub."
    return tenant


def test_streamed_message_priced_once(app: MatrixApp, stub: ProviderStub, sdk_span: bool) -> None:
    stored = app.stored(stream_message(app, stub, "openinference-anthropic-stream"))
    row = stored.assert_exactly_once(cost())
    assert (row.input_tokens, row.cache_read_tokens, row.cache_write_tokens, row.output_tokens) == (
        4500,
        3000,
        500,
        250,
    )
    assert stored.statuses() == (["not_billable", "priced"] if sdk_span else ["priced"])
