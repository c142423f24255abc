"""OpenLIT: the real openai, anthropic and google-genai clients against the stub, through
spanmeter.configure() to a real receiver. openlit 1.45.0 pins anthropic<1 and openai<3, so
no anthropic SDK span is beside it here."""

from __future__ import annotations

import anthropic
import openai
from google import genai
from google.genai import types

from support.matrix import (
    CLAUDE_SONNET_4_5,
    GEMINI_2_5_FLASH,
    GPT_4O_MINI,
    MatrixApp,
    anthropic_cost,
    gemini_cost,
    openai_cost,
)
from support.provider_stub import AnthropicUsage, GeminiUsage, OpenAIUsage, ProviderStub

MESSAGES = [{"role": "user", "content": "Summarise my cart"}]
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
GEMINI_USAGE = GeminiUsage(prompt_tokens=4000, cached_tokens=1000, candidates_tokens=200, thoughts_tokens=300)
GEMINI_COST = gemini_cost(
    GEMINI_2_5_FLASH, prompt_tokens=4000, cached_tokens=1000, candidates=200, thoughts=300
)


def openai_client(stub: ProviderStub) -> openai.OpenAI:
    return openai.OpenAI(base_url=stub.openai_base_url, api_key="test", max_retries=0)


def anthropic_client(stub: ProviderStub) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=stub.url, api_key="test", max_retries=0)


def gemini_client(stub: ProviderStub) -> genai.Client:
    return genai.Client(api_key="test", http_options=types.HttpOptions(base_url=stub.url))


# OpenAI: a model OpenLIT prices ----------------------------------------------------------


def test_openai_chat_completion_priced_once(app: MatrixApp, stub: ProviderStub) -> None:
    stub.openai = OPENAI_USAGE
    with app.call("openlit-openai") as tenant, openai_client(stub) as sdk:
        sdk.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    stored = app.stored(tenant)
    row = stored.assert_exactly_once(OPENAI_COST)
    assert (row.input_tokens, row.cache_read_tokens, row.output_tokens) == (2048, 1536, 333)
    assert len(stored.rows) == 1


def test_openai_streamed_chat_completion_priced_once(app: MatrixApp, stub: ProviderStub) -> None:
    stub.openai = OPENAI_USAGE
    with app.call("openlit-openai-stream") as tenant, openai_client(stub) as sdk:
        stream = sdk.chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
        )
        text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    assert text == "Hello from the stub."
    stored = app.stored(tenant)
    row = stored.assert_exactly_once(OPENAI_COST)
    assert (row.input_tokens, row.cache_read_tokens, row.output_tokens) == (2048, 1536, 333)
    assert len(stored.rows) == 1


def test_model_nobody_prices_is_unknown_not_zero(app: MatrixApp, stub: ProviderStub) -> None:
    """OpenLIT writes ``gen_ai.usage.cost = 0`` for a model it cannot price; a model no
    price table knows is ``unknown_model``, without a cost, never a $0 ``reported``."""
    stub.openai = OpenAIUsage(prompt_tokens=1000, completion_tokens=100, model="acme-llm-7")
    with app.call("openlit-unknown") as tenant, openai_client(stub) as sdk:
        sdk.chat.completions.create(model="acme-llm-7", messages=MESSAGES)
    stored = app.stored(tenant)
    assert [(row.pricing_status, row.cost_nano_usd) for row in stored.rows] == [("unknown_model", None)], (
        stored.describe()
    )


# Anthropic and Gemini: models OpenLIT does not price (it writes a cost of 0) ---------------


def test_anthropic_message_priced_by_spanmeter_once(app: MatrixApp, stub: ProviderStub) -> None:
    stub.anthropic = ANTHROPIC_USAGE
    with app.call("openlit-anthropic") as tenant, anthropic_client(stub) as sdk:
        sdk.messages.create(model="claude-sonnet-4-5", max_tokens=1024, messages=MESSAGES)
    stored = app.stored(tenant)
    row = stored.assert_exactly_once(ANTHROPIC_COST)
    assert (row.pricing_status, row.pricing_model) == ("priced", "claude-sonnet-4-5")
    assert (row.input_tokens, row.cache_read_tokens, row.cache_write_tokens, row.output_tokens) == (
        4500,
        3000,
        500,
        250,
    )
    assert len(stored.rows) == 1


def test_anthropic_streamed_message_loses_the_cache_tokens(app: MatrixApp, stub: ProviderStub) -> None:
    """Upstream gap (openlit 1.45.0): on an Anthropic stream the span carries
    ``message_start``'s ``input_tokens`` (which EXCLUDES the cache) as the input and 0
    cache reads and writes, so the 3000 cache reads and 500 cache writes go unpriced and the
    call is under-counted. spanmeter prices what the span says; it cannot know better."""
    stub.anthropic = ANTHROPIC_USAGE
    with app.call("openlit-anthropic-stream") as tenant, anthropic_client(stub) as sdk:
        stream = sdk.messages.create(
            model="claude-sonnet-4-5", max_tokens=1024, messages=MESSAGES, stream=True
        )
        text = "".join(event.delta.text for event in stream if event.type == "content_block_delta")
    assert text == "Hello from the stub."
    stored = app.stored(tenant)
    row = stored.assert_exactly_once(
        anthropic_cost(CLAUDE_SONNET_4_5, input_tokens=1000, cache_read=0, cache_write=0, output_tokens=250)
    )
    assert row.pricing_status == "priced"
    assert (row.input_tokens, row.cache_read_tokens, row.cache_write_tokens, row.output_tokens) == (
        1000,
        0,
        0,
        250,
    )
    assert len(stored.rows) == 1


def test_gemini_generate_content_priced_by_spanmeter_once(app: MatrixApp, stub: ProviderStub) -> None:
    stub.gemini = GEMINI_USAGE
    with app.call("openlit-gemini") as tenant, gemini_client(stub) as gemini:
        reply = gemini.models.generate_content(model="gemini-2.5-flash", contents="Summarise my cart")
    assert reply.text == "Hello from the stub."
    stored = app.stored(tenant)
    row = stored.assert_exactly_once(GEMINI_COST)
    assert (row.pricing_status, row.pricing_model) == ("priced", "gemini-2.5-flash")
    assert len(stored.rows) == 1


def test_gemini_streamed_generate_content(app: MatrixApp, stub: ProviderStub) -> None:
    stub.gemini = GEMINI_USAGE
    with app.call("openlit-gemini-stream") as tenant, gemini_client(stub) as gemini:
        text = "".join(
            chunk.text or ""
            for chunk in gemini.models.generate_content_stream(model="gemini-2.5-flash", contents="hi")
        )
    assert text == "Hello from the stub."
    stored = app.stored(tenant)
    row = stored.assert_exactly_once(GEMINI_COST)
    # OTel semantics: output includes the thoughts
    assert (row.input_tokens, row.cache_read_tokens, row.output_tokens, row.reasoning_tokens) == (
        4000,
        1000,
        500,
        300,
    )
    assert len(stored.rows) == 1
