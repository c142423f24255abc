"""Indexes of the compacted rollup rows by a filter dimension: how a filtered read of the
rollup seeks its rows instead of scanning every row of its hours.

Why: a ranking under a filter reads whole days from the filter tier
(:data:`~spanmeter.store.tiers.PAIR_DAY`) and the window's partial days at its edges from
the rollup, whose key leads with the bucket. Filtering there visits every row of those
hours: on ``bench/query.py``'s store of 10 million spans, ~9.4k hourly rows an hour, so
questions involving one user, or ranking users under one tenant or endpoint tag, took
0.18-0.38 s when the window's edges fell inside days. With an index leading with the
filter's dimension, the edges read that value's rows only: 2-50 ms on the same database
(``bench/README.md``).

Why only the *compacted* rows (a partial index): the write path appends partial rows to
the current bucket, and an index leading with a user or tenant would put each of them on a
random page of the index, the scattered commit writes the append-only rollups exist to
avoid (:mod:`spanmeter.store.rollups`). Appended rows are outside the index (PostgreSQL:
``folded`` false; SQLite: positive ``seq``), so ingest never touches it; compaction writes
the merged rows back compacted, into it, off the ingest path. A read then takes the
compacted rows of its range by index and the rows not compacted yet by the bucket (the
same few recent buckets every tiered read already takes from the rollup): together every
row once, at every stage of compaction.

The indexes are each store's migrations' (``m010_compacted_filter_indexes`` on PostgreSQL,
``m008_compacted_filter_indexes`` on SQLite); this module says which exist, so both
stores read by the same ones.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Final

from .rollups import HOUR, ROLLUPS, RollupSpec

if TYPE_CHECKING:
    from .query_model import Filters

__all__ = ["INDEXED_FILTERS", "create_statements", "index_name", "indexed_filter"]

INDEXED_FILTERS: Final[Mapping[str, tuple[str, ...]]] = {
    HOUR.table: ("user_id", "tenant_id", "endpoint_tag"),
}
"""Rollup table -> the dimensions its compacted rows are indexed by (each index:
``(dimension, bucket)``), most selective first: a read filtered on several takes the first.
The hourly rollup only: its hours hold the most rows per bucket a query must filter
(users), and the filters that questions about users combine with."""


def index_name(spec: RollupSpec, dimension: str) -> str:
    """The name of ``spec``'s index of compacted rows by ``dimension``."""
    return f"{spec.table}_compacted_{dimension}"


def indexed_filter(spec: RollupSpec, where: Filters) -> str | None:
    """The dimension of ``where`` (the caller's filters) whose index a read of ``spec``
    seeks by; None: no index answers, the read scans its buckets."""
    for dimension in INDEXED_FILTERS.get(spec.table, ()):
        if dimension in where:
            return dimension
    return None


def create_statements(compacted: str) -> list[str]:
    """The ``CREATE INDEX`` statements of every index here, each ``(dimension, bucket)`` and
    partial on ``compacted``, the backend's condition for a compacted row (PostgreSQL
    ``folded``, SQLite ``seq < 0``). Names come from the rollup definitions, never input."""
    return [
        f"CREATE INDEX {index_name(spec, dimension)} ON {spec.table}"
        f" ({dimension}, {spec.bucket_column}) WHERE {compacted}"
        for spec in ROLLUPS
        for dimension in INDEXED_FILTERS.get(spec.table, ())
    ]
