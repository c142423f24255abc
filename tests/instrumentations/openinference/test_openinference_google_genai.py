"""OpenInference's google-genai instrumentation: the real google-genai client against the
stub's Gemini API, through spanmeter.configure() to a real receiver."""

from __future__ import annotations

from google import genai
from google.genai import types

from support.matrix import GEMINI_2_5_FLASH, MatrixApp, gemini_cost
from support.provider_stub import GeminiUsage, ProviderStub

USAGE = GeminiUsage(prompt_tokens=4000, cached_tokens=1000, candidates_tokens=200, thoughts_tokens=300)
COST = gemini_cost(GEMINI_2_5_FLASH, prompt_tokens=4000, cached_tokens=1000, candidates=200, thoughts=300)


def client(stub: ProviderStub) -> genai.Client:
    return genai.Client(api_key="test", http_options=types.HttpOptions(base_url=stub.url))


def test_generate_content_priced_once(app: MatrixApp, stub: ProviderStub) -> None:
    stub.gemini = USAGE
    with app.call("openinference-google-genai") as tenant, client(stub) as gemini:
        reply = gemini.models.generate_content(model="gemini-2.5-flash", contents="Summarise my cart")
    assert reply.text == "Hello from the stub."
    stored = app.stored(tenant)
    row = stored.assert_exactly_once(COST)
    assert (row.pricing_status, row.pricing_model) == ("priced", "gemini-2.5-flash")
    assert len(stored.rows) == 1


def test_streamed_generate_content_priced_once(app: MatrixApp, stub: ProviderStub) -> None:
    stub.gemini = USAGE
    with app.call("openinference-google-genai-stream") as tenant, client(stub) as gemini:
        chunks = gemini.models.generate_content_stream(model="gemini-2.5-flash", contents="hi")
        text = "".join(chunk.text or "" for chunk in chunks)
    assert text == "Hello from the stub."
    stored = app.stored(tenant)
    stored.assert_exactly_once(COST)
    assert len(stored.rows) == 1
