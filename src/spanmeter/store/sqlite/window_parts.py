"""How a rollup read covers its window once: the tiers for whole buckets, the rollup for the rest.

Shared by ``top`` (:mod:`.queries`) and ``aggregate`` (:mod:`.analysis_queries`), so both
pick tiers by the same rule and stay exact at every stage of compaction in the same way
(see :mod:`spanmeter.store.tiers`): one grouping dimension with no filter reads the
per-dimension tiers; one grouping dimension with exactly one filter on
:data:`~spanmeter.store.tiers.FILTER_DIMENSIONS` (other than itself) reads the filter tier;
anything else reads the rollup's range.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ..rollups import RollupSpec
from ..tiers import DimensionTier, Segment, split_window, tiers_for

__all__ = ["scope_filters", "usable_tiers", "window_parts"]


def scope_filters(environment: str | None, data_mode: str | None) -> dict[str, str]:
    """The environment and data-mode conditions of a read (columns of every rollup and tier);
    None leaves one out."""
    scope: dict[str, str] = {}
    if environment is not None:
        scope["environment"] = environment
    if data_mode is not None:
        scope["data_mode"] = data_mode
    return scope


def usable_tiers(
    spec: RollupSpec, dimensions: Sequence[str], where: Mapping[str, str]
) -> list[DimensionTier]:
    """Tiers that can answer a grouping of ``dimensions`` over ``spec`` under ``where``, coarsest first.

    ``where`` holds the caller's filters only: environment and data mode are columns of
    every tier and do not count. Empty when only the rollup can answer.
    """
    if len(dimensions) != 1:
        return []
    if not where:
        return tiers_for(dimensions[0], spec)
    if len(where) == 1:
        return tiers_for(dimensions[0], spec, next(iter(where)))
    return []


def window_parts(
    spec: RollupSpec,
    dimensions: Sequence[str],
    lo: int,
    hi: int,
    where: Mapping[str, str],
    own: Mapping[str, str],
    measures: Sequence[str],
) -> tuple[list[str], list[object]]:
    """``SELECT`` statements (and their parameters) whose rows together cover ``[lo, hi)`` once.

    Each statement yields the ``dimensions`` (under their own names) then the ``measures``
    columns, unsummed: callers union them and group. Without tiers: one range of the
    rollup. With tiers: whole days and hours from the tiers, the edges from the rollup, plus
    the rollup rows inside the tiered part that compaction has not folded in yet (positive
    ``seq`` in a dirty bucket), with every filter applied to the rollup parts.

    Args:
        spec: The rollup answering the grouping (names already validated against it).
        dimensions: The grouping dimensions.
        lo: Window start, Unix seconds, aligned to ``spec``'s bucket.
        hi: Window end (exclusive), aligned likewise.
        where: The caller's filters (rollup dimensions).
        own: The environment and data-mode conditions (columns of every tier too).
        measures: Measure columns to select, in the order the caller sums them.
    """
    filters = {**where, **own}
    # every name below comes from a rollup or tier definition, validated by the caller
    conditions = "".join(f" AND {column} = ?" for column in filters)
    values = list(filters.values())
    own_conditions = "".join(f" AND {column} = ?" for column in own)
    own_values = list(own.values())
    columns = ", ".join(measures)
    bucket = spec.bucket_column
    base = f"SELECT {', '.join(dimensions)}, {columns} FROM {spec.table} WHERE "
    parts: list[str] = []
    params: list[object] = []
    middle: list[Segment] = []
    for segment in split_window(lo, hi, usable_tiers(spec, dimensions, where)):
        if segment.tier is None:
            parts.append(f"{base}{bucket} >= ? AND {bucket} < ?{conditions}")
            params += [segment.lo, segment.hi, *values]
            continue
        tier = segment.tier
        column = tier.bucket_column
        select = f"SELECT value AS {dimensions[0]}, {columns} FROM {tier.table} WHERE "
        if tier.filtered:
            ((filter_dimension, filter_value),) = where.items()
            parts.append(
                f"{select}filter_dimension = ? AND filter_value = ? AND dimension = ?"
                f" AND {column} >= ? AND {column} < ?{own_conditions}"
            )
            params += [filter_dimension, filter_value, dimensions[0], segment.lo, segment.hi, *own_values]
        else:
            parts.append(f"{select}dimension = ? AND {column} >= ? AND {column} < ?{own_conditions}")
            params += [dimensions[0], segment.lo, segment.hi, *own_values]
        middle.append(segment)
    if middle:
        parts.append(
            f"{base}{bucket} IN (SELECT bucket FROM rollup_dirty WHERE table_name = ?"
            f" AND bucket >= ? AND bucket < ?) AND seq > 0{conditions}"
        )
        params += [spec.table, middle[0].lo, middle[-1].hi, *values]
    return parts, params
