"""Several ``spanmeter serve --store postgresql://`` replicas on one database, exact together.

Real receiver processes (each with its store process) on one real PostgreSQL database; real
OTel SDK exporters. Every span is exported to every replica (what a Collector's retry to
another replica, or a changed replica set, does to some spans), and attempts sharing an
external request id are spread over the replicas: the store must hold each span once and
count each logical request once, and every replica must answer the same totals.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter

from support.serve_process import serve_process

# gpt-4o-mini at $0.15 / $0.60 per million tokens: nano-USD per token 150 and 600
PRICE_IN, PRICE_OUT = 150, 600


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as answer:
        return json.loads(answer.read())


@contextmanager
def replica(store_url: str) -> Iterator[tuple[int, int]]:
    """One ``spanmeter serve`` process on ``store_url``: (gRPC port, HTTP port) once ready."""
    with serve_process(store_url) as (_, grpc_port, http_port):
        yield grpc_port, http_port


def _send_everywhere(exporters: list[SpanExporter], spans: int) -> tuple[dict[str, int], int]:
    """Export ``spans`` GenAI spans, each one to every exporter; every fourth span is a retry
    of the logical request of the span before it. Returns the expected cost per endpoint and
    the expected number of logical requests."""
    provider = TracerProvider(resource=Resource.create({"service.name": "replicas-test"}))
    for exporter in exporters:
        provider.add_span_processor(BatchSpanProcessor(exporter, max_export_batch_size=128))
    tracer = provider.get_tracer("replicas")
    expected: dict[str, int] = {}
    logical = 0
    for i in range(spans):
        endpoint = f"endpoint.{i % 3}"
        tokens_in, tokens_out = 100 + i % 37, 10 + i % 11
        retry = i % 4 == 3
        logical += 0 if retry else 1
        attributes = {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "openai",
            "gen_ai.request.model": "gpt-4o-mini",
            "gen_ai.usage.input_tokens": tokens_in,
            "gen_ai.usage.output_tokens": tokens_out,
            "spanmeter.endpoint_tag": endpoint,
            "spanmeter.external_request_id": f"req-{i - 1 if retry else i}",
        }
        with tracer.start_as_current_span("chat gpt-4o-mini", attributes=attributes):
            pass
        expected[endpoint] = expected.get(endpoint, 0) + tokens_in * PRICE_IN + tokens_out * PRICE_OUT
    provider.shutdown()  # flushes: every export acknowledged (durable) before this returns
    return expected, logical


def _send_split(exporters: list[SpanExporter], requests: int) -> None:
    """Logical requests of two attempts each, the attempts going to different replicas."""
    providers = [TracerProvider(resource=Resource.create({"service.name": "split"})) for _ in exporters]
    for provider, exporter in zip(providers, exporters, strict=True):
        provider.add_span_processor(BatchSpanProcessor(exporter, max_export_batch_size=64))
    for i in range(requests):
        for attempt in range(2):
            tracer = providers[(i + attempt) % len(providers)].get_tracer("split")
            attributes = {
                "gen_ai.operation.name": "chat",
                "gen_ai.provider.name": "openai",
                "gen_ai.request.model": "gpt-4o-mini",
                "gen_ai.usage.input_tokens": 10,
                "gen_ai.usage.output_tokens": 1,
                "spanmeter.endpoint_tag": "split",
                "spanmeter.external_request_id": f"split-{i}",
            }
            with tracer.start_as_current_span("chat", attributes=attributes):
                pass
    for provider in providers:
        provider.shutdown()


@pytest.fixture
def store_url(postgres_server: Any) -> str:
    return str(postgres_server.new_database("replicas"))


def test_replicas_store_each_span_once_and_count_each_logical_request_once(store_url: str) -> None:
    with ExitStack() as stack:
        replicas = [stack.enter_context(replica(store_url)) for _ in range(3)]
        exporters: list[SpanExporter] = [
            GrpcExporter(endpoint=f"http://127.0.0.1:{grpc}", insecure=True) if index % 2 else
            HttpExporter(endpoint=f"http://127.0.0.1:{http}/v1/traces")
            for index, (grpc, http) in enumerate(replicas)
        ]  # fmt: skip
        expected, logical = _send_everywhere(exporters, 600)
        _send_split([HttpExporter(endpoint=f"http://127.0.0.1:{http}/v1/traces") for _, http in replicas], 50)
        answers = [
            _get(f"http://127.0.0.1:{http}/api/v1/top?by=endpoint_tag&since=1h&limit=10")
            for _, http in replicas
        ]
        metrics = [_metric_sums(http) for _, http in replicas]
    assert answers[0] == answers[1] == answers[2]  # one store: every replica answers the same
    groups = {g["endpoint_tag"]: g for g in answers[0]["groups"]}
    assert {e: groups[e]["cost_nano_usd"] for e in expected} == expected
    assert sum(groups[e]["attempts"] for e in expected) == 600  # exported three times, stored once
    assert sum(groups[e]["logical_requests"] for e in expected) == logical
    assert (groups["split"]["attempts"], groups["split"]["logical_requests"]) == (100, 50)
    # each replica counts what it committed: summed over replicas, the counters are the store's
    totals = answers[0]["totals"]
    summed = {name: sum(m.get(name, 0.0) for m in metrics) for name in metrics[0]}
    assert summed["spanmeter_attempts_total"] == totals["attempts"] == 700
    assert summed["spanmeter_requests_total"] == totals["logical_requests"]
    assert summed["spanmeter_cost_usd_total"] == pytest.approx(totals["cost_nano_usd"] / 1e9, rel=1e-12)
    assert all(m["spanmeter_attempts_total"] > 0 for m in metrics)  # every replica took a share


def _metric_sums(http_port: int) -> dict[str, float]:
    """Per metric name, the sum of its samples on one replica's ``/metrics``."""
    with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/metrics", timeout=10) as answer:
        text = answer.read().decode()
    sums: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        name = line.split("{", 1)[0].split(" ", 1)[0]
        sums[name] = sums.get(name, 0.0) + float(line.rsplit(" ", 1)[1])
    return sums
