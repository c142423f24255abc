"""Attribute value coercion: accept what is unambiguous, drop the rest with a note.

Span attributes arrive from many languages and SDKs: a token count may be an int, a float
(JavaScript has no ints), a numeric string (JSON, OTTL ``set``), or garbage. Money depends
on these numbers, so the rule is strict and the same everywhere: a value is used only when
its meaning is certain; anything else becomes None and a short note in the record's
``issues`` (``"gen_ai.usage.input_tokens: negative"``). Nothing here raises and nothing is
guessed (``12.5`` tokens is not rounded, ``"1e3"`` is not parsed).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from decimal import Decimal
from typing import Final, TypeVar

__all__ = [
    "MAX_COST_USD",
    "MAX_DIMENSION_CHARS",
    "MAX_TIME_NS",
    "MAX_TOKENS",
    "to_cost",
    "to_count",
    "to_milliseconds",
    "to_text",
]

MAX_TOKENS: Final = 100_000_000
"""More tokens than this in one call is not a real count (the largest context windows are
a few million tokens): it is a unit mix-up or corruption, and pricing it would put an
absurd amount on a budget."""

MAX_TIME_NS: Final = 2**63 - 1
"""The latest time a store can hold (a signed 64-bit integer of ns: April 2262). OTLP's
fixed64 times go up to 2**64 - 1, so a later one can arrive; it is treated as missing."""

MAX_DIMENSION_CHARS: Final = 256
"""Dimension values (endpoint tag, tenant, prompt version, model...) are labels; longer
values are truncated so one runaway attribute cannot bloat every row and rollup key."""

MAX_COST_USD: Final = Decimal(1_000_000)
"""A reported cost above one million USD for one call is corruption, not spend."""

_MAX_LATENCY_MS: Final = 7 * 24 * 3600 * 1000.0
"""A week: anything longer for one call is a clock or unit error."""

_Amount = TypeVar("_Amount", Decimal, float)


def to_count(key: str, value: object, issues: list[str], limit: int | None = MAX_TOKENS) -> int | None:
    """Read a token count (or another non-negative integer such as nano-USD).

    Accepted: int, finite float with an integral value, and ASCII decimal-digit strings.
    bool is rejected although it is an int subclass: ``True`` tokens is a bug upstream.

    Args:
        key: Attribute key, used in the issue note.
        value: The raw attribute value (None means absent and adds no note).
        issues: Notes are appended here.
        limit: Largest accepted value, or None for no limit.

    Returns:
        The count, or None when absent or unusable.
    """
    if value is None:
        return None
    # bool first: it is an int subclass, and ``True`` tokens is a bug upstream, not 1.
    if isinstance(value, bool):
        issues.append(f"{key}: bool")
        return None
    if isinstance(value, int):
        number = int(value)
    elif isinstance(value, float):
        if not math.isfinite(value):
            issues.append(f"{key}: not finite")
            return None
        if not value.is_integer():
            issues.append(f"{key}: not an integer")
            return None
        number = int(value)
    elif isinstance(value, str):
        text = value.strip()
        if not (text.isascii() and text.isdigit()):
            issues.append(f"{key}: not an integer string")
            return None
        number = int(text)
    else:
        issues.append(f"{key}: unsupported type {type(value).__name__}")
        return None
    if number < 0:
        issues.append(f"{key}: negative")
        return None
    if limit is not None and number > limit:
        issues.append(f"{key}: absurd")
        return None
    return number


def to_text(key: str, value: object, issues: list[str]) -> str | None:
    """Read a dimension label: stripped text, ints as text, empty as absent.

    Args:
        key: Attribute key, used in the issue note.
        value: The raw attribute value (None means absent and adds no note).
        issues: Notes are appended here.

    Returns:
        The label, at most :data:`MAX_DIMENSION_CHARS` long, or None.
    """
    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip()
    elif isinstance(value, int) and not isinstance(value, bool):
        # Langfuse prompt versions and numeric tenant ids arrive as ints; "3" is unambiguous.
        text = str(int(value))
    else:
        issues.append(f"{key}: unsupported type {type(value).__name__}")
        return None
    if not text:
        return None
    if len(text) > MAX_DIMENSION_CHARS:
        issues.append(f"{key}: truncated to {MAX_DIMENSION_CHARS} chars")
        return text[:MAX_DIMENSION_CHARS]
    return text


def to_cost(key: str, value: object, issues: list[str]) -> Decimal | None:
    """Read a USD amount as an exact Decimal.

    Floats are converted through their shortest repr (``Decimal(str(0.1)) == Decimal("0.1")``),
    which is the number the emitter meant; ``Decimal(0.1)`` would carry binary noise into
    exact nano-USD sums.

    Args:
        key: Attribute key, used in the issue note.
        value: The raw attribute value (None means absent and adds no note).
        issues: Notes are appended here.

    Returns:
        The amount, or None when absent or unusable.
    """
    return _to_amount(key, value, issues, _decimal, Decimal.is_finite, MAX_COST_USD)


def to_milliseconds(key: str, value: object, issues: list[str]) -> float | None:
    """Read a latency in milliseconds (the payload's ``latencyMs``).

    Args:
        key: Attribute key, used in the issue note.
        value: int, finite float or decimal string; None means absent.
        issues: Notes are appended here.

    Returns:
        The latency, or None when absent or unusable.
    """
    return _to_amount(key, value, issues, float, math.isfinite, _MAX_LATENCY_MS)


def _decimal(raw: str | int | float) -> Decimal:
    return Decimal(raw if isinstance(raw, str) else str(raw))


def _to_amount(
    key: str,
    value: object,
    issues: list[str],
    parse: Callable[[str | int | float], _Amount],
    is_finite: Callable[[_Amount], bool],
    limit: _Amount,
) -> _Amount | None:
    """The checks a cost and a latency share, in the same order and with the same notes:
    an int, float or decimal string (stripped), that parses, is finite, is not negative and
    is not above ``limit``. A value that does not parse (an int beyond a float's range
    included) is noted, never raised."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        issues.append(f"{key}: unsupported type {type(value).__name__}")
        return None
    try:
        amount = parse(value.strip() if isinstance(value, str) else value)
    except (ValueError, ArithmeticError):  # decimal's InvalidOperation is an ArithmeticError
        issues.append(f"{key}: not a number")
        return None
    if not is_finite(amount):
        issues.append(f"{key}: not finite")
        return None
    if amount < 0:
        issues.append(f"{key}: negative")
        return None
    if amount > limit:
        issues.append(f"{key}: absurd")
        return None
    return amount
