"""The OTLP receiver transport against real clients: OTel SDK exporters, raw gRPC and raw HTTP.

Every server listens on 127.0.0.1 with port 0; every client call has a timeout.
"""

from __future__ import annotations

import gzip
import http.client
import io
import json
import logging
import random
import select
import socket
import struct
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import grpc
import pytest
from google.rpc import code_pb2, error_details_pb2, status_pb2
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpanExporter
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2_grpc import TraceServiceStub
from opentelemetry.proto.trace.v1.trace_pb2 import Span
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from spanmeter.receiver import IngestResult, OTLPServer, Overloaded, WSGIApp, make_otlp_wsgi_app, make_router

EXPORT_METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
PROTOBUF = "application/x-protobuf"
JSON = "application/json"
TIMEOUT = 10.0

StartServer = Callable[..., OTLPServer]


class RecordingHandler:
    """Ingest handler that records requests and can throttle, fail or stall on demand."""

    def __init__(self) -> None:
        self.requests: list[ExportTraceServiceRequest] = []
        self.calls = 0
        self.result = IngestResult()
        self.throttle_next = 0
        self.retry_after_s = 1.0
        self.error: Exception | None = None
        self.delay_s = 0.0
        self.entered = 0
        self._lock = threading.Condition()

    def wait_entered(self, count: int) -> bool:
        """Wait until ``count`` calls have entered the handler."""
        with self._lock:
            return self._lock.wait_for(lambda: self.entered >= count, timeout=TIMEOUT)

    def __call__(self, request: ExportTraceServiceRequest) -> IngestResult:
        with self._lock:
            self.entered += 1
            self._lock.notify_all()
        if self.delay_s:
            time.sleep(self.delay_s)
        with self._lock:
            self.calls += 1
            if self.throttle_next > 0:
                self.throttle_next -= 1
                raise Overloaded("busy", retry_after_s=self.retry_after_s)
            if self.error is not None:
                raise self.error
            self.requests.append(request)
        return self.result

    @property
    def spans(self) -> list[Span]:
        return [
            span
            for request in self.requests
            for resource_spans in request.resource_spans
            for scope_spans in resource_spans.scope_spans
            for span in scope_spans.spans
        ]


@pytest.fixture
def handler() -> RecordingHandler:
    return RecordingHandler()


@pytest.fixture
def server(start_otlp_server: StartServer, handler: RecordingHandler) -> OTLPServer:
    return start_otlp_server(handler)


# --------------------------------------------------------------------------- helpers


def sdk_spans(count: int = 2) -> list[ReadableSpan]:
    """Finished spans from a real SDK TracerProvider."""
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "checkout"}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("test.scope")
    for i in range(count):
        with tracer.start_as_current_span(
            f"chat gpt-4o-{i}",
            attributes={"gen_ai.request.model": "gpt-4o", "gen_ai.usage.input_tokens": 100 + i},
        ):
            pass
    provider.shutdown()
    return list(memory.get_finished_spans())


def export_request(names: Iterable[str] = ("a", "b")) -> ExportTraceServiceRequest:
    request = ExportTraceServiceRequest()
    scope_spans = request.resource_spans.add().scope_spans.add()
    for i, name in enumerate(names):
        span = scope_spans.spans.add(name=name, trace_id=bytes([i + 1]) * 16, span_id=bytes([i + 1]) * 8)
        span.attributes.add(key="note").value.string_value = f"value-{name}"
    return request


def post(
    server: OTLPServer,
    body: bytes | Iterable[bytes],
    content_type: str = PROTOBUF,
    *,
    path: str = "/v1/traces",
    method: str = "POST",
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", server.http_port, timeout=TIMEOUT)
    try:
        all_headers = {"Content-Type": content_type, **(headers or {})}
        conn.request(method, path, body=body, headers=all_headers)
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def grpc_call(server: OTLPServer, body: bytes, **kwargs: Any) -> bytes:
    with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
        return channel.unary_unary(EXPORT_METHOD)(body, timeout=TIMEOUT, **kwargs)


def rpc_error(server: OTLPServer, body: bytes, **kwargs: Any) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as info:
        grpc_call(server, body, **kwargs)
    return info.value


def status_of(body: bytes, content_type: str = PROTOBUF) -> status_pb2.Status:
    status = status_pb2.Status()
    if content_type == JSON:
        from google.protobuf import json_format

        json_format.Parse(body, status)
    else:
        status.ParseFromString(body)
    return status


def assert_still_up(server: OTLPServer, handler: RecordingHandler) -> None:
    """A normal export over both transports succeeds right after the hostile one."""
    before = len(handler.requests)
    code, _, body = post(server, export_request().SerializeToString())
    assert (code, body) == (200, b"")
    assert grpc_call(server, export_request().SerializeToString()) == b""
    assert len(handler.requests) == before + 2


# --------------------------------------------------------------------------- real SDK exporters


def test_sdk_grpc_exporter_delivers_spans(server: OTLPServer, handler: RecordingHandler) -> None:
    spans = sdk_spans()
    exporter = GrpcSpanExporter(
        endpoint=f"http://127.0.0.1:{server.grpc_port}", insecure=True, timeout=TIMEOUT
    )
    try:
        assert exporter.export(spans) is SpanExportResult.SUCCESS
    finally:
        exporter.shutdown()
    _assert_received(handler, spans)


def test_sdk_http_exporter_gzip_delivers_spans(server: OTLPServer, handler: RecordingHandler) -> None:
    spans = sdk_spans()
    exporter = HttpSpanExporter(
        endpoint=f"http://127.0.0.1:{server.http_port}/v1/traces",
        compression=Compression.Gzip,
        timeout=TIMEOUT,
    )
    try:
        assert exporter.export(spans) is SpanExportResult.SUCCESS
    finally:
        exporter.shutdown()
    _assert_received(handler, spans)


def _assert_received(handler: RecordingHandler, spans: list[ReadableSpan]) -> None:
    assert len(handler.requests) == 1
    received = {span.span_id: span for span in handler.spans}
    assert len(received) == len(spans)
    for sent in spans:
        context = sent.get_span_context()
        assert context is not None
        got = received[context.span_id.to_bytes(8, "big")]
        assert got.trace_id == context.trace_id.to_bytes(16, "big")
        assert got.name == sent.name
        attributes = {kv.key: kv.value for kv in got.attributes}
        assert attributes["gen_ai.request.model"].string_value == "gpt-4o"
        assert (
            attributes["gen_ai.usage.input_tokens"].int_value
            == (sent.attributes or {})["gen_ai.usage.input_tokens"]
        )
    resource = {
        kv.key: kv.value.string_value for kv in handler.requests[0].resource_spans[0].resource.attributes
    }
    assert resource["service.name"] == "checkout"


# --------------------------------------------------------------------------- OTLP/JSON

OTLP_JSON = {
    "resourceSpans": [
        {
            "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "web"}}]},
            "scopeSpans": [
                {
                    "scope": {"name": "manual", "futureField": True},
                    "spans": [
                        {
                            "traceId": "5B8EFFF798038103D269B633813FC60C",
                            "spanId": "eee19b7ec3c1b174",
                            "parentSpanId": "",
                            "name": "chat gpt-4o",
                            "kind": 3,
                            "startTimeUnixNano": "1544712660000000000",
                            "endTimeUnixNano": 1544712661000000000,
                            "attributes": [
                                {"key": "gen_ai.usage.input_tokens", "value": {"intValue": "1200"}},
                                {"key": "gen_ai.usage.output_tokens", "value": {"intValue": 34}},
                            ],
                            "status": {"code": 1},
                            "somethingNew": {"nested": [1, 2, 3]},
                        }
                    ],
                }
            ],
        }
    ]
}


def test_otlp_json_request_is_decoded_and_answered_in_json(
    server: OTLPServer, handler: RecordingHandler
) -> None:
    code, headers, body = post(server, json.dumps(OTLP_JSON).encode(), JSON)
    assert code == 200
    assert headers["content-type"] == JSON
    assert json.loads(body) == {}
    (span,) = handler.spans
    assert len(span.trace_id) == 16
    assert span.trace_id == bytes.fromhex("5b8efff798038103d269b633813fc60c")
    assert span.span_id == bytes.fromhex("eee19b7ec3c1b174")
    assert span.parent_span_id == b""
    assert span.kind == Span.SPAN_KIND_CLIENT
    assert span.start_time_unix_nano == 1544712660000000000
    assert span.end_time_unix_nano == 1544712661000000000
    assert [(kv.key, kv.value.int_value) for kv in span.attributes] == [
        ("gen_ai.usage.input_tokens", 1200),
        ("gen_ai.usage.output_tokens", 34),
    ]


# --------------------------------------------------------------------------- partial success


def test_partial_success_over_http_protobuf_json_and_grpc(
    server: OTLPServer, handler: RecordingHandler
) -> None:
    handler.result = IngestResult(rejected_spans=2, error_message="2 spans lack a model")
    request = export_request(["a", "b", "c"]).SerializeToString()

    code, headers, body = post(server, request)
    assert (code, headers["content-type"]) == (200, PROTOBUF)
    partial = ExportTraceServiceResponse.FromString(body).partial_success
    assert (partial.rejected_spans, partial.error_message) == (2, "2 spans lack a model")

    code, headers, body = post(server, json.dumps(OTLP_JSON).encode(), JSON)
    assert (code, headers["content-type"]) == (200, JSON)
    assert json.loads(body) == {
        "partialSuccess": {"rejectedSpans": "2", "errorMessage": "2 spans lack a model"}
    }

    with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
        response = TraceServiceStub(channel).Export(
            ExportTraceServiceRequest.FromString(request), timeout=TIMEOUT
        )
    assert (response.partial_success.rejected_spans, response.partial_success.error_message) == (
        2,
        "2 spans lack a model",
    )


# --------------------------------------------------------------------------- throttling


def test_overloaded_over_http_is_503_with_retry_after(server: OTLPServer, handler: RecordingHandler) -> None:
    handler.throttle_next, handler.retry_after_s = 2, 2.5
    for content_type, body in (
        (PROTOBUF, export_request().SerializeToString()),
        (JSON, json.dumps(OTLP_JSON).encode()),
    ):
        code, headers, answer = post(server, body, content_type)
        assert code in (429, 503)
        assert headers["retry-after"] == "3"  # whole seconds, rounded up
        assert headers["content-type"] == content_type
        status = status_of(answer, content_type)
        assert status.code == code_pb2.UNAVAILABLE
        retry = error_details_pb2.RetryInfo()
        assert status.details[0].Unpack(retry)
        assert retry.retry_delay.ToNanoseconds() == 2_500_000_000
    assert handler.requests == []


def test_overloaded_over_grpc_carries_retry_info_twice(server: OTLPServer, handler: RecordingHandler) -> None:
    handler.throttle_next, handler.retry_after_s = 1, 0.25
    error = rpc_error(server, export_request().SerializeToString())
    assert error.code() is grpc.StatusCode.UNAVAILABLE
    trailers = dict(error.trailing_metadata() or ())
    retry = error_details_pb2.RetryInfo.FromString(trailers["google.rpc.retryinfo-bin"])
    assert retry.retry_delay.ToNanoseconds() == 250_000_000
    status = status_pb2.Status.FromString(trailers["grpc-status-details-bin"])
    assert status.code == code_pb2.UNAVAILABLE
    detailed = error_details_pb2.RetryInfo()
    assert status.details[0].Unpack(detailed)
    assert detailed == retry


def test_sdk_exporters_retry_until_the_handler_stops_throttling(
    server: OTLPServer, handler: RecordingHandler
) -> None:
    spans = sdk_spans(1)
    handler.throttle_next, handler.retry_after_s = 2, 0.2
    grpc_exporter = GrpcSpanExporter(
        endpoint=f"http://127.0.0.1:{server.grpc_port}", insecure=True, timeout=TIMEOUT
    )
    try:
        assert grpc_exporter.export(spans) is SpanExportResult.SUCCESS
    finally:
        grpc_exporter.shutdown()
    assert (handler.calls, len(handler.requests)) == (3, 1)

    handler.throttle_next = 1  # HTTP Retry-After is whole seconds: one retry costs ~1 s
    http_exporter = HttpSpanExporter(
        endpoint=f"http://127.0.0.1:{server.http_port}/v1/traces", timeout=TIMEOUT
    )
    try:
        started = time.monotonic()
        assert http_exporter.export(spans) is SpanExportResult.SUCCESS
        assert time.monotonic() - started >= 0.9  # it honoured Retry-After: 1
    finally:
        http_exporter.shutdown()
    assert (handler.calls, len(handler.requests)) == (5, 2)


# --------------------------------------------------------------------------- hostile input


def test_truncated_and_random_protobuf_are_400_invalid_argument(
    server: OTLPServer, handler: RecordingHandler
) -> None:
    valid = export_request().SerializeToString()
    garbage = random.Random(1234).randbytes(4096)
    for body in (valid[: len(valid) - 7], garbage):
        code, headers, answer = post(server, body)
        assert (code, headers["content-type"]) == (400, PROTOBUF)
        status = status_of(answer)
        assert status.code == code_pb2.INVALID_ARGUMENT
        assert status.message
        assert status.details[0].Is(error_details_pb2.BadRequest.DESCRIPTOR)
        assert rpc_error(server, body).code() is grpc.StatusCode.INVALID_ARGUMENT
    assert handler.calls == 0
    assert_still_up(server, handler)


@pytest.mark.parametrize(
    "body",
    [b'{"resourceSpans": [', b'{"resourceSpans": [{"scopeSpans": "\xff\xfe"}]}', b"", b"[1, 2]"],
    ids=["malformed", "invalid-utf8", "empty", "not-an-object"],
)
def test_bad_json_is_400_with_json_status(server: OTLPServer, handler: RecordingHandler, body: bytes) -> None:
    code, headers, answer = post(server, body, JSON)
    assert (code, headers["content-type"]) == (400, JSON)
    assert json.loads(answer)["code"] == code_pb2.INVALID_ARGUMENT
    assert handler.calls == 0
    assert_still_up(server, handler)


def test_wrong_content_type_method_and_path(server: OTLPServer, handler: RecordingHandler) -> None:
    assert post(server, b"{}", "text/plain")[0] == 415
    assert post(server, b"x", PROTOBUF, headers={"Content-Encoding": "br"})[0] == 415
    code, headers, _ = post(server, b"", method="GET")
    assert (code, headers["allow"]) == (405, "POST")
    assert post(server, b"", path="/v1/metrics")[0] == 404
    assert handler.calls == 0
    assert_still_up(server, handler)


def gzip_bomb(total: int = 1 << 30, block: int = 1 << 20) -> tuple[int, Iterator[bytes]]:
    """A valid gzip stream of ``total`` zero bytes, produced chunk by chunk (never held in memory).

    After a full flush deflate forgets its history, so every further block of zeros compresses to
    the same bytes: compress two blocks, then repeat the second one.
    """
    zeros = bytes(block)
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    first = compressor.compress(zeros) + compressor.flush(zlib.Z_FULL_FLUSH)
    repeat = compressor.compress(zeros) + compressor.flush(zlib.Z_FULL_FLUSH)
    final_block = compressor.flush()[:-8]  # drop the trailer of the 2-block stream
    crc = 0
    for _ in range(total // block):
        crc = zlib.crc32(zeros, crc)
    tail = final_block + struct.pack("<II", crc, total & 0xFFFFFFFF)
    count = total // block
    length = len(first) + (count - 1) * len(repeat) + len(tail)

    def chunks() -> Iterator[bytes]:
        yield first
        for _ in range(count - 1):
            yield repeat
        yield tail

    return length, chunks()


def test_gzip_bomb_helper_builds_valid_gzip() -> None:
    length, chunks = gzip_bomb(total=4 << 20)
    data = b"".join(chunks)
    assert len(data) == length
    assert zlib.decompress(data, 16 + zlib.MAX_WBITS) == bytes(4 << 20)


def test_gzip_bomb_is_cut_off_at_the_limit_with_413(server: OTLPServer, handler: RecordingHandler) -> None:
    length, chunks = gzip_bomb()
    assert length < 2 << 20  # ~1 MiB on the wire, 1 GiB inflated
    code, _, answer = post(
        server, chunks, headers={"Content-Encoding": "gzip", "Content-Length": str(length)}
    )
    assert code == 413
    assert status_of(answer).code == code_pb2.RESOURCE_EXHAUSTED
    assert handler.calls == 0
    assert_still_up(server, handler)


def stream_upload(server: OTLPServer, head: str, chunks: Iterator[bytes]) -> tuple[bytes, int]:
    """Send a request body chunk by chunk while watching for an early answer.

    Returns the start of the answer and how many body bytes were sent before it came. A server
    that refuses a body may close the connection mid-upload, so send errors end the upload.
    """
    sent, received, pending = 0, b"", b""
    deadline = time.monotonic() + TIMEOUT
    with socket.create_connection(("127.0.0.1", server.http_port), timeout=TIMEOUT) as sock:
        sock.sendall(head.replace("\n", "\r\n").encode() + b"\r\n")
        sock.setblocking(False)
        uploading = True
        while b"\r\n" not in received and time.monotonic() < deadline:
            readable, writable, _ = select.select([sock], [sock] if uploading else [], [], 0.5)
            if readable:
                try:
                    data = sock.recv(65536)
                except ConnectionResetError:
                    break
                if not data:
                    break
                received += data
            elif writable:
                if not pending:
                    pending = next(chunks, b"")
                    uploading = bool(pending)
                    continue
                try:
                    count = sock.send(pending)
                except (BrokenPipeError, ConnectionResetError):
                    uploading = False
                    continue
                sent, pending = sent + count, pending[count:]
    return received, sent


def test_100_mb_body_is_refused_with_413_before_it_is_read(
    server: OTLPServer, handler: RecordingHandler
) -> None:
    size = 100_000_000
    chunks = (bytes(1 << 20) for _ in range(size >> 20))
    head = f"POST /v1/traces HTTP/1.1\nHost: x\nContent-Type: {PROTOBUF}\nContent-Length: {size}\n"
    answer, sent = stream_upload(server, head, chunks)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:100]
    assert sent < size // 2  # answered long before the body could have been read
    assert handler.calls == 0
    assert_still_up(server, handler)


def test_size_limits_on_small_server(start_otlp_server: StartServer, handler: RecordingHandler) -> None:
    server = start_otlp_server(handler, max_body_bytes=1 << 20)
    big = export_request(["x" * (2 << 20)]).SerializeToString()
    # chunked upload (no Content-Length): counted as it is read
    pieces = (b"%x\r\n%s\r\n" % (len(piece), piece) for piece in (big[: 1 << 19], big[1 << 19 :], b""))
    head = f"POST /v1/traces HTTP/1.1\nHost: x\nContent-Type: {PROTOBUF}\nTransfer-Encoding: chunked\n"
    answer, _ = stream_upload(server, head, pieces)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:100]
    # gzip that inflates past the limit
    code, _, _ = post(server, zlib.compress(big), headers={"Content-Encoding": "deflate"})
    assert code == 413
    # gRPC: RESOURCE_EXHAUSTED from grpc itself, not retryable (no RetryInfo), also when compressed
    for compression in (None, grpc.Compression.Gzip):
        error = rpc_error(server, big, compression=compression)
        assert error.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "google.rpc.retryinfo-bin" not in dict(error.trailing_metadata() or ())
    assert handler.calls == 0
    assert_still_up(server, handler)


def test_invalid_utf8_in_one_attribute_keeps_both_spans(
    server: OTLPServer, handler: RecordingHandler
) -> None:
    body = export_request(["good", "bad"]).SerializeToString()
    assert body.count(b"value-bad") == 1
    body = body.replace(b"value-bad", b"value\xffbad")  # same length, so framing stays valid

    code, _, answer = post(server, body)
    assert code == 200
    partial = ExportTraceServiceResponse.FromString(answer).partial_success
    assert partial.rejected_spans == 0
    assert "invalid UTF-8" in partial.error_message
    assert [span.name for span in handler.spans] == ["good", "bad"]
    assert handler.spans[1].attributes[0].value.string_value == "value\ufffdbad"
    assert handler.spans[0].attributes[0].value.string_value == "value-good"

    partial = ExportTraceServiceResponse.FromString(grpc_call(server, body)).partial_success
    assert (partial.rejected_spans, "invalid UTF-8" in partial.error_message) == (0, True)
    assert [span.name for span in handler.spans] == ["good", "bad", "good", "bad"]


def test_handler_crash_is_500_internal_logged_once(
    server: OTLPServer, handler: RecordingHandler, caplog: pytest.LogCaptureFixture
) -> None:
    handler.error = RuntimeError("database on fire")
    body = export_request().SerializeToString()
    with caplog.at_level(logging.ERROR, logger="spanmeter.receiver"):
        code, _, answer = post(server, body)
        assert code == 500
        assert "database on fire" not in status_of(answer).message  # no internals leak to clients
        assert rpc_error(server, body).code() is grpc.StatusCode.INTERNAL
    crashes = [r for r in caplog.records if r.exc_info and r.name.startswith("spanmeter.receiver")]
    assert len(crashes) == 2  # one per request, each with its traceback
    handler.error = None
    assert_still_up(server, handler)


# --------------------------------------------------------------------------- server lifecycle


def test_extra_routes_share_the_http_port(start_otlp_server: StartServer, handler: RecordingHandler) -> None:
    def healthz(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "2")])
        return [b"ok"]

    server = start_otlp_server(handler, extra_http_routes={"/healthz": healthz}, grpc_port=None)
    assert post(server, b"", method="GET", path="/healthz")[::2] == (200, b"ok")
    assert post(server, export_request().SerializeToString())[0] == 200
    with pytest.raises(RuntimeError):
        _ = server.grpc_port


def test_busy_port_fails_start(start_otlp_server: StartServer, handler: RecordingHandler) -> None:
    first = start_otlp_server(handler)
    with pytest.raises(OSError):
        OTLPServer(handler, http_port=first.http_port, grpc_port=None).start()
    with pytest.raises(OSError):
        OTLPServer(handler, grpc_port=first.grpc_port, http_port=None).start()


def test_stop_lets_in_flight_requests_finish(
    start_otlp_server: StartServer, handler: RecordingHandler
) -> None:
    server = start_otlp_server(handler)
    handler.delay_s = 0.5
    body = export_request().SerializeToString()
    answers: dict[str, Any] = {}

    def http_client() -> None:
        answers["http"] = post(server, body)[0]

    def grpc_client() -> None:
        answers["grpc"] = grpc_call(server, body)

    clients = [threading.Thread(target=http_client), threading.Thread(target=grpc_client)]
    for client in clients:
        client.start()
    assert handler.wait_entered(2)  # both requests are inside the handler now
    http_port, grpc_port = server.http_port, server.grpc_port
    server.stop(grace_s=5.0)
    assert len(handler.requests) == 2  # both handler calls completed before stop() returned
    for client in clients:
        client.join(TIMEOUT)
    assert answers == {"http": 200, "grpc": b""}
    for port in (http_port, grpc_port):  # the ports are released
        with socket.socket() as probe, pytest.raises(ConnectionRefusedError):
            probe.settimeout(TIMEOUT)
            probe.connect(("127.0.0.1", port))


# --------------------------------------------------------------------------- the WSGI app on its own


def call_app(
    app: WSGIApp,
    body: bytes,
    *,
    encoding: str = "",
    content_length: str | None = None,
    terminated: bool = False,
    path: str = "/v1/traces",
) -> tuple[int, bytes]:
    environ: dict[str, Any] = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": path,
        "CONTENT_TYPE": PROTOBUF,
        "wsgi.input": io.BytesIO(body),
    }
    if encoding:
        environ["HTTP_CONTENT_ENCODING"] = encoding
    if terminated:
        environ["wsgi.input_terminated"] = True
    else:
        environ["CONTENT_LENGTH"] = str(len(body)) if content_length is None else content_length
    status: list[str] = []
    answer = b"".join(app(environ, lambda line, headers, exc_info=None: status.append(line)))
    return int(status[0].split()[0]), answer


def test_wsgi_app_content_encodings(handler: RecordingHandler) -> None:
    app = make_otlp_wsgi_app(handler, max_body_bytes=1 << 20)
    body = export_request().SerializeToString()
    raw = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
    two_members = gzip.compress(body[:10]) + gzip.compress(body[10:])
    assert call_app(app, zlib.compress(body), encoding="deflate") == (200, b"")
    assert call_app(app, raw.compress(body) + raw.flush(), encoding="deflate") == (200, b"")
    assert call_app(app, two_members, encoding="gzip") == (200, b"")
    assert call_app(app, gzip.compress(body), encoding="x-gzip") == (200, b"")
    assert call_app(app, body, terminated=True) == (200, b"")  # de-chunked body, read to EOF
    assert len(handler.requests) == 5
    assert all(request == export_request() for request in handler.requests)
    assert call_app(app, gzip.compress(body)[:-12], encoding="gzip")[0] == 400  # truncated
    assert call_app(app, gzip.compress(body) + b"junk", encoding="gzip")[0] == 400
    assert call_app(app, b"not gzip at all", encoding="gzip")[0] == 400
    assert call_app(app, body, content_length="12x")[0] == 400
    assert call_app(app, body, content_length=str(len(body) + 5))[0] == 400  # client hung up early
    assert call_app(app, body, content_length="")[0] == 411
    assert call_app(app, bytes(2 << 20), terminated=True)[0] == 413
    assert len(handler.requests) == 5


def test_router_matches_exact_paths_then_longest_prefix(handler: RecordingHandler) -> None:
    def answer(text: bytes) -> WSGIApp:
        def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
            start_response("200 OK", [])
            return [text]

        return app

    router = make_router(
        {"/v1/traces": make_otlp_wsgi_app(handler), "/api/": answer(b"api"), "/api/v1/": answer(b"v1")}
    )
    assert call_app(router, b"") == (200, b"")
    assert call_app(router, b"", path="/api/v1/costs") == (200, b"v1")
    assert call_app(router, b"", path="/api/other") == (200, b"api")
    assert call_app(router, b"", path="/v1/traces/")[0] == 404
    with pytest.raises(ValueError, match="must start with"):
        make_router({"metrics": answer(b"")})


def test_stop_answers_new_requests_on_kept_alive_connections_with_503(start_otlp_server: StartServer) -> None:
    release = threading.Event()
    slow_started = threading.Event()

    def handler(request: ExportTraceServiceRequest) -> IngestResult:
        if request.resource_spans[0].scope_spans[0].spans[0].name == "slow":
            slow_started.set()
            release.wait(TIMEOUT)
        return IngestResult()

    server = start_otlp_server(handler, grpc_port=None)
    kept_alive = http.client.HTTPConnection("127.0.0.1", server.http_port, timeout=TIMEOUT)
    slow_answer: list[int] = []
    try:
        fast = export_request(["fast"]).SerializeToString()
        kept_alive.request("POST", "/v1/traces", fast, {"Content-Type": PROTOBUF})
        assert kept_alive.getresponse().read() == b""  # the connection is open and idle now

        slow = threading.Thread(
            target=lambda: slow_answer.append(post(server, export_request(["slow"]).SerializeToString())[0])
        )
        slow.start()
        assert slow_started.wait(TIMEOUT)
        stopper = threading.Thread(target=server.stop, kwargs={"grace_s": 5.0})
        stopper.start()
        deadline = time.monotonic() + TIMEOUT
        while True:  # until stop() has begun draining, requests are still served
            kept_alive.request("POST", "/v1/traces", fast, {"Content-Type": PROTOBUF})
            response = kept_alive.getresponse()
            response.read()
            if response.status != 200 or time.monotonic() > deadline:
                break
            time.sleep(0.01)
        assert (response.status, response.getheader("Retry-After")) == (503, "1")
        assert stopper.is_alive()  # still waiting for the slow request
        release.set()
        stopper.join(TIMEOUT)
        slow.join(TIMEOUT)
        assert slow_answer == [200]
    finally:
        release.set()
        kept_alive.close()
