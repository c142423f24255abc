"""OpenLLMetry's OpenAI, Anthropic and LangChain instrumentations, all on for the session,
as ``Traceloop.init()`` installs them. (Once: instrumenting OpenAI again after an
``uninstrument()`` gave two spans per call, a state no app is in.)"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry.instrumentation.anthropic import AnthropicInstrumentor
from opentelemetry.instrumentation.langchain import LangchainInstrumentor
from opentelemetry.instrumentation.openai import OpenAIInstrumentor

from support.matrix import MatrixApp


@pytest.fixture(scope="session", autouse=True)
def openllmetry(app: MatrixApp) -> Iterator[None]:
    instrumentors = (OpenAIInstrumentor(), AnthropicInstrumentor(), LangchainInstrumentor())
    for instrumentor in instrumentors:
        instrumentor.instrument(tracer_provider=app.provider)
    yield
    for instrumentor in instrumentors:
        instrumentor.uninstrument()
