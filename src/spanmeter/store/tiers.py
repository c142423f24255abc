"""Coarse per-dimension tiers, and how a window is split between them and the rollups.

Every store keeps these tiers, folded in by its compaction off the ingest path (the embedded
store's single writer; on PostgreSQL, one replica at a time), and splits a window between
them and the rollups by the same rules here and in :mod:`spanmeter.store.window_cover`, with
the retention rounding of :mod:`spanmeter.store.retention_rule`, so that all of them keep
the same spans and give the same answers.

Why they exist: with realistic cardinality (1,000 tenants x 50 endpoints x models x prompt
versions) the minute rollup barely compresses at moderate rates: 10 million spans over 30
days make ~8.5 million minute rows, and ranking 30 days from them takes seconds. A ranking
with no filter only needs, per bucket, the ranked dimension plus environment and data
mode; those projections are small (50 endpoint tags, a few thousand tenant values per
day). So compaction, off the ingest path, folds every closed rollup bucket into:

* ``rollup_dim_hour``: per hour, per (dimension, value, environment, data_mode), for the
  dimensions of the minute rollup and ``user_id`` from the hourly one;
* ``rollup_dim_day``: the same per day, plus ``user_id`` from the hourly rollup;
* ``rollup_dim_6h``, ``rollup_dim_week`` and ``rollup_dim_4w``: ``user_id`` only, per 6
  hours, per week and per 4 weeks (epoch-aligned: weeks start on Thursdays, 00:00 UTC), so
  that a ranking of users reads a window as a few coarse buckets, added and subtracted
  (:mod:`spanmeter.store.window_cover`).

A query then reads whole days from the day tier, whole hours at the edges from the hour
tier, and only the leftover minutes (or hours) from the rollup itself, so a 30-day ranking
reads tens of thousands of rows instead of millions. Exactness never depends on how far
compaction got: rollup rows not yet folded into a tier (still marked dirty) are read from
the rollup directly, inside the tiered part of the window too.

Filtered rankings have a tier of their own, for one filter on any dimension a ``where``
may name (:data:`FILTER_DIMENSIONS`): ``rollup_pair_day`` holds, per day, one row per
(filter dimension, filter value, dimension, value, environment, data_mode). Its key leads
with the filter, so "top models on endpoint X over 30 days" reads that endpoint's rows
only, instead of every minute row of the window (0.7-3.5 s over 10 million spans before,
see ``bench/query.py``). Several filters at once still read the rollup.

The partial days at a filtered window's edges come from the rollup. The hourly rollup's
compacted rows are also indexed by user, tenant and endpoint tag
(:mod:`spanmeter.store.rollup_indexes`), so an edge under one of those filters seeks that
value's rows instead of filtering every row of its hours: not a tier (nothing to fold,
nothing on the ingest path), the same rows read another way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from .rollups import HOUR, MINUTE, RollupSpec

if TYPE_CHECKING:
    from .query_model import Filters

__all__ = [
    "DIM_4W",
    "DIM_6H",
    "DIM_DAY",
    "DIM_HOUR",
    "DIM_WEEK",
    "FILTER_DIMENSIONS",
    "FILTER_TIERS",
    "PAIR_DAY",
    "TIERS",
    "DimensionTier",
    "Segment",
    "split_window",
    "tiers_for",
    "usable_tiers",
]


@dataclass(frozen=True, slots=True)
class DimensionTier:
    """A coarse projection: one row per (bucket, dimension, value, environment, data_mode)."""

    table: str
    bucket_column: str
    bucket_seconds: int
    sources: tuple[tuple[RollupSpec, tuple[str, ...]], ...]
    """Which rollup feeds which of its dimensions into this tier."""
    filters: tuple[str, ...] = ()
    """A filter tier's filter dimensions (empty: not a filter tier). Its rows are also keyed
    by one of them and its value (``filter_dimension``, ``filter_value``): see
    :meth:`pairs_from` for which (filter, dimension) pairs it holds."""

    @property
    def filtered(self) -> bool:
        """True for a filter tier."""
        return bool(self.filters)

    def dimensions_from(self, spec: RollupSpec) -> tuple[str, ...]:
        """Dimensions this tier takes from ``spec`` (empty if none)."""
        for source, dimensions in self.sources:
            if source == spec:
                return dimensions
        return ()

    def pairs_from(self, spec: RollupSpec) -> tuple[tuple[str, str], ...]:
        """(filter, dimension) pairs a filter tier takes from ``spec``.

        Every pair of one of its filters and one of the dimensions it takes from ``spec``
        that ``spec`` holds both of, unless an earlier source holds both (each pair comes
        from one rollup, so nothing is counted twice): the minute rollup's pairs come from
        it, those with a user from the hourly rollup, which is also the rollup a query
        involving a user reads.
        """
        claimed: set[tuple[str, str]] = set()
        for source, dimensions in self.sources:
            pairs = tuple(
                (name, dimension)
                for name in self.filters
                if name in source.dimensions
                for dimension in dimensions
                if dimension != name and (name, dimension) not in claimed
            )
            if source == spec:
                return pairs
            claimed.update(pairs)
        return ()


_MINUTE_DIMENSIONS: Final = ("endpoint_tag", "prompt_version", "tenant_id", "model", "provider")

DIM_HOUR: Final = DimensionTier(
    table="rollup_dim_hour",
    bucket_column="hour",
    bucket_seconds=3600,
    # users from the hourly rollup, whose buckets are as wide: a projection without tenant
    # and endpoint, ~40% fewer rows an hour
    sources=((MINUTE, _MINUTE_DIMENSIONS), (HOUR, ("user_id",))),
)
DIM_DAY: Final = DimensionTier(
    table="rollup_dim_day",
    bucket_column="day",
    bucket_seconds=86_400,
    sources=((MINUTE, _MINUTE_DIMENSIONS), (HOUR, ("user_id",))),
)
DIM_6H: Final = DimensionTier(
    table="rollup_dim_6h",
    bucket_column="six_hours",
    bucket_seconds=21_600,
    # users only (like the week tier): the one dimension whose rankings read enough rows
    # to need them (see spanmeter.store.window_cover); the others answer in milliseconds
    sources=((HOUR, ("user_id",)),),
)
DIM_WEEK: Final = DimensionTier(
    table="rollup_dim_week",
    bucket_column="week",
    bucket_seconds=604_800,
    sources=((HOUR, ("user_id",)),),
)
DIM_4W: Final = DimensionTier(
    table="rollup_dim_4w",
    bucket_column="four_weeks",
    bucket_seconds=2_419_200,
    sources=((HOUR, ("user_id",)),),
)
TIERS: Final = (DIM_HOUR, DIM_6H, DIM_DAY, DIM_WEEK, DIM_4W)
"""The unfiltered tiers. Retention rounds to the widest (see
:mod:`spanmeter.store.retention_rule`)."""

FILTER_DIMENSIONS: Final = (
    "endpoint_tag",
    "tenant_id",
    "prompt_version",
    "model",
    "provider",
    "outcome",
    "user_id",
)
"""Dimensions a filter tier is keyed by: every one a ``where`` may name. The first two since
``m003_filter_tiers``, the others since ``m006_every_filter``."""
PAIR_DAY: Final = DimensionTier(
    table="rollup_pair_day",
    bucket_column="day",
    bucket_seconds=86_400,
    sources=((MINUTE, _MINUTE_DIMENSIONS), (HOUR, ("user_id", "tenant_id", "endpoint_tag"))),
    filters=FILTER_DIMENSIONS,
)
FILTER_TIERS: Final = (PAIR_DAY,)
"""Filter tiers. Only a day tier: a filtered ranking reads the window's partial days from
the rollup, where scanning past the other filter values costs ~0.05 us a row (~25 ms for
two edge days of 10 million spans a month), while an hourly filter tier measured 23
million rows on that store (2.8 times the minute rollup) for those ~25 ms. Where the
scan costs more (the hourly rollup's ~9k rows an hour, under a user, tenant or endpoint
filter), an index of its compacted rows takes the edges instead
(:mod:`spanmeter.store.rollup_indexes`)."""


def tiers_for(by: str, base: RollupSpec, filter_dimension: str | None = None) -> list[DimensionTier]:
    """Tiers that can answer a ranking of ``by`` over ``base``, coarsest first.

    Args:
        by: The ranked dimension.
        base: The rollup the ranking would otherwise read.
        filter_dimension: None for an unfiltered ranking; else the one ``where`` key, and
            only a filter tier holding the pair (``filter_dimension``, ``by``) from
            ``base`` can answer.

    A tier only takes dimensions from rollups with buckets no coarser than its own.
    Called without a filter for ``user_id`` over the hourly rollup, this gives the 4-week,
    week, day, 6-hour and hour tiers: the edges of a window come from the hour tier at the
    finest, and nothing from the rollup itself except rows not compacted yet.
    """
    if filter_dimension is None:
        usable = [tier for tier in TIERS if by in tier.dimensions_from(base)]
    else:
        usable = [tier for tier in FILTER_TIERS if (filter_dimension, by) in tier.pairs_from(base)]
    return sorted(usable, key=lambda tier: tier.bucket_seconds, reverse=True)


def usable_tiers(spec: RollupSpec, dimensions: Sequence[str], where: Filters) -> list[DimensionTier]:
    """Tiers that can answer a grouping of ``dimensions`` over ``spec`` under ``where``, coarsest
    first: the one rule every store picks tiers by.

    One grouping dimension with no filter reads the per-dimension tiers; one with exactly one
    filter (on another dimension the same rollup holds) reads the filter tier. ``where``
    holds the caller's filters only: environment and data mode are columns of every tier and
    do not count. Empty when only the rollup can answer (a filter with several values, too:
    the filter tier holds one value per row).
    """
    if len(dimensions) != 1 or any(isinstance(value, tuple) for value in where.values()):
        return []
    if not where:
        return tiers_for(dimensions[0], spec)
    if len(where) == 1:
        return tiers_for(dimensions[0], spec, next(iter(where)))
    return []


@dataclass(frozen=True, slots=True)
class Segment:
    """``[lo, hi)`` in Unix seconds, read from ``tier`` (None: from the base rollup), added
    (``sign`` 1) or subtracted (-1: see :mod:`spanmeter.store.window_cover`)."""

    tier: DimensionTier | None
    lo: int
    hi: int
    sign: int = 1


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
