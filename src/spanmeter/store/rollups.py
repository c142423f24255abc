"""Rollup definitions and the in-memory aggregation every store runs per transaction.

Store-agnostic on purpose: every store must bucket, group and sum identically, so the rules
live here once.

Rollups are *additive partial aggregates*. A store writes, per transaction, one row per
(bucket, dimensions) group seen in that transaction, and a rollup table may hold several
rows for the same group (one per transaction, until a compaction merges them). Every
query therefore sums with ``GROUP BY``; the answer does not depend on how far compaction
got. Why not one row per group kept current with ``INSERT ... ON CONFLICT DO UPDATE``: with
realistic cardinality (1,000 tenants, 10,000 users) a 512-row transaction touches ~400
minute groups and ~450 hour groups spread over the whole current bucket, so every upsert
dirties a different page and the commit writes megabytes; appending partial rows keeps
those writes sequential. Raw rows plus both rollups, 512 rows a transaction: ~39k rows/s
upserting vs ~77k appending (``bench/store.py``, same run, embedded store). Appending also
spares several replicas writing one shared database the row-lock contention (and
deadlocks) of many writers updating the same hot rollup rows. Each store's compaction later
merges a closed bucket's rows, off the ingest path.

Counting rules (what a rollup row sums):

* only *billable* attempts: an outer agent/workflow span repeats its children's usage,
  so counting it would double count (it is still stored as a raw row);
* ``attempts``: one per stored attempt;
* ``logical_requests``: one per logical request, counted in the bucket and dimensions of
  its *first stored* attempt (arrival order); an attempt without an external request id
  is its own logical request;
* ``unpriced``: attempts without a cost (unknown model, no usage...), never a fake $0;
* ``latency_ms_sum`` / ``latency_count``: the mean latency is their ratio (attempts
  without a latency are left out of both).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import chain
from operator import add, attrgetter
from typing import Final, Literal, get_args

from ..timeunits import NS_PER_SECOND
from .rows import SpanRow

__all__ = [
    "HOUR",
    "MEASURES",
    "MINUTE",
    "ROLLUPS",
    "TOP_DIMENSIONS",
    "Aggregates",
    "RollupSpec",
    "TopDimension",
    "aggregate",
    "aligned_window",
    "rollup_for",
]

TopDimension = Literal["endpoint_tag", "prompt_version", "tenant_id", "user_id", "model", "provider"]
"""Dimensions :meth:`SpanStore.top <spanmeter.store.api.SpanStore.top>` can rank by."""
TOP_DIMENSIONS: Final[frozenset[str]] = frozenset(get_args(TopDimension))

MEASURES: Final = (
    "attempts",
    "logical_requests",
    "cost_nano_usd",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
    "errors",
    "unpriced",
    "latency_ms_sum",
    "latency_count",
)
"""The summed columns of every rollup, in storage order."""


@dataclass(frozen=True, slots=True)
class RollupSpec:
    """One rollup: a time bucket and the dimensions it groups by."""

    table: str
    """Table (or relation) name."""
    bucket_column: str
    """Column holding the bucket start, in Unix seconds."""
    bucket_seconds: int
    dimensions: tuple[str, ...]
    """Grouping dimensions, all :class:`~spanmeter.store.rows.SpanRow` fields. A missing
    value is stored as ``''`` (a SQL NULL would not group reliably)."""

    @property
    def bucket_ns(self) -> int:
        """Bucket width in nanoseconds."""
        return self.bucket_seconds * NS_PER_SECOND


MINUTE: Final = RollupSpec(
    table="rollup_minute",
    bucket_column="minute",
    bucket_seconds=60,
    dimensions=(
        "endpoint_tag",
        "prompt_version",
        "provider",
        "model",
        "tenant_id",
        "environment",
        "data_mode",
        "outcome",
    ),
)
"""Attribution per minute: what spike investigation and the top-N rankings read."""

HOUR: Final = RollupSpec(
    table="rollup_hour",
    bucket_column="hour",
    bucket_seconds=3600,
    dimensions=("tenant_id", "user_id", "endpoint_tag", "environment", "data_mode"),
)
"""Per-user spend per hour: user ids are too many for the minute table."""

ROLLUPS: Final = (MINUTE, HOUR)

Aggregates = dict[tuple[object, ...], tuple[int | float, ...]]
"""Group key ``(bucket_start_s, *dimension values)`` -> sums in :data:`MEASURES` order."""


def aggregate(rows: Sequence[SpanRow], first_attempt: Sequence[bool]) -> list[Aggregates]:
    """Sum billable rows into the groups of every rollup in :data:`ROLLUPS`.

    Args:
        rows: Newly stored rows (duplicates already removed).
        first_attempt: Per row, whether it is the first stored attempt of its logical
            request (always true for rows without an external request id).

    Returns:
        One :data:`Aggregates` per spec, in :data:`ROLLUPS` order. Dimension values are
        as stored: ``''`` for a missing value.
    """
    getters = [attrgetter(*spec.dimensions) for spec in ROLLUPS]
    widths = [spec.bucket_ns for spec in ROLLUPS]
    seconds = [spec.bucket_seconds for spec in ROLLUPS]
    results: list[Aggregates] = [{} for _ in ROLLUPS]
    specs = list(zip(getters, widths, seconds, results, strict=True))
    for row, first in zip(rows, first_attempt, strict=True):
        if not row.billable:
            continue
        cost = row.cost_nano_usd
        latency = row.latency_ms
        values = (
            1,
            1 if first else 0,
            cost or 0,
            row.input_tokens or 0,
            row.output_tokens or 0,
            row.cache_read_tokens or 0,
            row.cache_write_tokens or 0,
            row.reasoning_tokens or 0,
            1 if row.outcome == "error" else 0,
            1 if cost is None else 0,
            latency or 0.0,
            0 if latency is None else 1,
        )
        start = row.start_time_ns
        event_ns = start if start > 0 else row.received_at_ns
        for getter, width, secs, groups in specs:
            key = (event_ns // width * secs, *getter(row))
            previous = groups.get(key)
            groups[key] = values if previous is None else tuple(map(add, previous, values))
    # Missing dimensions become '' only now, once per group rather than once per row.
    return [_merge_blank(groups) if None in chain.from_iterable(groups) else groups for groups in results]


def _merge_blank(groups: Aggregates) -> Aggregates:
    """Replace None by '' in the keys, adding up groups that become equal."""
    merged: Aggregates = {}
    for key, sums in groups.items():
        blank = tuple("" if part is None else part for part in key)
        previous = merged.get(blank)
        merged[blank] = sums if previous is None else tuple(map(add, previous, sums))
    return merged


def rollup_for(by: str, where: Mapping[str, object]) -> RollupSpec:
    """The rollup that answers a top-N query: hourly when users are involved, else per minute.

    Raises:
        ValueError: ``by`` is not a :data:`TopDimension`, or it or a ``where`` key is not a
            dimension of the chosen rollup (``environment`` and ``data_mode`` have their
            own parameters).
    """
    if by not in TOP_DIMENSIONS:
        raise ValueError(f"cannot rank by {by!r}; expected one of {sorted(TOP_DIMENSIONS)}")
    spec = HOUR if by == "user_id" or "user_id" in where else MINUTE
    if by not in spec.dimensions:
        raise ValueError(
            f"cannot rank by {by!r} with a filter on user_id: the {spec.table} rollup has no {by}"
        )
    for key in where:
        if key in ("environment", "data_mode") or key not in spec.dimensions:
            raise ValueError(
                f"cannot filter on {key!r} when ranking by {by!r}: the {spec.table} rollup groups by "
                f"{', '.join(d for d in spec.dimensions if d not in ('environment', 'data_mode'))}"
                " (environment and data_mode have their own parameters)"
            )
    return spec


def aligned_window(start_ns: int, end_ns: int, bucket_seconds: int) -> tuple[int, int]:
    """Buckets whose start lies in ``[start_ns, end_ns)``, as ``[lo_s, hi_s)`` in Unix seconds.

    A bucket counts wholly or not at all, and it counts iff it *starts* inside the window,
    so back-to-back windows partition the buckets exactly (nothing counted twice, nothing
    lost). A window given on bucket boundaries is therefore answered exactly.
    """
    width = bucket_seconds * NS_PER_SECOND
    lo = -(-start_ns // width) * bucket_seconds
    hi = -(-end_ns // width) * bucket_seconds
    return lo, max(lo, hi)
