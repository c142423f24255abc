"""Read queries over the PostgreSQL store: the rollup sums of the query model, raw rows.

Each answer is one statement, hence one snapshot (``READ COMMITTED`` gives every statement
its own). Rollup tables hold partial rows until compaction merges them; every query sums
with ``GROUP BY``, so answers do not depend on how far compaction got, nor on which
replica wrote what. ``top`` reads the coarse tiers where whole buckets fit, and the rows
compaction has not folded into them from the rollup (:mod:`.window_parts`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, Final

from .. import query_model
from ..analysis_types import AggregateResult
from ..api import StoreStats, TopResult
from ..rollups import MEASURES, ROLLUPS, RollupSpec, TopDimension, aligned_window, rollup_for
from ..rows import FIELD_NAMES, SpanRow
from .sql_text import sql as _sql
from .window_parts import data_extent, signed_parts

if TYPE_CHECKING:
    import psycopg

__all__ = [
    "aggregate",
    "count_requests",
    "iter_requests",
    "iter_rollup_groups",
    "scan_requests",
    "stats",
    "top",
]

_FETCH: Final = 2000


def _sums(
    conn: psycopg.Connection[tuple[Any, ...]],
    spec: RollupSpec,
    grouping: Sequence[str],
    window: tuple[int, int],
    filters: query_model.Filters,
) -> list[tuple[Any, ...]]:
    """Rows of ``(*grouping values, *sums)`` over the aligned window ``[lo, hi)`` (seconds)."""
    lo, hi = window
    if lo >= hi:
        return []
    conditions, values = query_model.filter_conditions(filters, mark="%s")
    names = ", ".join(grouping)
    select = f"SELECT {names + ', ' if grouping else ''}{query_model.SUMS} FROM {spec.table}"
    statement = f"{select} WHERE {spec.bucket_column} >= %s AND {spec.bucket_column} < %s{conditions}"
    if grouping:
        statement += f" GROUP BY {names}"
    return conn.execute(_sql(statement), [lo, hi, *values]).fetchall()


def aggregate(
    conn: psycopg.Connection[tuple[Any, ...]],
    dimensions: Sequence[str],
    window: tuple[int, int],
    scope: query_model.ReadScope,
) -> AggregateResult:
    """See :meth:`SpanStore.aggregate <spanmeter.store.api.SpanStore.aggregate>`."""
    spec = query_model.rollup_for_dimensions(dimensions, scope.where)
    aligned = aligned_window(*window, spec.bucket_seconds)
    return query_model.aggregate_result(
        dimensions, spec, aligned, _sums(conn, spec, dimensions, aligned, scope.filters)
    )


_TOP_SUMS: Final = ", ".join(f"sum({name})" for name in query_model.RANKED_MEASURES)
_TOP_TOTALS: Final = ", ".join(f"sum(sum({name})) OVER ()" for name in query_model.RANKED_MEASURES)


def top(
    conn: psycopg.Connection[tuple[Any, ...]],
    by: TopDimension,
    window: tuple[int, int],
    scope: query_model.ReadScope,
    limit: int,
) -> TopResult:
    """See :meth:`SpanStore.top <spanmeter.store.api.SpanStore.top>`.

    One statement, hence one snapshot: the window's parts (tier buckets and rollup ranges,
    :mod:`.window_parts`) are unioned and grouped, and PostgreSQL ranks, cuts to ``limit`` and
    repeats the window's totals and group count on every row (window functions over the
    groups). Only the top groups cross the wire: a ranking of 10,000 users used to fetch
    every group and spend longer building them in Python than the statement took. Keys
    are ordered ``COLLATE "C"`` (code points), as the embedded store orders ties.
    """
    spec = rollup_for(by, scope.where)
    lo, hi = aligned_window(*window, spec.bucket_seconds)
    if lo >= hi:
        return query_model.ranked_result(by, spec.bucket_seconds, (lo, hi), [])
    extent = data_extent(conn, spec)
    parts, params = signed_parts(
        spec, by, (lo, hi), scope.where, scope.own, query_model.RANKED_MEASURES, extent
    )
    statement = (
        f"SELECT {by}, {_TOP_SUMS}, {_TOP_TOTALS}, count(*) OVER ()"
        f" FROM ({' UNION ALL '.join(parts)}) AS parts GROUP BY {by} HAVING sum(attempts) > 0"
        f' ORDER BY 2 DESC, {by} COLLATE "C" LIMIT %s'
    )
    fetched = conn.execute(_sql(statement), [*params, limit]).fetchall()
    return query_model.ranked_result(by, spec.bucket_seconds, (lo, hi), fetched)


def count_requests(
    conn: psycopg.Connection[tuple[Any, ...]],
    start_ns: int | None,
    end_ns: int | None,
    *,
    data_mode: str | None,
) -> int:
    """Raw rows whose start time lies in ``[start_ns, end_ns)``."""
    where, params = query_model.request_filter(start_ns, end_ns, data_mode, mark="%s")
    row = conn.execute(_sql(f"SELECT count(*) FROM requests{where}"), params).fetchone()
    return int(row[0]) if row else 0


def _span_row(values: Sequence[Any]) -> SpanRow:
    fields = dict(zip(FIELD_NAMES, values, strict=True))
    for name in ("trace_id", "span_id"):
        fields[name] = bytes(fields[name])
    return SpanRow(**fields)


def iter_requests(
    conn: psycopg.Connection[tuple[Any, ...]],
    start_ns: int | None,
    end_ns: int | None,
    *,
    data_mode: str | None,
) -> Iterator[SpanRow]:
    """Raw rows in start-time order, streamed by a server-side cursor."""
    where, params = query_model.request_filter(start_ns, end_ns, data_mode, mark="%s")
    with conn.transaction(), conn.cursor(name="spanmeter_iter_requests") as cursor:
        cursor.execute(
            _sql(f"SELECT {', '.join(FIELD_NAMES)} FROM requests{where} ORDER BY start_time_ns, id"), params
        )
        while batch := cursor.fetchmany(_FETCH):
            for values in batch:
                yield _span_row(values)


def scan_requests(
    conn: psycopg.Connection[tuple[Any, ...]], scan: query_model.RowScan
) -> Iterator[tuple[Any, ...]]:
    """See :meth:`SpanStore.scan_requests <spanmeter.store.api.SpanStore.scan_requests>`."""
    statements = query_model.scan_statements(scan, mark="%s", billable="billable")
    binary = {index for index, name in enumerate(scan.columns) if name in ("trace_id", "span_id")}
    for statement, values in statements:
        with conn.transaction(), conn.cursor(name="spanmeter_scan") as cursor:
            cursor.execute(_sql(statement), values)
            while batch := cursor.fetchmany(_FETCH):
                for row in batch:
                    yield tuple(bytes(v) if i in binary and v is not None else v for i, v in enumerate(row))


def iter_rollup_groups(
    conn: psycopg.Connection[tuple[Any, ...]],
    spec: RollupSpec,
    window: tuple[int, int],
    filters: query_model.Filters,
) -> Iterator[dict[str, Any]]:
    """Merged rollup groups, a few buckets per statement so memory stays flat."""
    names = query_model.rollup_group_names(spec)
    keys = len(names) - len(MEASURES)
    for statement, params in query_model.rollup_group_statements(spec, window, filters, mark="%s"):
        for row in conn.execute(_sql(statement), params).fetchall():
            yield dict(zip(names, (*row[:keys], *_ints(row[keys:])), strict=True))


def _ints(sums: Sequence[Any]) -> list[int | float]:
    """PostgreSQL sums bigints as numeric: back to int (latency stays a float)."""
    return [
        float(value) if name == "latency_ms_sum" else int(value)
        for name, value in zip(MEASURES, sums, strict=True)
    ]


def stats(conn: psycopg.Connection[tuple[Any, ...]]) -> StoreStats:
    """Row counts (exact) and the database's size."""

    def count(table: str) -> int:
        row = conn.execute(_sql(f"SELECT count(*) FROM {table}")).fetchone()
        return int(row[0]) if row else 0

    size_row = conn.execute("SELECT pg_database_size(current_database())").fetchone()
    return StoreStats(
        requests=count("requests"),
        logical_requests=count("logical_requests"),
        rollup_rows={spec.table: count(spec.table) for spec in ROLLUPS},
        size_bytes=int(size_row[0]) if size_row else 0,
    )
