"""OTLP attribute values from Python values, for tests that hand-build protobuf spans.

Hand-built rather than the OTLP exporter's encoder, which is private to the exporter
package; tests also need values no SDK would send (a key without a value).
"""

from __future__ import annotations

from typing import Any

from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue

__all__ = ["any_value", "kv"]


def any_value(value: Any) -> AnyValue:
    """``bool``, ``int``, ``float``, lists (of any of these) and anything else as a string."""
    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, int):
        return AnyValue(int_value=value)
    if isinstance(value, float):
        return AnyValue(double_value=value)
    if isinstance(value, list):
        return AnyValue(array_value=ArrayValue(values=[any_value(v) for v in value]))
    return AnyValue(string_value=value)


def kv(key: str, value: Any) -> KeyValue:
    """An attribute; ``None`` gives a key without a value (as a broken exporter sends it)."""
    if value is None:
        return KeyValue(key=key)
    return KeyValue(key=key, value=any_value(value))
