"""Split a cost delta exactly into volume, retry, efficiency and price/mix effects.

A group's cost over a window is a product of three factors::

    cost = attempts x tokens per attempt x cost per token
         = (logical requests + retries) x t x p

* **volume**: the change in logical requests,
* **retry**: the change in retries (attempts beyond the first of a logical request),
* **efficiency**: the change in tokens per attempt (input + output),
* **price/mix**: the change in cost per token: another model, another mix of input,
  output and cached tokens, another price.

Why this split, and why exact:

* The three factors are credited with their **Shapley values**: each factor's effect is
  its marginal contribution averaged over every order of changing the factors. Unlike a
  chained (Laspeyres-style) split it does not depend on an arbitrary order, and unlike
  log-mean (LMDI) splits it needs no logarithms, so with rational arithmetic the effects
  add up to the delta *exactly*. For three factors the weights are closed-form (below).
* The attempts effect is shared between volume and retries in proportion to their
  changes: attempts are the *sum* of logical requests and retries, so the split is
  linear and exact (it holds even when the two changes cancel). Retries are counted as
  attempts rather than as a multiplier so that a group holding only retries (the
  fallback model a retry went to) still decomposes.
* Integer nano-USD at the end: each effect is floored and the remaining nano-dollars (at
  most three) go to the effects with the largest fractional parts (ties in the order
  volume, retry, efficiency, price), so the four integers add up to the integer delta.

A baseline of another length than the window is compared per hour
(:func:`split_scaled`): the baseline's counts are multiplied by window length / baseline
length before the split. Every effect is linear in the two sides' counts together, so
that split is still exact in integers, and it is rounded once, to the nano-USD.

Degenerate groups: a ratio with no denominator (no attempts, or no tokens) takes the
other window's value, so a group that appears or disappears is all volume and retries,
and a side without tokens cannot create a fake efficiency effect. A group whose cost
arrived without any tokens (a provider-reported cost) is split over attempts and cost per
attempt instead: efficiency is then 0 and the price effect holds the per-attempt change.

Example::

    effects = split_delta(Side(100, 110, 55_000, 9_000_000), Side(100, 110, 110_000, 18_000_000))
    effects.efficiency == 9_000_000 and effects.total == 9_000_000
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from math import floor
from typing import Literal

from ..store import Measures
from .investigate_documents import EffectsDocument

__all__ = [
    "EFFECTS",
    "EffectName",
    "Effects",
    "Side",
    "apportion",
    "exact_effects",
    "scaled",
    "scaled_delta",
    "split_delta",
    "split_scaled",
]

EffectName = Literal["volume", "retry", "efficiency", "price"]
EFFECTS: tuple[EffectName, ...] = ("volume", "retry", "efficiency", "price")
"""Effect names, in tie-break order."""


@dataclass(frozen=True, slots=True)
class Side:
    """What the split needs of one group in one window."""

    logical_requests: int
    attempts: int
    tokens: int
    """Input plus output tokens."""
    cost_nano_usd: int

    @classmethod
    def of(cls, measures: Measures | None) -> Side:
        """From rollup measures (None: the group had nothing in that window)."""
        if measures is None:
            return cls(0, 0, 0, 0)
        return cls(measures.logical_requests, measures.attempts, measures.tokens, measures.cost_nano_usd)


@dataclass(frozen=True, slots=True)
class Effects:
    """The delta's effects in integer nano-USD; they add up to the delta exactly."""

    volume: int
    retry: int
    efficiency: int
    price: int

    @property
    def total(self) -> int:
        """The delta."""
        return self.volume + self.retry + self.efficiency + self.price

    def as_dict(self) -> EffectsDocument:
        """``{"volume": ..., "retry": ..., "efficiency": ..., "price": ...}``."""
        return {
            "volume": self.volume,
            "retry": self.retry,
            "efficiency": self.efficiency,
            "price": self.price,
        }

    def get(self, name: EffectName) -> int:
        """One effect by name."""
        value: int = getattr(self, name)
        return value

    def __add__(self, other: Effects) -> Effects:
        return Effects(
            self.volume + other.volume,
            self.retry + other.retry,
            self.efficiency + other.efficiency,
            self.price + other.price,
        )


def _ratio(numerator: int, denominator: int) -> Fraction | None:
    return Fraction(numerator, denominator) if denominator else None


def _pair(base: Fraction | None, current: Fraction | None) -> tuple[Fraction, Fraction]:
    """Both sides of a ratio, an undefined side taking the other's value (or 0)."""
    if base is None and current is None:
        return Fraction(0), Fraction(0)
    if base is None:
        assert current is not None
        return current, current
    if current is None:
        return base, base
    return base, current


def exact_effects(base: Side, current: Side) -> tuple[Fraction, Fraction, Fraction, Fraction]:
    """The exact (rational) volume, retry, efficiency and price effects; they sum to the delta."""
    a0, a1 = Fraction(base.attempts), Fraction(current.attempts)
    collapsed = (base.tokens == 0 and base.cost_nano_usd != 0) or (
        current.tokens == 0 and current.cost_nano_usd != 0
    )
    if collapsed:
        q0, q1 = _pair(
            _ratio(base.cost_nano_usd, base.attempts), _ratio(current.cost_nano_usd, current.attempts)
        )
        per_attempt = (q0 + q1) / 2
        efficiency = Fraction(0)
        price = (q1 - q0) * (a0 + a1) / 2
    else:
        t0, t1 = _pair(_ratio(base.tokens, base.attempts), _ratio(current.tokens, current.attempts))
        p0, p1 = _pair(_ratio(base.cost_nano_usd, base.tokens), _ratio(current.cost_nano_usd, current.tokens))
        # Shapley weights of a three-factor product: 1/3 for the orders where the factor
        # changes first or last, 1/6 for each mixed term.
        per_attempt = (t0 * p0 + t1 * p1) / 3 + (t1 * p0 + t0 * p1) / 6
        efficiency = (t1 - t0) * ((a0 * p0 + a1 * p1) / 3 + (a1 * p0 + a0 * p1) / 6)
        price = (p1 - p0) * ((a0 * t0 + a1 * t1) / 3 + (a1 * t0 + a0 * t1) / 6)
    retries0 = base.attempts - base.logical_requests
    retries1 = current.attempts - current.logical_requests
    volume = (current.logical_requests - base.logical_requests) * per_attempt
    retry = (retries1 - retries0) * per_attempt
    return volume, retry, efficiency, price


def apportion(values: Sequence[Fraction], total: int) -> list[int]:
    """Integers, each the floor or ceiling of its value, adding up to ``total``.

    ``total`` must equal the exact sum of ``values`` (an integer). The units left after
    flooring go to the largest fractional parts, earlier values first on ties.
    """
    floors = [floor(value) for value in values]
    remainder = total - sum(floors)
    if not 0 <= remainder <= len(values):
        raise ValueError(f"values do not add up to {total}")
    order = sorted(range(len(values)), key=lambda index: (-(values[index] - floors[index]), index))
    for index in order[:remainder]:
        floors[index] += 1
    return floors


def _sides(base: int, current: int, base_den: int, current_den: int) -> tuple[int, int, int, int]:
    """Both sides of a ratio as (numerator, denominator) pairs, an undefined side taking the
    other's value (or 0/1), as :func:`_pair` does with fractions."""
    if base_den == 0 and current_den == 0:
        return 0, 1, 0, 1
    if base_den == 0:
        return current, current_den, current, current_den
    if current_den == 0:
        return base, base_den, base, base_den
    return base, base_den, current, current_den


def _numerators(base: Side, current: Side) -> tuple[list[int], int]:
    """The four exact effects as integer numerators over one common (positive) denominator."""
    a0, a1 = base.attempts, current.attempts
    d_logical = current.logical_requests - base.logical_requests
    d_retries = (a1 - current.logical_requests) - (a0 - base.logical_requests)
    if (base.tokens == 0 and base.cost_nano_usd != 0) or (current.tokens == 0 and current.cost_nano_usd != 0):
        e, f, g, h = _sides(base.cost_nano_usd, current.cost_nano_usd, a0, a1)
        per_attempt = e * h + g * f
        return [d_logical * per_attempt, d_retries * per_attempt, 0, (g * f - e * h) * (a0 + a1)], 2 * f * h
    a, b, c, d = _sides(base.tokens, current.tokens, a0, a1)  # tokens per attempt
    e, f, g, h = _sides(base.cost_nano_usd, current.cost_nano_usd, base.tokens, current.tokens)  # cost/token
    per_attempt = 2 * a * e * d * h + 2 * c * g * b * f + c * e * b * h + a * g * d * f
    numerators = [
        d_logical * per_attempt,
        d_retries * per_attempt,
        (c * b - a * d) * ((2 * a0 + a1) * e * h + (2 * a1 + a0) * g * f),
        (g * f - e * h) * ((2 * a0 + a1) * a * d + (2 * a1 + a0) * c * b),
    ]
    return numerators, 6 * b * d * f * h


def _apportioned(numerators: list[int], denominator: int, total: int) -> Effects:
    """:func:`apportion` on ``numerators / denominator``, in integers."""
    floors = [numerator // denominator for numerator in numerators]
    remainder = total - sum(floors)
    if not 0 <= remainder <= 4:
        raise ArithmeticError(f"effects do not add up to {total} ({numerators}/{denominator})")
    leftovers = [
        numerator - floor_ * denominator for numerator, floor_ in zip(numerators, floors, strict=True)
    ]
    for index in sorted(range(4), key=lambda i: (-leftovers[i], i))[:remainder]:
        floors[index] += 1
    volume, retry, efficiency, price = floors
    return Effects(volume, retry, efficiency, price)


def split_delta(base: Side, current: Side) -> Effects:
    """The delta ``current.cost - base.cost`` as four integer effects adding up exactly.

    The same numbers as :func:`exact_effects` followed by :func:`apportion`, computed with
    integers over one common denominator: investigate splits every group of every
    dimension, and ``Fraction`` arithmetic was most of its time.
    """
    numerators, denominator = _numerators(base, current)
    return _apportioned(numerators, denominator, current.cost_nano_usd - base.cost_nano_usd)


def scaled(side: Side, factor: int) -> Side:
    """Every count and the cost of ``side`` times ``factor`` (its ratios unchanged)."""
    return Side(
        side.logical_requests * factor,
        side.attempts * factor,
        side.tokens * factor,
        side.cost_nano_usd * factor,
    )


def scaled_delta(base: Side, current: Side, scale: Fraction) -> Fraction:
    """The exact delta of ``current`` against ``base`` scaled by ``scale`` (nano-USD)."""
    return current.cost_nano_usd - scale * base.cost_nano_usd


def split_scaled(base: Side, current: Side, scale: Fraction) -> Effects:
    """The delta of ``current`` against ``base`` with every count of ``base`` times ``scale``
    (window length / baseline length: a comparison of per-hour rates), as four integer
    effects adding up to that delta rounded (half-even) to the nano-USD.

    Why this is exact: every effect is linear in the two sides' counts taken together
    (the ratios, tokens per attempt and cost per token, do not move when a side is
    scaled), so the split of ``scale x base`` against ``current`` is the split of the
    integer sides ``p x base`` against ``q x current`` (``scale = p/q``) divided by ``q``.
    The only rounding is the last step, once per effect. ``scale == 1`` is
    :func:`split_delta`.
    """
    if scale == 1:
        return split_delta(base, current)
    numerators, denominator = _numerators(scaled(base, scale.numerator), scaled(current, scale.denominator))
    return _apportioned(
        numerators, denominator * scale.denominator, round(scaled_delta(base, current, scale))
    )
