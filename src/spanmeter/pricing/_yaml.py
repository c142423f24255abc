"""Strict YAML reading for the override file: exact decimals, real dates, clear errors.

A price file is edited by hand and a mistake in it silently misprices every span, so the
reader refuses what PyYAML would let through: duplicate keys (PyYAML keeps the last one),
unknown keys (usually a typo), floats that are not what was written, timestamps where a
date is meant. Each error names the file, the entry and the field.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, NoReturn, cast

import yaml

__all__ = [
    "Where",
    "as_date",
    "as_decimal",
    "as_list",
    "as_mapping",
    "as_names",
    "as_str",
    "kind",
    "load_yaml",
]

_MERGE_TAG = "tag:yaml.org,2002:merge"


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that rejects duplicate keys in a mapping."""


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[object] = set()
    for key_node, _ in node.value:
        if key_node.tag == _MERGE_TAG:
            continue  # ``<<: *base`` may be overridden by explicit keys on purpose
        key = cast(object, loader.construct_object(key_node))  # pyright: ignore[reportUnknownMemberType]  (untyped in stubs)
        try:
            duplicate = key in seen
        except TypeError:  # unhashable key (a list or mapping used as a key)
            raise yaml.constructor.ConstructorError(
                None, None, "a key must be a string", key_node.start_mark
            ) from None
        if duplicate:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node)


def _construct_timestamp(loader: _StrictLoader, node: yaml.ScalarNode) -> object:
    # ``2025-13-01`` looks like a date to the resolver, and PyYAML then fails with a bare
    # "month must be in 1..12"; keep it a string so the field check can name the field.
    try:
        return loader.construct_yaml_timestamp(node)
    except ValueError:
        return loader.construct_scalar(node)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_StrictLoader.add_constructor("tag:yaml.org,2002:timestamp", _construct_timestamp)


def load_yaml(raw: bytes) -> object:
    """Parse one YAML document strictly (see the module docstring)."""
    return yaml.load(raw.decode("utf-8"), Loader=_StrictLoader)  # a SafeLoader subclass: no arbitrary objects


@dataclass(frozen=True, slots=True)
class Where:
    """Location of a value in the file, for error messages."""

    origin: str
    entry: str

    def named(self, description: str) -> Where:
        """The same entry, described by its content (``models[2] (provider 'x', ...)``)."""
        return Where(self.origin, f"{self.entry} ({description})")

    def child(self, part: str) -> Where:
        """A nested entry."""
        return Where(self.origin, f"{self.entry}.{part}")

    def fail(self, field: str, problem: str) -> NoReturn:
        """Raise the ValueError that names file, entry and field."""
        raise ValueError(f"{self.origin}: {self.entry}: field {field!r} {problem}")


def kind(value: object) -> str:
    """How a wrong value is described to the user."""
    if isinstance(value, datetime):
        return "a timestamp"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return f"{type(value).__name__} {value!r}"


def as_mapping(value: object, where: Where, allowed: Iterable[str]) -> Mapping[str, Any]:
    """A mapping with only ``allowed`` keys."""
    if not isinstance(value, Mapping):
        raise ValueError(f"{where.origin}: {where.entry}: must be a mapping, got {kind(value)}")
    allowed_keys = frozenset(allowed)
    mapping = cast(Mapping[str, Any], value)
    for key in mapping:
        if key not in allowed_keys:
            raise ValueError(
                f"{where.origin}: {where.entry}: unknown field {key!r} "
                f"(allowed: {', '.join(sorted(allowed_keys))})"
            )
    return mapping


def as_list(value: object, where: Where, field: str) -> list[Any]:
    """A list; absent means empty."""
    if value is None:
        return []
    if not isinstance(value, list):
        where.fail(field, f"must be a list, got {kind(value)}")
    return cast(list[Any], value)


def as_str(value: object, where: Where, field: str, *, required: bool = False) -> str | None:
    """A non-empty string, stripped."""
    if value is None:
        if required:
            where.fail(field, "is required")
        return None
    if not isinstance(value, str) or not value.strip():
        where.fail(field, f"must be a non-empty string, got {kind(value)}")
    return value.strip()


def as_names(value: object, where: Where, field: str) -> tuple[str, ...]:
    """One name or a list of names, lowercased for case-insensitive matching."""
    if value is None:
        return ()
    items = cast(list[object], value) if isinstance(value, list) else [value]
    names: list[str] = []
    for item in items:
        if not isinstance(item, str) or not item.strip():
            where.fail(field, f"must be a string or a list of strings, got {kind(item)}")
        names.append(item.strip().lower())
    return tuple(names)


def as_date(value: object, where: Where, field: str, *, required: bool = False) -> date | None:
    """A calendar date: YAML ``2026-01-01`` or the same as a quoted string."""
    if value is None:
        if required:
            where.fail(field, "is required")
        return None
    if isinstance(value, datetime):
        where.fail(field, "must be a date like 2026-01-01, not a timestamp (prices change per UTC day)")
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            pass
    where.fail(field, f"must be a date like 2026-01-01, got {kind(value)}")


def as_decimal(value: object, where: Where, field: str, *, required: bool = False) -> Decimal | None:
    """A finite, non-negative amount read exactly.

    YAML floats go through ``str()``, which gives the shortest text that reads back as the
    same float, i.e. what was written in the file (``0.1`` -> ``Decimal('0.1')``), not the
    binary float's expansion.
    """
    if value is None:
        if required:
            where.fail(field, "is required")
        return None
    if isinstance(value, bool):
        where.fail(field, f"must be a number, got {kind(value)}")
    if isinstance(value, Decimal):
        number = value
    elif isinstance(value, int):
        number = Decimal(value)
    elif isinstance(value, float):
        number = Decimal(str(value))
    elif isinstance(value, str):
        try:
            number = Decimal(value.strip())
        except InvalidOperation:
            where.fail(field, f"must be a number, got {kind(value)}")
    else:
        where.fail(field, f"must be a number, got {kind(value)}")
    if not number.is_finite() or number < 0:
        where.fail(field, f"must be a finite number >= 0, got {value!r}")
    return number
