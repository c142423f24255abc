"""Replicas on PostgreSQL under faults: the database down and back, a replica killed.

While PostgreSQL is down a replica answers OTLP's retryable statuses (HTTP 503 with
Retry-After, gRPC UNAVAILABLE) and ``/readyz`` says not ready; it reconnects by itself when
the database is back, and nothing acknowledged is lost. A replica SIGKILLed mid-ingest loses
no acknowledged span, and the client's retries to another replica count none twice.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import grpc
import psycopg
import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2_grpc import TraceServiceStub
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from support.postgres_server import PostgresServer
from support.serve_process import is_ready, serve_process


def _spans(count: int, tag: str) -> list[ReadableSpan]:
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("faults")
    for i in range(count):
        attributes = {
            "gen_ai.provider.name": "openai",
            "gen_ai.request.model": "gpt-4o-mini",
            "gen_ai.usage.input_tokens": 100 + i % 50,
            "gen_ai.usage.output_tokens": 10,
            "spanmeter.endpoint_tag": tag,
        }
        with tracer.start_as_current_span("chat", attributes=attributes):
            pass
    provider.shutdown()
    return list(memory.get_finished_spans())


def _request(count: int, tag: str) -> ExportTraceServiceRequest:
    """A raw OTLP request of ``count`` GenAI spans with fresh ids."""
    request = ExportTraceServiceRequest()
    scope = request.resource_spans.add().scope_spans.add()
    now = time.time_ns()
    for i in range(count):
        span = scope.spans.add(name="chat", trace_id=os.urandom(16), span_id=os.urandom(8))
        span.start_time_unix_nano, span.end_time_unix_nano = now + i, now + i + 1000
        for key, value in (("gen_ai.provider.name", "openai"), ("gen_ai.request.model", "gpt-4o-mini")):
            span.attributes.add(key=key).value.string_value = value
        span.attributes.add(key="gen_ai.usage.input_tokens").value.int_value = 100
        span.attributes.add(key="spanmeter.endpoint_tag").value.string_value = tag
    return request


def _post(http_port: int, request: ExportTraceServiceRequest) -> tuple[int, dict[str, str]]:
    conn = http.client.HTTPConnection("127.0.0.1", http_port, timeout=30)
    try:
        conn.request(
            "POST", "/v1/traces", request.SerializeToString(), {"Content-Type": "application/x-protobuf"}
        )
        response = conn.getresponse()
        response.read()
        return response.status, {k.lower(): v for k, v in response.getheaders()}
    finally:
        conn.close()


def _attempts(http_port: int, tag: str, timeout_s: float = 10) -> int:
    with urllib.request.urlopen(
        f"http://127.0.0.1:{http_port}/api/v1/top?by=endpoint_tag&since=1h&limit=100", timeout=timeout_s
    ) as answer:
        groups = json.loads(answer.read())["groups"]
    return sum(int(g["attempts"]) for g in groups if g["endpoint_tag"] == tag)


def test_database_down_answers_retryably_and_reconnects(tmp_path: Path) -> None:
    log = tmp_path / "replica.log"
    with PostgresServer() as server:
        url = server.new_database("outage")
        with serve_process(url, log=log) as (_, grpc_port, http_port):
            assert _post(http_port, _request(50, "before"))[0] == 200
            server.stop()
            status, headers = _post(http_port, _request(20, "during"))
            assert status == 503 and int(headers["retry-after"]) >= 1
            with grpc.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
                try:
                    TraceServiceStub(channel).Export(_request(20, "during"), timeout=30)
                    raise AssertionError("gRPC export acknowledged while the database is down")
                except grpc.RpcError as error:
                    assert error.code() is grpc.StatusCode.UNAVAILABLE  # type: ignore[attr-defined]
            deadline = time.monotonic() + 15
            while is_ready(http_port):
                assert time.monotonic() < deadline, "/readyz still ready with the database down"
                time.sleep(0.2)
            with pytest.raises(urllib.error.HTTPError) as refused:  # the API: retry later, not a 500
                _attempts(http_port, "before", timeout_s=60)  # after the pool's wait for a connection
            assert refused.value.code == 503 and int(refused.value.headers["Retry-After"]) >= 1
            refused.value.close()
            server.start()
            deadline = time.monotonic() + 30
            while not is_ready(http_port):
                assert time.monotonic() < deadline, "replica did not reconnect"
                time.sleep(0.2)
            retried = _request(30, "after")
            assert _post(http_port, retried)[0] == 200
            assert _post(http_port, retried)[0] == 200  # a client's retry: stored once
            assert (_attempts(http_port, "before"), _attempts(http_port, "during")) == (50, 0)
            assert _attempts(http_port, "after") == 30
    text = log.read_text()  # the outage is logged once, then its end; never a line per commit
    assert text.count("store writes failing") == 1, text
    assert text.count("store writes work again") == 1, text
    assert "Traceback" not in text, text


def _count(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(*) FROM requests").fetchone()
    return int(row[0]) if row else 0


def test_sigkill_of_a_replica_loses_no_acknowledged_span(postgres_server: Any) -> None:
    url = postgres_server.new_database("sigkill")
    batches = [_spans(100, "killed") for _ in range(40)]
    acked: list[int] = []
    with serve_process(url) as (first, _, first_http), serve_process(url) as (_, _, second_http):
        exporters = [
            OTLPSpanExporter(endpoint=f"http://127.0.0.1:{port}/v1/traces", timeout=2)
            for port in (first_http, second_http)
        ]
        target = [0]

        def client() -> None:  # a Collector's failover: retry the batch on the other replica
            deadline = time.monotonic() + 120
            for index, batch in enumerate(batches):
                while exporters[target[0]].export(batch) is not SpanExportResult.SUCCESS:
                    assert time.monotonic() < deadline, "client could not deliver"
                    target[0] = 1
                    time.sleep(0.05)
                acked.append(index)

        thread = threading.Thread(target=client)
        thread.start()
        while len(acked) < len(batches) // 3:
            time.sleep(0.01)
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        thread.join(150)
        assert not thread.is_alive()
        assert _attempts(second_http, "killed") == 40 * 100
        for exporter in exporters:
            exporter.shutdown()
    assert acked == list(range(len(batches)))
    assert _count(url) == 40 * 100  # exactly once: nothing lost, nothing twice
