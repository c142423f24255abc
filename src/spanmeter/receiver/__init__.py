"""OTLP receiver transport: gRPC servicer, WSGI app and decoders around one ingest handler.

Transport only: requests are decoded into ``ExportTraceServiceRequest`` and handed to an
:class:`IngestHandler`; normalising, pricing and storage live behind that handler.

Example::

    def handler(request: ExportTraceServiceRequest) -> IngestResult:
        return IngestResult()

    with OTLPServer(handler, grpc_port=0, http_port=0) as server:
        ...  # export to 127.0.0.1:server.grpc_port or http://127.0.0.1:{server.http_port}/v1/traces
"""

from __future__ import annotations

from spanmeter.receiver.contract import (
    DEFAULT_MAX_BODY_BYTES,
    Admit,
    IngestHandler,
    IngestResult,
    InvalidRequest,
    Overloaded,
    RateLimited,
)
from spanmeter.receiver.decode import DecodedRequest, decode_json, decode_protobuf, decode_protobuf_detailed
from spanmeter.receiver.grpc_server import OTLPTraceServicer, add_trace_servicer, make_grpc_server
from spanmeter.receiver.http_app import WSGIApp, make_not_found_app, make_otlp_wsgi_app, make_router
from spanmeter.receiver.key_gate import require_key
from spanmeter.receiver.server import TRACES_PATH, OTLPServer
from spanmeter.receiver.tls import TLSFiles

__all__ = [
    "DEFAULT_MAX_BODY_BYTES",
    "TRACES_PATH",
    "Admit",
    "DecodedRequest",
    "IngestHandler",
    "IngestResult",
    "InvalidRequest",
    "OTLPServer",
    "OTLPTraceServicer",
    "Overloaded",
    "RateLimited",
    "TLSFiles",
    "WSGIApp",
    "add_trace_servicer",
    "decode_json",
    "decode_protobuf",
    "decode_protobuf_detailed",
    "make_grpc_server",
    "make_not_found_app",
    "make_otlp_wsgi_app",
    "make_router",
    "require_key",
]
