"""Shared fixtures: a real OTel SDK pipeline with spanmeter's processor and an in-memory exporter."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from spanmeter.processor import CostSpanProcessor


@pytest.fixture(autouse=True)
def _hash_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """A fixed user-id hash key, so hashes are predictable and no warning is logged."""
    monkeypatch.setenv("SPANMETER_USER_ID_HASH_KEY", "test-key")
    import spanmeter.identity as identity

    monkeypatch.setattr(identity, "_default", None)


@pytest.fixture
def span_exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def tracer_provider(span_exporter: InMemorySpanExporter) -> Iterator[TracerProvider]:
    """TracerProvider -> CostSpanProcessor -> SimpleSpanProcessor -> InMemorySpanExporter."""
    provider = TracerProvider()
    provider.add_span_processor(CostSpanProcessor(SimpleSpanProcessor(span_exporter)))
    yield provider
    provider.shutdown()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[Any]:
    """A real PostgreSQL server for the session (started on first use; see
    :mod:`support.postgres_server`)."""
    from support.postgres_server import PostgresServer

    with PostgresServer() as server:
        yield server
