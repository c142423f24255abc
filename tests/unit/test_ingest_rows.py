"""Ingest's fast paths give exactly what the plain paths give.

The pipeline builds row tuples in one fused loop and ships them to the store process;
the normaliser skips two helper calls for spans that cannot need them. Each shortcut is
checked here against the code it stands in for.
"""

from __future__ import annotations

import dataclasses
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from spanmeter.identity import UserIdHasher
from spanmeter.ingest import IngestMetrics, IngestPipeline
from spanmeter.normalise._classify import outcome
from spanmeter.normalise._cost import reported_cost
from spanmeter.normalise.normalizer import _COST_KEYS
from spanmeter.normalise.record import GenAIRecord
from spanmeter.pricing import CostPolicy, PriceBook
from spanmeter.pricing.result import PriceResult, PricingStatus
from spanmeter.semantic_conventions import NORMALIZER_KEYS
from spanmeter.store import SpanRow
from spanmeter.store.rows import FIELD_NAMES, record_values, row_from_values, row_values
from support.ingest_plain import NoSink, plain_records
from support.otlp_values import kv


def full_row() -> SpanRow:
    """A row with a distinct, non-default value in every field."""
    values: dict[str, Any] = {}
    for i, field in enumerate(dataclasses.fields(SpanRow)):
        if field.name in ("trace_id", "span_id"):
            values[field.name] = bytes([i]) * (16 if field.name == "trace_id" else 8)
        elif field.name == "billable":
            values[field.name] = False
        elif field.name == "latency_ms":
            values[field.name] = 12.5
        elif "int" in str(field.type) and "str" not in str(field.type):
            values[field.name] = 1000 + i
        else:
            values[field.name] = f"v{i}"
    return SpanRow(**values)


def test_row_values_round_trip() -> None:
    row = full_row()
    assert row_from_values(row_values(row)) == row
    assert len(row_values(row)) == len(FIELD_NAMES)
    with pytest.raises(ValueError):
        row_from_values(row_values(row)[:-1])


def test_from_record_fills_every_field() -> None:
    # fields the row carries over from the record as they are
    carried: dict[str, Any] = {
        "provider": "openai",
        "request_model": "gpt-4o",
        "response_model": "gpt-4o-2024-08-06",
        "operation": "chat",
        "input_tokens": 1200,
        "output_tokens": 300,
        "cache_read_tokens": 200,
        "cache_write_tokens": 10,
        "reasoning_tokens": 20,
        "endpoint_tag": "search",
        "prompt_name": "p",
        "prompt_version": "v3",
        "tenant_id": "t1",
        "user_id": "uh_x",
        "external_request_id": "req-1",
        "environment": "prod",
        "session_id": "s1",
        "outcome": "error",
        "error_type": "Timeout",
        "latency_ms": 1500.0,
        "end_time_ns": 99,
        "billable": False,
    }
    record = GenAIRecord(**carried, data_mode=None, start_time_ns=-5, issues=["a: b", "c"])
    price = PriceResult(
        PricingStatus.PRICED, 10, 1, 2, 3, 4, 0, "genai-prices", "0.2", "openai", "gpt-4o", date(2025, 1, 2)
    )
    row = SpanRow.from_record(
        record, price, trace_id=b"t" * 16, span_id=b"s" * 8, received_at_ns=7, service_name="svc"
    )
    assert row == SpanRow(
        **carried,
        trace_id=b"t" * 16,
        span_id=b"s" * 8,
        start_time_ns=0,  # clamped: a negative start is no time
        received_at_ns=7,
        service_name="svc",
        model="gpt-4o-2024-08-06",  # the response model when there is one
        data_mode="real",  # the default data mode
        cost_nano_usd=10,
        input_cost_nano_usd=1,
        output_cost_nano_usd=2,
        cache_read_cost_nano_usd=3,
        cache_write_cost_nano_usd=4,
        reasoning_cost_nano_usd=0,
        pricing_status="priced",
        pricing_source="genai-prices",
        pricing_source_version="0.2",
        pricing_provider="openai",
        pricing_model="gpt-4o",
        pricing_effective_date="2025-01-02",
        issues="a: b; c",  # joined
    )
    assert record_values(record, price, b"t" * 16, b"s" * 8, 7, "svc") == row_values(row)


def mixed_request() -> ExportTraceServiceRequest:
    """GenAI spans of several shapes, non-GenAI spans, bad values and bad ids."""
    request = ExportTraceServiceRequest()
    shapes: list[dict[str, Any]] = [
        {
            "gen_ai.provider.name": "openai",
            "gen_ai.request.model": "gpt-4o",
            "gen_ai.usage.input_tokens": 900,
            "gen_ai.usage.output_tokens": 80,
            "gen_ai.usage.cache_read.input_tokens": 100,
            "user.id": "alice",
        },
        {
            "gen_ai.system": "anthropic",
            "gen_ai.request.model": "claude-sonnet-4-5",
            "llm.usage.prompt_tokens": 50,
            "llm.usage.completion_tokens": 5,
            "traceloop.association.properties.tenant_id": "t9",
            "status": "failed",
        },
        {
            "llm.provider": "openai",
            "llm.model_name": "gpt-4o-mini",
            "llm.token_count.prompt": 12,
            "llm.token_count.completion": 3,
            "openinference.span.kind": "LLM",
            "llm.cost.total": 0.5,
        },
        {
            "gen_ai.provider.name": "openai",
            "gen_ai.request.model": "gpt-4o",
            "gen_ai.usage.input_tokens": -4,
            "gen_ai.usage.output_tokens": "many",
            "spanmeter.endpoint_tag": "",
            "error.type": "Timeout",
        },
        {
            "gen_ai.operation.name": "invoke_agent",
            "gen_ai.usage.input_tokens": 10,
            "gen_ai.usage.output_tokens": 1,
        },
        {
            "gen_ai.provider.name": "acme",
            "gen_ai.request.model": "acme-9000",
            "gen_ai.usage.input_tokens": 7,
            "gen_ai.usage.output_tokens": 7,
            "gen_ai.usage.cost": 0.25,
            "gen_ai.response.finish_reasons": ["stop"],
        },
        {"db.system": "postgresql"},
        {},
        {"gen_ai.request.model": "gpt-4o", "gen_ai.usage.input_tokens": None, "spanmeter.tenant_id": 42},
    ]
    for index, resource in enumerate(
        ({"service.name": "checkout", "deployment.environment.name": "prod"}, {})
    ):
        resource_spans = request.resource_spans.add()
        resource_spans.resource.attributes.extend(kv(k, v) for k, v in resource.items())
        scope = resource_spans.scope_spans.add()
        scope.scope.name = "opentelemetry.instrumentation.openai_v2" if index == 0 else "openinference"
        for n, attributes in enumerate(shapes * 2):
            span = scope.spans.add()
            span.trace_id = (index * 1000 + n + 1).to_bytes(16, "big")
            span.span_id = (n + 1).to_bytes(8, "big") if n != 3 else b"\x00" * 8  # one bad id
            span.name = "chat"
            span.start_time_unix_nano = 1_760_000_000_000_000_000 + n
            span.end_time_unix_nano = span.start_time_unix_nano + (2_000_000 if n % 5 else -1)
            span.status.code = 2 if n % 7 == 0 else 0
            span.attributes.extend(kv(k, v) for k, v in attributes.items())
            span.attributes.append(kv("spanmeter.endpoint_tag", f"e{n % 3}"))  # a repeated key: last wins
    return request


def test_the_fused_loop_builds_what_the_plain_path_builds() -> None:
    book = PriceBook.from_env()
    hasher = UserIdHasher(b"k")
    request = mixed_request()
    expected = [
        SpanRow.from_record(
            record,
            book.price_record(record, CostPolicy.PREFER_PROVIDER),
            trace_id=span.trace_id,
            span_id=span.span_id,
            received_at_ns=5,
            service_name=service,
        )
        for span, record, service in plain_records(request, hasher)
    ]
    pipeline = IngestPipeline(NoSink(), book, metrics=IngestMetrics(), user_id_hasher=hasher)
    rows, counts, problems = pipeline._rows(request, 5)
    assert [row_from_values(values) for values in rows] == expected
    assert len(expected) > 10
    assert counts[3] == 2  # the bad span ids, one per resource
    assert problems["invalid trace or span id"] == 2


VALUES: tuple[object, ...] = ("error", "ERROR", "failed", "ok", "", 0, 1, 2.5, True, ("a",), Decimal("1"))


@pytest.mark.parametrize("key", sorted(NORMALIZER_KEYS - _COST_KEYS))
def test_without_a_cost_key_reported_cost_finds_nothing(key: str) -> None:
    for value in VALUES:
        issues: list[str] = []
        assert reported_cost({key: value}, issues) == (None, None, None)
        assert issues == []


@pytest.mark.parametrize(
    "key", sorted(NORMALIZER_KEYS - {"error.type", "status", "langfuse.observation.level"})
)
def test_without_an_outcome_key_the_status_code_decides(key: str) -> None:
    for value in VALUES:
        for code, expected in ((0, "success"), (1, "success"), (2, "error"), (None, "success")):
            issues: list[str] = []
            assert outcome({key: value}, code, issues) == (expected, None)
            assert issues == []
