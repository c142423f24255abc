"""OpenLLMetry's (Traceloop) OpenAI instrumentation: the real openai client against the
stub, through spanmeter.configure() to a real receiver."""

from __future__ import annotations

import openai

from support.matrix import GPT_4O_MINI, MatrixApp, openai_cost
from support.provider_stub import OpenAIUsage, ProviderStub

MESSAGES = [{"role": "user", "content": "Summarise my cart"}]
USAGE = OpenAIUsage(prompt_tokens=2048, cached_tokens=1536, completion_tokens=333)
COST = openai_cost(GPT_4O_MINI, prompt_tokens=2048, cached_tokens=1536, completion_tokens=333)


def client(stub: ProviderStub) -> openai.OpenAI:
    return openai.OpenAI(base_url=stub.openai_base_url, api_key="test", max_retries=0)


def test_chat_completion_cached_prompt_priced_once(app: MatrixApp, stub: ProviderStub) -> None:
    stub.openai = USAGE
    with app.call("openllmetry-openai") as tenant, client(stub) as sdk:
        reply = sdk.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert reply.choices[0].message.content == "Hello from the stub."
    stored = app.stored(tenant)
    row = stored.assert_exactly_once(COST)
    assert (row.pricing_status, row.pricing_model) == ("priced", "gpt-4o-mini")
    assert (row.input_tokens, row.cache_read_tokens, row.output_tokens) == (2048, 1536, 333)
    assert len(stored.rows) == 1


def test_streamed_chat_completion_with_include_usage_priced_once(app: MatrixApp, stub: ProviderStub) -> None:
    """OpenLLMetry alone records this stream's usage (its ``ChatStream`` reads the final
    chunk). spanmeter's OpenAI wrapper must leave that intact: a stream proxy that is not an
    ``openai.Stream`` fails OpenLLMetry's ``isinstance`` check, and OpenLLMetry then ends its
    span at once, without usage (stored ``no_usage``)."""
    stub.openai = USAGE
    with app.call("openllmetry-openai-stream") as tenant, client(stub) as sdk:
        stream = sdk.chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
        )
        text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    assert text == "Hello from the stub."
    stored = app.stored(tenant)
    row = stored.assert_exactly_once(COST)
    assert (row.input_tokens, row.cache_read_tokens, row.output_tokens) == (2048, 1536, 333)
    assert len(stored.rows) == 1
