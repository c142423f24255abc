"""A handler's ``request_type`` is what both transports parse protobuf bodies into.

The ingest pipeline asks for the map twin of ``ExportTraceServiceRequest``
(:data:`~spanmeter.ingest.extract.INGEST_REQUEST_TYPE`); a real server on loopback ports must
hand it that type over gRPC and OTLP/HTTP protobuf (repaired bodies included), plain
``ExportTraceServiceRequest`` over OTLP/JSON, and the default type to handlers without one.
"""

from __future__ import annotations

import http.client
import json
from typing import Any

import grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2_grpc import TraceServiceStub

from spanmeter.ingest.extract import INGEST_REQUEST_TYPE
from spanmeter.receiver import IngestResult, OTLPServer
from support.otlp_values import kv

TIMEOUT = 10.0


class Recording:
    """Records the type and the first span's attributes of every request it gets."""

    def __init__(self, request_type: Any = None) -> None:
        if request_type is not None:
            self.request_type = request_type
        self.seen: list[tuple[type, dict[str, str]]] = []

    def __call__(self, request: Any) -> IngestResult:
        span = request.resource_spans[0].scope_spans[0].spans[0]
        if type(request) is INGEST_REQUEST_TYPE:
            attributes = {key: span.attributes[key].string_value for key in span.attributes}
        else:
            attributes = {item.key: item.value.string_value for item in span.attributes}
        self.seen.append((type(request), attributes))
        return IngestResult()


def _body(model: str = "gpt-4o-mini") -> bytes:
    request = ExportTraceServiceRequest()
    span = request.resource_spans.add().scope_spans.add().spans.add()
    span.trace_id, span.span_id = b"\x01" * 16, b"\x02" * 8
    span.attributes.extend([kv("gen_ai.system", "openai"), kv("gen_ai.request.model", model)])
    return request.SerializeToString()


def _post(server: OTLPServer, body: bytes, content_type: str) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", server.http_port, timeout=TIMEOUT)
    try:
        conn.request("POST", "/v1/traces", body=body, headers={"Content-Type": content_type})
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


def _send_all(server: OTLPServer) -> None:
    with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
        TraceServiceStub(channel).Export(ExportTraceServiceRequest.FromString(_body()), timeout=TIMEOUT)
    assert _post(server, _body(), "application/x-protobuf") == 200
    bad = _body("gpt-4o-mini").replace(b"gpt-4o-mini", b"gp\xff-4o-mini")
    assert _post(server, bad, "application/x-protobuf") == 200
    doc = {
        "resourceSpans": [
            {
                "scopeSpans": [
                    {
                        "spans": [
                            {
                                "traceId": "01" * 16,
                                "spanId": "02" * 8,
                                "attributes": [{"key": "gen_ai.system", "value": {"stringValue": "openai"}}],
                            }
                        ]
                    }
                ]
            }
        ]
    }
    assert _post(server, json.dumps(doc).encode(), "application/json") == 200


def test_both_transports_parse_protobuf_into_the_handlers_type() -> None:
    handler = Recording(INGEST_REQUEST_TYPE)
    with OTLPServer(handler, grpc_port=0, http_port=0) as server:
        _send_all(server)
    types = [seen[0] for seen in handler.seen]
    assert types == [INGEST_REQUEST_TYPE] * 3 + [ExportTraceServiceRequest]
    assert handler.seen[0][1] == {"gen_ai.system": "openai", "gen_ai.request.model": "gpt-4o-mini"}
    assert handler.seen[2][1]["gen_ai.request.model"] == "gp\ufffd-4o-mini"  # repaired, then the twin


def test_handlers_without_a_request_type_get_the_default() -> None:
    for handler in (Recording(), Recording(request_type="not a message class")):
        with OTLPServer(handler, grpc_port=0, http_port=0) as server:
            _send_all(server)
        assert [seen[0] for seen in handler.seen] == [ExportTraceServiceRequest] * 4
        assert handler.seen[2][1]["gen_ai.request.model"] == "gp\ufffd-4o-mini"
