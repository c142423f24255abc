"""Read-only views over the rollups, for SQL clients such as Grafana's PostgreSQL datasource.

Prometheus labels must stay few (tenants are folded into a top N, users never appear);
these views have no such limit, so a dashboard can chart spend by any dimension the
rollups keep, tenant and user included, straight from the store.

* ``spend_minute``: the minute rollup, one row per (minute, endpoint_tag, prompt_version,
  provider, model, tenant_id, environment, data_mode, outcome).
* ``spend_hour``: the hour rollup, one row per (hour, tenant_id, user_id, endpoint_tag,
  environment, data_mode).
* ``spend_day``: the hour rollup summed into UTC days, same dimensions as ``spend_hour``.

Rollup tables hold several partial rows per group until compaction merges them, so each
view sums with ``GROUP BY``: a group appears once per bucket whatever compaction has done,
and the views answer the same before and after it. ``time`` is the bucket's start as a
``timestamptz``; the expression indexes created here let ``time BETWEEN ...`` (Grafana's
``$__timeFilter(time)``) read only the buckets in range. ``cost_usd`` is the exact
``numeric`` value of ``cost_nano_usd`` / 10^9 (a multiplication by 0.000000001, which
PostgreSQL's numeric does without rounding; a numeric division may round), never a float.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from ..rollups import HOUR, MEASURES, MINUTE, RollupSpec
from .sql_text import sql

if TYPE_CHECKING:
    import psycopg

__all__ = ["VIEWS", "create_views"]

_DAY_SECONDS: Final = 86_400

VIEWS: Final = ("spend_minute", "spend_hour", "spend_day")
"""The views, in creation order."""


def _sums() -> str:
    """``cost_usd`` then every measure summed; integer sums fit ``bigint`` (compaction stores
    them in one), latency stays ``double precision`` (a duration, not money)."""
    parts = ["sum(cost_nano_usd) * 0.000000001 AS cost_usd"]
    for name in MEASURES:
        cast = "" if name == "latency_ms_sum" else "::bigint"
        parts.append(f"sum({name}){cast} AS {name}")
    return ", ".join(parts)


def _time(spec: RollupSpec, bucket_seconds: int) -> str:
    """The bucket start as ``timestamptz``; the same expression is indexed, so keep them equal."""
    column = spec.bucket_column
    if bucket_seconds == spec.bucket_seconds:
        return f"to_timestamp({column})"
    return f"to_timestamp({column} / {bucket_seconds} * {bucket_seconds})"


def _view(name: str, spec: RollupSpec, bucket_seconds: int) -> str:
    dimensions = ", ".join(spec.dimensions)
    time = _time(spec, bucket_seconds)
    return (
        f"CREATE VIEW {name} AS SELECT {time} AS time, {dimensions}, {_sums()}"
        f" FROM {spec.table} GROUP BY {time}, {dimensions}"
    )


def create_views(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    """Create the views and the indexes that serve their time filter (migration ``m005``)."""
    for name, spec, seconds in (
        ("spend_minute", MINUTE, MINUTE.bucket_seconds),
        ("spend_hour", HOUR, HOUR.bucket_seconds),
        ("spend_day", HOUR, _DAY_SECONDS),
    ):
        conn.execute(sql(f"CREATE INDEX {name}_time ON {spec.table} ({_time(spec, seconds)})"))
        conn.execute(sql(_view(name, spec, seconds)))
