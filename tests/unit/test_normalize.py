"""normalize(): one realistic span per instrumentation, read field by field into a GenAIRecord.

The recorded spans and the records they must become are in ``support.normalize_cases``
(the ingest and collector tests read the same spans); each expected record is written out
in full, so a change in any field shows up as a failing case.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from dataclasses import replace
from typing import Any

import pytest

from spanmeter.normalise import GenAIRecord, is_genai_candidate, normalize
from spanmeter.semantic_conventions import NORMALIZER_KEYS, RESOURCE_KEYS
from support.normalize_cases import (
    ALL_CASES,
    DOUBLE_COUNTING_CASES,
    END_NS,
    INSTRUMENTATION_CASES,
    OPENAI_V2_CHAT,
    START_NS,
    Case,
)


def expected(case: Case) -> GenAIRecord | None:
    """The case's expected record, which also names the scope the span came from."""
    if case.expected is None:
        return None
    return dataclasses.replace(case.expected, scope_name=case.scope_name)


def run(case: Case, **kwargs: Any) -> GenAIRecord | None:
    return normalize(
        case.attributes,
        case.resource,
        span_name=case.span_name,
        start_time_ns=START_NS,
        end_time_ns=END_NS,
        status_code=case.status_code,
        scope_name=case.scope_name,
        **kwargs,
    )


# --- one span per instrumentation --------------------------------------------------------


@pytest.mark.parametrize("case", INSTRUMENTATION_CASES.values(), ids=INSTRUMENTATION_CASES.keys())
def test_instrumentation_span_becomes_the_expected_record(case: Case) -> None:
    assert run(case) == expected(case)


# --- double counting: outer spans are read but not billable ------------------------------


@pytest.mark.parametrize("case", DOUBLE_COUNTING_CASES.values(), ids=DOUBLE_COUNTING_CASES.keys())
def test_outer_spans_are_read_but_not_billable(case: Case) -> None:
    assert run(case) == expected(case)


@pytest.mark.parametrize(
    "operation_id",
    ["ai.generateText", "ai.streamText", "ai.generateObject", "ai.streamObject", "ai.embed", "ai.embedMany"],
)
def test_every_vercel_outer_operation_is_not_billable(operation_id: str) -> None:
    attributes = {"ai.operationId": operation_id, "ai.model.id": "m", "ai.usage.inputTokens": 5}
    record = normalize(attributes)
    assert record is not None and record.billable is False


@pytest.mark.parametrize(
    ("operation_id", "operation"),
    [
        ("ai.generateText.doGenerate", "chat"),
        ("ai.streamObject.doStream", "chat"),
        ("ai.embedMany.doEmbed", "embeddings"),
    ],
)
def test_vercel_provider_calls_are_billable(operation_id: str, operation: str) -> None:
    record = normalize({"ai.model.id": "m", "ai.usage.tokens": 5}, span_name=operation_id)
    assert record is not None
    assert (record.billable, record.operation, record.input_tokens) == (True, operation, 5)


@pytest.mark.parametrize(
    "attributes",
    [
        {"gen_ai.operation.name": "create_agent", "gen_ai.request.model": "m"},
        {"gen_ai.operation.name": "invoke_workflow", "gen_ai.usage.input_tokens": 1},
        {"traceloop.span.kind": "agent", "gen_ai.request.model": "m"},
        {"traceloop.span.kind": "task", "gen_ai.usage.input_tokens": 1},
        {"langfuse.observation.type": "agent", "langfuse.observation.model.name": "m"},
        {"gen_ai.request.model": "m", "spanmeter.pricing.status": "not_billable"},
    ],
)
def test_other_aggregate_spans_are_not_billable(attributes: dict[str, Any]) -> None:
    record = normalize(attributes)
    assert record is not None and record.billable is False


# --- not GenAI ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "attributes"),
    [
        (
            "http server span",
            {"http.request.method": "GET", "url.path": "/health", "http.response.status_code": 200},
        ),
        ("db span", {"db.system": "postgresql", "db.statement": "SELECT 1", "server.port": 5432}),
        ("ORM span with a 'model' attribute", {"model": "User", "db.system": "postgresql"}),
        ("OpenInference CHAIN with nothing GenAI", {"openinference.span.kind": "CHAIN", "input.value": "x"}),
        ("OpenInference TOOL", {"openinference.span.kind": "TOOL", "tool.name": "search"}),
        ("Vercel tool call", {"ai.operationId": "ai.toolCall", "ai.toolCall.name": "weather"}),
        ("only spanmeter attribution", {"spanmeter.tenant_id": "t_1", "user.id": "u"}),
        ("empty", {}),
    ],
)
def test_non_genai_spans_give_none(name: str, attributes: dict[str, Any]) -> None:
    assert normalize(attributes, {"deployment.environment.name": "prod"}) is None


# --- the key contract --------------------------------------------------------------------


class RecordingMapping(Mapping[str, Any]):
    """A mapping that records every key looked up in it, however it is looked up."""

    def __init__(self, data: Mapping[str, Any]) -> None:
        self._data = dict(data)
        self.read: set[str] = set()

    def __getitem__(self, key: str) -> Any:
        self.read.add(key)
        return self._data[key]

    def get(self, key: str, default: Any = None) -> Any:  # type: ignore[override]
        self.read.add(key)
        return self._data.get(key, default)

    def __contains__(self, key: object) -> bool:
        self.read.add(str(key))
        return key in self._data

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)


@pytest.mark.parametrize("case", ALL_CASES.values(), ids=ALL_CASES.keys())
def test_normalize_reads_only_declared_keys(case: Case) -> None:
    attributes = RecordingMapping(case.attributes)
    resource = RecordingMapping({**case.resource, "service.name": "svc", "host.name": "h1"})
    record = normalize(
        attributes,
        resource,
        span_name=case.span_name,
        start_time_ns=START_NS,
        end_time_ns=END_NS,
        status_code=case.status_code,
        scope_name=case.scope_name,
    )
    assert record == expected(case)  # same answer through a non-dict mapping
    assert attributes.read <= NORMALIZER_KEYS
    assert resource.read <= RESOURCE_KEYS


@pytest.mark.parametrize("case", ALL_CASES.values(), ids=ALL_CASES.keys())
def test_filtering_to_normalizer_keys_changes_nothing(case: Case) -> None:
    """What the receiver does: drop every other attribute while decoding."""
    filtered = Case(
        attributes={k: v for k, v in case.attributes.items() if k in NORMALIZER_KEYS},
        resource={k: v for k, v in case.resource.items() if k in RESOURCE_KEYS},
        span_name=case.span_name,
        scope_name=case.scope_name,
        status_code=case.status_code,
        expected=case.expected,
    )
    assert run(filtered) == expected(case)


@pytest.mark.parametrize("case", ALL_CASES.values(), ids=ALL_CASES.keys())
def test_the_cheap_pre_check_accepts_every_genai_span(case: Case) -> None:
    assert is_genai_candidate(case.attributes)


def test_normalizer_keys_are_exact_keys() -> None:
    assert all(isinstance(key, str) and key and not key.endswith((".", "*")) for key in NORMALIZER_KEYS)
    assert {
        "deployment.environment.name",
        "deployment.environment",
        "spanmeter.tenant_id",
        "spanmeter.endpoint_tag",
        "spanmeter.data_mode",
    } == RESOURCE_KEYS


def test_a_finished_sdk_span_reads_like_its_attribute_dict() -> None:
    """What the app-side processor passes: a ReadableSpan's read-only attribute view over the
    SDK's BoundedAttributes, the resource's attributes, real times and the status code."""
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create(OPENAI_V2_CHAT.resource))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("opentelemetry.instrumentation.openai_v2")
    with tracer.start_as_current_span("chat gpt-4o-mini", attributes=OPENAI_V2_CHAT.attributes):
        pass
    (span,) = exporter.get_finished_spans()
    assert span.start_time is not None and span.end_time is not None
    scope = span.instrumentation_scope
    record = normalize(
        span.attributes or {},
        span.resource.attributes,
        span_name=span.name,
        start_time_ns=span.start_time,
        end_time_ns=span.end_time,
        status_code=span.status.status_code.value,
        scope_name=scope.name if scope is not None else None,
    )
    assert record == replace(
        OPENAI_V2_CHAT.expected,
        scope_name="opentelemetry.instrumentation.openai_v2",
        latency_ms=(span.end_time - span.start_time) / 1e6,
        start_time_ns=span.start_time,
        end_time_ns=span.end_time,
    )
