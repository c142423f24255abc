"""OTLP/gRPC ``TraceService/Export`` servicer.

The method is registered with a raw-bytes handler (no request deserializer), so the servicer
runs the same decode path as HTTP: strict protobuf first, then the lenient fallback that repairs
invalid UTF-8 instead of rejecting the whole batch (grpc's own deserializer would fail the call).

Error mapping follows the OTLP spec and what real clients read:

* bad data -> ``INVALID_ARGUMENT`` with a ``BadRequest`` detail (never retried);
* :class:`Overloaded` -> ``UNAVAILABLE`` with ``RetryInfo`` twice: in the rich status details
  (``grpc-status-details-bin``, read by the Collector) and in the trailing metadata key
  ``google.rpc.retryinfo-bin`` (read by the Python SDK exporter);
* :class:`RateLimited` (a key over its rate limit) -> ``RESOURCE_EXHAUSTED`` with ``RetryInfo``
  in both places, which makes it retryable under the OTLP spec;
* oversized messages -> ``RESOURCE_EXHAUSTED`` without ``RetryInfo``, done by grpc itself through
  ``grpc.max_receive_message_length``; gzip-compressed requests are inflated by grpc too.

Example::

    server = make_grpc_server(handler)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Final

import google.rpc.code_pb2 as code_pb2  # the module form: google.rpc itself has no stub, its modules do
import grpc
from google.protobuf.message import Message
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from spanmeter.auth import AuthError, Identity
from spanmeter.receiver import _common as reply
from spanmeter.receiver import contract
from spanmeter.receiver.decode import DecodedRequest, decode_protobuf_detailed
from spanmeter.receiver.http_app import Authenticate

__all__ = [
    "RETRY_INFO_METADATA_KEY",
    "STATUS_DETAILS_METADATA_KEY",
    "TRACE_SERVICE",
    "OTLPTraceServicer",
    "add_trace_servicer",
    "make_grpc_server",
]

_logger = logging.getLogger(__name__)

TRACE_SERVICE: Final = ExportTraceServiceRequest.DESCRIPTOR.file.services_by_name["TraceService"].full_name
STATUS_DETAILS_METADATA_KEY: Final = "grpc-status-details-bin"
"""Where gRPC carries a serialized ``google.rpc.Status`` (what ``grpcio-status`` / Go's ``status`` read)."""
RETRY_INFO_METADATA_KEY: Final = "google.rpc.retryinfo-bin"
"""Trailing metadata key the OpenTelemetry Python SDK exporter reads its backoff from."""


class _RichStatus(grpc.Status):
    """A ``grpc.Status`` for ``ServicerContext.abort_with_status`` (what ``grpcio-status`` builds)."""

    def __init__(self, code: grpc.StatusCode, details: str, trailing_metadata: tuple[tuple[str, bytes], ...]):
        self.code = code
        self.details = details
        self.trailing_metadata = trailing_metadata


def _rich_status(
    code: grpc.StatusCode,
    rpc_code: int,
    message: str,
    details: Sequence[Message] = (),
    extra_metadata: tuple[tuple[str, bytes], ...] = (),
) -> _RichStatus:
    status = reply.rpc_status(rpc_code, message, details)
    metadata = ((STATUS_DETAILS_METADATA_KEY, status.SerializeToString()), *extra_metadata)
    return _RichStatus(code, message, metadata)


def _invalid_argument(exc: contract.InvalidRequest) -> _RichStatus:
    detail = reply.bad_request(str(exc), exc.field)
    return _rich_status(grpc.StatusCode.INVALID_ARGUMENT, code_pb2.INVALID_ARGUMENT, str(exc), [detail])


def _unavailable(exc: contract.Overloaded) -> _RichStatus:
    delay = reply.retry_info(exc.retry_after_s)
    return _rich_status(
        grpc.StatusCode.UNAVAILABLE,
        code_pb2.UNAVAILABLE,
        str(exc) or "server overloaded, retry later",
        [delay],
        ((RETRY_INFO_METADATA_KEY, delay.SerializeToString()),),
    )


def _rate_limited(exc: contract.RateLimited) -> _RichStatus:
    delay = reply.retry_info(exc.retry_after_s)
    return _rich_status(
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        code_pb2.RESOURCE_EXHAUSTED,
        str(exc),
        [delay],
        ((RETRY_INFO_METADATA_KEY, delay.SerializeToString()),),
    )


class OTLPTraceServicer(trace_service_pb2_grpc.TraceServiceServicer):
    """``TraceService`` implementation that hands decoded requests to one ingest handler."""

    def __init__(
        self,
        handler: contract.IngestHandler,
        authenticate: Authenticate | None = None,
        admit: contract.Admit | None = None,
    ) -> None:
        self._handler = handler
        self._request_type = contract.handler_request_type(handler)
        self._authenticate = authenticate
        self._admit = admit

    def _caller(self, context: grpc.ServicerContext) -> tuple[Identity | None, _RichStatus | None]:
        """Who calls (None while authentication is off), or the status refusing a caller
        without a valid ingest key (metadata ``authorization: Bearer <key>``, what
        ``OTEL_EXPORTER_OTLP_HEADERS`` sends)."""
        if self._authenticate is None:
            return None, None
        header = next((str(v) for k, v in context.invocation_metadata() if k == "authorization"), None)
        try:
            return self._authenticate(header), None
        except AuthError as refused:
            if refused.kind == "unauthenticated":
                return None, _rich_status(
                    grpc.StatusCode.UNAUTHENTICATED, code_pb2.UNAUTHENTICATED, refused.message
                )
            return None, _rich_status(
                grpc.StatusCode.PERMISSION_DENIED, code_pb2.PERMISSION_DENIED, refused.message
            )

    def Export(self, request: Any, context: grpc.ServicerContext) -> bytes:
        """Decode, ingest and answer one export; ``request`` is raw bytes (or an already parsed message)."""
        caller, status = self._caller(context)
        tenants = None if caller is None else caller.tenants  # an ingest key limited to tenants
        decoded: DecodedRequest | None = None
        if status is not None:
            pass  # refused before decoding: an unknown caller costs nothing
        elif isinstance(request, ExportTraceServiceRequest):  # registered through the generated helper
            decoded = DecodedRequest(request)
        else:
            try:
                decoded = decode_protobuf_detailed(request, self._request_type)
            except contract.InvalidRequest as exc:
                _log_rejected(context, str(exc))
                status = _invalid_argument(exc)
        if decoded is not None and self._admit is not None:
            try:
                self._admit(caller, decoded.request)
            except contract.RateLimited as exc:  # before the handler: nothing of it is stored
                _logger.debug("OTLP/gRPC request from %s refused: %s", context.peer(), exc)
                status, decoded = _rate_limited(exc), None
        if decoded is not None:
            if decoded.repaired_strings or decoded.dropped_values:
                _logger.warning(
                    "OTLP/gRPC request from %s: repaired %d strings with invalid UTF-8, dropped %d unusable values",
                    context.peer(),
                    decoded.repaired_strings,
                    decoded.dropped_values,
                )
            try:
                result = reply.checked_result(reply.ingest(self._handler, decoded.request, tenants))
                return reply.export_response(
                    *reply.partial_success(result, decoded.repaired_strings, decoded.dropped_values)
                )
            except contract.Overloaded as exc:
                _logger.debug("OTLP/gRPC request from %s throttled: handler overloaded", context.peer())
                status = _unavailable(exc)
            except contract.InvalidRequest as exc:
                _log_rejected(context, str(exc))
                status = _invalid_argument(exc)
            except Exception:
                _logger.exception("OTLP/gRPC ingest handler failed on a request from %s", context.peer())
                status = _rich_status(
                    grpc.StatusCode.INTERNAL, code_pb2.INTERNAL, "internal error while ingesting spans"
                )
        # abort_with_status raises; it sits outside the try blocks so it is never caught above.
        assert status is not None
        context.abort_with_status(status)
        raise AssertionError("abort_with_status returned")  # pragma: no cover


def _log_rejected(context: grpc.ServicerContext, reason: str) -> None:
    # Once per request, never the payload.
    _logger.warning("OTLP/gRPC request from %s rejected: %s", context.peer(), reason)


def add_trace_servicer(
    server: grpc.Server,
    handler: contract.IngestHandler,
    authenticate: Authenticate | None = None,
    admit: contract.Admit | None = None,
) -> OTLPTraceServicer:
    """Register ``TraceService/Export`` on ``server`` with raw-bytes (de)serialization."""
    servicer = OTLPTraceServicer(handler, authenticate, admit)
    method_handlers: dict[str, grpc.RpcMethodHandler[bytes, bytes]] = {
        # No (de)serializers: the servicer gets the raw bytes and returns serialized bytes.
        "Export": grpc.unary_unary_rpc_method_handler(servicer.Export)
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(TRACE_SERVICE, method_handlers),))
    # Registered methods are matched inside grpc core, skipping a Python lookup per call.
    add_registered = getattr(server, "add_registered_method_handlers", None)
    if add_registered is not None:
        add_registered(TRACE_SERVICE, method_handlers)
    return servicer


def make_grpc_server(
    handler: contract.IngestHandler,
    *,
    max_message_bytes: int = contract.DEFAULT_MAX_BODY_BYTES,
    workers: int = 8,
    authenticate: Authenticate | None = None,
    admit: contract.Admit | None = None,
) -> grpc.Server:
    """A ``grpc.Server`` (not yet bound or started) serving the OTLP trace service.

    Args:
        handler: the ingest handler; called from up to ``workers`` threads at once.
        max_message_bytes: largest accepted (decompressed) message; larger -> RESOURCE_EXHAUSTED.
        workers: size of the thread pool running handler calls.

    Raises:
        ValueError: a limit is not positive.
    """
    if max_message_bytes <= 0 or workers <= 0:
        raise ValueError(f"must be positive: max_message_bytes={max_message_bytes!r}, workers={workers!r}")
    server = grpc.server(
        ThreadPoolExecutor(max_workers=workers, thread_name_prefix="spanmeter-otlp-grpc"),
        options=[
            ("grpc.max_receive_message_length", max_message_bytes),
            # Without this, binding a port another process already serves would silently succeed.
            ("grpc.so_reuseport", 0),
        ],
    )
    add_trace_servicer(server, handler, authenticate, admit)
    return server
