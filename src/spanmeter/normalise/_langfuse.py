"""Langfuse SDK spans: usage and cost arrive as JSON strings, not as numbers.

The Langfuse SDKs write ``langfuse.observation.usage_details`` and
``langfuse.observation.cost_details`` as JSON objects encoded in a string attribute. The
usage object is whatever the caller passed: Langfuse's own usage types (``input``,
``output``, ``input_cache_read``...), or a provider's raw usage object (OpenAI's
``prompt_tokens`` with ``prompt_tokens_details.cached_tokens``, Anthropic's
``input_tokens`` with ``cache_read_input_tokens``). These are parsed only when a span has
no plain token attributes, so ``json.loads`` stays off the common path.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal
from typing import Final, cast

from ._token_rules import EMITTER_LANGFUSE_INPUT, EMITTER_LANGFUSE_INPUT_TOKENS
from ._values import to_cost, to_count

__all__ = ["LangfuseUsage", "parse_cost_total", "parse_usage_details"]

_MAX_JSON_CHARS: Final = 16_384
"""Usage and cost objects are a few hundred bytes; a larger string is not one of them, and
parsing it on the ingest path would cost more than the span is worth."""

# Usage-type names, each list in precedence order. Nested paths are (parent, child).
_INPUT: Final = ("input", "prompt_tokens", "input_tokens")
_OUTPUT: Final = ("output", "completion_tokens", "output_tokens")
_CACHE_READ: Final = (
    "input_cache_read",
    "input_cached_tokens",
    "cache_read_input_tokens",
    ("prompt_tokens_details", "cached_tokens"),
    ("input_tokens_details", "cached_tokens"),
)
_CACHE_WRITE: Final = ("input_cache_creation", "input_cache_write", "cache_creation_input_tokens")
_REASONING: Final = (
    "output_reasoning",
    "output_reasoning_tokens",
    ("completion_tokens_details", "reasoning_tokens"),
    ("output_tokens_details", "reasoning_tokens"),
)


@dataclass(frozen=True, slots=True)
class LangfuseUsage:
    """Token counts read from a usage-details object, in the object's own semantics."""

    input_tokens: int | None
    output_tokens: int | None
    cache_read_tokens: int | None
    cache_write_tokens: int | None
    reasoning_tokens: int | None
    emitter: str | None
    """Which input key was used, as a token-rule emitter label (see ``_token_rules``)."""


def _load_object(key: str, raw: object, issues: list[str]) -> dict[str, object] | None:
    if not isinstance(raw, str):
        issues.append(f"{key}: unsupported type {type(raw).__name__}")
        return None
    if len(raw) > _MAX_JSON_CHARS:
        issues.append(f"{key}: too long")
        return None
    try:
        parsed: object = json.loads(raw)
    except (ValueError, RecursionError):  # bad JSON, or nesting deeper than the parser allows
        issues.append(f"{key}: invalid JSON")
        return None
    if not isinstance(parsed, dict):
        issues.append(f"{key}: not a JSON object")
        return None
    return cast("dict[str, object]", parsed)  # a JSON object's keys are strings


def _pick(
    key: str, obj: dict[str, object], names: tuple[str | tuple[str, str], ...], issues: list[str]
) -> tuple[int | None, str | None]:
    """First present name -> (count, name); nested names are ``parent.child``."""
    for name in names:
        if isinstance(name, tuple):
            parent = obj.get(name[0])
            value = cast("dict[str, object]", parent).get(name[1]) if isinstance(parent, dict) else None
            label = f"{name[0]}.{name[1]}"
        else:
            value = obj.get(name)
            label = name
        if value is not None:
            return to_count(f"{key}.{label}", value, issues), label
    return None, None


def parse_usage_details(key: str, raw: object, issues: list[str]) -> LangfuseUsage | None:
    """Read token counts from a ``langfuse.observation.usage_details`` JSON string.

    Args:
        key: The attribute key, for issue notes.
        raw: The attribute value.
        issues: Notes are appended here.

    Returns:
        The counts found (None each when absent), or None when the value is unusable.
    """
    obj = _load_object(key, raw, issues)
    if obj is None:
        return None
    input_tokens, input_name = _pick(key, obj, _INPUT, issues)
    output_tokens, _ = _pick(key, obj, _OUTPUT, issues)
    cache_read, _ = _pick(key, obj, _CACHE_READ, issues)
    cache_write, _ = _pick(key, obj, _CACHE_WRITE, issues)
    reasoning, _ = _pick(key, obj, _REASONING, issues)
    if input_name == "input":
        emitter: str | None = EMITTER_LANGFUSE_INPUT
    elif input_name == "input_tokens":
        emitter = EMITTER_LANGFUSE_INPUT_TOKENS
    else:
        emitter = None  # OpenAI's prompt_tokens: inclusive, the OTel default
    return LangfuseUsage(input_tokens, output_tokens, cache_read, cache_write, reasoning, emitter)


def parse_cost_total(key: str, raw: object, issues: list[str]) -> Decimal | None:
    """Read the ``total`` of a ``langfuse.observation.cost_details`` JSON string (USD),
    with the arguments of :func:`parse_usage_details`.

    Returns:
        The total, or None when absent or unusable. Parts are not summed into a total:
        Langfuse may list overlapping breakdowns, and a guessed sum would be money.
    """
    obj = _load_object(key, raw, issues)
    if obj is None:
        return None
    if "total" not in obj:
        issues.append(f"{key}: no total")
        return None
    return to_cost(f"{key}.total", obj["total"], issues)
