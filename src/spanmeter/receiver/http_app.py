"""OTLP/HTTP trace receiver as a plain WSGI application, plus a tiny path router.

The app is server-agnostic (``OTLPServer`` runs it under waitress) so it can also be mounted
in any other WSGI server or tested without sockets. It implements the OTLP/HTTP rules that
clients depend on:

* ``POST /v1/traces`` with ``application/x-protobuf`` or ``application/json``; the answer uses
  the request's content type (OTLP requires it);
* ``Content-Encoding: gzip`` / ``deflate`` inflated incrementally, with the size limit applied to
  the *decompressed* bytes, so a compression bomb is cut off at the limit instead of filling memory;
* success -> 200 with an empty ``ExportTraceServiceResponse``; partial success -> 200 with
  ``partial_success``; bad data -> 400 with a ``google.rpc.Status`` body (never retried by
  clients); throttling -> 503 with ``Retry-After`` (retried by every OTLP client); a key over
  its rate limit -> 429 with ``Retry-After`` (retried too), before the handler sees the request.

Example::

    app = make_router({"/v1/traces": make_otlp_wsgi_app(handler), "/healthz": healthz_app})
"""

from __future__ import annotations

import json
import logging
import math
import zlib
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final, TypeAlias

import google.rpc.code_pb2 as code_pb2  # the module form: google.rpc itself has no stub, its modules do
from google.protobuf import json_format
from google.protobuf.message import Message

from spanmeter.auth import AuthError, Identity
from spanmeter.receiver import _common as reply
from spanmeter.receiver import contract
from spanmeter.receiver.decode import DecodedRequest, decode_json_detailed, decode_protobuf_detailed

Authenticate = Callable[[str | None], "Identity | None"]
"""Checks a request's ``Authorization`` header; raises :class:`~spanmeter.auth.AuthError`."""

__all__ = [
    "Authenticate",
    "StartResponse",
    "WSGIApp",
    "WSGIEnviron",
    "make_not_found_app",
    "make_otlp_wsgi_app",
    "make_router",
    "retry_after_header",
]

_logger = logging.getLogger(__name__)

WSGIEnviron: TypeAlias = dict[str, Any]
StartResponse: TypeAlias = Callable[..., Any]
WSGIApp: TypeAlias = Callable[[WSGIEnviron, StartResponse], Iterable[bytes]]

_PROTOBUF: Final = "application/x-protobuf"
_JSON: Final = "application/json"
_TEXT: Final = "text/plain; charset=utf-8"
_READ_CHUNK: Final = 1 << 20

_STATUS_LINES: Final = {
    200: "200 OK",
    400: "400 Bad Request",
    401: "401 Unauthorized",
    403: "403 Forbidden",
    404: "404 Not Found",
    405: "405 Method Not Allowed",
    411: "411 Length Required",
    413: "413 Content Too Large",
    415: "415 Unsupported Media Type",
    429: "429 Too Many Requests",
    500: "500 Internal Server Error",
    503: "503 Service Unavailable",
}
_RPC_CODES: Final = {
    400: code_pb2.INVALID_ARGUMENT,
    401: code_pb2.UNAUTHENTICATED,
    403: code_pb2.PERMISSION_DENIED,
    405: code_pb2.UNIMPLEMENTED,
    411: code_pb2.INVALID_ARGUMENT,
    413: code_pb2.RESOURCE_EXHAUSTED,
    415: code_pb2.INVALID_ARGUMENT,
    429: code_pb2.RESOURCE_EXHAUSTED,
    500: code_pb2.INTERNAL,
    503: code_pb2.UNAVAILABLE,
}


class _Reject(Exception):
    """An HTTP error answer decided while reading or decoding the request."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def retry_after_header(retry_after_s: float) -> str:
    """``Retry-After`` in whole seconds, at least 1 (0 would invite an immediate retry storm)."""
    if not math.isfinite(retry_after_s):
        return "1"
    return str(max(1, math.ceil(retry_after_s)))


# --------------------------------------------------------------------------- body


def _content_length(environ: WSGIEnviron) -> int | None:
    raw = environ.get("CONTENT_LENGTH", "").strip()
    if not raw:
        return None
    if not (raw.isascii() and raw.isdigit()):  # int() would also take "+1", "1_0" and " 1"
        raise _Reject(400, "invalid Content-Length")
    return int(raw)


def _read_raw(environ: WSGIEnviron, limit: int) -> bytes:
    """Read the (possibly compressed) body, refusing anything over ``limit`` as early as possible."""
    stream = environ["wsgi.input"]
    length = _content_length(environ)
    if length is not None:
        if length > limit:
            raise _Reject(413, f"request body of {length} bytes exceeds the limit of {limit} bytes")
        body = stream.read(length) if length else b""
        if len(body) < length:  # a server may hand the body over in pieces
            parts = [body]
            received = len(body)
            while received < length and (chunk := stream.read(min(_READ_CHUNK, length - received))):
                parts.append(chunk)
                received += len(chunk)
            if received != length:
                raise _Reject(400, "request body shorter than Content-Length")
            body = b"".join(parts)
        return body
    if not environ.get("wsgi.input_terminated"):
        raise _Reject(411, "Content-Length required")
    # Chunked body de-chunked by the server: count what is read, stop at the limit.
    parts: list[bytes] = []
    total = 0
    while chunk := stream.read(_READ_CHUNK):
        total += len(chunk)
        if total > limit:
            raise _Reject(413, f"request body exceeds the limit of {limit} bytes")
        parts.append(chunk)
    return b"".join(parts)


def _decompressor(encoding: str, head: bytes) -> Any:
    if encoding in ("gzip", "x-gzip"):
        return zlib.decompressobj(16 + zlib.MAX_WBITS)
    # HTTP "deflate" means the zlib format, but some clients send raw deflate: sniff the header.
    if len(head) >= 2 and head[0] & 0x0F == 8 and (head[0] << 8 | head[1]) % 31 == 0:
        return zlib.decompressobj(zlib.MAX_WBITS)
    return zlib.decompressobj(-zlib.MAX_WBITS)


def _inflate(data: bytes, encoding: str, limit: int) -> bytes:
    """Decompress incrementally, never producing more than ``limit + 1`` bytes."""
    parts: list[bytes] = []
    total = 0
    inflater = _decompressor(encoding, data[:2])
    pending = data
    try:
        while True:
            budget = limit - total + 1
            chunk = inflater.decompress(pending, budget)
            total += len(chunk)
            if total > limit:
                raise _Reject(413, f"decompressed request body exceeds the limit of {limit} bytes")
            parts.append(chunk)
            pending = inflater.unconsumed_tail
            if inflater.eof:
                rest = inflater.unused_data
                if not rest:
                    break
                if encoding != "deflate" and rest[:2] == b"\x1f\x8b":  # another gzip member
                    inflater, pending = _decompressor(encoding, rest[:2]), rest
                    continue
                raise _Reject(400, f"trailing data after the {encoding} stream")
            if not pending:
                raise _Reject(400, f"truncated {encoding} body")
    except zlib.error:
        raise _Reject(400, f"corrupt {encoding} body") from None
    return b"".join(parts)


def _read_body(environ: WSGIEnviron, limit: int) -> bytes:
    encoding = environ.get("HTTP_CONTENT_ENCODING", "").strip().lower()
    if encoding in ("", "identity"):
        return _read_raw(environ, limit)
    if encoding not in ("gzip", "x-gzip", "deflate"):
        raise _Reject(415, "unsupported Content-Encoding (supported: gzip, deflate)")
    return _inflate(_read_raw(environ, limit), encoding, limit)


# --------------------------------------------------------------------------- answers


def _media_type(environ: WSGIEnviron) -> str:
    return environ.get("CONTENT_TYPE", "").split(";", 1)[0].strip().lower()


def _status_body(content_type: str, code: int, message: str, details: Iterable[Message] = ()) -> bytes:
    status = reply.rpc_status(code, message, details)
    if content_type == _JSON:
        return json.dumps(json_format.MessageToDict(status)).encode("utf-8")
    return status.SerializeToString()


def _error(
    start_response: StartResponse,
    content_type: str,
    status: int,
    message: str,
    *,
    details: Iterable[Message] = (),
    headers: Iterable[tuple[str, str]] = (),
) -> list[bytes]:
    if content_type in (_PROTOBUF, _JSON):
        body = _status_body(content_type, _RPC_CODES.get(status, code_pb2.UNKNOWN), message, details)
    else:  # the client speaks neither OTLP encoding: plain text is all it can read
        content_type, body = _TEXT, message.encode("utf-8")
    return _send(start_response, status, content_type, body, headers)


def _send(
    start_response: StartResponse,
    status: int,
    content_type: str,
    body: bytes,
    headers: Iterable[tuple[str, str]] = (),
) -> list[bytes]:
    start_response(
        _STATUS_LINES[status],
        [("Content-Type", content_type), ("Content-Length", str(len(body))), *headers],
    )
    return [body]


def _success_body(content_type: str, rejected: int, message: str) -> bytes:
    if content_type == _JSON:
        if not (rejected or message):
            return b"{}"
        partial: dict[str, Any] = {}
        if rejected:
            partial["rejectedSpans"] = str(rejected)  # OTLP/JSON encodes int64 as a string
        if message:
            partial["errorMessage"] = message
        return json.dumps({"partialSuccess": partial}).encode("utf-8")
    return reply.export_response(rejected, message)


# --------------------------------------------------------------------------- apps


def make_otlp_wsgi_app(
    handler: contract.IngestHandler,
    *,
    max_body_bytes: int = contract.DEFAULT_MAX_BODY_BYTES,
    authenticate: Authenticate | None = None,
    admit: contract.Admit | None = None,
) -> WSGIApp:
    """Build the ``POST /v1/traces`` WSGI app around one ingest handler.

    Args:
        handler: called once per valid request, from the server's worker thread.
        max_body_bytes: largest accepted body after decompression; larger ones get 413.
        authenticate: checks the ``Authorization`` header before the body is read (raises
            :class:`~spanmeter.auth.AuthError`: 401 with ``WWW-Authenticate``, or 403).
        admit: checks each decoded request with what ``authenticate`` returned, before the
            handler (raises :class:`~spanmeter.receiver.contract.RateLimited`: 429).

    Raises:
        ValueError: ``max_body_bytes`` is not positive.
    """
    if max_body_bytes <= 0:
        raise ValueError(f"max_body_bytes must be positive, got {max_body_bytes!r}")

    request_type = contract.handler_request_type(handler)

    def otlp_traces_app(environ: WSGIEnviron, start_response: StartResponse) -> list[bytes]:
        content_type = _media_type(environ)
        if environ.get("REQUEST_METHOD") != "POST":
            return _error(start_response, content_type, 405, "use POST", headers=[("Allow", "POST")])
        if content_type not in (_PROTOBUF, _JSON):
            _log_rejected(environ, 415, "unsupported Content-Type")
            return _error(start_response, _TEXT, 415, f"unsupported Content-Type; use {_PROTOBUF} or {_JSON}")
        identity: Identity | None = None
        tenants: frozenset[str] | None = None
        if authenticate is not None:
            try:
                identity = authenticate(environ.get("HTTP_AUTHORIZATION"))
            except AuthError as refused:  # before the body is read: an unknown caller costs nothing
                status = 401 if refused.kind == "unauthenticated" else 403
                challenge = [("WWW-Authenticate", 'Bearer realm="spanmeter"')] if status == 401 else []
                return _error(start_response, content_type, status, refused.message, headers=challenge)
            tenants = None if identity is None else identity.tenants
        try:
            body = _read_body(environ, max_body_bytes)
            if content_type == _PROTOBUF:
                decoded = decode_protobuf_detailed(body, request_type)
            else:
                decoded = decode_json_detailed(body)
        except _Reject as exc:
            _log_rejected(environ, exc.status, exc.message)
            details = [reply.bad_request(exc.message, "")] if exc.status == 400 else ()
            return _error(start_response, content_type, exc.status, exc.message, details=details)
        except contract.InvalidRequest as exc:
            _log_rejected(environ, 400, str(exc))
            details = [reply.bad_request(str(exc), exc.field)]
            return _error(start_response, content_type, 400, str(exc), details=details)
        except OSError as exc:  # the client went away mid-body
            _logger.info("OTLP/HTTP request from %s aborted while reading: %s", _peer(environ), exc)
            return _error(start_response, content_type, 400, "could not read request body")
        del body  # let a large body go before the handler runs
        if decoded.repaired_strings or decoded.dropped_values:
            _logger.warning(
                "OTLP/HTTP request from %s: repaired %d strings with invalid UTF-8, dropped %d unusable values",
                _peer(environ),
                decoded.repaired_strings,
                decoded.dropped_values,
            )
        if admit is not None:
            try:
                admit(identity, decoded.request)
            except contract.RateLimited as limited:
                _logger.debug("OTLP/HTTP request from %s refused: %s", _peer(environ), limited)
                return _error(
                    start_response,
                    content_type,
                    429,
                    str(limited),
                    details=[reply.retry_info(limited.retry_after_s)],
                    headers=[("Retry-After", retry_after_header(limited.retry_after_s))],
                )
        return _call_handler(handler, decoded, content_type, environ, start_response, tenants)

    return otlp_traces_app


def _call_handler(
    handler: contract.IngestHandler,
    decoded: DecodedRequest,
    content_type: str,
    environ: WSGIEnviron,
    start_response: StartResponse,
    tenants: frozenset[str] | None,
) -> list[bytes]:
    try:
        result = reply.checked_result(reply.ingest(handler, decoded.request, tenants))
    except contract.Overloaded as exc:
        _logger.debug("OTLP/HTTP request from %s throttled: handler overloaded", _peer(environ))
        return _error(
            start_response,
            content_type,
            503,
            str(exc) or "server overloaded, retry later",
            details=[reply.retry_info(exc.retry_after_s)],
            headers=[("Retry-After", retry_after_header(exc.retry_after_s))],
        )
    except contract.InvalidRequest as exc:
        _log_rejected(environ, 400, str(exc))
        return _error(
            start_response, content_type, 400, str(exc), details=[reply.bad_request(str(exc), exc.field)]
        )
    except Exception:
        _logger.exception("OTLP/HTTP ingest handler failed on a request from %s", _peer(environ))
        return _error(start_response, content_type, 500, "internal error while ingesting spans")
    rejected, message = reply.partial_success(result, decoded.repaired_strings, decoded.dropped_values)
    return _send(start_response, 200, content_type, _success_body(content_type, rejected, message))


def _peer(environ: WSGIEnviron) -> str:
    return str(environ.get("REMOTE_ADDR") or "?")


def _log_rejected(environ: WSGIEnviron, status: int, reason: str) -> None:
    # Once per request, never the payload: reasons name fields and sizes only.
    _logger.warning("OTLP/HTTP request from %s rejected with %d: %s", _peer(environ), status, reason)


def make_not_found_app(message: str = "not found") -> WSGIApp:
    """A WSGI app answering 404 to everything (the router's default fallback)."""
    body = message.encode("utf-8")

    def not_found(environ: WSGIEnviron, start_response: StartResponse) -> list[bytes]:
        return _send(start_response, 404, _TEXT, body)

    return not_found


def make_router(routes: Mapping[str, WSGIApp], fallback: WSGIApp | None = None) -> WSGIApp:
    """Dispatch on ``PATH_INFO`` so one port serves OTLP, metrics, the API and health checks.

    A key ending in ``/`` matches every path under it (longest prefix wins); other keys match
    exactly. ``PATH_INFO`` is passed through unchanged.

    Raises:
        ValueError: a route does not start with ``/``.
    """
    for path in routes:
        if not path.startswith("/"):
            raise ValueError(f"route must start with '/': {path!r}")
    exact = {path: app for path, app in routes.items() if not path.endswith("/")}
    prefixes = sorted(
        ((path, app) for path, app in routes.items() if path.endswith("/")), key=lambda item: -len(item[0])
    )
    default = fallback if fallback is not None else make_not_found_app()

    def router(environ: WSGIEnviron, start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO") or "/"
        app = exact.get(path)
        if app is None:
            app = next((app for prefix, app in prefixes if path.startswith(prefix)), default)
        return app(environ, start_response)

    return router
