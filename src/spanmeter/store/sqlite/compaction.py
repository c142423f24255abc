"""Rollup compaction: merge a closed bucket's partial rows and fold them into the tiers.

For one dirty, closed bucket of a rollup, in one transaction:

1. the rows appended since the last compaction (``seq > 0``) are summed per tier group and
   upserted into every tier that takes a dimension from this rollup (the filter tiers
   too, one group per filter value and dimension) (the tiers are small
   and this runs off the ingest path, so here the upsert's scattered writes are fine);
2. the bucket's rows are summed per rollup group, deleted, and written back as one row per
   group with a negative ``seq`` (meaning: already folded into the tiers): all of them
   when the new rows are at least as many as the merged ones, else only the new rows,
   kept beside the merged ones (see :func:`_compact_step`);
3. the bucket's dirty mark is removed.

Every partial row is folded into the tiers exactly once (step 1 takes only positive
``seq`` rows, step 2 makes them negative in the same transaction), and queries read the
rows still positive from the rollup itself, so results are exact at every stage.
"""

from __future__ import annotations

import sqlite3
from operator import add
from typing import Any, Final

from ...timeunits import NS_PER_SECOND
from ..rollups import MEASURES, ROLLUPS, RollupSpec
from ..tiers import FILTER_TIERS, TIERS
from .maintenance import Transaction
from .writer import RowWriter

__all__ = ["COMPACTION_GRACE_S", "compact_rollups"]

_CHUNK_ROWS: Final = 20_000
"""Most rollup rows one compaction transaction reads: ~100 ms of write lock."""
COMPACTION_GRACE_S: Final = 120
"""How long after a bucket ends before it is compacted: spans arrive late by the export
interval of SDKs and Collectors (seconds), and a bucket compacted too early only has to be
compacted again."""

_UPDATE: Final = ", ".join(f"{name} = {name} + excluded.{name}" for name in MEASURES)


def _upsert_sql(table: str, bucket_column: str) -> str:
    columns = ("dimension", bucket_column, "value", "environment", "data_mode", *MEASURES)
    return (
        f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({','.join('?' * len(columns))})"
        f" ON CONFLICT DO UPDATE SET {_UPDATE}"
    )


def _pair_upsert_sql(table: str, bucket_column: str) -> str:
    columns = (
        "filter_dimension",
        "filter_value",
        "dimension",
        bucket_column,
        "value",
        "environment",
        "data_mode",
    )
    return (
        f"INSERT INTO {table} ({', '.join((*columns, *MEASURES))})"
        f" VALUES ({','.join('?' * (len(columns) + len(MEASURES)))}) ON CONFLICT DO UPDATE SET {_UPDATE}"
    )


_UPSERTS: Final = {
    **{tier.table: _upsert_sql(tier.table, tier.bucket_column) for tier in TIERS},
    **{tier.table: _pair_upsert_sql(tier.table, tier.bucket_column) for tier in FILTER_TIERS},
}


def _add(
    groups: dict[tuple[object, ...], tuple[Any, ...]], key: tuple[object, ...], sums: tuple[Any, ...]
) -> None:
    previous = groups.get(key)
    groups[key] = sums if previous is None else tuple(map(add, previous, sums))


class _Layout:
    """Column positions of one rollup, and the tier dimensions it feeds."""

    def __init__(self, spec: RollupSpec) -> None:
        self.spec = spec
        self.width = len(spec.dimensions)
        positions = {name: index for index, name in enumerate(spec.dimensions)}
        self.environment = positions["environment"]
        self.data_mode = positions["data_mode"]
        self.folds = [
            (tier, {dimension for dimension in tier.dimensions_from(spec)})
            for tier in TIERS
            if tier.dimensions_from(spec)
        ]
        self.fold_positions = [
            (d, positions[d]) for d in dict.fromkeys(d for t in TIERS for d in t.dimensions_from(spec))
        ]
        self.pair_folds = [
            (tier, [(f, positions[f], d, positions[d]) for f, d in tier.pairs_from(spec)])
            for tier in FILTER_TIERS
            if tier.pairs_from(spec)
        ]
        table, bucket = spec.table, spec.bucket_column
        columns = (bucket, *spec.dimensions, *MEASURES, "seq")
        self.select = (
            f"SELECT {', '.join(spec.dimensions)}, {', '.join(MEASURES)}, seq FROM {table} WHERE {bucket} = ?"
        )
        self.insert = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({','.join('?' * len(columns))})"


_LAYOUTS: Final = {spec.table: _Layout(spec) for spec in ROLLUPS}


def _fold_and_merge(
    conn: sqlite3.Connection, layout: _Layout, bucket: int, rows: list[tuple[Any, ...]], next_seq: int
) -> None:
    """Upsert the positive rows of ``rows`` into the tiers; write ``rows`` back merged, with
    negative sequence numbers counting down from ``next_seq``. The caller deletes ``rows``."""
    width = layout.width
    merged: dict[tuple[object, ...], tuple[Any, ...]] = {}
    folded: dict[tuple[object, ...], tuple[Any, ...]] = {}
    pairs: list[dict[tuple[object, ...], tuple[Any, ...]]] = [{} for _ in layout.pair_folds]
    for row in rows:
        key, sums = row[:width], row[width:-1]
        _add(merged, key, sums)
        if row[-1] > 0:  # not folded into the tiers yet
            environment, data_mode = key[layout.environment], key[layout.data_mode]
            for dimension, index in layout.fold_positions:
                _add(folded, (dimension, key[index], environment, data_mode), sums)
            for (_, positions), groups in zip(layout.pair_folds, pairs, strict=True):
                for name, at, dimension, index in positions:
                    _add(groups, (name, key[at], dimension, key[index], environment, data_mode), sums)
    for (tier, _), groups in zip(layout.pair_folds, pairs, strict=True):
        tier_bucket = bucket // tier.bucket_seconds * tier.bucket_seconds
        conn.executemany(
            _UPSERTS[tier.table],
            [
                (name, filter_value, dimension, tier_bucket, value, env, mode, *sums)
                for (name, filter_value, dimension, value, env, mode), sums in groups.items()
            ],
        )
    for tier, dimensions in layout.folds:
        tier_bucket = bucket // tier.bucket_seconds * tier.bucket_seconds
        conn.executemany(
            _UPSERTS[tier.table],
            [
                (dimension, tier_bucket, value, env, mode, *sums)
                for (dimension, value, env, mode), sums in folded.items()
                if dimension in dimensions
            ],
        )
    conn.executemany(
        layout.insert, [(bucket, *key, *sums, next_seq - i) for i, (key, sums) in enumerate(merged.items())]
    )


def _compact_step(transaction: Transaction, writer: RowWriter, spec: RollupSpec, bucket: int) -> bool:
    """One bounded transaction of compaction; True once the bucket has nothing left to fold.

    A bucket is merged whole (one row per group) when its new (positive) rows are at least
    as many as the merged rows it already holds, and all of them fit in :data:`_CHUNK_ROWS`:
    a merge then reads at most twice the rows it folds. Otherwise only the new rows are
    folded, merged among themselves and kept beside the merged ones (every query sums a
    bucket's rows anyway), a chunk of at most :data:`_CHUNK_ROWS` at a time. Why: spans
    that arrive late dirty a closed bucket again, often with a few rows; merging the whole
    bucket for them each time cost three times the rows folded (``bench/compaction.py``),
    while the few extra rows this leaves are merged away once new rows outnumber them. A
    very large bucket (a burst of tens of thousands of spans a second) is worked through in
    chunks the same way, so no transaction holds the write lock for long.
    """
    layout = _LAYOUTS[spec.table]
    table, column = spec.table, spec.bucket_column
    with transaction() as conn:
        (lowest,) = conn.execute(
            f"SELECT coalesce(min(seq), 0) FROM {table} WHERE {column} = ?", (bucket,)
        ).fetchone()
        lowest = min(0, lowest)  # merged rows are numbered -1, -2, ...: -lowest of them
        positive = conn.execute(
            f"{layout.select} AND seq > 0 ORDER BY seq LIMIT ?", (bucket, _CHUNK_ROWS + 1)
        ).fetchall()
        if -lowest <= len(positive) <= _CHUNK_ROWS + lowest:
            merged = conn.execute(f"{layout.select} AND seq < 0", (bucket,)).fetchall() if lowest else []
            conn.execute(f"DELETE FROM {table} WHERE {column} = ?", (bucket,))
            _fold_and_merge(conn, layout, bucket, merged + positive, -1)
        elif positive:
            chunk = positive[:_CHUNK_ROWS]
            conn.execute(
                f"DELETE FROM {table} WHERE {column} = ? AND seq > 0 AND seq <= ?", (bucket, chunk[-1][-1])
            )
            _fold_and_merge(conn, layout, bucket, chunk, lowest - 1)
        clean = len(positive) <= _CHUNK_ROWS  # every new row was in this step
        if clean:
            conn.execute("DELETE FROM rollup_dirty WHERE table_name = ? AND bucket = ?", (table, bucket))
        writer.forget(table, bucket)
    return clean


def compact_rollups(transaction: Transaction, writer: RowWriter, now_ns: int, *, max_buckets: int) -> int:
    """Run up to ``max_buckets`` compaction steps on dirty buckets closed for the grace period.

    Oldest first, one transaction per step (a bucket, or a chunk of a very large one), so
    ingest waits at most one step. A bucket that receives late rows afterwards is marked
    dirty again by the write path and compacted again later.

    Returns:
        The number of steps run (0: nothing left to do).

    Raises:
        ValueError: ``max_buckets`` below 1.
    """
    if max_buckets < 1:
        raise ValueError(f"max_buckets must be at least 1, got {max_buckets!r}")
    now_s = now_ns // NS_PER_SECOND
    done = 0
    for spec in ROLLUPS:
        closed_before = now_s - COMPACTION_GRACE_S - spec.bucket_seconds
        while done < max_buckets:
            with transaction() as conn:
                buckets = [
                    bucket
                    for (bucket,) in conn.execute(
                        "SELECT bucket FROM rollup_dirty WHERE table_name = ? AND bucket <= ?"
                        " ORDER BY bucket LIMIT ?",
                        (spec.table, closed_before, max_buckets - done),
                    )
                ]
            if not buckets:
                break
            for bucket in buckets:
                while done < max_buckets:
                    done += 1
                    if _compact_step(transaction, writer, spec, bucket):
                        break
    return done
