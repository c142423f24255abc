"""Hostile input through the whole receiver: the right OTLP status, no crash, the valid
spans of the same request kept, and the reason logged once per request."""

from __future__ import annotations

import base64
import gzip
import json
import logging
import math
import sqlite3
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from spanmeter.outage import NOT_READY_AFTER_FAILURE_S
from spanmeter.receiver.decode import decode_protobuf_detailed
from spanmeter.service import ReceiverService, ServeConfig
from support.otlp_values import kv


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[ReceiverService]:
    config = ServeConfig(db=str(tmp_path / "cost.db"), grpc_port=0, http_port=0, max_body_mb=8)
    with ReceiverService(config) as service:
        yield service


def span(
    n: int, *, model: str = "gpt-4o", tokens_in: Any = 1000, tokens_out: Any = 100, **extra: Any
) -> Span:
    now = time.time_ns()
    attributes = [
        kv("gen_ai.provider.name", "openai"),
        kv("gen_ai.request.model", model),
        kv("gen_ai.usage.input_tokens", tokens_in),
        kv("gen_ai.usage.output_tokens", tokens_out),
        kv("spanmeter.endpoint_tag", f"case.{n}"),
    ]
    attributes += [kv(k, v) for k, v in extra.items()]
    return Span(
        trace_id=n.to_bytes(16, "big"),
        span_id=n.to_bytes(8, "big"),
        name="chat",
        start_time_unix_nano=now - 1_000_000_000,
        end_time_unix_nano=now,
        attributes=attributes,
    )


def post(
    receiver: ReceiverService, body: bytes, content_type: str = "application/x-protobuf", **headers: str
) -> tuple[int, bytes]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{receiver.http_port}/v1/traces",
        data=body,
        headers={"Content-Type": content_type, **headers},
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def rows(receiver: ReceiverService) -> dict[str, sqlite3.Row]:
    with sqlite3.connect(receiver.config.db) as db:
        db.row_factory = sqlite3.Row
        return {r["endpoint_tag"]: r for r in db.execute("select * from requests")}


def assert_alive(receiver: ReceiverService) -> None:
    request = ExportTraceServiceRequest()
    request.resource_spans.add().scope_spans.add().spans.append(span(999_999))
    status, _ = post(receiver, request.SerializeToString())
    assert status == 200
    assert "case.999999" in rows(receiver)


def test_bad_values_in_one_request_keep_the_valid_spans(
    receiver: ReceiverService, caplog: pytest.LogCaptureFixture
) -> None:
    request = ExportTraceServiceRequest()
    spans = request.resource_spans.add().scope_spans.add().spans
    spans.append(span(1))  # valid
    spans.append(span(2, tokens_in=math.nan))
    spans.append(span(3, tokens_in=-50))
    spans.append(span(4, tokens_in=10**15))  # absurd for one call
    spans.append(span(5, tokens_in="lots", tokens_out=[1, 2]))  # wrong types
    spans.append(span(6, model="acme-llm-9000"))  # unknown model
    big = span(7)
    big.attributes.extend(kv(f"junk.{i}", "x" * 20) for i in range(10_000))
    spans.append(big)  # 10,000 attributes
    bad_ids = span(8)
    bad_ids.trace_id = b"\x01\x02\x03"
    spans.append(bad_ids)  # invalid trace id: rejected
    with caplog.at_level(logging.WARNING, logger="spanmeter"):
        status, body = post(receiver, request.SerializeToString())
    assert status == 200
    answer = ExportTraceServiceResponse.FromString(body)
    assert answer.partial_success.rejected_spans == 1
    assert "invalid trace or span id" in answer.partial_success.error_message
    stored = rows(receiver)
    assert stored["case.1"]["pricing_status"] == "priced"
    assert stored["case.1"]["cost_nano_usd"] == 1000 * 2500 + 100 * 10_000
    for case in ("case.2", "case.3", "case.4", "case.5"):
        # the bad count is dropped, and the span is not priced on what is left
        assert stored[case]["input_tokens"] is None, case
        assert stored[case]["pricing_status"] == "invalid_usage", case
        assert stored[case]["cost_nano_usd"] is None, case
    assert stored["case.5"]["output_tokens"] is None
    assert stored["case.6"]["pricing_status"] == "unknown_model"
    assert stored["case.6"]["cost_nano_usd"] is None
    assert stored["case.7"]["pricing_status"] == "priced"
    assert "case.8" not in stored
    # logged once for the request, not once per span
    ingest_lines = [r for r in caplog.records if r.name.startswith("spanmeter.ingest")]
    assert len(ingest_lines) == 1
    assert_alive(receiver)


def test_invalid_utf8_is_repaired_and_the_span_kept(receiver: ReceiverService) -> None:
    request = ExportTraceServiceRequest()
    request.resource_spans.add().scope_spans.add().spans.extend([span(11), span(12)])
    body = request.SerializeToString().replace(b"case.12", b"case\xff12")
    status, answer = post(receiver, body)
    assert status == 200
    assert ExportTraceServiceResponse.FromString(answer).partial_success.error_message
    stored = rows(receiver)
    assert "case.11" in stored
    assert "case\ufffd12" in stored
    assert_alive(receiver)


@pytest.mark.parametrize(
    ("body", "content_type", "expected"),
    [
        (b"\x0a\x85\x01\x0a", "application/x-protobuf", 400),  # truncated
        (bytes(range(256)) * 8, "application/x-protobuf", 400),  # random bytes
        (b'{"resourceSpans": [', "application/json", 400),  # malformed JSON
        (b'{"resourceSpans": "\xff\xfe"}', "application/json", 400),  # invalid UTF-8 JSON
    ],
)
def test_malformed_payloads_get_400_and_the_server_stays_up(
    receiver: ReceiverService, body: bytes, content_type: str, expected: int
) -> None:
    status, _ = post(receiver, body, content_type)
    assert status == expected
    assert_alive(receiver)


def test_gzip_bomb_gets_413(receiver: ReceiverService) -> None:
    # A 100 MB body is refused before it is read; that needs a client that reads the early
    # answer while uploading, see test_receiver_transport.py.
    bomb = gzip.compress(bytes(64 * 1024 * 1024), compresslevel=9)  # 64 MiB of zeros, ~64 KiB
    status, _ = post(receiver, bomb, **{"Content-Encoding": "gzip"})
    assert status == 413
    assert_alive(receiver)


def grpc_export(receiver: ReceiverService, request: ExportTraceServiceRequest) -> ExportTraceServiceResponse:
    with grpc.insecure_channel(f"127.0.0.1:{receiver.grpc_port}") as channel:
        export = channel.unary_unary(
            "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
            request_serializer=ExportTraceServiceRequest.SerializeToString,
            response_deserializer=ExportTraceServiceResponse.FromString,
        )
        return export(request, timeout=30)


@pytest.mark.parametrize("transport", ["http", "grpc"])
def test_times_past_int64_are_treated_as_missing_and_the_batch_stored(
    receiver: ReceiverService, caplog: pytest.LogCaptureFixture, transport: str
) -> None:
    # OTLP times are fixed64: 2**64 - 1 ns is legal on the wire, and no store column takes it.
    base = 40 if transport == "http" else 50
    request = ExportTraceServiceRequest()
    spans = request.resource_spans.add().scope_spans.add().spans
    spans.append(span(base + 1))
    late_start = span(base + 2)
    late_start.start_time_unix_nano = 2**64 - 1
    spans.append(late_start)
    late_end = span(base + 3)
    late_end.end_time_unix_nano = 2**63
    spans.append(late_end)
    spans.append(span(base + 4))
    with caplog.at_level(logging.WARNING, logger="spanmeter"):
        if transport == "http":
            status, body = post(receiver, request.SerializeToString())
            assert status == 200
            answer = ExportTraceServiceResponse.FromString(body)
        else:
            answer = grpc_export(receiver, request)
    assert answer.partial_success.rejected_spans == 0
    assert "beyond year 2262, treated as missing (2)" in answer.partial_success.error_message
    stored = rows(receiver)
    for n in (1, 2, 3, 4):
        assert stored[f"case.{base + n}"]["pricing_status"] == "priced"
        assert stored[f"case.{base + n}"]["cost_nano_usd"] == 1000 * 2500 + 100 * 10_000
    assert stored[f"case.{base + 2}"]["start_time_ns"] == 0  # missing: bucketed by arrival
    assert "start time" in stored[f"case.{base + 2}"]["issues"]
    assert stored[f"case.{base + 3}"]["end_time_ns"] is None
    assert stored[f"case.{base + 3}"]["latency_ms"] is None
    assert [r.name for r in caplog.records if r.name.startswith("spanmeter")] == ["spanmeter.ingest.pipeline"]
    assert_alive(receiver)


def nested(kind: str, levels: int) -> AnyValue:
    value = AnyValue(string_value="leaf")
    for _ in range(levels):
        outer = AnyValue()
        if kind == "kvlist":
            outer.kvlist_value.values.add(key="k", value=value)
        else:
            outer.array_value.values.append(value)
        value = outer
    return value


def deep_request(base: int) -> ExportTraceServiceRequest:
    """Four spans: valid; a key-value list 32 deep; an array 48 deep (each past protobuf's
    depth limit of 100 messages in a span attribute); a shallow nested value and bad UTF-8."""
    request = ExportTraceServiceRequest()
    resource_spans = request.resource_spans.add()
    resource_spans.resource.attributes.add(key="service.name", value=AnyValue(string_value="svc"))
    resource_spans.resource.attributes.add(key="resource.deep", value=nested("array", 48))
    spans = resource_spans.scope_spans.add().spans
    spans.append(span(base + 1))
    for n, value in ((2, nested("kvlist", 32)), (3, nested("array", 48)), (4, nested("kvlist", 3))):
        with_value = span(base + n)
        with_value.attributes.add(key="app.payload", value=value)
        spans.append(with_value)
    spans[2].events.add(name="e").attributes.add(key="event.deep", value=nested("kvlist", 30))
    spans[3].attributes.add(key="note", value=AnyValue(string_value="caf\u00e9-marker"))
    return request


def as_otlp_json(request: ExportTraceServiceRequest) -> bytes:
    document = json_format.MessageToDict(request)
    for resource_spans in document["resourceSpans"]:
        for scope_spans in resource_spans["scopeSpans"]:
            for item in scope_spans["spans"]:  # OTLP/JSON ids are hex, not proto3 JSON's base64
                for key in ("traceId", "spanId"):
                    item[key] = base64.b64decode(item[key]).hex()
    return json.dumps(document).encode()


@pytest.mark.parametrize("transport", ["protobuf", "json", "grpc"])
def test_deeply_nested_values_are_dropped_and_their_spans_kept(
    receiver: ReceiverService, caplog: pytest.LogCaptureFixture, transport: str
) -> None:
    base = {"protobuf": 60, "json": 70, "grpc": 80}[transport]
    request = deep_request(base)
    with caplog.at_level(logging.WARNING, logger="spanmeter"):
        if transport == "protobuf":
            body = request.SerializeToString().replace(b"caf\xc3\xa9-marker", b"caf\xff\xff-marker")
            status, answer_body = post(receiver, body)
            assert status == 200
            answer = ExportTraceServiceResponse.FromString(answer_body)
        elif transport == "json":
            status, answer_body = post(receiver, as_otlp_json(request), "application/json")
            assert status == 200, answer_body
            answer = json_format.Parse(answer_body, ExportTraceServiceResponse())
        else:
            answer = grpc_export(receiver, request)
    assert answer.partial_success.rejected_spans == 0
    message = answer.partial_success.error_message
    assert "4 values were dropped (attribute values nested deeper than 16 levels" in message
    if transport == "protobuf":  # the UTF-8 repair still applies on the way
        assert "1 string value contained invalid UTF-8" in message
    stored = rows(receiver)
    for n in (1, 2, 3, 4):
        assert stored[f"case.{base + n}"]["pricing_status"] == "priced"
        assert stored[f"case.{base + n}"]["service_name"] == "svc"
    warnings = [r for r in caplog.records if r.name.startswith("spanmeter")]
    assert len(warnings) == 1  # once for the request
    assert_alive(receiver)


def test_shallow_values_survive_the_deep_value_fallback() -> None:
    request = deep_request(90)
    decoded = decode_protobuf_detailed(request.SerializeToString())
    assert decoded.dropped_values == 4
    spans = decoded.request.resource_spans[0].scope_spans[0].spans
    kept = {kv.key: kv.value for kv in spans[3].attributes}
    assert kept["app.payload"] == nested("kvlist", 3)  # within the limit: untouched
    assert kept["note"].string_value == "caf\u00e9-marker"
    assert {kv.key: kv.value for kv in spans[1].attributes}["app.payload"] == AnyValue()
    resource = {kv.key: kv.value for kv in decoded.request.resource_spans[0].resource.attributes}
    assert resource == {"service.name": AnyValue(string_value="svc"), "resource.deep": AnyValue()}


@pytest.mark.parametrize("store_process", [True, False], ids=["store-process", "writer-thread"])
def test_readyz_is_false_while_commits_fail_until_one_succeeds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, store_process: bool
) -> None:
    from support.full_disk_store import FullDiskSQLiteStore

    tests_dir = Path(__file__).resolve().parents[1]
    monkeypatch.setenv("PYTHONPATH", str(tests_dir))  # the store process imports the store from there
    db, flag = tmp_path / "cost.db", tmp_path / "disk-full"
    config = ServeConfig(db=str(db), grpc_port=0, http_port=0, store_process=store_process)
    with ReceiverService(config, store_factory=partial(FullDiskSQLiteStore, str(db), str(flag))) as receiver:

        def readyz() -> int:
            try:
                with urllib.request.urlopen(
                    f"http://127.0.0.1:{receiver.http_port}/readyz", timeout=10
                ) as answer:
                    return answer.status
            except urllib.error.HTTPError as error:
                return error.code

        def export(n: int) -> int:
            request = ExportTraceServiceRequest()
            request.resource_spans.add().scope_spans.add().spans.append(span(n))
            return post(receiver, request.SerializeToString())[0]

        assert readyz() == 200
        flag.touch()  # the disk fills up
        assert export(1) == 503  # retryable: the client keeps the span
        assert readyz() == 503
        assert export(2) == 503
        assert readyz() == 503
        # Half-open: with no export coming (a load balancer stopped sending), readiness comes
        # back after a few seconds, so the replica gets traffic to try again...
        deadline = time.monotonic() + NOT_READY_AFTER_FAILURE_S + 10
        while readyz() != 200:
            assert time.monotonic() < deadline, "never ready again without traffic"
            time.sleep(0.2)
        assert export(3) == 503  # ... and the next failed commit takes it out again
        assert readyz() == 503
        flag.unlink()  # space again: the next commit succeeds, and readiness follows
        assert export(1) == 200
        assert readyz() == 200
        assert set(rows(receiver)) == {"case.1"}


def test_json_numbers_past_64_bits_drop_the_value_not_the_request(receiver: ReceiverService) -> None:
    request = ExportTraceServiceRequest()
    spans = request.resource_spans.add().scope_spans.add().spans
    spans.extend([span(101), span(102), span(103)])
    document = json.loads(as_otlp_json(request))
    late, huge = document["resourceSpans"][0]["scopeSpans"][0]["spans"][1:]
    late["startTimeUnixNano"] = "99999999999999999999999"  # past fixed64: no protobuf field holds it
    late["endTimeUnixNano"] = 2**64  # a JSON number this time
    huge["attributes"].append({"key": "app.count", "value": {"intValue": str(2**63)}})
    status, body = post(receiver, json.dumps(document).encode(), "application/json")
    assert status == 200, body
    answer = json_format.Parse(body, ExportTraceServiceResponse())
    assert answer.partial_success.rejected_spans == 0
    assert "3 values were dropped" in answer.partial_success.error_message
    stored = rows(receiver)
    assert {"case.101", "case.102", "case.103"} <= set(stored)
    assert stored["case.102"]["start_time_ns"] == 0  # missing: bucketed by its arrival
    assert stored["case.102"]["pricing_status"] == "priced"
    assert stored["case.103"]["pricing_status"] == "priced"
