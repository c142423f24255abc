"""Value parsers and error collection shared by the budgets file sections."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar, cast

from ...timeunits import NS_PER_SECOND, parse_duration

__all__ = ["BudgetConfigError", "ConfigErrors", "duration_ns", "fraction", "usd"]

T = TypeVar("T")


class BudgetConfigError(ValueError):
    """A budgets file that cannot be used; ``errors`` lists every problem found."""

    def __init__(self, source: str, errors: list[str]) -> None:
        self.source = source
        self.errors = errors
        super().__init__(f"{len(errors)} problem(s) in {source}:\n" + "\n".join(f"  {e}" for e in errors))


class ConfigErrors:
    """Collects problems; ``at`` builds the location prefix of a message."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.errors: list[str] = []

    def add(self, where: str, message: str) -> None:
        """Record ``message`` about ``where`` (``budgets[2] 'x': window``)."""
        self.errors.append(f"{self.source}: {where}: {message}")

    def guard(self, where: str, parse: Callable[[], T]) -> T | None:
        """Run ``parse``; a ValueError becomes a recorded problem and None."""
        try:
            return parse()
        except ValueError as error:
            self.add(where, str(error))
            return None

    def mapping(self, where: str, value: object) -> Mapping[str, Any] | None:
        """``value`` if it is a mapping; else None, the problem recorded."""
        if not isinstance(value, Mapping):
            self.add(where, f"expected a mapping, got {value!r}")
            return None
        return cast(Mapping[str, Any], value)

    def entry(self, where: str, value: object, name_key: str) -> tuple[Mapping[str, Any], str] | None:
        """A list entry at ``where`` (``budgets[2]``) as a mapping, and ``where`` naming it by
        its ``name_key`` when that is a string (``budgets[2] 'tenant-daily'``), so every
        message about it says which; None, the problem recorded, when it is no mapping."""
        fields = self.mapping(where, value)
        if fields is None:
            return None
        name = fields.get(name_key)
        return fields, where + (f" {name!r}" if isinstance(name, str) else "")

    def unknown_keys(self, where: str, entry: Mapping[str, Any], allowed: frozenset[str]) -> None:
        """Record every key of ``entry`` not in ``allowed``."""
        for key in entry:
            if key not in allowed:
                self.add(where, f"unknown key {key!r} (expected one of: {', '.join(sorted(allowed))})")


def duration_ns(value: object) -> int:
    """``90s``, ``15m``, ``6h``, ``7d`` (or a number of seconds) -> nanoseconds."""
    if isinstance(value, bool):
        raise ValueError(f"expected a duration such as 15m or 24h, got {value!r}")
    if isinstance(value, (int, float)):
        if value <= 0:
            raise ValueError(f"a duration must be positive, got {value!r}")
        return int(value * NS_PER_SECOND)
    if not isinstance(value, str):
        raise ValueError(f"expected a duration such as 15m or 24h, got {value!r}")
    return parse_duration(value)


def fraction(value: object, *, allow_above_one: bool = False) -> Decimal:
    """``30%`` or ``0.3`` -> ``Decimal('0.3')``.

    A bare number above 1 is refused unless allowed (``50`` is more likely 50% than 5,000%).
    """
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError(f"expected a percentage such as 30% or a fraction such as 0.3, got {value!r}")
    text = str(value).strip()
    percent = text.endswith("%")
    try:
        number = Decimal(text[:-1].strip() if percent else text)
    except InvalidOperation:
        raise ValueError(
            f"expected a percentage such as 30% or a fraction such as 0.3, got {value!r}"
        ) from None
    if percent:
        number /= 100
    elif number > 1 and not allow_above_one:
        raise ValueError(f"{value!r} is above 1: write a percentage ({value}%) or a fraction")
    if not number.is_finite() or number <= 0:
        raise ValueError(f"must be positive, got {value!r}")
    return number


def usd(value: object) -> Decimal:
    """A positive USD amount (number or string) as an exact Decimal."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError(f"expected an amount in USD such as 25 or '12.50', got {value!r}")
    try:
        amount = Decimal(str(value).strip().lstrip("$"))
    except InvalidOperation:
        raise ValueError(f"expected an amount in USD such as 25 or '12.50', got {value!r}") from None
    if not amount.is_finite() or amount <= 0:
        raise ValueError(f"must be a positive amount, got {value!r}")
    return amount
