"""Decode OTLP trace export bodies (protobuf or OTLP/JSON) into ``ExportTraceServiceRequest``.

Both transports (gRPC and HTTP) use these functions, so a body is judged the same way
whichever port it arrives on.

Protobuf: upb rejects a whole message when any ``string`` field holds invalid UTF-8, which
would throw away every good span of a batch because one attribute value came from a
misbehaving library. So on a parse failure the body is parsed again with a *lenient* copy of
the OTLP descriptors in which every ``string`` field is ``bytes`` (same wire format); the bad
strings are repaired with U+FFFD and the result re-parsed as the strict type. Bodies that fail
both parses are truly malformed and raise :class:`InvalidRequest`.

OTLP/JSON differs from proto3 JSON: trace and span ids are hex (proto3 JSON would base64-decode
them into garbage), enums are integers and unknown fields must be ignored. A fast converter
handles well-formed bodies; anything else goes through ``json_format.ParseDict`` with the ids
rewritten first, which also words the errors.

Example::

    decoded = decode_protobuf_detailed(body)
    if decoded.repaired_strings:
        warn_client(repair_warning(decoded.repaired_strings))
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterator
from typing import Any, Final, NamedTuple

from google.protobuf import descriptor_pb2, descriptor_pool, json_format, message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor, FileDescriptor
from google.protobuf.message import DecodeError, Message
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from spanmeter.receiver._otlp_json import NotFast, convert_request
from spanmeter.receiver.contract import InvalidRequest

__all__ = [
    "DecodedRequest",
    "decode_json",
    "decode_protobuf",
    "decode_protobuf_detailed",
    "repair_warning",
]

_REQUEST_NAME: Final = ExportTraceServiceRequest.DESCRIPTOR.full_name
_MAX_ERROR_CHARS: Final = 512


class DecodedRequest(NamedTuple):
    """A decoded request plus what the lenient fallback had to change."""

    request: ExportTraceServiceRequest
    repaired_strings: int = 0
    """Number of string values whose invalid UTF-8 was replaced with U+FFFD."""


def repair_warning(repaired_strings: int) -> str:
    """The partial-success warning for a request whose strings were repaired."""
    noun = "string value" if repaired_strings == 1 else "string values"
    return f"{repaired_strings} {noun} contained invalid UTF-8; invalid bytes were replaced with U+FFFD"


# --------------------------------------------------------------------------- protobuf


def _is_repeated(field: FieldDescriptor) -> bool:
    # ``is_repeated`` replaced ``label`` in recent protobuf releases; keep both working.
    flag = getattr(field, "is_repeated", None)
    if flag is not None:
        return bool(flag)
    return (
        getattr(field, "label", None) == FieldDescriptor.LABEL_REPEATED
    )  # pragma: no cover - older protobuf


def _file_closure(root: FileDescriptor) -> Iterator[FileDescriptor]:
    """Yield ``root`` and its transitive dependencies, dependencies first."""
    seen: set[str] = set()

    def visit(fd: FileDescriptor) -> Iterator[FileDescriptor]:
        if fd.name in seen:
            return
        seen.add(fd.name)
        for dep in fd.dependencies:
            yield from visit(dep)
        yield fd

    yield from visit(root)


def _stringless(messages: Any, prefix: str, converted: set[str]) -> None:
    """Turn every ``string`` field of these DescriptorProtos (and nested ones) into ``bytes``."""
    for msg in messages:
        name = f"{prefix}.{msg.name}"
        for field in msg.field:
            if field.type == descriptor_pb2.FieldDescriptorProto.TYPE_STRING:
                field.type = descriptor_pb2.FieldDescriptorProto.TYPE_BYTES
                converted.add(f"{name}.{field.name}")
        _stringless(msg.nested_type, name, converted)


def _build_lenient_type() -> tuple[type[Message], frozenset[str]]:
    """Build, once, a bytes-only twin of ``ExportTraceServiceRequest`` in a private pool."""
    pool = descriptor_pool.DescriptorPool()
    converted: set[str] = set()
    for fd in _file_closure(ExportTraceServiceRequest.DESCRIPTOR.file):
        proto = descriptor_pb2.FileDescriptorProto.FromString(fd.serialized_pb)
        _stringless(proto.message_type, proto.package, converted)
        pool.Add(proto)
    lenient = message_factory.GetMessageClass(pool.FindMessageTypeByName(_REQUEST_NAME))
    return lenient, frozenset(converted)


_LENIENT_REQUEST, _CONVERTED_FIELDS = _build_lenient_type()


class _FieldPlan(NamedTuple):
    name: str
    repeated: bool
    is_message: bool


_PLANS: dict[str, tuple[_FieldPlan, ...]] = {}


def _plan(descriptor: Descriptor) -> tuple[_FieldPlan, ...]:
    """Fields of a lenient message type that can hold a repaired string, directly or below."""
    plan = _PLANS.get(descriptor.full_name)
    if plan is None:
        plan = tuple(
            _FieldPlan(f.name, _is_repeated(f), f.message_type is not None)
            for f in descriptor.fields
            if f.message_type is not None or f.full_name in _CONVERTED_FIELDS
        )
        _PLANS[descriptor.full_name] = plan
    return plan


def _fix(value: bytes) -> bytes | None:
    """The repaired UTF-8 encoding of ``value``, or None when it was valid already."""
    try:
        value.decode("utf-8")
    except UnicodeDecodeError:
        return value.decode("utf-8", errors="replace").encode("utf-8")
    return None


def _repair(msg: Any) -> int:
    """Replace invalid UTF-8 in every formerly-string field of a lenient message, in place."""
    repaired = 0
    for field in _plan(msg.DESCRIPTOR):
        if field.is_message:
            if field.repeated:
                for child in getattr(msg, field.name):
                    repaired += _repair(child)
            elif msg.HasField(field.name):
                repaired += _repair(getattr(msg, field.name))
        elif field.repeated:
            values = getattr(msg, field.name)
            for i, value in enumerate(values):
                fixed = _fix(value)
                if fixed is not None:
                    values[i] = fixed
                    repaired += 1
        else:
            fixed = _fix(getattr(msg, field.name))
            if fixed is not None:
                setattr(msg, field.name, fixed)
                repaired += 1
    return repaired


def decode_protobuf_detailed(body: bytes, request_type: type[Message] | None = None) -> DecodedRequest:
    """Parse a binary OTLP trace export, repairing invalid UTF-8 instead of dropping the batch.

    ``request_type`` is a message type with the wire format of ``ExportTraceServiceRequest``
    to parse into instead (a handler's ``request_type``, see
    :class:`~spanmeter.receiver.contract.IngestHandler`); the lenient repair is the same.

    Raises:
        InvalidRequest: the bytes are not an ``ExportTraceServiceRequest`` (truncated, random, ...).
    """
    strict: Any = ExportTraceServiceRequest if request_type is None else request_type
    try:
        return DecodedRequest(strict.FromString(body))
    except DecodeError:
        pass  # maybe only invalid UTF-8 in a string: try the lenient twin below
    try:
        lenient = _LENIENT_REQUEST.FromString(body)
    except DecodeError:
        raise InvalidRequest("request body is not a valid protobuf ExportTraceServiceRequest") from None
    repaired = _repair(lenient)
    try:
        request = strict.FromString(lenient.SerializeToString())
    except DecodeError:  # pragma: no cover - repaired strings are valid UTF-8 by construction
        raise InvalidRequest("request body is not a valid protobuf ExportTraceServiceRequest") from None
    return DecodedRequest(request, repaired)


def decode_protobuf(body: bytes) -> ExportTraceServiceRequest:
    """Parse a binary OTLP trace export; see :func:`decode_protobuf_detailed`."""
    return decode_protobuf_detailed(body).request


# --------------------------------------------------------------------------- JSON

# OTLP/JSON names are lowerCamelCase, but proto3 JSON parsers (and the fast path) also take the
# proto names; ids are hex under either spelling.
_SPAN_ID_KEYS: Final = ("traceId", "spanId", "parentSpanId", "trace_id", "span_id", "parent_span_id")
_LINK_ID_KEYS: Final = ("traceId", "spanId", "trace_id", "span_id")
_PARSE_FIELD: Final = re.compile(r"Failed to parse (\w+) field")
_PARSE_PATH: Final = re.compile(r" at ExportTraceServiceRequest\.([\w\[\].]*)")


def _objects(container: dict[str, Any], key: str) -> Iterator[dict[str, Any]]:
    """The JSON objects in the array ``container[key]``; other shapes are left for json_format to judge.

    ``json.loads`` makes exact lists and dicts, so ``type()`` checks suffice; the names are declared
    before the checks because narrowing an ``Any`` would leave the element types unknown.
    """
    items: list[Any] = container.get(key) or []
    if type(items) is not list:
        return
    for item in items:
        obj: dict[str, Any] = item
        if type(obj) is dict:
            yield obj


def _hex_to_base64(obj: dict[str, Any], keys: tuple[str, ...], where: str) -> None:
    """Rewrite OTLP/JSON hex ids as the base64 that ``json_format`` expects for bytes."""
    for key in keys:
        value = obj.get(key)
        if not isinstance(value, str) or not value:
            continue  # missing/empty ids stay empty; other types fail in json_format
        try:
            raw = binascii.unhexlify(value)
        except (binascii.Error, ValueError):
            raise InvalidRequest(f"{where}.{key} is not a hex string", field=f"{where}.{key}") from None
        obj[key] = base64.b64encode(raw).decode("ascii")


def _convert_ids(doc: dict[str, Any]) -> None:
    for resource_spans in _objects(doc, "resourceSpans"):
        for scope_spans in _objects(resource_spans, "scopeSpans"):
            for span in _objects(scope_spans, "spans"):
                _hex_to_base64(span, _SPAN_ID_KEYS, "resourceSpans.scopeSpans.spans")
                for link in _objects(span, "links"):
                    _hex_to_base64(link, _LINK_ID_KEYS, "resourceSpans.scopeSpans.spans.links")


def decode_json(body: bytes) -> ExportTraceServiceRequest:
    """Parse an OTLP/JSON trace export (hex ids, integer enums, unknown fields ignored).

    Raises:
        InvalidRequest: invalid UTF-8, malformed JSON, or JSON that does not fit the schema.
    """
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidRequest(f"request body is not valid UTF-8 (at byte {exc.start})") from None
    if text.startswith("\ufeff"):
        text = text[1:]  # tolerate a UTF-8 byte order mark, as most JSON decoders do
    try:
        doc: dict[str, Any] = json.loads(text)  # checked just below (json.loads makes exact dicts)
    except json.JSONDecodeError as exc:
        raise InvalidRequest(f"request body is not valid JSON: {exc.msg} at char {exc.pos}") from None
    except (ValueError, RecursionError):
        raise InvalidRequest("request body is not valid JSON (nesting or number too large)") from None
    if type(doc) is not dict:
        raise InvalidRequest("OTLP/JSON body must be a JSON object")
    try:
        return convert_request(doc)
    except NotFast:
        pass  # json_format below accepts it or says precisely what is wrong
    _convert_ids(doc)
    request = ExportTraceServiceRequest()
    try:
        json_format.ParseDict(doc, request, ignore_unknown_fields=True)
    except (json_format.ParseError, ValueError, TypeError, RecursionError) as exc:
        path = _error_path(str(exc))
        raise InvalidRequest(
            f"OTLP/JSON body does not match ExportTraceServiceRequest at {path or '<root>'}", field=path
        ) from None
    return request


def _error_path(message: str) -> str:
    """The schema path of a ``json_format`` error, without the offending value.

    json_format quotes the bad value in its message; the value is payload, which must not reach
    logs, so only the path (made of schema field names and indexes) is kept.
    """
    match = _PARSE_PATH.search(message)
    if match and match.group(1).strip("."):
        return match.group(1).strip(".")[:_MAX_ERROR_CHARS]
    return ".".join(_PARSE_FIELD.findall(message))[:_MAX_ERROR_CHARS]
