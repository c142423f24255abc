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

Exactness never depends on the estimate: every segment of the chosen cover is read, even
one expected to be empty, so the signed sum counts each bucket of the window exactly once
and every bucket outside it exactly zero times, whatever the data. Subtraction is exact for
integer measures only (a float sum minus itself need not be zero), which is why callers
that sum floats use :func:`~spanmeter.store.tiers.split_window` instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from .tiers import DimensionTier, Segment

__all__ = ["Extent", "estimated_rows", "signed_cover", "tiered_range"]

_SEGMENT_COST: Final = 0.05
"""The fixed cost of one more segment (one more index seek and ``UNION ALL`` branch), in
rows of an hour bucket: small, but it makes the cheaper of two equal covers the shorter."""
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


def estimated_rows(tier: DimensionTier, lo: int, hi: int, extent: Extent | None) -> float:
    """Rows expected in ``tier``'s buckets of ``[lo, hi)``, in rows of an hour bucket.

    Buckets outside ``extent`` count for nothing.
    """
    width = tier.bucket_seconds
    if extent is not None:
        lo = max(lo, extent.lo // width * width)
        hi = min(hi, -(-extent.hi // width) * width)
    buckets = max(0, -(-(hi - lo) // width))
    return buckets * (width / 3600) ** _GROWTH


def _negated(segments: tuple[Segment, ...]) -> tuple[Segment, ...]:
    return tuple(Segment(s.tier, s.lo, s.hi, -s.sign) for s in segments)


class _Planner:
    """The cheapest signed cover of ranges aligned to the finest tier, memoised per range."""

    def __init__(self, tiers: Sequence[DimensionTier], extent: Extent | None) -> None:
        self._tiers = tiers
        self._extent = extent
        self._memo: dict[tuple[int, int, int], tuple[float, tuple[Segment, ...]]] = {}

    def best(self, lo: int, hi: int, level: int = 0) -> tuple[float, tuple[Segment, ...]]:
        """Cost and segments covering ``[lo, hi)`` (``lo < hi``) with ``tiers[level:]``."""
        key = (lo, hi, level)
        found = self._memo.get(key)
        if found is not None:
            return found
        tier = self._tiers[level]
        whole = (estimated_rows(tier, lo, hi, self._extent) + _SEGMENT_COST, (Segment(tier, lo, hi),))
        if level == len(self._tiers) - 1:
            self._memo[key] = whole
            return whole
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
        """``tiers[level]``'s buckets ``[start, end)``, with finer tiers adding what of
        ``[lo, hi)`` they miss and subtracting what they hold beyond it."""
        tier = self._tiers[level]
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
    """Cover ``[lo, hi)`` with signed tier buckets at the lowest estimated read, and the
    base rollup (tier None, always added) for what no tier bucket fits.

    The base rollup is read only at the window's two ends, for the parts finer than the
    finest tier, exactly as :func:`~spanmeter.store.tiers.split_window` does; between them
    the window is aligned to the finest tier and covered by tiers alone, so a subtracted
    segment is always a tier's (and :func:`tiered_range` is one range).

    Args:
        lo: Window start, Unix seconds, on a base bucket boundary.
        hi: Window end (exclusive), Unix seconds, on a base bucket boundary.
        tiers: Usable tiers, coarsest first.
        extent: Where the data lies, for the estimates (None: everywhere).
    """
    if lo >= hi:
        return []
    if not tiers:
        return [Segment(None, lo, hi)]
    width = tiers[-1].bucket_seconds
    first, last = -(-lo // width) * width, hi // width * width
    if first >= last:
        return [Segment(None, lo, hi)]
    _, middle = _Planner(tiers, extent).best(first, last)
    edges_lo = [Segment(None, lo, first)] if lo < first else []
    edges_hi = [Segment(None, last, hi)] if last < hi else []
    return [*edges_lo, *sorted(middle, key=lambda s: (s.lo, -s.hi)), *edges_hi]


def tiered_range(lo: int, hi: int, segments: Sequence[Segment]) -> tuple[int, int] | None:
    """The part of ``[lo, hi)`` that the tier segments of a cover of it add up to (None: no
    tier segment): where rows not yet folded into the tiers must be read from the rollup.

    Works for both kinds of cover, whose base segments lie only at the window's two ends.
    """
    if all(segment.tier is None for segment in segments):
        return None
    for segment in segments:
        if segment.tier is None and segment.lo == lo:
            lo = segment.hi
        elif segment.tier is None and segment.hi == hi:
            hi = segment.lo
    return lo, hi
