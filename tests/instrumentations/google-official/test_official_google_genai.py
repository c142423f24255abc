"""The official OpenTelemetry google-genai instrumentation: the real google-genai client
against the stub's Gemini API, through spanmeter.configure() to a real receiver."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from google import genai
from google.genai import types
from opentelemetry.instrumentation.google_genai import GoogleGenAiSdkInstrumentor

from support.matrix import GEMINI_2_5_FLASH, MatrixApp, gemini_cost
from support.provider_stub import GeminiUsage, ProviderStub

USAGE = GeminiUsage(prompt_tokens=4000, cached_tokens=1000, candidates_tokens=200, thoughts_tokens=300)
COST = gemini_cost(GEMINI_2_5_FLASH, prompt_tokens=4000, cached_tokens=1000, candidates=200, thoughts=300)


def client(stub: ProviderStub) -> genai.Client:
    return genai.Client(api_key="test", http_options=types.HttpOptions(base_url=stub.url))


@pytest.fixture
def instrumented(app: MatrixApp) -> Iterator[None]:
    # 1.3b0 declares google-genai<3 and instrument() refuses 3.x without skip_dep_check
    # (see test_instrument_refuses_google_genai_3).
    GoogleGenAiSdkInstrumentor().instrument(tracer_provider=app.provider, skip_dep_check=True)
    yield
    GoogleGenAiSdkInstrumentor().uninstrument()


def test_generate_content_priced_once(app: MatrixApp, stub: ProviderStub, instrumented: None) -> None:
    stub.gemini = USAGE
    with app.call("google-genai") as tenant, client(stub) as gemini:
        reply = gemini.models.generate_content(model="gemini-2.5-flash", contents="Summarise my cart")
    assert reply.text == "Hello from the stub."
    stored = app.stored(tenant)
    row = stored.assert_exactly_once(COST)
    assert (row.pricing_status, row.pricing_model) == ("priced", "gemini-2.5-flash")
    assert len(stored.rows) == 1


def test_streamed_generate_content_priced_once(
    app: MatrixApp, stub: ProviderStub, instrumented: None
) -> None:
    stub.gemini = USAGE
    with app.call("google-genai-stream") as tenant, client(stub) as gemini:
        chunks = gemini.models.generate_content_stream(model="gemini-2.5-flash", contents="hi")
        text = "".join(chunk.text or "" for chunk in chunks)
    assert text == "Hello from the stub."
    stored = app.stored(tenant)
    stored.assert_exactly_once(COST)
    assert len(stored.rows) == 1


def test_instrument_refuses_google_genai_3(app: MatrixApp, stub: ProviderStub) -> None:
    """Upstream gap: 1.3b0 declares ``google-genai >= 1.32.0, <3``, so a plain
    ``instrument()`` (and ``opentelemetry-instrument``) leaves google-genai 3.x untraced:
    no span, nothing to price. Workaround: ``instrument(skip_dep_check=True)``."""
    instrumentor = GoogleGenAiSdkInstrumentor()
    instrumentor.instrument(tracer_provider=app.provider)
    try:
        assert not instrumentor.is_instrumented_by_opentelemetry
        stub.gemini = USAGE
        with app.call("google-genai-refused") as tenant, client(stub) as gemini:
            gemini.models.generate_content(model="gemini-2.5-flash", contents="hi")
        assert app.stored(tenant).rows == []
    finally:
        instrumentor.uninstrument()
