"""OpenLIT writes ``gen_ai.usage.cost = 0`` for a model it cannot price: through the real
ingest pipeline and store, such a span is ``unknown_model``, counted among the attempts
without a price by ``top``, listed by ``prices unknown`` and failed by ``doctor``."""

from __future__ import annotations

import json
import time
from pathlib import Path

from click.testing import CliRunner
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

from spanmeter.cli import main
from spanmeter.identity import UserIdHasher
from spanmeter.ingest import IngestMetrics, IngestPipeline
from spanmeter.pricing import PriceBook
from spanmeter.store import GroupCommitWriter, SQLiteStore
from support.otlp_values import kv

NS = 1_000_000_000


def openlit_span(i: int, model: str, start: int) -> Span:
    attributes = {
        "telemetry.sdk.name": "openlit",
        "gen_ai.system": "openai",
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": model,
        "gen_ai.usage.input_tokens": 1000,
        "gen_ai.usage.output_tokens": 100,
        "gen_ai.usage.cost": 0.0,
    }
    return Span(
        trace_id=(i + 1).to_bytes(16, "big"),
        span_id=(i + 1).to_bytes(8, "big"),
        name=f"chat {model}",
        start_time_unix_nano=start,
        end_time_unix_nano=start + NS,
        attributes=[kv(key, value) for key, value in attributes.items()],
    )


def test_a_reported_zero_on_an_unknown_model_is_unknown_model(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    store = SQLiteStore(db)
    writer = GroupCommitWriter(store)
    pipeline = IngestPipeline(writer, PriceBook(), metrics=IngestMetrics(), user_id_hasher=UserIdHasher(b"k"))
    start = time.time_ns() - 600 * NS
    spans = [openlit_span(0, "acme-internal-llm", start), openlit_span(1, "gpt-4o-mini", start + NS)]
    request = ExportTraceServiceRequest(
        resource_spans=[
            ResourceSpans(scope_spans=[ScopeSpans(scope={"name": "openlit.otel.tracing"}, spans=spans)])
        ]
    )
    assert pipeline(request).rejected_spans == 0
    writer.close()
    top = store.top("model", start - 3600 * NS, start + 3600 * NS)
    groups = {group.key: group for group in top.groups}
    unknown = groups["acme-internal-llm"]
    assert (unknown.attempts, unknown.unpriced, unknown.cost_nano_usd) == (1, 1, 0)
    known = groups["gpt-4o-mini"]  # priced by spanmeter itself: 1000 x $0.15 + 100 x $0.60 per MTok
    assert (known.unpriced, known.cost_nano_usd) == (0, 150_000 + 60_000)
    store.close()
    listed = CliRunner().invoke(
        main, ["prices", "unknown", "--db", str(db), "--since", "1h", "--format", "json"]
    )
    assert json.loads(listed.output)[0]["model"] == "acme-internal-llm"
    doctor = CliRunner().invoke(main, ["doctor", "--db", str(db), "--since", "1h", "--format", "json"])
    priced = next(c for c in json.loads(doctor.output)["checks"] if c["name"] == "priced_models")
    assert (priced["passed"], priced["applicable"]) == (1, 2)
