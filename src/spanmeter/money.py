"""Money, said once: the nano-USD scale, parsing, and how amounts are written.

Amounts live as integer nano-USD everywhere (rows, rollups, budgets, the ledger), so sums
are exact. USD appears only at the edges, and each edge has one writer here:

- :func:`usd`: machine formats (JSON, CSV, API documents): every nano-USD, fixed-point
  (``0.000000007``, never ``7E-9``), so a consumer can read it back exactly
  (:func:`nano_usd`) and no view prints money another way;
- :func:`money_text` / :func:`money_column`: tables and reports for people;
- :func:`dollars`: one amount in a sentence (alert titles, budget messages);
- :func:`usd_float`: metric values (OTel and Prometheus samples are floats by definition,
  never summed by spanmeter).

This module imports nothing from spanmeter, so every layer (pricing, store, budgets,
analysis, CLI) may use it.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import ROUND_DOWN, ROUND_HALF_EVEN, Decimal, InvalidOperation
from fractions import Fraction
from typing import Final, overload

__all__ = [
    "NANO_PER_USD",
    "dollars",
    "money_column",
    "money_text",
    "nano_usd",
    "usd",
    "usd_float",
    "usd_fraction",
    "usd_to_nano",
]

NANO_PER_USD: Final = 1_000_000_000
"""Nano-USD in one USD: the unit every stored amount is counted in."""
_NANO: Final = Decimal(NANO_PER_USD)
_QUANTUM: Final = Decimal("0.000000001")


def usd_to_nano(amount: Decimal) -> int:
    """Exact USD -> integer nano-USD, rounding a sub-nano remainder toward zero (a limit
    or threshold is never raised by rounding)."""
    return int((amount * _NANO).to_integral_value(ROUND_DOWN))


@overload
def usd(nano: int) -> str: ...
@overload
def usd(nano: None) -> None: ...
@overload
def usd(nano: int | None) -> str | None: ...
def usd(nano: int | None) -> str | None:
    """Exact USD as a fixed-point decimal string with all 9 decimals (``0.000000007``);
    None stays None. The one machine format: JSON, CSV and API documents use it."""
    if nano is None:
        return None
    return f"{(Decimal(nano) / _NANO).quantize(_QUANTUM):f}"


def nano_usd(text: str | None) -> int | None:
    """Nano-USD back from a :func:`usd` string (as in a report document); None stays None.

    Exact: :func:`usd` strings hold every nano-USD, so renderers that only have the
    document (it may have come from the API as JSON) lose nothing.

    Raises:
        ValueError: ``text`` is not a decimal number.
    """
    if text is None:
        return None
    try:
        return int(Decimal(text) * _NANO)
    except InvalidOperation:
        raise ValueError(f"not an amount of USD: {text!r}") from None


def usd_fraction(value: Fraction | None) -> str | None:
    """A rational nano-USD amount (a rate, a share) as :func:`usd`, rounded half-even to
    the nano-USD."""
    if value is None:
        return None
    nano = (Decimal(value.numerator) / Decimal(value.denominator)).quantize(Decimal(1), ROUND_HALF_EVEN)
    return usd(int(nano))


def usd_float(nano: int) -> float:
    """USD as a float, for metric samples only (their wire type); never summed here."""
    return nano / NANO_PER_USD


def money_text(nano: int | None, *, signed: bool = False) -> str:
    """USD for people to read: cents from 1 USD up, 4 decimals from 1 cent, and 4
    significant digits below that; ``-`` for None (no price: never shown as 0).

    Why not one fixed precision: reports hold both totals (where a tenth of a cent is
    noise) and per-request costs of a few hundredths of a cent (where 4 decimals would
    print ``0.0002 -> 0.0002`` for a 30% change). Machine formats keep :func:`usd`.
    """
    if nano is None:
        return "-"
    return _quantized(nano, _quantum(nano), signed=signed)


def money_column(values: Sequence[int | None], *, signed: bool = False) -> list[str]:
    """:func:`money_text` for a table column: every value at the finest precision
    :func:`money_text` would give any of them, right-aligned to the widest; ``-`` for None.

    Why one precision per column: right-aligned figures only line up on the decimal point
    when they share a precision, and taking the finest one means no figure shows fewer
    digits than it would on its own (a column of per-request costs is not flattened to
    ``0.0002`` the way a fixed 4 decimals would). Padding to the widest keeps the column
    aligned even when a figure is wider than the table's header allows for.
    """
    quanta = [_quantum(value) for value in values if value is not None]
    quantum = min(quanta, default=Decimal("0.01"))
    texts = ["-" if value is None else _quantized(value, quantum, signed=signed) for value in values]
    width = max(map(len, texts), default=0)
    return [text.rjust(width) for text in texts]


def dollars(nano: int) -> str:
    """One amount in a sentence: ``$1,234.50``; amounts under a dollar keep their
    significant digits (``$0.00105``), since small budgets are common in tests and
    per-user limits."""
    amount = Decimal(nano) / _NANO
    if abs(amount) >= 1 or amount == 0:
        return f"${amount:,.2f}"
    return f"${amount.quantize(Decimal('0.000001')).normalize():f}"


def _quantum(nano: int) -> Decimal:
    size = abs(Decimal(nano) / _NANO)
    if size >= 1 or size == 0:
        return Decimal("0.01")
    if size >= Decimal("0.01"):
        return Decimal("0.0001")
    return Decimal(1).scaleb(max(size.adjusted() - 3, -9))  # never past the nano-USD


def _quantized(nano: int, quantum: Decimal, *, signed: bool) -> str:
    text = f"{(Decimal(nano) / _NANO).quantize(quantum, ROUND_HALF_EVEN):f}"
    return f"+{text}" if signed and not text.startswith("-") else text
