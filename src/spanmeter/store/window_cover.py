"""Signed covers: a window as whole tier buckets added and subtracted, for the fewest rows read.

Why: a ranking over a dimension with many values (10,000 users) reads one tier row per value
and bucket, so a 30-day ranking from the day tier sums ~490k rows however the window is cut
(see ``bench/query.py``), and a window ending at 13:00 adds 13 hours of the hour tier at
each edge. Rounding *outward* fixes both: read the whole coarse bucket around an edge and
subtract the part outside the window, read from finer tiers. The part outside is often
empty (nothing after "now", nothing before the first span kept), so it costs nothing, and
coarse tiers (weeks) cover the middle in a handful of buckets.

How: the window is covered from the coarsest tier down. At each tier, each edge of what is
left either rounds inward (the part up to the next boundary comes from finer tiers, added)
or outward (the whole bucket is read and the part outside, from finer tiers, subtracted),
or the tier is skipped. Every combination is costed with :func:`estimated_rows` and the
cheapest kept: a few dozen candidates, memoised, microseconds of Python.

The base rollup is the finest level: it covers what no tier bucket fits, added inside the
window or subtracted beyond it (a filtered ranking ending now reads today's whole day from
the filter tier and subtracts the empty rest of the day from the rollup). Rows not folded
into the tiers yet are read from the rollup over the range the tier segments add up to
(:func:`tiered_range`), which a subtracted base range cancels exactly.

Exactness never depends on the estimate: every segment of the chosen cover is read, even
one expected to be empty, so the signed sum counts each bucket of the window exactly once
and every bucket outside it exactly zero times, whatever the data. Subtraction is exact for
integer measures only (a float sum minus itself need not be zero), which is why callers
that sum floats use :func:`~spanmeter.store.tiers.split_window` instead.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import TYPE_CHECKING, Final

from .tiers import DimensionTier, Segment

if TYPE_CHECKING:
    from .query_model import Filters

__all__ = ["Extent", "estimated_rows", "segment_statement", "signed_cover", "tiered_range"]

_SEGMENT_COST: Final = 0.05
"""The fixed cost of one more segment (one more index seek and ``UNION ALL`` branch), in
rows of an hour bucket: small, but it makes the cheaper of two equal covers the shorter."""
_BASE_ROWS_PER_HOUR: Final = 10.0
"""A base rollup range's cost per hour, in rows of a tier's hour bucket. A range of the
rollup is read whole, every group of it, with any filter applied row by row: ~12k minute
rows an hour on ``bench/query.py``'s store against ~1k rows for one filter value's day in
the filter tier, or 5k user rows in the hour tier. High enough that the base is read only
where no tier bucket fits, and where it must be, for as short a range as possible."""
_GROWTH: Final = 1 / 3
"""How rows per bucket grow with the bucket's width: ``width ** _GROWTH``. Measured for
users on ``bench/query.py``'s store: 5.6k an hour, 16k a day (24 times as wide, 2.9 times
the rows: an exponent of 0.33). Few-valued dimensions grow slower, where any cover is cheap."""


@dataclass(frozen=True, slots=True)
class Extent:
    """Where the data lies, ``[lo, hi)`` in Unix seconds: for estimates only, never for
    correctness (a segment outside it is still read, and costs an empty index range)."""

    lo: int
    hi: int


def estimated_rows(tier: DimensionTier | None, lo: int, hi: int, extent: Extent | None) -> float:
    """Rows expected in ``tier``'s buckets of ``[lo, hi)`` (None: the base rollup's range),
    in rows of a tier's hour bucket. Buckets outside ``extent`` count for nothing."""
    width = 3600 if tier is None else tier.bucket_seconds
    if extent is not None:
        lo = max(lo, extent.lo // width * width)
        hi = min(hi, -(-extent.hi // width) * width)
    if tier is None:
        return max(0, hi - lo) / 3600 * _BASE_ROWS_PER_HOUR
    buckets = max(0, -(-(hi - lo) // width))
    return buckets * (width / 3600) ** _GROWTH


def _negated(segments: tuple[Segment, ...]) -> tuple[Segment, ...]:
    return tuple(Segment(s.tier, s.lo, s.hi, -s.sign) for s in segments)


class _Planner:
    """The cheapest signed cover of a range, memoised per range and level.

    Levels are the tiers, coarsest first, then the base rollup, which covers any range its
    own buckets align to (every range here does: the window is aligned to them, and so is
    every tier boundary).
    """

    def __init__(self, tiers: Sequence[DimensionTier], extent: Extent | None) -> None:
        self._levels: tuple[DimensionTier | None, ...] = (*tiers, None)
        self._extent = extent
        self._memo: dict[tuple[int, int, int], tuple[float, tuple[Segment, ...]]] = {}

    def best(self, lo: int, hi: int, level: int = 0) -> tuple[float, tuple[Segment, ...]]:
        """Cost and segments covering ``[lo, hi)`` (``lo < hi``) from ``levels[level:]``."""
        key = (lo, hi, level)
        found = self._memo.get(key)
        if found is not None:
            return found
        tier = self._levels[level]
        if tier is None:
            chosen = (estimated_rows(None, lo, hi, self._extent) + _SEGMENT_COST, (Segment(None, lo, hi),))
        else:
            options = [self.best(lo, hi, level + 1)]
            width = tier.bucket_seconds
            starts = {lo // width * width, -(-lo // width) * width}
            ends = {hi // width * width, -(-hi // width) * width}
            for start in starts:
                for end in ends:
                    if start < end:
                        options.append(self._rounded(lo, hi, start, end, level))
            chosen = min(options, key=lambda option: (option[0], len(option[1])))
        self._memo[key] = chosen
        return chosen

    def _rounded(
        self, lo: int, hi: int, start: int, end: int, level: int
    ) -> tuple[float, tuple[Segment, ...]]:
        """``levels[level]``'s buckets ``[start, end)``, with finer levels adding what of
        ``[lo, hi)`` they miss and subtracting what they hold beyond it."""
        tier = self._levels[level]
        cost = estimated_rows(tier, start, end, self._extent) + _SEGMENT_COST
        segments: list[Segment] = [Segment(tier, start, end)]
        for inner_lo, inner_hi in ((lo, start), (end, hi)):
            if inner_lo < inner_hi:  # inside the window, outside the buckets: add
                part_cost, part = self.best(inner_lo, inner_hi, level + 1)
            elif inner_hi < inner_lo:  # inside the buckets, outside the window: subtract
                part_cost, positive = self.best(inner_hi, inner_lo, level + 1)
                part = _negated(positive)
            else:
                continue
            cost += part_cost
            segments.extend(part)
        return cost, tuple(segments)


def signed_cover(
    lo: int, hi: int, tiers: Sequence[DimensionTier], extent: Extent | None = None
) -> list[Segment]:
    """Cover ``[lo, hi)`` with signed tier buckets and base rollup ranges (tier None) at the
    lowest estimated read.

    Args:
        lo: Window start, Unix seconds, on a base bucket boundary.
        hi: Window end (exclusive), Unix seconds, on a base bucket boundary.
        tiers: Usable tiers, coarsest first.
        extent: Where the data lies, for the estimates (None: everywhere).
    """
    if lo >= hi:
        return []
    _, segments = _Planner(tiers, extent).best(lo, hi)
    return sorted(segments, key=lambda s: (s.lo, -s.hi, s.sign))


def tiered_range(lo: int, hi: int, segments: Sequence[Segment]) -> tuple[int, int] | None:
    """The range the tier segments of a cover of ``[lo, hi)`` add up to (None: no tier
    segment): where rows not yet folded into the tiers must be read from the rollup.

    With the base rollup's segments it makes the window: the tiers' range is the window
    less what the base adds at its ends and plus what the base subtracts beyond them, one
    contiguous range. Works for both kinds of cover.

    Raises:
        ValueError: The tier segments do not add up to one range counted once.
    """
    tiered = [segment for segment in segments if segment.tier is not None]
    if not tiered:
        return None
    edges = sorted({point for segment in tiered for point in (segment.lo, segment.hi)})
    covered: list[tuple[int, int]] = []
    for left, right in pairwise(edges):
        count = sum(s.sign for s in tiered if s.lo <= left and right <= s.hi)
        if count not in (0, 1):
            raise ValueError(f"tier segments count [{left}, {right}) {count} times")
        if count:
            covered.append((left, right))
    if not covered:
        return None
    for (_, right), (left, _) in pairwise(covered):
        if right != left:
            raise ValueError("tier segments do not add up to one range")
    return covered[0][0], covered[-1][1]


def segment_statement(
    segment: Segment, by: str, selected: str, where: Filters, own: Mapping[str, str], *, mark: str
) -> tuple[str, list[object]]:
    """One tier segment's ``SELECT`` and parameters, for either backend (``mark``: its
    parameter marker): the tier row's ``value`` read as ``by`` with the ``selected``
    measures (negated by the caller for a subtracted segment), under the one caller filter
    when it is a filter tier, and the environment and data mode (``own``).

    Raises:
        ValueError: ``segment`` reads the base rollup, not a tier.
    """
    tier = segment.tier
    if tier is None:
        raise ValueError("a rollup segment has no tier statement")
    column = tier.bucket_column
    own_conditions = "".join(f" AND {name} = {mark}" for name in own)
    select = f"SELECT value AS {by}, {selected} FROM {tier.table} WHERE "
    window = f"{column} >= {mark} AND {column} < {mark}{own_conditions}"
    if tier.filtered:
        ((filter_dimension, filter_value),) = where.items()
        return (
            f"{select}filter_dimension = {mark} AND filter_value = {mark} AND dimension = {mark} AND {window}",
            [filter_dimension, filter_value, by, segment.lo, segment.hi, *own.values()],
        )
    return f"{select}dimension = {mark} AND {window}", [by, segment.lo, segment.hi, *own.values()]
