"""The receiver end to end: real OTel SDK exporters (gRPC, HTTP protobuf) and a hand-written
OTLP/JSON request in; ``top`` out, equal to sums recomputed here from the spans sent."""

from __future__ import annotations

import json
import random
import time
import urllib.request
from collections import defaultdict
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter

from spanmeter.cli import main
from spanmeter.service import ReceiverService, ServeConfig

# Published list prices, USD per 1M tokens (input, output).
PRICES = {
    ("openai", "gpt-4o"): (Decimal("2.50"), Decimal("10.00")),
    ("openai", "gpt-4o-mini"): (Decimal("0.15"), Decimal("0.60")),
    ("anthropic", "claude-sonnet-4-5"): (Decimal(3), Decimal(15)),
}
ENDPOINTS = ("checkout.ai_summary", "support.reply", "docs.summarize")


def cost_nano(provider: str, model: str, tokens_in: int, tokens_out: int) -> int:
    price_in, price_out = PRICES[(provider, model)]
    # per 1M tokens -> nano-USD per token is price * 1000; exact for these prices
    return int(tokens_in * price_in * 1000) + int(tokens_out * price_out * 1000)


@pytest.fixture(params=[True, False], ids=["store-process", "writer-thread"])
def receiver(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[ReceiverService]:
    config = ServeConfig(db=str(tmp_path / "cost.db"), grpc_port=0, http_port=0, store_process=request.param)
    with ReceiverService(config) as service:
        yield service


def send_spans(exporter: SpanExporter, calls: list[dict[str, Any]]) -> None:
    provider = TracerProvider(resource=Resource.create({"service.name": "e2e"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("e2e")
    for call in calls:
        attributes = {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": call["provider"],
            "gen_ai.request.model": call["model"],
            "gen_ai.usage.input_tokens": call["in"],
            "gen_ai.usage.output_tokens": call["out"],
            "spanmeter.endpoint_tag": call["endpoint"],
            "spanmeter.tenant_id": call["tenant"],
        }
        with tracer.start_as_current_span(f"chat {call['model']}", attributes=attributes):
            with tracer.start_as_current_span("db.query", attributes={"db.system": "postgresql"}):
                pass  # a non-GenAI child: skipped cheaply, never counted
    provider.shutdown()


def random_calls(seed: int, count: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    calls = []
    for _ in range(count):
        provider, model = rng.choice(list(PRICES))
        calls.append(
            {
                "provider": provider,
                "model": model,
                "in": rng.randint(10, 20_000),
                "out": rng.randint(1, 2_000),
                "endpoint": rng.choice(ENDPOINTS),
                "tenant": f"t{rng.randint(1, 5)}",
            }
        )
    return calls


def hand_written_json_request(calls: list[dict[str, Any]]) -> bytes:
    """OTLP/JSON as a non-SDK client writes it: hex ids, int64 as strings and numbers."""
    spans = []
    for i, call in enumerate(calls):
        spans.append(
            {
                "traceId": f"{0xABC0 + i:032X}",  # upper-case hex is allowed
                "spanId": f"{0x1F00 + i:016x}",
                "name": "chat",
                "kind": 3,
                "startTimeUnixNano": str(time.time_ns() - 2_000_000_000),
                "endTimeUnixNano": time.time_ns() - 1_000_000_000,
                "attributes": [
                    {"key": "gen_ai.provider.name", "value": {"stringValue": call["provider"]}},
                    {"key": "gen_ai.request.model", "value": {"stringValue": call["model"]}},
                    {"key": "gen_ai.usage.input_tokens", "value": {"intValue": str(call["in"])}},
                    {"key": "gen_ai.usage.output_tokens", "value": {"intValue": call["out"]}},
                    {"key": "endpointTag", "value": {"stringValue": call["endpoint"]}},
                    {"key": "tenantId", "value": {"stringValue": call["tenant"]}},
                ],
                "status": {},
                "someFutureField": {"ignored": True},
            }
        )
    document = {"resourceSpans": [{"resource": {"attributes": []}, "scopeSpans": [{"spans": spans}]}]}
    return json.dumps(document).encode()


def expected_by_endpoint(calls: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    totals: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for call in calls:
        group = totals[call["endpoint"]]
        group["cost_nano_usd"] += cost_nano(call["provider"], call["model"], call["in"], call["out"])
        group["attempts"] += 1
        group["input_tokens"] += call["in"]
        group["output_tokens"] += call["out"]
    return totals


def api(receiver: ReceiverService, query: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"http://127.0.0.1:{receiver.http_port}/api/v1/top?{query}") as response:
        return json.loads(response.read())


def test_top_by_endpoint_equals_independent_sums(receiver: ReceiverService, tmp_path: Path) -> None:
    grpc_calls, http_calls, json_calls = random_calls(1, 60), random_calls(2, 60), random_calls(3, 25)
    send_spans(GrpcExporter(endpoint=f"http://127.0.0.1:{receiver.grpc_port}", insecure=True), grpc_calls)
    send_spans(HttpExporter(endpoint=f"http://127.0.0.1:{receiver.http_port}/v1/traces"), http_calls)
    request = urllib.request.Request(
        f"http://127.0.0.1:{receiver.http_port}/v1/traces",
        data=hand_written_json_request(json_calls),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request) as response:
        assert response.status == 200
        assert response.headers["Content-Type"] == "application/json"

    expected = expected_by_endpoint(grpc_calls + http_calls + json_calls)
    report = api(receiver, "by=endpoint_tag&since=1h")
    got = {group["endpoint_tag"]: group for group in report["groups"]}
    assert set(got) == set(expected)
    for endpoint, sums in expected.items():
        for field, value in sums.items():
            assert got[endpoint][field] == value, (endpoint, field)
        assert got[endpoint]["logical_requests"] == sums["attempts"]  # no shared request ids
        assert Decimal(got[endpoint]["cost_usd"]) == Decimal(sums["cost_nano_usd"]) / 10**9
    assert report["totals"]["cost_nano_usd"] == sum(s["cost_nano_usd"] for s in expected.values())

    # the CLI on the same store answers the same numbers
    result = CliRunner().invoke(
        main, ["top", "--by", "endpoint_tag", "--since", "1h", "--format", "json", "--db", receiver.config.db]
    )
    assert result.exit_code == 0, result.output
    cli = {g["endpoint_tag"]: g["cost_nano_usd"] for g in json.loads(result.output)["groups"]}
    assert cli == {endpoint: sums["cost_nano_usd"] for endpoint, sums in expected.items()}

    # filters: one tenant only
    tenant_calls = [c for c in grpc_calls + http_calls + json_calls if c["tenant"] == "t1"]
    filtered = api(receiver, "by=model&since=1h&where=tenant_id=t1")
    assert filtered["totals"]["cost_nano_usd"] == sum(
        cost_nano(c["provider"], c["model"], c["in"], c["out"]) for c in tenant_calls
    )


def post_protobuf(receiver: ReceiverService, body: bytes) -> int:
    request = urllib.request.Request(
        f"http://127.0.0.1:{receiver.http_port}/v1/traces",
        data=body,
        headers={"Content-Type": "application/x-protobuf"},
    )
    with urllib.request.urlopen(request) as response:
        return response.status


def encoded_request(calls: list[dict[str, Any]], request_id: str | None = None) -> bytes:
    """Encode spans with the SDK's own OTLP encoder (what its exporters send)."""
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    for call in calls:
        attributes: dict[str, Any] = {
            "gen_ai.provider.name": call["provider"],
            "gen_ai.request.model": call["model"],
            "gen_ai.usage.input_tokens": call["in"],
            "gen_ai.usage.output_tokens": call["out"],
            "spanmeter.endpoint_tag": call["endpoint"],
        }
        if request_id:
            attributes["spanmeter.external_request_id"] = request_id
        with provider.get_tracer("t").start_as_current_span("chat", attributes=attributes):
            pass
    return encode_spans(memory.get_finished_spans()).SerializeToString()


def test_redelivered_export_counts_once(receiver: ReceiverService) -> None:
    calls = random_calls(4, 20)
    body = encoded_request(calls)
    for _ in range(3):
        assert post_protobuf(receiver, body) == 200
    report = api(receiver, "by=endpoint_tag&since=1h")
    assert report["totals"]["attempts"] == 20
    assert report["totals"]["cost_nano_usd"] == sum(
        cost_nano(c["provider"], c["model"], c["in"], c["out"]) for c in calls
    )
    assert receiver.metrics.spans_duplicate._value.get() == 40  # type: ignore[attr-defined]


def test_retries_are_attempts_of_one_logical_request(receiver: ReceiverService) -> None:
    call = {"provider": "openai", "model": "gpt-4o", "in": 1000, "out": 100, "endpoint": "support.reply"}
    for _ in range(3):  # three attempts (three spans), one external request id
        assert post_protobuf(receiver, encoded_request([call], request_id="req_42")) == 200
    report = api(receiver, "by=endpoint_tag&since=1h")
    (group,) = report["groups"]
    assert group["attempts"] == 3
    assert group["logical_requests"] == 1
    assert group["cost_nano_usd"] == 3 * cost_nano("openai", "gpt-4o", 1000, 100)
    assert Decimal(group["cost_per_logical_request_usd"]) == Decimal(3 * 3_500_000) / 10**9
