"""A bounded fuzz run over the OTLP endpoints (OTLP/HTTP protobuf and JSON, OTLP/gRPC):
well-formed requests whose spans carry arbitrary ids, times, attribute keys and values
(every AnyValue type, nested, unicode, NaN, 64-bit extremes).

Whatever a span holds, the request is answered 200/OK (a bad value is its span's problem,
never the request's), the answer's rejected count never exceeds what was sent, a valid
span sent alongside the fuzzed ones is stored, and the receiver stays up. A 5xx or a gRPC
INTERNAL/UNKNOWN would mean one span can cost others their data.
"""

from __future__ import annotations

import base64
import json
import sqlite3
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from google.protobuf import json_format
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2_grpc import TraceServiceStub
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue, KeyValueList
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from spanmeter.service import ReceiverService, ServeConfig

EXAMPLES = 40
"""Requests per transport: enough to cover every value type many times, in seconds."""

KEYS = (
    "gen_ai.provider.name",
    "gen_ai.system",
    "gen_ai.request.model",
    "gen_ai.response.model",
    "gen_ai.usage.input_tokens",
    "gen_ai.usage.output_tokens",
    "gen_ai.usage.cache_read_input_tokens",
    "llm.token_count.prompt",
    "spanmeter.tenant_id",
    "spanmeter.user_id",
    "spanmeter.external_request_id",
    "spanmeter.data_mode",
    "enduser.id",
)
"""Keys the normaliser reads (so fuzzed values reach its parsing), besides random ones."""

_scalars = st.one_of(
    st.builds(lambda v: AnyValue(string_value=v), st.text(max_size=40)),
    st.builds(lambda v: AnyValue(int_value=v), st.integers(-(2**63), 2**63 - 1)),
    st.builds(lambda v: AnyValue(double_value=v), st.floats(allow_nan=True, allow_infinity=True)),
    st.builds(lambda v: AnyValue(bool_value=v), st.booleans()),
    st.builds(lambda v: AnyValue(bytes_value=v), st.binary(max_size=24)),
    st.just(AnyValue()),
)
_keys = st.one_of(st.sampled_from(KEYS), st.text(max_size=20))
_values = st.recursive(
    _scalars,
    lambda inner: st.one_of(
        st.builds(lambda vs: AnyValue(array_value=ArrayValue(values=vs)), st.lists(inner, max_size=4)),
        st.builds(
            lambda kvs: AnyValue(
                kvlist_value=KeyValueList(values=[KeyValue(key=k, value=v) for k, v in kvs])
            ),
            st.lists(st.tuples(_keys, inner), max_size=4),
        ),
    ),
    max_leaves=12,
)
_times = st.one_of(st.integers(0, 2**64 - 1), st.just(time.time_ns()), st.just(0))
_fuzzed_spans = st.builds(
    lambda trace_id, span_id, start, end, attributes, name: Span(
        trace_id=trace_id,
        span_id=span_id,
        name=name,
        start_time_unix_nano=start,
        end_time_unix_nano=end,
        attributes=[KeyValue(key=k, value=v) for k, v in attributes],
    ),
    st.one_of(st.binary(min_size=16, max_size=16), st.binary(max_size=20)),
    st.one_of(st.binary(min_size=8, max_size=8), st.binary(max_size=10)),
    _times,
    _times,
    st.lists(st.tuples(_keys, _values), max_size=8),
    st.text(max_size=20),
)


def _marker() -> tuple[Span, str]:
    """A valid GenAI span with an endpoint tag of its own, to find it in the store."""
    tag = f"fuzz.{uuid.uuid4().hex}"
    now = time.time_ns()
    attributes = [
        KeyValue(key="gen_ai.provider.name", value=AnyValue(string_value="openai")),
        KeyValue(key="gen_ai.request.model", value=AnyValue(string_value="gpt-4o-mini")),
        KeyValue(key="gen_ai.usage.input_tokens", value=AnyValue(int_value=10)),
        KeyValue(key="spanmeter.endpoint_tag", value=AnyValue(string_value=tag)),
    ]
    marker = Span(
        trace_id=uuid.uuid4().bytes,
        span_id=uuid.uuid4().bytes[:8],
        name="chat",
        start_time_unix_nano=now - 1_000_000,
        end_time_unix_nano=now,
        attributes=attributes,
    )
    return marker, tag


def _request(spans: list[Span]) -> tuple[ExportTraceServiceRequest, str, int]:
    marker, tag = _marker()
    request = ExportTraceServiceRequest()
    scope = request.resource_spans.add().scope_spans.add()
    scope.spans.extend([*spans, marker])
    return request, tag, len(spans) + 1


@pytest.fixture(scope="module")
def receiver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ReceiverService]:
    path = tmp_path_factory.mktemp("fuzz")
    config = ServeConfig(db=str(path / "cost.db"), grpc_port=0, http_port=0)
    with ReceiverService(config) as service:
        yield service


def _stored(receiver: ReceiverService, tag: str) -> int:
    with sqlite3.connect(receiver.config.db) as db:
        return int(db.execute("SELECT count(*) FROM requests WHERE endpoint_tag = ?", (tag,)).fetchone()[0])


def _post(receiver: ReceiverService, body: bytes, content_type: str) -> tuple[int, bytes]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{receiver.http_port}/v1/traces", data=body, headers={"Content-Type": content_type}
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.read()


def _as_otlp_json(request: ExportTraceServiceRequest) -> bytes:
    """OTLP/JSON as the spec writes it: ids in hex (protobuf's JSON mapping would give base64)."""
    document: dict[str, Any] = json_format.MessageToDict(request)
    for resource in document.get("resourceSpans", []):
        for scope in resource.get("scopeSpans", []):
            for span in scope.get("spans", []):
                for field in ("traceId", "spanId"):
                    if field in span:
                        span[field] = base64.b64decode(span[field]).hex()
    return json.dumps(document).encode()


def _check_answer(receiver: ReceiverService, status: int, body: bytes, sent: int, tag: str) -> None:
    assert status == 200, body[:300]
    answer = ExportTraceServiceResponse.FromString(body) if body else ExportTraceServiceResponse()
    assert 0 <= answer.partial_success.rejected_spans < sent
    assert _stored(receiver, tag) == 1


FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)


@FUZZ
@given(spans=st.lists(_fuzzed_spans, max_size=4))
def test_otlp_http_protobuf_keeps_valid_spans_whatever_others_hold(
    receiver: ReceiverService, spans: list[Span]
) -> None:
    request, tag, sent = _request(spans)
    status, body = _post(receiver, request.SerializeToString(), "application/x-protobuf")
    _check_answer(receiver, status, body, sent, tag)


@FUZZ
@given(spans=st.lists(_fuzzed_spans, max_size=4))
def test_otlp_http_json_keeps_valid_spans_whatever_others_hold(
    receiver: ReceiverService, spans: list[Span]
) -> None:
    request, tag, sent = _request(spans)
    status, body = _post(receiver, _as_otlp_json(request), "application/json")
    assert status == 200, body[:300]
    answer: dict[str, Any] = json.loads(body) if body else {}
    rejected = int(answer.get("partialSuccess", {}).get("rejectedSpans", 0))
    assert 0 <= rejected < sent
    assert _stored(receiver, tag) == 1


@FUZZ
@given(spans=st.lists(_fuzzed_spans, max_size=4))
def test_otlp_grpc_keeps_valid_spans_whatever_others_hold(
    receiver: ReceiverService, spans: list[Span]
) -> None:
    request, tag, sent = _request(spans)
    with grpc.insecure_channel(f"127.0.0.1:{receiver.grpc_port}") as channel:
        answer = TraceServiceStub(channel).Export(request, timeout=60)
    assert 0 <= answer.partial_success.rejected_spans < sent
    assert _stored(receiver, tag) == 1


def test_the_receiver_is_up_after_the_fuzz_run(receiver: ReceiverService) -> None:
    request, tag, sent = _request([])
    status, body = _post(receiver, request.SerializeToString(), "application/x-protobuf")
    _check_answer(receiver, status, body, sent, tag)
    with urllib.request.urlopen(f"http://127.0.0.1:{receiver.http_port}/readyz", timeout=10) as ready:
        assert ready.status == 200
