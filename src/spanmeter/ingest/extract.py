"""From OTLP protobuf spans to the few attribute values the normaliser reads.

Why a filter: touching Python objects per attribute is what costs at ingest (parsing is
~800k spans/s, building full attribute dicts ~67k spans/s on one core here). The
normaliser publishes the exact keys it may read (``NORMALIZER_KEYS``), so only those
values are converted; every other attribute costs one set lookup.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Final

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.descriptor import FileDescriptor
from google.protobuf.message import Message
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from ..semantic_conventions import NORMALIZER_KEYS, RESOURCE_KEYS

__all__ = [
    "INGEST_REQUEST_TYPE",
    "RESOURCE_WANTED",
    "SERVICE_NAME",
    "ExtractedSpan",
    "any_value",
    "as_ingest_request",
    "iter_spans",
    "wanted_attributes",
]

SERVICE_NAME: Final = "service.name"
RESOURCE_WANTED: Final = RESOURCE_KEYS | {SERVICE_NAME}
"""Resource keys ingest reads: the normaliser's plus ``service.name``."""

# Arrays longer than this are not labels or token counts; they are skipped, not read.
_MAX_ARRAY: Final = 64


def _file_closure(root: FileDescriptor) -> list[FileDescriptor]:
    """``root`` and its transitive dependencies, dependencies first."""
    seen: set[str] = set()
    ordered: list[FileDescriptor] = []

    def visit(fd: FileDescriptor) -> None:
        if fd.name not in seen:
            seen.add(fd.name)
            for dep in fd.dependencies:
                visit(dep)
            ordered.append(fd)

    visit(root)
    return ordered


def _build_ingest_request_type() -> type[Message]:
    """A twin of ``ExportTraceServiceRequest`` whose ``Span.attributes`` is a map.

    Why: iterating ``repeated KeyValue`` makes upb create a ``KeyValue`` and an ``AnyValue``
    wrapper object for every attribute before its key can be compared (~1.4 us a span of
    ~15 attributes, measured). A ``KeyValue`` is ``{1: string key, 2: AnyValue value}``,
    byte for byte the wire format of a ``map<string, AnyValue>`` entry, so the same bytes
    parse into a map whose iteration yields plain key strings; only the wanted keys' values
    become objects. A map keeps the *last* entry of a repeated key, which is what the
    attribute filter did with repeated keys anyway (tests/unit/test_ingest_shadow.py checks
    the rows are identical, duplicates and hostile bodies included).

    Built at import from the generated descriptors in a private pool (no protoc, no
    generated file to keep in step with the OTLP package).
    """
    pool = descriptor_pool.DescriptorPool()
    field_type = descriptor_pb2.FieldDescriptorProto
    span_name = Span.DESCRIPTOR.full_name
    for fd in _file_closure(ExportTraceServiceRequest.DESCRIPTOR.file):
        proto = descriptor_pb2.FileDescriptorProto.FromString(fd.serialized_pb)
        for message in proto.message_type:
            if f"{proto.package}.{message.name}" != span_name:
                continue
            entry = message.nested_type.add(name="AttributesMapEntry")
            entry.options.map_entry = True
            entry.field.add(
                name="key", number=1, label=field_type.LABEL_OPTIONAL, type=field_type.TYPE_STRING
            )
            entry.field.add(
                name="value",
                number=2,
                label=field_type.LABEL_OPTIONAL,
                type=field_type.TYPE_MESSAGE,
                type_name="." + AnyValue.DESCRIPTOR.full_name,
            )
            (attributes,) = [field for field in message.field if field.name == "attributes"]
            attributes.type_name = f".{span_name}.AttributesMapEntry"
        pool.Add(proto)
    return message_factory.GetMessageClass(
        pool.FindMessageTypeByName(ExportTraceServiceRequest.DESCRIPTOR.full_name)
    )


INGEST_REQUEST_TYPE: Final = _build_ingest_request_type()
"""``ExportTraceServiceRequest`` as ingest parses it: the same fields, except that
``Span.attributes`` is a ``map<string, AnyValue>`` (same wire format; the last of a repeated
key wins). Use only for reading: resource and scope attributes stay ``KeyValue`` lists."""


def as_ingest_request(request: Message) -> Any:
    """``request`` as an :data:`INGEST_REQUEST_TYPE` (re-parsed unless it is one already).

    Requests decoded by the receiver's protobuf path already are; OTLP/JSON bodies and
    callers holding an ``ExportTraceServiceRequest`` pay one serialise-and-parse here.
    """
    if type(request) is INGEST_REQUEST_TYPE:
        return request
    return INGEST_REQUEST_TYPE.FromString(request.SerializeToString())


def any_value(value: AnyValue) -> Any:
    """The Python value of an OTLP ``AnyValue`` (scalars and short arrays; None otherwise)."""
    kind = value.WhichOneof("value")
    if kind == "string_value":
        return value.string_value
    if kind == "int_value":
        return value.int_value
    if kind == "double_value":
        return value.double_value
    if kind == "bool_value":
        return value.bool_value
    if kind == "array_value":
        values = value.array_value.values
        if len(values) > _MAX_ARRAY:
            return None
        return tuple(any_value(item) for item in values)
    return None  # bytes, kvlists and empty values carry nothing the normaliser reads


def wanted_attributes(attributes: Any, wanted: frozenset[str] = NORMALIZER_KEYS) -> dict[str, Any]:
    """The values of the ``wanted`` keys among OTLP ``KeyValue`` attributes (the last wins
    when a key repeats).

    Most values are non-empty strings, so ``string_value`` is read first: one attribute
    read instead of ``WhichOneof`` plus a read (~0.15 us a value here). An empty result
    means another kind (or an empty string) and takes the full :func:`any_value` path, so
    the result is exactly ``any_value``'s.
    """
    found: dict[str, Any] = {}
    kv: KeyValue
    for kv in attributes:
        key = kv.key
        if key in wanted:
            value = kv.value
            found[key] = value.string_value or any_value(value)
    return found


@dataclass(slots=True)
class ExtractedSpan:
    """One span with just what the pipeline needs; ids stay raw bytes."""

    span: Span
    attributes: dict[str, Any]
    resource: dict[str, Any]
    scope_name: str
    scope_version: str = ""


def iter_spans(request: ExportTraceServiceRequest) -> Iterator[ExtractedSpan]:
    """Every span of ``request`` with its filtered attributes and resource."""
    for resource_spans in request.resource_spans:
        resource = wanted_attributes(resource_spans.resource.attributes, RESOURCE_WANTED)
        for scope_spans in resource_spans.scope_spans:
            scope_name, scope_version = scope_spans.scope.name, scope_spans.scope.version
            for span in scope_spans.spans:
                yield ExtractedSpan(
                    span, wanted_attributes(span.attributes), resource, scope_name, scope_version
                )
