"""The contract between the OTLP transport and the ingest pipeline behind it.

The transport (gRPC servicer, WSGI app) decodes an OTLP trace export into an
``ExportTraceServiceRequest`` and hands it to exactly one :class:`IngestHandler`.
The handler's outcome is mapped onto OTLP's answers:

* an :class:`IngestResult` -> success, or partial success when it carries rejected spans
  or a message (OTLP also uses partial success for warnings with zero rejected spans);
* :class:`Overloaded` -> retryable throttling (HTTP 503 + ``Retry-After``,
  gRPC ``UNAVAILABLE`` + ``RetryInfo``), so clients keep the data and resend it later;
* :class:`RateLimited` (raised by the transport's ``admit`` check, before the handler) ->
  retryable throttling of one caller (HTTP 429 + ``Retry-After``, gRPC ``RESOURCE_EXHAUSTED``
  + ``RetryInfo``, which makes it retryable under the OTLP spec);
* :class:`InvalidRequest` -> permanent rejection (HTTP 400, gRPC ``INVALID_ARGUMENT``);
  clients drop the data and do not retry;
* anything else -> HTTP 500 / gRPC ``INTERNAL`` (logged with its traceback).

Example::

    def handler(request: ExportTraceServiceRequest) -> IngestResult:
        stored, rejected = pipeline.ingest(request)  # returns once the batch is durable
        return IngestResult(rejected_spans=rejected, error_message="..." if rejected else "")
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, Protocol

from google.protobuf.message import Message
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

__all__ = [
    "DEFAULT_MAX_BODY_BYTES",
    "Admit",
    "IngestHandler",
    "IngestResult",
    "InvalidRequest",
    "Overloaded",
    "RateLimited",
    "handler_request_type",
]

DEFAULT_MAX_BODY_BYTES: Final = 64 * 1024 * 1024
"""Largest accepted request, measured after decompression (the OTLP spec's recommended 64 MiB)."""


@dataclass(frozen=True, slots=True)
class IngestResult:
    """What the pipeline did with one export request."""

    rejected_spans: int = 0
    """Spans that were dropped for good (bad data); the client will not resend them."""
    error_message: str = ""
    """Human-readable English reason. Non-empty means OTLP partial success, also with 0 rejected spans
    (OTLP's way of returning a warning)."""


class Overloaded(Exception):
    """The pipeline cannot keep up: the client should resend the same data later.

    Raising it instead of buffering without bound keeps the receiver's promise that an
    acknowledged span is a stored span.
    """

    retry_after_s: float
    """How long the client should wait before retrying, in seconds."""

    def __init__(
        self, message: str = "server overloaded, retry later", *, retry_after_s: float = 1.0
    ) -> None:
        super().__init__(message)
        if not math.isfinite(retry_after_s) or retry_after_s < 0:
            retry_after_s = 1.0
        self.retry_after_s = retry_after_s


class RateLimited(Exception):
    """One caller sends more spans than its limit allows: it should resend the same data later.

    Unlike :class:`Overloaded` the receiver is fine; only this caller must slow down.
    """

    retry_after_s: float
    """When the caller's request would fit its limit again, in seconds."""

    def __init__(self, message: str, *, retry_after_s: float) -> None:
        super().__init__(message)
        if not math.isfinite(retry_after_s) or retry_after_s < 0:
            retry_after_s = 1.0
        self.retry_after_s = retry_after_s


Admit = Callable[[Any, Any], None]
"""Checked by the transports between decoding a request and handing it to the handler:
``admit(caller, request)`` with what the transport's ``authenticate`` returned for the
request (None while authentication is off) and the decoded request; raises
:class:`RateLimited` to refuse it, so nothing of the request is stored."""


class InvalidRequest(Exception):
    """The request is permanently unusable (malformed bytes, wrong schema).

    The message goes back to the client, so it must not echo the payload at length.
    """

    field: str
    """Dotted path of the offending field, when known (reported as a ``BadRequest`` field violation)."""

    def __init__(self, message: str, *, field: str = "") -> None:
        super().__init__(message)
        self.field = field


class IngestHandler(Protocol):
    """The single plug point behind the transport.

    A handler may also carry a ``request_type`` attribute: a message class with the wire
    format of ``ExportTraceServiceRequest`` (a descriptor twin) that protobuf bodies are then
    parsed into instead, so the handler can read them more cheaply (see
    :func:`handler_request_type`). OTLP/JSON bodies still arrive as ``ExportTraceServiceRequest``.
    """

    def __call__(self, request: ExportTraceServiceRequest) -> IngestResult:
        """Ingest one decoded export request.

        A request sent with an ingest key limited to tenants is handed over as
        ``handler(request, tenants=frozenset(...))`` instead (the handler must then accept
        ``tenants``, as :class:`~spanmeter.ingest.IngestPipeline` does, and keep only spans
        of those tenants); every other request as ``handler(request)``.

        Blocks until the batch is durable: the transport acknowledges the client only after
        this returns. Called concurrently from the transport's worker threads.

        Raises:
            Overloaded: the client should retry later.
            InvalidRequest: the data is permanently bad.
        """
        ...


def handler_request_type(handler: object) -> type[Message] | None:
    """The message class ``handler`` wants protobuf bodies parsed into, or None for the default.

    An optional attribute rather than a Protocol member, so that plain functions stay valid
    handlers.
    """
    wanted = getattr(handler, "request_type", None)
    if isinstance(wanted, type) and issubclass(wanted, Message):
        return wanted
    return None
