"""Coarse per-dimension tiers, and how a window is split between them and the rollups.

Why they exist: with realistic cardinality (1,000 tenants x 50 endpoints x models x prompt
versions) the minute rollup barely compresses at moderate rates: 10 million spans over 30
days make ~8.5 million minute rows, and ranking 30 days from them takes seconds. A ranking
with no filter only needs, per bucket, the ranked dimension plus environment and data
mode; those projections are small (50 endpoint tags, a few thousand tenant values per
day). So compaction, off the ingest path, folds every closed rollup bucket into:

* ``rollup_dim_hour``: per hour, per (dimension, value, environment, data_mode), for the
  dimensions of the minute rollup;
* ``rollup_dim_day``: the same per day, plus ``user_id`` from the hourly rollup.

A query then reads whole days from the day tier, whole hours at the edges from the hour
tier, and only the leftover minutes (or hours) from the rollup itself, so a 30-day ranking
reads tens of thousands of rows instead of millions. Exactness never depends on how far
compaction got: rollup rows not yet folded into a tier (still marked dirty) are read from
the rollup directly, inside the tiered part of the window too.

Tiers serve rankings *without* ``where`` filters; a filtered ranking reads the rollup
(filters on other dimensions would need one projection per combination).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from .rollups import HOUR, MINUTE, RollupSpec

__all__ = ["DIM_DAY", "DIM_HOUR", "TIERS", "DimensionTier", "Segment", "split_window", "tiers_for"]


@dataclass(frozen=True, slots=True)
class DimensionTier:
    """A coarse projection: one row per (bucket, dimension, value, environment, data_mode)."""

    table: str
    bucket_column: str
    bucket_seconds: int
    sources: tuple[tuple[RollupSpec, tuple[str, ...]], ...]
    """Which rollup feeds which of its dimensions into this tier."""

    def dimensions_from(self, spec: RollupSpec) -> tuple[str, ...]:
        """Dimensions this tier takes from ``spec`` (empty if none)."""
        for source, dimensions in self.sources:
            if source == spec:
                return dimensions
        return ()


_MINUTE_DIMENSIONS: Final = ("endpoint_tag", "prompt_version", "tenant_id", "model", "provider")

DIM_HOUR: Final = DimensionTier(
    table="rollup_dim_hour",
    bucket_column="hour",
    bucket_seconds=3600,
    sources=((MINUTE, _MINUTE_DIMENSIONS),),
)
DIM_DAY: Final = DimensionTier(
    table="rollup_dim_day",
    bucket_column="day",
    bucket_seconds=86_400,
    sources=((MINUTE, _MINUTE_DIMENSIONS), (HOUR, ("user_id",))),
)
TIERS: Final = (DIM_HOUR, DIM_DAY)


def tiers_for(by: str, base: RollupSpec) -> list[DimensionTier]:
    """Tiers that can answer an unfiltered ranking of ``by`` over ``base``, coarsest first.

    A tier only takes dimensions from rollups with finer buckets than its own.
    """
    usable = [tier for tier in TIERS if by in tier.dimensions_from(base)]
    return sorted(usable, key=lambda tier: tier.bucket_seconds, reverse=True)


@dataclass(frozen=True, slots=True)
class Segment:
    """``[lo, hi)`` in Unix seconds, read from ``tier`` (None: from the base rollup)."""

    tier: DimensionTier | None
    lo: int
    hi: int


def split_window(lo: int, hi: int, tiers: Sequence[DimensionTier]) -> list[Segment]:
    """Cover ``[lo, hi)`` with as few, as coarse, buckets as possible.

    ``lo`` and ``hi`` are aligned to the base rollup's bucket; each tier takes the whole
    buckets of its size that fit, the next finer one the edges. The tier segments always
    form one contiguous middle part, with base segments only at the two ends.

    Args:
        lo: Window start, Unix seconds, on a base bucket boundary.
        hi: Window end (exclusive), Unix seconds, on a base bucket boundary.
        tiers: Usable tiers, coarsest first.
    """
    if lo >= hi:
        return []
    if not tiers:
        return [Segment(None, lo, hi)]
    tier, finer = tiers[0], tiers[1:]
    width = tier.bucket_seconds
    first = -(-lo // width) * width
    last = hi // width * width
    if first >= last:
        return split_window(lo, hi, finer)
    return [*split_window(lo, first, finer), Segment(tier, first, last), *split_window(last, hi, finer)]
