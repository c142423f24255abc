"""How a ranking on PostgreSQL covers its window once: tier buckets where they fit, the rollup
for the rest, and the rollup's unfolded rows inside the tiered part.

The same split as the embedded store's (:func:`spanmeter.store.tiers.usable_tiers`,
:func:`spanmeter.store.window_cover.signed_cover`, :func:`~spanmeter.store.window_cover.tiered_range`),
in PostgreSQL's SQL. Exactness never depends on how far compaction got: a rollup row is
either folded (in the tiers, and then read from them) or not (read from the rollup, inside
the tiered range too: :mod:`.tier_schema`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..query_model import Filters, FilterValue, filter_conditions
from ..rollup_indexes import indexed_filter
from ..rollups import RollupSpec
from ..tiers import usable_tiers
from ..window_cover import Extent, segment_statement, signed_cover, tiered_range
from .sql_text import sql

if TYPE_CHECKING:
    import psycopg

__all__ = ["data_extent", "signed_parts"]


def data_extent(conn: psycopg.Connection[tuple[Any, ...]], spec: RollupSpec) -> Extent | None:
    """Where the data lies: the rollup's first and last bucket (two seeks on its primary key).
    For the cover's estimates only; None when the rollup is empty."""
    column = spec.bucket_column
    row = conn.execute(
        sql(f"SELECT (SELECT min({column}) FROM {spec.table}), (SELECT max({column}) FROM {spec.table})")
    ).fetchone()
    if row is None or row[0] is None or row[1] is None:
        return None
    return Extent(int(row[0]), int(row[1]) + spec.bucket_seconds)


def _rollup_splits(spec: RollupSpec, where: Filters) -> tuple[str, ...]:
    """How a range of the rollup is read: whole (one part), or, when an index of the folded
    rows answers ``where`` (:mod:`spanmeter.store.rollup_indexes`), as its folded rows (the
    partial index applies only to a statement that says ``folded``) and its unfolded ones
    (the few recent buckets, by the partial index of unfolded rows): every row once."""
    if indexed_filter(spec, where) is None:
        return ("",)
    return (" AND folded", " AND NOT folded")


def signed_parts(
    spec: RollupSpec,
    by: str,
    window: tuple[int, int],
    where: Filters,
    own: Mapping[str, str],
    measures: Sequence[str],
    extent: Extent | None,
) -> tuple[list[str], list[object]]:
    """``SELECT`` statements (and their parameters) whose rows, summed, are the window's sums
    of ``measures`` per value of ``by``.

    Parts read whole tier buckets, added or subtracted (their measures negated: integers
    only), and rollup ranges; the caller unions them, groups by ``by`` and drops the groups
    whose attempts sum to none (values seen only outside the window cancel out exactly).

    Args:
        spec: The rollup answering the ranking (names validated against it by the caller).
        by: The ranked dimension.
        window: ``[lo, hi)`` in Unix seconds, aligned to ``spec``'s bucket.
        where: The caller's filters.
        own: The environment and data-mode conditions (columns of every tier too).
        measures: Integer measure columns, in the order the caller sums them.
        extent: Where the data lies (:func:`data_extent`), for the cover's estimates.
    """
    lo, hi = window
    filters: dict[str, FilterValue] = {**where, **own}
    conditions, values = filter_conditions(filters, mark="%s")
    plain = ", ".join(measures)
    negated = ", ".join(f"-{name} AS {name}" for name in measures)
    bucket = spec.bucket_column
    parts: list[str] = []
    params: list[object] = []
    segments = signed_cover(lo, hi, usable_tiers(spec, (by,), where), extent)
    for segment in segments:
        selected = plain if segment.sign > 0 else negated
        tier = segment.tier
        if tier is None:
            select = f"SELECT {by}, {selected} FROM {spec.table} WHERE {bucket} >= %s AND {bucket} < %s"
            for split in _rollup_splits(spec, where):
                parts.append(f"{select}{split}{conditions}")
                params += [segment.lo, segment.hi, *values]
        else:
            part, part_params = segment_statement(segment, by, selected, where, own, mark="%s")
            parts.append(part)
            params += part_params
    tiered = tiered_range(lo, hi, segments)
    if tiered is not None:  # rollup rows inside the tiered part that compaction has not folded yet
        parts.append(
            f"SELECT {by}, {plain} FROM {spec.table} WHERE {bucket} >= %s AND {bucket} < %s"
            f" AND NOT folded{conditions}"
        )
        params += [*tiered, *values]
    return parts, params
