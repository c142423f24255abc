"""A minimal OTLP/HTTP traces endpoint for SDK-side tests: records what exporters send.

It decodes ``ExportTraceServiceRequest`` protobuf (gzip or not) into flat span records,
and can be told to answer with an error status (e.g. 503 with ``Retry-After``) to test how
the app side behaves when the receiver is unhealthy. The full receiver is tested
elsewhere; this keeps SDK tests independent of it.
"""

from __future__ import annotations

import gzip
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

__all__ = ["CapturedSpan", "OTLPCapture", "otlp_capture"]


def _value(v: AnyValue) -> Any:
    kind = v.WhichOneof("value")
    if kind == "array_value":
        return tuple(_value(x) for x in v.array_value.values)
    return getattr(v, kind) if kind else None


@dataclass
class CapturedSpan:
    name: str
    trace_id: bytes
    span_id: bytes
    attributes: dict[str, Any]
    resource: dict[str, Any]


@dataclass
class OTLPCapture:
    url: str = ""
    spans: list[CapturedSpan] = field(default_factory=list)
    requests: int = 0
    status: int = 200
    retry_after: str | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)


def _handler(state: OTLPCapture) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            return

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            with state.lock:
                state.requests += 1
                status, retry_after = state.status, state.retry_after
            if status != 200:
                self.send_response(status)
                if retry_after is not None:
                    self.send_header("Retry-After", retry_after)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if self.headers.get("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
            request = ExportTraceServiceRequest.FromString(body)
            captured = []
            for rs in request.resource_spans:
                resource = {kv.key: _value(kv.value) for kv in rs.resource.attributes}
                for ss in rs.scope_spans:
                    for span in ss.spans:
                        attributes = {kv.key: _value(kv.value) for kv in span.attributes}
                        captured.append(
                            CapturedSpan(span.name, span.trace_id, span.span_id, attributes, resource)
                        )
            with state.lock:
                state.spans.extend(captured)
            data = ExportTraceServiceResponse().SerializeToString()
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Handler


@contextmanager
def otlp_capture() -> Iterator[OTLPCapture]:
    """Serve on 127.0.0.1 at a free port; ``state.url`` is the base URL (no path)."""
    state = OTLPCapture()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, name="otlp-capture", daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
