"""Rollup compaction: merge a closed bucket's partial rows and fold them into the tiers.

For one dirty, closed bucket of a rollup, in one transaction:

1. the rows appended since the last compaction (``seq > 0``) are summed per tier group and
   upserted into every tier that takes a dimension from this rollup (the tiers are small
   and this runs off the ingest path, so here the upsert's scattered writes are fine);
2. all the bucket's rows are summed per rollup group, deleted, and written back as one
   row per group with a negative ``seq`` (meaning: already folded into the tiers);
3. the bucket's dirty mark is removed.

Every partial row is folded into the tiers exactly once (step 1 takes only positive
``seq`` rows, step 2 makes them negative in the same transaction), and queries read the
rows still positive from the rollup itself, so results are exact at every stage.
"""

from __future__ import annotations

from operator import add
from typing import Any, Final

from ..rollups import MEASURES, ROLLUPS, RollupSpec
from ..tiers import TIERS
from .maintenance import Transaction
from .writer import RowWriter

__all__ = ["COMPACTION_GRACE_S", "compact_rollups"]

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


_UPSERTS: Final = {tier.table: _upsert_sql(tier.table, tier.bucket_column) for tier in TIERS}


def _add(
    groups: dict[tuple[object, ...], tuple[Any, ...]], key: tuple[object, ...], sums: tuple[Any, ...]
) -> None:
    previous = groups.get(key)
    groups[key] = sums if previous is None else tuple(map(add, previous, sums))


def _compact_bucket(transaction: Transaction, writer: RowWriter, spec: RollupSpec, bucket: int) -> None:
    """Fold and merge one bucket: one read of its rows, the sums done in Python."""
    dims = spec.dimensions
    width = len(dims)
    positions = {name: index for index, name in enumerate(dims)}
    environment, data_mode = positions["environment"], positions["data_mode"]
    folds = [
        (tier, [(dimension, positions[dimension]) for dimension in tier.dimensions_from(spec)])
        for tier in TIERS
        if tier.dimensions_from(spec)
    ]
    fold_dimensions = list({d: i for _, pairs in folds for d, i in pairs}.items())
    columns = (spec.bucket_column, *dims, *MEASURES, "seq")
    with transaction() as conn:
        rows = conn.execute(
            f"SELECT {', '.join(dims)}, {', '.join(MEASURES)}, seq FROM {spec.table}"
            f" WHERE {spec.bucket_column} = ?",
            (bucket,),
        ).fetchall()
        merged: dict[tuple[object, ...], tuple[Any, ...]] = {}
        folded: dict[tuple[object, ...], tuple[Any, ...]] = {}
        for row in rows:
            key, sums = row[:width], row[width:-1]
            _add(merged, key, sums)
            if row[-1] > 0:  # not folded into the tiers yet
                for dimension, index in fold_dimensions:
                    _add(folded, (dimension, key[index], key[environment], key[data_mode]), sums)
        for tier, pairs in folds:
            tier_bucket = bucket // tier.bucket_seconds * tier.bucket_seconds
            wanted = {dimension for dimension, _ in pairs}
            conn.executemany(
                _UPSERTS[tier.table],
                [
                    (dimension, tier_bucket, value, env, mode, *sums)
                    for (dimension, value, env, mode), sums in folded.items()
                    if dimension in wanted
                ],
            )
        conn.execute(f"DELETE FROM {spec.table} WHERE {spec.bucket_column} = ?", (bucket,))
        conn.executemany(
            f"INSERT INTO {spec.table} ({', '.join(columns)}) VALUES ({','.join('?' * len(columns))})",
            [(bucket, *key, *sums, -seq) for seq, (key, sums) in enumerate(merged.items(), start=1)],
        )
        conn.execute("DELETE FROM rollup_dirty WHERE table_name = ? AND bucket = ?", (spec.table, bucket))
        writer.forget(spec.table, bucket)


def compact_rollups(transaction: Transaction, writer: RowWriter, now_ns: int, *, max_buckets: int) -> int:
    """Compact up to ``max_buckets`` dirty buckets that closed at least the grace period ago.

    Oldest first, one transaction per bucket, so ingest waits at most one bucket's worth.
    A bucket that receives late rows afterwards is marked dirty again by the write path and
    compacted again later.

    Returns:
        The number of buckets compacted (0: nothing left to do).

    Raises:
        ValueError: ``max_buckets`` below 1.
    """
    if max_buckets < 1:
        raise ValueError(f"max_buckets must be at least 1, got {max_buckets!r}")
    now_s = now_ns // 1_000_000_000
    done = 0
    for spec in ROLLUPS:
        if done >= max_buckets:
            break
        closed_before = now_s - COMPACTION_GRACE_S - spec.bucket_seconds
        with transaction() as conn:
            buckets = [
                bucket
                for (bucket,) in conn.execute(
                    "SELECT bucket FROM rollup_dirty WHERE table_name = ? AND bucket <= ?"
                    " ORDER BY bucket LIMIT ?",
                    (spec.table, closed_before, max_buckets - done),
                )
            ]
        for bucket in buckets:
            _compact_bucket(transaction, writer, spec, bucket)
            done += 1
    return done
