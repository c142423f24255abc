"""Read queries over the SQLite store: top-N from the rollups and tiers, raw rows for exports.

Every function takes a connection (a reader's own, in WAL mode, so it never waits for the
writer) and runs one statement, which therefore sees one consistent snapshot.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

from ..api import StoreStats, TopResult
from ..query_model import RANKED_MEASURES, ReadScope, ranked_result, request_filter
from ..rollups import ROLLUPS, TopDimension, aligned_window, rollup_for
from ..rows import FIELD_NAMES, SpanRow
from ..tiers import FILTER_TIERS, TIERS
from .window_parts import data_extent, window_parts

__all__ = ["count_requests", "iter_requests", "stats", "top"]

_FETCH: Final = 1000


_ROLLUP_TABLES: Final = (*(spec.table for spec in ROLLUPS), *(tier.table for tier in (*TIERS, *FILTER_TIERS)))


def top(
    conn: sqlite3.Connection, by: TopDimension, window: tuple[int, int], scope: ReadScope, limit: int
) -> TopResult:
    """See :meth:`SpanStore.top <spanmeter.store.api.SpanStore.top>`.

    One statement, hence one snapshot: the window's parts (see :mod:`spanmeter.store.tiers`)
    are unioned, grouped, and the window totals come from window functions over the
    grouped rows.
    """
    where, own = scope.where, scope.own
    spec = rollup_for(by, where)
    lo, hi = aligned_window(*window, spec.bucket_seconds)
    # the measures are integers: the window may be read as whole buckets minus their parts
    # outside it (spanmeter.store.window_cover), whose cancelled-out groups HAVING drops
    extent = data_extent(conn, spec)
    parts, params = window_parts(
        spec, (by,), lo, hi, where, own, RANKED_MEASURES, subtract=True, extent=extent
    )
    fetched = _fetch_top(conn, by, parts, params, limit) if parts else []
    return ranked_result(by, spec.bucket_seconds, (lo, hi), fetched)


def _fetch_top(
    conn: sqlite3.Connection, by: str, parts: list[str], params: list[Any], limit: int
) -> list[tuple[Any, ...]]:
    """The top ``limit`` groups of the unioned parts, each row carrying the window totals
    (window functions over the grouped rows, so one statement gives both)."""
    sql = f"""
        SELECT {by} AS key,
               sum(cost_nano_usd), sum(logical_requests), sum(attempts),
               sum(input_tokens), sum(output_tokens), sum(unpriced),
               sum(sum(cost_nano_usd)) OVER (), sum(sum(logical_requests)) OVER (),
               sum(sum(attempts)) OVER (), sum(sum(input_tokens)) OVER (),
               sum(sum(output_tokens)) OVER (), sum(sum(unpriced)) OVER (), count(*) OVER ()
        FROM ({" UNION ALL ".join(parts)})
        GROUP BY key
        HAVING sum(attempts) > 0
        ORDER BY 2 DESC, 1
        LIMIT ?
    """
    return conn.execute(sql, [*params, limit]).fetchall()


def count_requests(
    conn: sqlite3.Connection, start_ns: int | None, end_ns: int | None, *, data_mode: str | None
) -> int:
    """Raw rows whose start time lies in ``[start_ns, end_ns)``."""
    where, params = request_filter(start_ns, end_ns, data_mode, mark="?")
    (count,) = conn.execute(f"SELECT count(*) FROM requests{where}", params).fetchone()
    return int(count)


def iter_requests(
    conn: sqlite3.Connection, start_ns: int | None, end_ns: int | None, *, data_mode: str | None
) -> Iterator[SpanRow]:
    """Raw rows in start-time order, fetched a thousand at a time."""
    where, params = request_filter(start_ns, end_ns, data_mode, mark="?")
    cursor = conn.execute(
        f"SELECT {', '.join(FIELD_NAMES)} FROM requests{where} ORDER BY start_time_ns, id", params
    )
    try:
        while batch := cursor.fetchmany(_FETCH):
            for values in batch:
                fields = dict(zip(FIELD_NAMES, values, strict=True))
                fields["billable"] = bool(fields["billable"])
                yield SpanRow(**fields)  # type: ignore[arg-type]
    finally:
        cursor.close()


def stats(conn: sqlite3.Connection, path: Path) -> StoreStats:
    """Row counts (exact, so a scan of each table: for ``doctor``, not for a hot loop)."""

    def count(table: str) -> int:
        (value,) = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
        return int(value)

    size = 0
    for suffix in ("", "-wal"):
        file = path.with_name(path.name + suffix)
        if file.exists():
            size += file.stat().st_size
    return StoreStats(
        requests=count("requests"),
        logical_requests=count("logical_requests"),
        rollup_rows={table: count(table) for table in _ROLLUP_TABLES},
        size_bytes=size,
    )
