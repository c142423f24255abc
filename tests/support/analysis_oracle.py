"""Independent recomputation of analysis numbers straight from raw rows, for the tests.

Written without the analysis code: rollup semantics recomputed row by row, and the effect
split as a plain four-player Shapley value enumerated over all 24 orders.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from itertools import permutations

from spanmeter.store import SpanRow


@dataclass
class Acc:
    attempts: int = 0
    logical: int = 0
    cost: int = 0
    input: int = 0
    output: int = 0
    unpriced: int = 0
    errors: int = 0

    @property
    def tokens(self) -> int:
        return self.input + self.output


def first_attempt_flags(rows: Sequence[SpanRow]) -> list[bool]:
    """Per row in stored order: does it count a logical request (first billable attempt of its id)?"""
    seen: set[str] = set()
    flags: list[bool] = []
    for row in rows:
        key = row.external_request_id
        if not row.billable:
            flags.append(False)
        elif key is None:
            flags.append(True)
        else:
            flags.append(key not in seen)
            seen.add(key)
    return flags


def group(
    rows: Sequence[SpanRow],
    start_ns: int,
    end_ns: int,
    dimensions: Sequence[str],
    where: Mapping[str, str] | None = None,
    data_mode: str | None = "real",
    environment: str | None = None,
) -> dict[tuple[str | None, ...], Acc]:
    """Rollup-equivalent sums per group of rows whose event time lies in the (bucket-aligned) window."""
    out: dict[tuple[str | None, ...], Acc] = {}
    for row, first in zip(rows, first_attempt_flags(rows), strict=True):
        if not row.billable or not start_ns <= row.event_time_ns < end_ns:
            continue
        if data_mode is not None and row.data_mode != data_mode:
            continue
        if environment is not None and (row.environment or "") != environment:
            continue
        if where and any((getattr(row, k) or "") != v for k, v in where.items()):
            continue
        acc = out.setdefault(tuple(getattr(row, d) for d in dimensions), Acc())
        acc.attempts += 1
        acc.logical += first
        acc.cost += row.cost_nano_usd or 0
        acc.input += row.input_tokens or 0
        acc.output += row.output_tokens or 0
        acc.unpriced += row.cost_nano_usd is None
        acc.errors += row.outcome == "error"
    return out


def shapley_effects(base: Acc, current: Acc, scale: Fraction = Fraction(1)) -> list[Fraction]:
    """Volume, retry, efficiency, price: Shapley values of cost = (L + R) * t * p, by enumeration.

    ``scale`` multiplies the baseline's counts (L and R; t and p are ratios): a baseline of
    another length compared per hour, over the window's length.
    """

    def ratio(n: int, d: int) -> Fraction | None:
        return Fraction(n, d) if d else None

    def both(a: Fraction | None, b: Fraction | None) -> tuple[Fraction, Fraction]:
        if a is None and b is None:
            return Fraction(0), Fraction(0)
        return (a if a is not None else b), (b if b is not None else a)  # type: ignore[return-value]

    t0, t1 = both(ratio(base.tokens, base.attempts), ratio(current.tokens, current.attempts))
    p0, p1 = both(ratio(base.cost, base.tokens), ratio(current.cost, current.tokens))
    old = {
        "L": scale * base.logical,
        "R": scale * (base.attempts - base.logical),
        "t": t0,
        "p": p0,
    }
    new = {
        "L": Fraction(current.logical),
        "R": Fraction(current.attempts - current.logical),
        "t": t1,
        "p": p1,
    }

    def value(switched: set[str]) -> Fraction:
        x = {k: (new[k] if k in switched else old[k]) for k in old}
        return (x["L"] + x["R"]) * x["t"] * x["p"]

    phi = dict.fromkeys(old, Fraction(0))
    for order in permutations(old):
        switched: set[str] = set()
        for player in order:
            phi[player] += value(switched | {player}) - value(switched)
            switched.add(player)
    return [phi[k] / 24 for k in ("L", "R", "t", "p")]


def to_integers(values: Sequence[Fraction], total: int) -> list[int]:
    """Largest-remainder rounding, ties to the earlier value."""
    floors = [math.floor(v) for v in values]
    left = total - sum(floors)
    for index in sorted(range(len(values)), key=lambda i: (-(values[i] - floors[i]), i))[:left]:
        floors[index] += 1
    return floors


def integer_effects(base: Acc, current: Acc, scale: Fraction = Fraction(1)) -> list[int]:
    """The effects in nano-USD, adding up to the (scaled) delta rounded half-even."""
    return to_integers(shapley_effects(base, current, scale), round(current.cost - scale * base.cost))


def nearest_rank(values: Iterable[int], percent: int) -> int:
    ordered = sorted(values)
    return ordered[max(1, math.ceil(len(ordered) * percent / 100)) - 1]


def unit_figures(acc: Acc, hours: float) -> dict[str, float | int | None]:
    """Per-unit figures of a group, rounded as reports show them (ratios) or exact (money)."""
    return {
        "logical_requests": acc.logical,
        "attempts": acc.attempts,
        "requests_per_hour": round(acc.logical / hours, 2),
        "input_tokens_per_call": round(acc.input / acc.attempts, 1) if acc.attempts else None,
        "output_tokens_per_call": round(acc.output / acc.attempts, 1) if acc.attempts else None,
        "cost_per_request_nano_usd": acc.cost // acc.logical if acc.logical else None,
        "attempts_per_request": round(acc.attempts / acc.logical, 3) if acc.logical else None,
    }


def billable_real(rows: Sequence[SpanRow], start_ns: int, end_ns: int, **where: str) -> list[SpanRow]:
    """Billable ``real`` rows with event time in the window and the given attribution."""
    return [
        row
        for row in rows
        if row.billable
        and row.data_mode == "real"
        and start_ns <= row.event_time_ns < end_ns
        and all(getattr(row, key) == value for key, value in where.items())
    ]


def first_start(rows: Sequence[SpanRow], start_ns: int, end_ns: int, **where: str) -> int | None:
    """Earliest start time of the matching rows (when a version was first seen)."""
    return min((row.start_time_ns for row in billable_real(rows, start_ns, end_ns, **where)), default=None)
