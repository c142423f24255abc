"""Pydantic AI's own instrumentation (``Agent.instrument_all()``): agents on OpenAI and on
Anthropic against the stub, through spanmeter.configure() to a real receiver. The agent
run's span sums its model requests' usage under ``gen_ai.aggregated_usage.*``, which is no
call of its own (not stored as one); on Anthropic, the anthropic SDK's own span is on by
default beside the model request's."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import anthropic
import openai
import pytest
from pydantic_ai import Agent
from pydantic_ai.models.anthropic import AnthropicModel
from pydantic_ai.models.openai import OpenAIChatModel
from pydantic_ai.providers.anthropic import AnthropicProvider
from pydantic_ai.providers.openai import OpenAIProvider

from support.matrix import CLAUDE_SONNET_4_5, GPT_4O_MINI, MatrixApp, anthropic_cost, openai_cost
from support.provider_stub import AnthropicUsage, OpenAIUsage, ProviderStub

OPENAI_USAGE = OpenAIUsage(prompt_tokens=2048, cached_tokens=1536, completion_tokens=333)
OPENAI_COST = openai_cost(GPT_4O_MINI, prompt_tokens=2048, cached_tokens=1536, completion_tokens=333)
ANTHROPIC_USAGE = AnthropicUsage(
    input_tokens=1000,
    cache_read_input_tokens=3000,
    cache_creation_input_tokens=500,
    output_tokens=250,
    model="claude-sonnet-4-5-20250929",
)
ANTHROPIC_COST = anthropic_cost(
    CLAUDE_SONNET_4_5, input_tokens=1000, cache_read=3000, cache_write=500, output_tokens=250
)

# Pydantic AI warns that claude-sonnet-4-5 is to be retired; its prices are the ones to check.
pytestmark = pytest.mark.filterwarnings("ignore::pydantic_ai.exceptions.DeprecatedModelWarning")


@pytest.fixture(scope="module", autouse=True)
def instrumented(app: MatrixApp) -> Iterator[None]:
    Agent.instrument_all()
    yield
    Agent.instrument_all(False)


@pytest.fixture(params=[False, True], ids=["alone", "with-sdk-span"])
def sdk_span(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> bool:
    """Whether the anthropic SDK's own span is on (read when the client is made)."""
    if not request.param:
        monkeypatch.setenv("ANTHROPIC_OPEN_TELEMETRY", "false")
    return bool(request.param)


def openai_agent(client: openai.AsyncOpenAI) -> Agent:
    return Agent(OpenAIChatModel("gpt-4o-mini", provider=OpenAIProvider(openai_client=client)))


def anthropic_agent(client: anthropic.AsyncAnthropic) -> Agent:
    # a small max_tokens: with the model's own maximum the SDK refuses a call that does not stream
    model = AnthropicModel("claude-sonnet-4-5", provider=AnthropicProvider(anthropic_client=client))
    return Agent(model, model_settings={"max_tokens": 1024})


async def run(agent: Agent, *, stream: bool) -> str:
    if not stream:
        return (await agent.run("Summarise my cart")).output
    async with agent.run_stream("Summarise my cart") as result:
        return "".join([delta async for delta in result.stream_text(delta=True)])


def run_openai(stub: ProviderStub, *, stream: bool) -> str:
    """One agent run on OpenAI, its client closed after (the test owns the event loop)."""

    async def main() -> str:
        async with openai.AsyncOpenAI(base_url=stub.openai_base_url, api_key="test", max_retries=0) as client:
            return await run(openai_agent(client), stream=stream)

    return asyncio.run(main())


def run_anthropic(stub: ProviderStub, *, stream: bool) -> str:
    async def main() -> str:
        async with anthropic.AsyncAnthropic(base_url=stub.url, api_key="test", max_retries=0) as client:
            return await run(anthropic_agent(client), stream=stream)

    return asyncio.run(main())


def test_openai_agent_run_priced_once(app: MatrixApp, stub: ProviderStub) -> None:
    stub.openai = OPENAI_USAGE
    with app.call("pydantic-ai-openai") as tenant:
        assert run_openai(stub, stream=False) == "Hello from the stub."
    stored = app.stored(tenant)
    row = stored.assert_exactly_once(OPENAI_COST)
    assert (row.input_tokens, row.cache_read_tokens, row.output_tokens) == (2048, 1536, 333)
    assert stored.statuses() == ["priced"]


def test_openai_agent_streamed_run_priced_once(app: MatrixApp, stub: ProviderStub) -> None:
    stub.openai = OPENAI_USAGE
    with app.call("pydantic-ai-openai-stream") as tenant:
        assert run_openai(stub, stream=True) == "Hello from the stub."
    assert stub.requests[-1][1]["stream_options"] == {"include_usage": True}
    stored = app.stored(tenant)
    row = stored.assert_exactly_once(OPENAI_COST)
    assert (row.input_tokens, row.cache_read_tokens, row.output_tokens) == (2048, 1536, 333)
    assert stored.statuses() == ["priced"]


def test_anthropic_agent_run_priced_once(app: MatrixApp, stub: ProviderStub, sdk_span: bool) -> None:
    stub.anthropic = ANTHROPIC_USAGE
    with app.call("pydantic-ai-anthropic") as tenant:
        assert run_anthropic(stub, stream=False) == "Hello from the stub."
    stored = app.stored(tenant)
    row = stored.assert_exactly_once(ANTHROPIC_COST)
    assert (row.input_tokens, row.cache_read_tokens, row.cache_write_tokens, row.output_tokens) == (
        4500,
        3000,
        500,
        250,
    )
    # beside the SDK's span of the same call, one of the two is stored as not billable
    expected = ["not_billable", "priced"] if sdk_span else ["priced"]
    assert stored.statuses() == expected


def test_anthropic_agent_streamed_run_priced_once(app: MatrixApp, stub: ProviderStub, sdk_span: bool) -> None:
    stub.anthropic = ANTHROPIC_USAGE
    with app.call("pydantic-ai-anthropic-stream") as tenant:
        assert run_anthropic(stub, stream=True) == "Hello from the stub."
    stored = app.stored(tenant)
    row = stored.assert_exactly_once(ANTHROPIC_COST)
    assert (row.input_tokens, row.output_tokens) == (4500, 250)
    assert stored.statuses() == (["not_billable", "priced"] if sdk_span else ["priced"])
