"""Fast OTLP/JSON -> ``ExportTraceServiceRequest`` conversion for well-formed bodies.

``json_format.ParseDict`` checks and sets every field from Python, which makes OTLP/JSON ~10x
slower than ``json.loads``. This module turns the parsed JSON into keyword arguments in one pass
driven by tables built from the descriptors at import time (attributes, the bulk of any span,
get a dedicated path) and lets the upb constructor build the message in C: about 3.5x faster.

It handles the OTLP/JSON quirks itself: hex trace/span ids, int64 as strings or numbers, unknown
keys ignored, lowerCamelCase (and proto) names. Anything it is not sure about raises
:class:`NotFast`; the caller then falls back to ``json_format``, which either accepts the body or
produces a precise error, so both paths accept the same documents.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from typing import Any, Final

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

__all__ = ["HEX_ID_FIELDS", "MAX_VALUE_NESTING", "NotFast", "convert_request", "json_value_too_deep"]

MAX_VALUE_NESTING: Final = 16
"""Levels of arrays and key-value lists an attribute value may nest when a request nests
deeper than the protobuf parser's limit (100 messages: a key-value list 32 levels deep in a
span attribute is past it) or arrives as OTLP/JSON: a deeper value is dropped, its span kept.
GenAI attributes are flat, and the Collector forwards such spans, so one must not cost the
request."""

HEX_ID_FIELDS: Final = frozenset(
    {
        "opentelemetry.proto.trace.v1.Span.trace_id",
        "opentelemetry.proto.trace.v1.Span.span_id",
        "opentelemetry.proto.trace.v1.Span.parent_span_id",
        "opentelemetry.proto.trace.v1.Span.Link.trace_id",
        "opentelemetry.proto.trace.v1.Span.Link.span_id",
    }
)
"""Bytes fields that OTLP/JSON writes as hex instead of proto3 JSON's base64."""

_Convert = Callable[[Any], Any]
_Table = dict[str, tuple[str, _Convert, bool]]  # JSON key -> (field name, converter, repeated)


class NotFast(Exception):
    """The fast path cannot vouch for this document; use ``json_format`` instead."""


def _int(value: Any) -> int:
    seen: object = value  # the checker sees type() of an Any as type[Unknown], of an object as type[object]
    kind = type(seen)
    if kind is int:
        return value
    if kind is str:
        return int(value)  # ValueError -> fallback, which words the error
    if kind is float and value.is_integer():
        return int(value)
    raise NotFast


def _float(value: Any) -> float:
    seen: object = value
    kind = type(seen)
    if kind is float:
        return value
    if kind is int or kind is str:
        return float(value)  # also "NaN", "Infinity", "-Infinity"
    raise NotFast


def _bool(value: Any) -> bool:
    if type(value) is bool:
        return value
    raise NotFast


def _str(value: Any) -> str:
    if type(value) is str:
        return value
    raise NotFast


def _base64(value: Any) -> bytes:
    if type(value) is not str:
        raise NotFast
    padded = value + "=" * (-len(value) % 4)
    if "-" in value or "_" in value:
        return base64.urlsafe_b64decode(padded)
    return base64.b64decode(padded, validate=True)


def _hex(value: Any) -> bytes:
    if type(value) is not str:
        raise NotFast
    return binascii.unhexlify(value)


_SCALARS: Final[dict[int, _Convert]] = {
    FieldDescriptor.TYPE_STRING: _str,
    FieldDescriptor.TYPE_BYTES: _base64,
    FieldDescriptor.TYPE_BOOL: _bool,
    FieldDescriptor.TYPE_DOUBLE: _float,
    FieldDescriptor.TYPE_FLOAT: _float,
    FieldDescriptor.TYPE_ENUM: _int,  # names are legal proto3 JSON but not OTLP: left to the fallback
}


def json_value_too_deep(value: Any, levels: int = MAX_VALUE_NESTING) -> bool:
    """Whether an OTLP/JSON ``AnyValue`` nests arrays or key-value lists more than ``levels``
    deep (other shapes are left to the converters to judge)."""
    # Each name is declared before its type() check: narrowing an Any would leave it unknown.
    document: dict[str, Any] = value
    if type(document) is not dict:
        return False
    kvlist: Any = document.get("kvlistValue", document.get("kvlist_value"))
    container: Any = kvlist if kvlist is not None else document.get("arrayValue", document.get("array_value"))
    fields: dict[str, Any] = container
    if type(fields) is not dict:
        return False
    elements: list[Any] = fields.get("values") or []
    if type(elements) is not list:
        return False
    if levels == 0:
        return True
    for element in elements:
        child: Any = element
        if kvlist is not None:
            entry: dict[str, Any] = element
            child = entry.get("value") if type(entry) is dict else None
        if json_value_too_deep(child, levels - 1):
            return True
    return False


def _is_repeated(field: FieldDescriptor) -> bool:
    flag = getattr(field, "is_repeated", None)
    if flag is not None:
        return bool(flag)
    return getattr(field, "label", None) == FieldDescriptor.LABEL_REPEATED  # pragma: no cover


def _message(table: _Table, value: Any) -> dict[str, Any]:
    # Declared before the type() check: narrowing an Any by type() would give dict[Unknown, Unknown].
    document: dict[str, Any] = value
    if type(document) is not dict:
        raise NotFast
    out: dict[str, Any] = {}
    for key, item in document.items():
        entry = table.get(key)
        if entry is None or item is None:
            continue  # unknown keys MUST be ignored; null means "not set"
        name, convert, repeated = entry
        if repeated:
            elements: list[Any] = item
            if type(elements) is not list:
                raise NotFast
            out[name] = [convert(element) for element in elements]
        else:
            out[name] = convert(item)
    return out


def _build_tables(root: Descriptor) -> dict[str, _Table]:
    tables: dict[str, _Table] = {}
    pending = [root]
    while pending:  # first pass: one (still empty) table per reachable message type
        descriptor = pending.pop()
        if descriptor.full_name not in tables:
            tables[descriptor.full_name] = {}
            pending.extend(f.message_type for f in descriptor.fields if f.message_type is not None)
    any_value, key_value = _attribute_converters(tables)
    special = {AnyValue.DESCRIPTOR.full_name: any_value, KeyValue.DESCRIPTOR.full_name: key_value}

    def nested(table: _Table) -> _Convert:
        return lambda value: _message(table, value)

    visited: set[str] = set()
    pending = [root]
    while pending:  # second pass: fill the tables
        descriptor = pending.pop()
        if descriptor.full_name in visited:
            continue
        visited.add(descriptor.full_name)
        table = tables[descriptor.full_name]
        for field in descriptor.fields:
            if field.message_type is not None:
                sub = field.message_type.full_name
                convert = special.get(sub) or nested(tables[sub])
                pending.append(field.message_type)
            elif field.full_name in HEX_ID_FIELDS:
                convert = _hex
            else:
                convert = _SCALARS.get(field.type, _int)  # every remaining type is an integer
            entry = (field.name, convert, _is_repeated(field))
            table[field.json_name] = table[field.name] = entry
    return tables


def _attribute_converters(tables: dict[str, _Table]) -> tuple[_Convert, _Convert]:
    """Dedicated converters for ``AnyValue``/``KeyValue``: most of a span's JSON is attributes."""
    any_table = tables[AnyValue.DESCRIPTOR.full_name]
    kv_table = tables[KeyValue.DESCRIPTOR.full_name]
    simple: dict[str, tuple[str, _Convert]] = {
        "stringValue": ("string_value", _str),
        "intValue": ("int_value", _int),
        "boolValue": ("bool_value", _bool),
        "doubleValue": ("double_value", _float),
    }

    def any_value(value: Any) -> dict[str, Any]:
        document: dict[str, Any] = value
        if type(document) is dict and len(document) == 1:
            for key, item in document.items():
                entry = simple.get(key)
                if entry is not None:
                    return {entry[0]: entry[1](item)}
        if json_value_too_deep(value):  # the fallback drops it (and counts it)
            raise NotFast
        return _message(any_table, value)  # arrays, kvlists, bytes, extra keys

    def key_value(value: Any) -> dict[str, Any]:
        document: dict[str, Any] = value
        if type(document) is dict and len(document) == 2:
            key, item = document.get("key"), document.get("value")
            if type(key) is str and item is not None:
                return {"key": key, "value": any_value(item)}
        return _message(kv_table, value)

    return any_value, key_value


_TABLES: Final = _build_tables(ExportTraceServiceRequest.DESCRIPTOR)
_REQUEST_TABLE: Final = _TABLES[ExportTraceServiceRequest.DESCRIPTOR.full_name]


def convert_request(document: dict[str, Any]) -> ExportTraceServiceRequest:
    """Build the request from a parsed OTLP/JSON document (not modified).

    Raises:
        NotFast: the document needs ``json_format`` (unusual shapes, enum names, invalid values).
    """
    try:
        return ExportTraceServiceRequest(**_message(_REQUEST_TABLE, document))
    except NotFast:
        raise
    except (ValueError, TypeError, RecursionError, binascii.Error) as exc:
        raise NotFast from exc
