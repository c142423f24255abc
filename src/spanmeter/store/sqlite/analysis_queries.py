"""Read queries behind investigate, compare, unit economics, quality and exports.

Same rules as :mod:`.queries`: each answer is one statement (one snapshot) on a reader
connection; rollup answers are exact at any stage of compaction, reading whole days and
hours from the coarse tiers when one dimension is asked for without filters, and whole days
from the filter tier when it is asked for under one filter (the rule of :mod:`.window_parts`,
shared with ``top``).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from typing import Any, Final

from .. import query_model
from ..analysis_types import AggregateResult
from ..rollups import MEASURES, RollupSpec, aligned_window
from .window_parts import usable_tiers, window_parts

__all__ = ["aggregate", "iter_rollup_groups", "scan_requests"]

_FETCH: Final = 2000
_TOTAL_PROXIES: Final = ("provider", "tenant_id")
"""Dimensions whose values, summed, give a window total from the tiers: the provider for the
minute rollup's readings (unfiltered, or under one filter other than a provider), a tenant
for the hourly rollup's (under a user filter)."""


def aggregate(
    conn: sqlite3.Connection, dimensions: Sequence[str], window: tuple[int, int], scope: query_model.ReadScope
) -> AggregateResult:
    """See :meth:`SpanStore.aggregate <spanmeter.store.api.SpanStore.aggregate>`."""
    dimensions = tuple(dimensions)
    where, own = scope.where, scope.own
    spec = query_model.rollup_for_dimensions(dimensions, where)
    proxy = next((d for d in _TOTAL_PROXIES if d not in where and usable_tiers(spec, (d,), where)), None)
    grouping = dimensions or ((proxy,) if proxy is not None else ())
    lo, hi = aligned_window(*window, spec.bucket_seconds)
    filters = scope.filters
    fetched: list[tuple[Any, ...]] = []
    if lo < hi:
        if grouping:
            parts, params = window_parts(spec, grouping, lo, hi, where, own, MEASURES)
            names = ", ".join(grouping)
            sql = f"SELECT {names}, {query_model.SUMS} FROM ({' UNION ALL '.join(parts)}) GROUP BY {names}"
        else:  # a filtered total: one range of the rollup
            conditions, values = query_model.filter_conditions(filters, mark="?")
            sql = (
                f"SELECT {query_model.SUMS} FROM {spec.table} WHERE {spec.bucket_column} >= ?"
                f" AND {spec.bucket_column} < ?{conditions}"
            )
            params = [lo, hi, *values]
        fetched = conn.execute(sql, params).fetchall()
    if grouping and not dimensions:  # a total read through a proxy dimension: drop its values
        fetched = [row[1:] for row in fetched]
    return query_model.aggregate_result(dimensions, spec, (lo, hi), fetched)


def scan_requests(conn: sqlite3.Connection, scan: query_model.RowScan) -> Iterator[tuple[Any, ...]]:
    """See :meth:`SpanStore.scan_requests <spanmeter.store.api.SpanStore.scan_requests>`."""
    statements = query_model.scan_statements(scan, mark="?", billable="billable = 1")
    for sql, values in statements:
        cursor = conn.execute(sql, values)
        try:
            while batch := cursor.fetchmany(_FETCH):
                yield from batch
        finally:
            cursor.close()


def iter_rollup_groups(
    conn: sqlite3.Connection, spec: RollupSpec, window: tuple[int, int], filters: query_model.Filters
) -> Iterator[dict[str, Any]]:
    """Merged rollup groups, a few buckets per statement so memory stays flat."""
    names = query_model.rollup_group_names(spec)
    for statement, params in query_model.rollup_group_statements(spec, window, filters, mark="?"):
        cursor = conn.execute(statement, params)
        try:
            for row in cursor:
                yield dict(zip(names, row, strict=True))
        finally:
            cursor.close()
