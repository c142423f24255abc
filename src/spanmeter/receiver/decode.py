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
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from spanmeter.receiver._otlp_json import MAX_VALUE_NESTING, NotFast, convert_request, json_value_too_deep
from spanmeter.receiver.contract import InvalidRequest

__all__ = [
    "MAX_VALUE_NESTING",
    "DecodedRequest",
    "decode_json",
    "decode_json_detailed",
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
    dropped_values: int = 0
    """Number of values dropped (attribute values nested deeper than
    :data:`MAX_VALUE_NESTING` or unreadable on their own; in OTLP/JSON also integers and
    times past 64 bits); their attributes and spans are kept."""


def repair_warning(repaired_strings: int, dropped_values: int = 0) -> str:
    """The partial-success warning for a request whose strings were repaired or whose deep
    attribute values were dropped."""
    parts: list[str] = []
    if repaired_strings:
        noun = "string value" if repaired_strings == 1 else "string values"
        parts.append(
            f"{repaired_strings} {noun} contained invalid UTF-8; invalid bytes were replaced with U+FFFD"
        )
    if dropped_values:
        noun = "value was" if dropped_values == 1 else "values were"
        parts.append(
            f"{dropped_values} {noun} dropped (attribute values nested deeper than {MAX_VALUE_NESTING} "
            "levels or unreadable, numbers out of range); their spans were kept"
        )
    return "; ".join(parts)


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


def _stringless(messages: Any, prefix: str, converted: set[str], shallow: bool) -> None:
    """Turn every ``string`` field of these DescriptorProtos (and nested ones) into ``bytes``;
    ``shallow``: every attribute value (``KeyValue.value``) too."""
    bytes_type = descriptor_pb2.FieldDescriptorProto.TYPE_BYTES
    for msg in messages:
        name = f"{prefix}.{msg.name}"
        for field in msg.field:
            if field.type == descriptor_pb2.FieldDescriptorProto.TYPE_STRING:
                field.type = bytes_type
                converted.add(f"{name}.{field.name}")
            elif shallow and f"{name}.{field.name}" == _ATTRIBUTE_VALUE:
                field.type = bytes_type  # same wire format: a length-delimited field
                field.ClearField("type_name")
        _stringless(msg.nested_type, name, converted, shallow)


def _build_lenient_type(shallow: bool = False) -> tuple[type[Message], type[Message], frozenset[str]]:
    """Build, once, a bytes-only twin of ``ExportTraceServiceRequest`` (and of ``AnyValue``) in
    a private pool; ``shallow``: attribute values stay unparsed bytes as well."""
    pool = descriptor_pool.DescriptorPool()
    converted: set[str] = set()
    for fd in _file_closure(ExportTraceServiceRequest.DESCRIPTOR.file):
        proto = descriptor_pb2.FileDescriptorProto.FromString(fd.serialized_pb)
        _stringless(proto.message_type, proto.package, converted, shallow)
        pool.Add(proto)
    lenient = message_factory.GetMessageClass(pool.FindMessageTypeByName(_REQUEST_NAME))
    any_value = message_factory.GetMessageClass(pool.FindMessageTypeByName(AnyValue.DESCRIPTOR.full_name))
    return lenient, any_value, frozenset(converted)


_ATTRIBUTE_VALUE: Final = f"{KeyValue.DESCRIPTOR.full_name}.value"
_LENIENT_REQUEST, _LENIENT_ANY_VALUE, _CONVERTED_FIELDS = _build_lenient_type()
_SHALLOW_REQUEST, _, _ = _build_lenient_type(shallow=True)
_SHALLOW_KEY_VALUE: Final = _SHALLOW_REQUEST.DESCRIPTOR.file.pool.FindMessageTypeByName(
    KeyValue.DESCRIPTOR.full_name
)


class _FieldPlan(NamedTuple):
    name: str
    repeated: bool
    is_message: bool


_PLANS: dict[Descriptor, tuple[_FieldPlan, ...]] = {}


def _plan(descriptor: Descriptor) -> tuple[_FieldPlan, ...]:
    """Fields of a lenient message type that can hold a repaired string, directly or below
    (by descriptor: the two twins share their names)."""
    plan = _PLANS.get(descriptor)
    if plan is None:
        plan = tuple(
            _FieldPlan(f.name, _is_repeated(f), f.message_type is not None)
            for f in descriptor.fields
            if f.message_type is not None or f.full_name in _CONVERTED_FIELDS
        )
        _PLANS[descriptor] = plan
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


def _too_deep(value: Any, levels: int) -> bool:
    """Whether a (lenient) ``AnyValue`` nests arrays or key-value lists more than ``levels`` deep."""
    kind = value.WhichOneof("value")
    if kind == "kvlist_value":
        children = [item.value for item in value.kvlist_value.values]
    elif kind == "array_value":
        children = list(value.array_value.values)
    else:
        return False
    return levels == 0 or any(_too_deep(child, levels - 1) for child in children)


def _key_values(msg: Any) -> Iterator[Any]:
    """Every ``KeyValue`` of a shallow message, at any depth (resource, scope, span, event and
    link attributes)."""
    if msg.DESCRIPTOR is _SHALLOW_KEY_VALUE:
        yield msg
        return
    for field in _plan(msg.DESCRIPTOR):
        if not field.is_message:
            continue
        if field.repeated:
            for child in getattr(msg, field.name):
                yield from _key_values(child)
        elif msg.HasField(field.name):
            yield from _key_values(getattr(msg, field.name))


def _decode_shallow(body: bytes, strict: Any) -> DecodedRequest:
    """The last resort: parse with every attribute value left as bytes (so no value's nesting
    counts against the parser's depth limit), then read each value on its own: one nested more
    than :data:`MAX_VALUE_NESTING` levels, or unreadable, is dropped (the attribute stays,
    without a value) and its span kept."""
    try:
        shallow: Any = _SHALLOW_REQUEST.FromString(body)
    except DecodeError:
        raise InvalidRequest("request body is not a valid protobuf ExportTraceServiceRequest") from None
    repaired = _repair(shallow)
    dropped = 0
    for key_value in _key_values(shallow):
        if not key_value.value:
            continue
        try:
            value: Any = _LENIENT_ANY_VALUE.FromString(key_value.value)
        except DecodeError:
            value = None
        if value is None or _too_deep(value, MAX_VALUE_NESTING):
            key_value.value = b""
            dropped += 1
            continue
        fixed = _repair(value)
        if fixed:
            key_value.value = value.SerializeToString()
            repaired += fixed
    try:
        request = strict.FromString(shallow.SerializeToString())
    except DecodeError:  # pragma: no cover - every value is shallow and valid UTF-8 by now
        raise InvalidRequest("request body is not a valid protobuf ExportTraceServiceRequest") from None
    return DecodedRequest(request, repaired, dropped)


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
    except DecodeError:  # malformed, or an attribute value nested past the parser's depth limit
        return _decode_shallow(body, strict)
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


_INT64: Final = (-(2**63), 2**63 - 1)
_FIXED64: Final = (0, 2**64 - 1)
_SPAN_TIMES: Final = ("startTimeUnixNano", "endTimeUnixNano", "start_time_unix_nano", "end_time_unix_nano")
_EVENT_TIMES: Final = ("timeUnixNano", "time_unix_nano")
_DIGITS: Final = re.compile(r"-?\d+")


def _out_of_range(value: Any, bounds: tuple[int, int]) -> bool:
    """Whether a JSON integer (a number, or a decimal string as int64 is written) lies outside
    ``bounds``: no protobuf field can hold it, so json_format would refuse the whole body."""
    if type(value) is str:
        text: str = value
        if not _DIGITS.fullmatch(text.strip()):
            return False  # not an integer at all: json_format words that error
        if len(text) > 30:
            return True
        number = int(text)
    elif type(value) is int:
        number = value
    else:
        return False
    return not bounds[0] <= number <= bounds[1]


def _drop_values(attributes: Any) -> int:
    """Drop (in place) the values of these OTLP/JSON attributes that nest too deep or hold an
    integer past 64 bits; how many."""
    items: list[Any] = attributes
    if type(items) is not list:
        return 0
    dropped = 0
    for item in items:
        key_value: dict[str, Any] = item
        if type(key_value) is not dict:
            continue
        value: dict[str, Any] = key_value.get("value")  # pyright: ignore[reportAssignmentType]  # checked below
        if type(value) is not dict:
            continue
        number = value.get("intValue", value.get("int_value"))
        if json_value_too_deep(value) or (number is not None and _out_of_range(number, _INT64)):
            key_value["value"] = {}
            dropped += 1
    return dropped


def _drop_times(obj: dict[str, Any], keys: tuple[str, ...]) -> int:
    """Unset (in place) the times of ``obj`` that no fixed64 holds; how many."""
    dropped = 0
    for key in keys:
        if key in obj and _out_of_range(obj[key], _FIXED64):
            obj[key] = "0"
            dropped += 1
    return dropped


def _attributes_of(container: dict[str, Any], key: str) -> Any:
    """``container[key]["attributes"]`` when ``container[key]`` is an object, else None."""
    found: Any = container.get(key)
    inner: dict[str, Any] = found
    return inner.get("attributes") if type(inner) is dict else None


def _drop_unusable(doc: dict[str, Any]) -> int:
    """Drop the values that would cost the whole body its parse, as the protobuf path does
    when it must: attribute values (resource, scope, span, event, link) nested deeper than
    :data:`MAX_VALUE_NESTING` or holding an integer past int64, and span or event times past
    fixed64 (unset: a span without a time is bucketed by its arrival); how many."""
    dropped = 0
    for resource_spans in _objects(doc, "resourceSpans"):
        dropped += _drop_values(_attributes_of(resource_spans, "resource"))
        for scope_spans in _objects(resource_spans, "scopeSpans"):
            dropped += _drop_values(_attributes_of(scope_spans, "scope"))
            for span in _objects(scope_spans, "spans"):
                dropped += _drop_values(span.get("attributes")) + _drop_times(span, _SPAN_TIMES)
                for event in _objects(span, "events"):
                    dropped += _drop_values(event.get("attributes")) + _drop_times(event, _EVENT_TIMES)
                for link in _objects(span, "links"):
                    dropped += _drop_values(link.get("attributes"))
    return dropped


def decode_json(body: bytes) -> ExportTraceServiceRequest:
    """Parse an OTLP/JSON trace export; see :func:`decode_json_detailed`."""
    return decode_json_detailed(body).request


def decode_json_detailed(body: bytes) -> DecodedRequest:
    """Parse an OTLP/JSON trace export (hex ids, integer enums, unknown fields ignored).

    An attribute value nested deeper than :data:`MAX_VALUE_NESTING` levels or holding an
    integer past int64, and a span or event time past fixed64, are dropped (the span kept)
    and counted in ``dropped_values``.

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
        return DecodedRequest(convert_request(doc))
    except NotFast:
        pass  # json_format below accepts it or says precisely what is wrong
    _convert_ids(doc)
    dropped = _drop_unusable(doc)
    request = ExportTraceServiceRequest()
    try:
        json_format.ParseDict(doc, request, ignore_unknown_fields=True)
    except (json_format.ParseError, ValueError, TypeError, RecursionError) as exc:
        path = _error_path(str(exc))
        raise InvalidRequest(
            f"OTLP/JSON body does not match ExportTraceServiceRequest at {path or '<root>'}", field=path
        ) from None
    return DecodedRequest(request, 0, dropped)


def _error_path(message: str) -> str:
    """The schema path of a ``json_format`` error, without the offending value.

    json_format quotes the bad value in its message; the value is payload, which must not reach
    logs, so only the path (made of schema field names and indexes) is kept.
    """
    match = _PARSE_PATH.search(message)
    if match and match.group(1).strip("."):
        return match.group(1).strip(".")[:_MAX_ERROR_CHARS]
    return ".".join(_PARSE_FIELD.findall(message))[:_MAX_ERROR_CHARS]
