"""Optional OTel metrics: cost and tokens as counters with bounded attributes only."""

from __future__ import annotations

from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from spanmeter import attribution
from spanmeter.processor import CostInstruments, CostSpanProcessor, SpanEnricher


def points(reader: InMemoryMetricReader) -> dict[str, list[tuple[dict[str, Any], float]]]:
    data = reader.get_metrics_data()
    found: dict[str, list[tuple[dict[str, Any], float]]] = {}
    assert data is not None
    for resource_metrics in data.resource_metrics:
        for scope in resource_metrics.scope_metrics:
            for metric in scope.metrics:
                found[metric.name] = [(dict(p.attributes or {}), p.value) for p in metric.data.data_points]  # type: ignore[union-attr]
    return found


def test_cost_and_token_counters_add_up_and_stay_bounded() -> None:
    reader = InMemoryMetricReader()
    metrics = CostInstruments(MeterProvider(metric_readers=[reader]))
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(
        CostSpanProcessor(SimpleSpanProcessor(exporter), SpanEnricher(metrics=metrics))
    )
    tracer = provider.get_tracer("t")
    for tenant in ("t1", "t2", "t3"):
        with attribution(endpoint_tag="support.reply", tenant_id=tenant, user_id=f"{tenant}-user"):
            with tracer.start_as_current_span(
                "chat",
                attributes={
                    "gen_ai.provider.name": "openai",
                    "gen_ai.request.model": "gpt-4o",
                    "gen_ai.usage.input_tokens": 1000,
                    "gen_ai.usage.cache_read.input_tokens": 400,
                    "gen_ai.usage.output_tokens": 100,
                },
            ):
                pass
    spans = exporter.get_finished_spans()
    span_cost = sum(
        (s.attributes or {})["gen_ai.usage.cost"] for s in spans
    )  # enrichment (and metrics) run here
    found = points(reader)
    (cost,) = found["spanmeter.gen_ai.cost"]
    assert cost[1] == pytest.approx(span_cost)
    # gpt-4o: 600 uncached x $2.50 + 400 cached x $1.25 + 100 out x $10 per 1M, three calls
    assert cost[1] == pytest.approx(3 * (600 * 2.5 + 400 * 1.25 + 100 * 10) / 1e6)
    tokens = {attrs["gen_ai.token.type"]: value for attrs, value in found["spanmeter.gen_ai.tokens"]}
    assert tokens == {"input": 1800, "cache_read": 1200, "output": 300}
    for name, series in found.items():
        for attrs, _ in series:
            assert "spanmeter.tenant_id" not in attrs, name
            assert "user.id" not in attrs, name
            assert attrs["spanmeter.endpoint_tag"] == "support.reply"
    (requests,) = found["spanmeter.gen_ai.requests"]
    assert requests == ({**requests[0], "spanmeter.pricing.status": "priced"}, 3)
