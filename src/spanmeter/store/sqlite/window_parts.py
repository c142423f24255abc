"""How a rollup read covers its window once: the tiers for whole buckets, the rollup for the rest.

Shared by ``top`` (:mod:`.queries`) and ``aggregate`` (:mod:`.analysis_queries`), so both
pick tiers by the same rule and stay exact at every stage of compaction in the same way
(see :mod:`spanmeter.store.tiers`): one grouping dimension with no filter reads the
per-dimension tiers; one grouping dimension with exactly one filter (on another
dimension, one the same rollup holds) reads the filter tier; anything else reads the
rollup's range. Callers summing integers only may ask for a
signed cover (:mod:`spanmeter.store.window_cover`): whole buckets around the window's edges,
minus their parts outside it, when that reads fewer rows.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ..query_model import Filters, FilterValue, filter_conditions
from ..rollup_indexes import index_name, indexed_filter
from ..rollups import RollupSpec
from ..tiers import Segment, split_window, usable_tiers
from ..window_cover import Extent, segment_statement, signed_cover, tiered_range

__all__ = ["data_extent", "usable_tiers", "window_parts"]


def data_extent(conn: sqlite3.Connection, spec: RollupSpec) -> Extent | None:
    """Where the data lies: the rollup's first and last bucket (two index seeks; the rollup
    keeps every bucket, compacted or not, for as long as any tier does). For a signed
    cover's estimates only, so it may be read outside the query's snapshot. None when the
    store holds none."""
    column = spec.bucket_column
    # names come from the rollup definitions, never from input
    first, last = conn.execute(
        f"SELECT (SELECT min({column}) FROM {spec.table}), (SELECT max({column}) FROM {spec.table})"
    ).fetchone()
    if first is None or last is None:
        return None
    return Extent(int(first), int(last) + spec.bucket_seconds)


def window_parts(
    spec: RollupSpec,
    dimensions: Sequence[str],
    lo: int,
    hi: int,
    where: Filters,
    own: Mapping[str, str],
    measures: Sequence[str],
    *,
    subtract: bool = False,
    extent: Extent | None = None,
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
        subtract: Allow a signed cover: some parts then select their measures negated
            (under the same names). Only for integer measures; the caller must drop the
            groups that sum to nothing (a value seen only outside the window: its rows
            cancel out exactly), e.g. with ``HAVING sum(attempts) > 0``.
        extent: Where the data lies (:func:`data_extent`), for the signed cover's estimates.
    """
    filters: dict[str, FilterValue] = {**where, **own}
    selects = _Selects.build(spec, dimensions, filters, measures)
    parts: list[str] = []
    params: list[object] = []
    tiers = usable_tiers(spec, dimensions, where)
    segments = signed_cover(lo, hi, tiers, extent) if subtract else split_window(lo, hi, tiers)
    for segment in segments:
        selected = selects.measures if segment.sign > 0 else selects.negated
        if segment.tier is None:
            part, part_values = _rollup_part(spec, selects, selected, segment, indexed_filter(spec, where))
            parts += part
            params += part_values
        else:
            part, tier_values = segment_statement(segment, dimensions[0], selected, where, own, mark="?")
            parts.append(part)
            params += tier_values
    tiered = tiered_range(lo, hi, segments)
    if tiered is not None:  # rollup rows inside the tiered part that compaction has not folded in yet
        part, part_values = _not_compacted(spec, selects, selects.measures, tiered)
        parts.append(part)
        params += part_values
    return parts, params


@dataclass(frozen=True, slots=True)
class _Selects:
    """The SQL fragments every part of one read shares. Every name in them comes from a
    rollup or tier definition, validated by the caller; values are always parameters."""

    grouping: str
    """The grouping dimensions, comma-separated."""
    measures: str
    """The measure columns, comma-separated."""
    negated: str
    """The measure columns negated, each ``AS`` its own name."""
    conditions: str
    """`` AND column = ?`` (or ``IN``) per filter of the rollup parts (the caller's and the scope's)."""
    values: tuple[object, ...]
    """The parameters of :attr:`conditions`, in order."""

    @classmethod
    def build(
        cls,
        spec: RollupSpec,
        dimensions: Sequence[str],
        filters: Filters,
        measures: Sequence[str],
    ) -> _Selects:
        """The fragments for reading ``measures`` by ``dimensions`` from ``spec`` under ``filters``."""
        columns = ", ".join(measures)
        negated = ", ".join(f"-{name} AS {name}" for name in measures)
        grouping = ", ".join(dimensions)
        conditions, values = filter_conditions(filters, mark="?")
        return cls(
            grouping=grouping,
            measures=columns,
            negated=negated,
            conditions=conditions,
            values=tuple(values),
        )


def _rollup_part(
    spec: RollupSpec, selects: _Selects, selected: str, segment: Segment, indexed: str | None
) -> tuple[list[str], list[object]]:
    """A range of the rollup, ``selected`` its measures (negated for a subtracted part): one
    statement over its buckets; or, when an index of the compacted rows answers the filter
    (``indexed``, :mod:`spanmeter.store.rollup_indexes`), the compacted rows by that index
    and the rows not compacted yet (:func:`_not_compacted`): every row once."""
    bucket = spec.bucket_column
    window = f"{bucket} >= ? AND {bucket} < ?"
    if indexed is None:
        rows = f"SELECT {selects.grouping}, {selected} FROM {spec.table}"
        return [f"{rows} WHERE {window}{selects.conditions}"], [segment.lo, segment.hi, *selects.values]
    source = f"{spec.table} INDEXED BY {index_name(spec, indexed)}"
    by_index = (
        f"SELECT {selects.grouping}, {selected} FROM {source} WHERE {window} AND seq < 0{selects.conditions}"
    )
    rest, rest_values = _not_compacted(spec, selects, selected, (segment.lo, segment.hi))
    return [by_index, rest], [segment.lo, segment.hi, *selects.values, *rest_values]


def _not_compacted(
    spec: RollupSpec, selects: _Selects, selected: str, window: tuple[int, int]
) -> tuple[str, list[object]]:
    """The rollup rows of ``window`` that compaction has not folded yet: a positive ``seq``,
    always in a bucket marked dirty, so only those buckets are read."""
    bucket = spec.bucket_column
    return (
        f"SELECT {selects.grouping}, {selected} FROM {spec.table} WHERE {bucket} IN"
        " (SELECT bucket FROM rollup_dirty WHERE table_name = ? AND bucket >= ? AND bucket < ?)"
        f" AND seq > 0{selects.conditions}",
        [spec.table, *window, *selects.values],
    )
