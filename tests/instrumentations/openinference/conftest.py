"""OpenInference's OpenAI, Anthropic and google-genai instrumentations, all on for the
session, as an app that uses the three providers installs them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from openinference.instrumentation.anthropic import AnthropicInstrumentor
from openinference.instrumentation.google_genai import GoogleGenAIInstrumentor
from openinference.instrumentation.openai import OpenAIInstrumentor

from support.matrix import MatrixApp


@pytest.fixture(scope="session", autouse=True)
def openinference(app: MatrixApp) -> Iterator[None]:
    instrumentors = (OpenAIInstrumentor(), AnthropicInstrumentor(), GoogleGenAIInstrumentor())
    for instrumentor in instrumentors:
        instrumentor.instrument(tracer_provider=app.provider)
    yield
    for instrumentor in instrumentors:
        instrumentor.uninstrument()
