"""The Anthropic calls the instrumentation matrix makes, for every group that instruments the
anthropic client: one message with cache reads, cache writes and output, streamed or not,
through the real client against the local provider stub, and its hand-computed cost."""

from __future__ import annotations

from typing import Any

import anthropic
import pytest

from support.matrix import CLAUDE_SONNET_4_5, MatrixApp, Stored, anthropic_cost
from support.provider_stub import AnthropicUsage, ProviderStub

__all__ = ["MESSAGES", "USAGE", "client", "cost", "create_message", "sdk_span", "stream_message"]

MESSAGES: list[Any] = [{"role": "user", "content": "Summarise my cart"}]
USAGE = AnthropicUsage(
    input_tokens=1000,
    cache_read_input_tokens=3000,
    cache_creation_input_tokens=500,
    output_tokens=250,
    model="claude-sonnet-4-5-20250929",
)


def cost(output_tokens: int = 250) -> int:
    """Nano-USD of :data:`USAGE` at Claude Sonnet 4.5's list prices."""
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


def create_message(app: MatrixApp, stub: ProviderStub, name: str) -> Stored:
    """One non-streamed message; its stored rows, checked to be priced once at :func:`cost`
    with the usage the API returned."""
    stub.anthropic = USAGE
    with app.call(name) as tenant, client(stub) as sdk:
        message = sdk.messages.create(model="claude-sonnet-4-5", max_tokens=1024, messages=MESSAGES)
    assert message.content[0].text == "Hello from the stub."  # type: ignore[union-attr]
    stored = app.stored(tenant)
    row = stored.assert_exactly_once(cost())
    assert (row.pricing_status, row.pricing_model) == ("priced", "claude-sonnet-4-5")
    assert (row.input_tokens, row.cache_read_tokens, row.cache_write_tokens, row.output_tokens) == (
        4500,
        3000,
        500,
        250,
    )
    return stored


def stream_message(app: MatrixApp, stub: ProviderStub, name: str) -> str:
    """One streamed message; the tenant its spans were attributed to."""
    stub.anthropic = USAGE
    with app.call(name) as tenant, client(stub) as sdk:
        stream = sdk.messages.create(
            model="claude-sonnet-4-5", max_tokens=1024, messages=MESSAGES, stream=True
        )
        text = "".join(event.delta.text for event in stream if event.type == "content_block_delta")  # type: ignore[union-attr]
    assert text == "Hello from the stub."
    return tenant
