"""OpenLLMetry's (Traceloop) LangChain instrumentation, with its OpenAI instrumentation on
too (as ``Traceloop.init()`` installs them): langchain-openai's ChatOpenAI against the stub."""

from __future__ import annotations

from langchain_openai import ChatOpenAI

from support.matrix import GPT_4O_MINI, MatrixApp, openai_cost
from support.provider_stub import OpenAIUsage, ProviderStub

USAGE = OpenAIUsage(prompt_tokens=2048, cached_tokens=1536, completion_tokens=333)
COST = openai_cost(GPT_4O_MINI, prompt_tokens=2048, cached_tokens=1536, completion_tokens=333)


def chat(stub: ProviderStub) -> ChatOpenAI:
    return ChatOpenAI(
        model="gpt-4o-mini", base_url=stub.openai_base_url, api_key="test", max_retries=0, stream_usage=True
    )


def test_invoke_priced_once(app: MatrixApp, stub: ProviderStub) -> None:
    stub.openai = USAGE
    with app.call("openllmetry-langchain") as tenant:
        reply = chat(stub).invoke("Summarise my cart")
    assert reply.content == "Hello from the stub."
    stored = app.stored(tenant)
    row = stored.assert_exactly_once(COST)
    assert (row.input_tokens, row.cache_read_tokens, row.output_tokens) == (2048, 1536, 333)
    assert len(stored.rows) == 1  # the OpenAI instrumentation's span is suppressed under LangChain's


def test_stream_priced_once(app: MatrixApp, stub: ProviderStub) -> None:
    stub.openai = USAGE
    with app.call("openllmetry-langchain-stream") as tenant:
        text = "".join(str(chunk.content) for chunk in chat(stub).stream("Summarise my cart"))
    assert text == "Hello from the stub."
    stored = app.stored(tenant)
    row = stored.assert_exactly_once(COST)
    assert (row.input_tokens, row.cache_read_tokens, row.output_tokens) == (2048, 1536, 333)
    assert len(stored.rows) == 1  # the OpenAI instrumentation's span is suppressed under LangChain's
