"""Answer-building helpers shared by the HTTP and gRPC transports, so both say the same thing."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

import google.rpc.error_details_pb2 as error_details_pb2  # google.rpc itself has no stub, its modules do
import google.rpc.status_pb2 as status_pb2
from google.protobuf.any_pb2 import Any as AnyProto
from google.protobuf.message import Message
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTracePartialSuccess,
    ExportTraceServiceResponse,
)

from spanmeter.receiver.contract import IngestHandler, IngestResult
from spanmeter.receiver.decode import repair_warning

from ..timeunits import NS_PER_SECOND

__all__ = [
    "MAX_MESSAGE_CHARS",
    "bad_request",
    "checked_result",
    "export_response",
    "ingest",
    "partial_success",
    "retry_info",
    "rpc_status",
]

MAX_MESSAGE_CHARS: Final = 16 * 1024
"""Cap on messages we send back; keeps answers far below OTLP's recommended 4 MiB response limit."""


def partial_success(result: IngestResult, repaired_strings: int, dropped_values: int = 0) -> tuple[int, str]:
    """``(rejected_spans, error_message)`` merging the handler's outcome with transport warnings.

    Both zero/empty means plain success (``partial_success`` left unset, as OTLP requires).
    """
    messages = [result.error_message] if result.error_message else []
    if result.rejected_spans > 0 and not result.error_message:
        messages.append(f"{result.rejected_spans} spans rejected")
    if repaired_strings or dropped_values:
        messages.append(repair_warning(repaired_strings, dropped_values))
    return max(0, result.rejected_spans), "; ".join(messages)[:MAX_MESSAGE_CHARS]


def export_response(rejected: int, message: str) -> bytes:
    """The protobuf answer to an export, as :func:`partial_success` gave it.

    Plain success is an empty message (zero bytes), ``partial_success`` left unset as OTLP
    requires; both transports answer with these same bytes.
    """
    if not (rejected or message):
        return b""  # an empty ExportTraceServiceResponse serialises to nothing
    partial = ExportTracePartialSuccess(rejected_spans=rejected, error_message=message)
    return ExportTraceServiceResponse(partial_success=partial).SerializeToString()


def rpc_status(code: int, message: str, details: Iterable[Message] = ()) -> status_pb2.Status:
    """A ``google.rpc.Status`` with each detail packed into an ``Any``."""
    status = status_pb2.Status(code=code, message=message[:MAX_MESSAGE_CHARS])
    for detail in details:
        packed = AnyProto()
        packed.Pack(detail)
        status.details.append(packed)
    return status


def bad_request(message: str, field: str) -> error_details_pb2.BadRequest:
    """The ``BadRequest`` detail OTLP recommends for permanently bad data."""
    description = message[:MAX_MESSAGE_CHARS]
    violation = error_details_pb2.BadRequest.FieldViolation(field=field, description=description)
    return error_details_pb2.BadRequest(field_violations=[violation])


def retry_info(retry_after_s: float) -> error_details_pb2.RetryInfo:
    """``RetryInfo`` telling throttled clients how long to back off."""
    info = error_details_pb2.RetryInfo()
    info.retry_delay.FromNanoseconds(int(retry_after_s * NS_PER_SECOND))
    return info


def ingest(handler: IngestHandler, request: Message, tenants: frozenset[str] | None) -> object:
    """Hand ``request`` to ``handler``, with the tenants of the ingest key it came with when
    the key has some (see :class:`~spanmeter.receiver.contract.IngestHandler`): a request
    without them calls the handler exactly as before."""
    if tenants is None:
        return handler(request)  # type: ignore[arg-type]
    return handler(request, tenants=tenants)  # type: ignore[call-arg]


def checked_result(result: object) -> IngestResult:
    """``result`` as an ``IngestResult``, or ``TypeError``.

    The handler is a plug point that its types cannot bind at run time; a wrong return must
    become an internal error answered to the client, not a crash deeper in the transport.
    """
    if not isinstance(result, IngestResult):
        raise TypeError(f"ingest handler returned {type(result).__name__}, expected IngestResult")
    return result
