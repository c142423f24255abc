"""Tiers added after stores existed: their migrations with backfills, and the filter tier's retention.

A store created before a tier existed already holds compacted rollup rows (negative
``seq``) that were folded into the older tiers only. Each migration here folds exactly
those rows into the new tier, with ``INSERT ... SELECT ... GROUP BY`` statements run by
SQLite; rows not compacted yet (positive ``seq``) are left to compaction, which folds into
every tier. So every rollup row reaches every tier exactly once, and rankings stay exact
over old data too. It costs minutes once on a store of tens of millions of spans (about
9 minutes for the filter tier of ``bench/query.py``'s 10 million spans), nothing on a new
one.

* ``m003_filter_tiers``: ``rollup_pair_day``, the filter tier of :mod:`spanmeter.store.tiers`;
* ``m004_hourly_user_tier``: ``user_id`` rows in ``rollup_dim_hour``, from the hourly rollup;
* ``m005_user_rank_tiers``: ``rollup_dim_6h``, ``rollup_dim_week`` and ``rollup_dim_4w``,
  users per 6 hours, per week and per 4 weeks, from the hourly rollup;
* ``m006_every_filter``: ``rollup_pair_day`` rows for every other filter dimension;
* ``m008_compacted_filter_indexes``: not a tier, indexes of the compacted rollup rows by a
  filter dimension (:mod:`spanmeter.store.rollup_indexes`); nothing to backfill.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import Final

from sqlite_utils import Database

from .. import rollup_indexes
from ..rollups import HOUR, MEASURES, MINUTE, ROLLUPS, RollupSpec
from ..tiers import DIM_4W, DIM_6H, DIM_HOUR, DIM_WEEK, PAIR_DAY, DimensionTier
from .migration_db import MigrationDB
from .schema import MIGRATIONS

__all__ = [
    "delete_expired",
    "m003_filter_tiers",
    "m004_hourly_user_tier",
    "m005_user_rank_tiers",
    "m006_every_filter",
    "m008_compacted_filter_indexes",
]

_PREFIXES_PER_TRANSACTION: Final = 200


def _create(db: MigrationDB, tier: DimensionTier) -> None:
    """The tier's table: its key (led by the filter for a filter tier), then the measures."""
    measures = ",\n".join(
        f"    {name} {'REAL' if name == 'latency_ms_sum' else 'INTEGER'} NOT NULL" for name in MEASURES
    )
    bucket = tier.bucket_column
    key = ("filter_dimension", "filter_value") if tier.filtered else ()
    key += ("dimension", bucket, "value", "environment", "data_mode")
    columns = "".join(
        f"            {name} {'INTEGER' if name == bucket else 'TEXT'} NOT NULL,\n" for name in key
    )
    db.execute(
        f"""
        CREATE TABLE {tier.table} (
{columns}{measures},
            PRIMARY KEY ({", ".join(key)})
        ) WITHOUT ROWID
        """
    )


def _m003_pairs(spec: RollupSpec) -> tuple[tuple[str, str], ...]:
    """The (filter, dimension) pairs ``rollup_pair_day`` took from ``spec`` when m003 made it:
    filters on an endpoint tag or a tenant, with the minute rollup's ranked dimensions, and
    users from the hourly one. Spelled out, so that the migration stays what it was."""
    filters = ("endpoint_tag", "tenant_id")
    if spec == MINUTE:
        ranked: tuple[str, ...] = ("endpoint_tag", "prompt_version", "tenant_id", "model", "provider")
    elif spec == HOUR:
        ranked = ("user_id",)
    else:
        return ()
    return tuple((name, dimension) for name in filters for dimension in ranked if dimension != name)


def _backfill_pairs(
    db: MigrationDB, tier: DimensionTier, spec: RollupSpec, pairs: Sequence[tuple[str, str]]
) -> None:
    """Fold ``spec``'s compacted rows (``seq < 0``) into filter tier ``tier``, for ``pairs``."""
    sums = ", ".join(f"sum({name})" for name in MEASURES)
    width = tier.bucket_seconds
    keys = ("filter_dimension", "filter_value", "dimension", tier.bucket_column, "value")
    columns = ", ".join((*keys, "environment", "data_mode", *MEASURES))
    bucket = f"{spec.bucket_column} / {width} * {width}"
    for name, dimension in pairs:
        # names come from the rollup and tier definitions, never from input
        db.execute(
            f"INSERT INTO {tier.table} ({columns})"
            f" SELECT '{name}', {name}, '{dimension}', {bucket}, {dimension}, environment,"
            f" data_mode, {sums} FROM {spec.table} WHERE seq < 0"
            f" GROUP BY {name}, {bucket}, {dimension}, environment, data_mode"
        )


def _backfill_dimension(db: MigrationDB, tier: DimensionTier, spec: RollupSpec, dimension: str) -> None:
    """Fold ``spec``'s compacted rows (``seq < 0``) into per-dimension tier ``tier``, for
    ``dimension``."""
    sums = ", ".join(f"sum({name})" for name in MEASURES)
    width = tier.bucket_seconds
    columns = ", ".join(("dimension", tier.bucket_column, "value", "environment", "data_mode", *MEASURES))
    start = f"{spec.bucket_column} / {width} * {width}"
    # names come from the rollup and tier definitions, never from input
    db.execute(
        f"INSERT INTO {tier.table} ({columns})"
        f" SELECT '{dimension}', {start}, {dimension}, environment, data_mode, {sums}"
        f" FROM {spec.table} WHERE seq < 0"
        f" GROUP BY {start}, {dimension}, environment, data_mode"
    )


@MIGRATIONS(name="m003_filter_tiers")
def m003_filter_tiers(db: Database) -> None:
    """Create ``rollup_pair_day`` and fold the compacted rollup rows into it (the pairs of
    :func:`_m003_pairs`)."""
    _create(db, PAIR_DAY)
    for spec in ROLLUPS:
        _backfill_pairs(db, PAIR_DAY, spec, _m003_pairs(spec))


@MIGRATIONS(name="m004_hourly_user_tier")
def m004_hourly_user_tier(db: Database) -> None:
    """Fold the compacted rows of the hourly rollup into ``rollup_dim_hour`` as ``user_id`` rows.

    Why the hour tier takes users (from a rollup with buckets of its own size): it is a
    projection that drops tenant and endpoint, so an hour holds ~40% fewer rows than the
    hourly rollup (5.6k vs 9.5k at 10 million spans a month), in a narrower table; a
    24-hour ranking of users read ~3.4 times faster from it than from the rollup.
    """
    for spec in ROLLUPS:
        if spec.bucket_seconds != DIM_HOUR.bucket_seconds:
            continue  # finer rollups were folded in by compaction all along
        for dimension in DIM_HOUR.dimensions_from(spec):
            _backfill_dimension(db, DIM_HOUR, spec, dimension)


@MIGRATIONS(name="m005_user_rank_tiers")
def m005_user_rank_tiers(db: Database) -> None:
    """Create ``rollup_dim_6h``, ``rollup_dim_week`` and ``rollup_dim_4w`` and fold the
    compacted rows of the hourly rollup into them.

    Why: a ranking of 10,000 users over 30 days read ~490k day-tier rows plus the window's
    edge hours (over 300 ms on ``bench/query.py``'s store). With these, the window is read
    as a few 4-week, week, day and 6-hour buckets, added and subtracted
    (:mod:`spanmeter.store.window_cover`). Same shape as the other per-dimension tiers.
    """
    for tier in (DIM_6H, DIM_WEEK, DIM_4W):
        _create(db, tier)
        for spec in ROLLUPS:
            for dimension in tier.dimensions_from(spec):
                _backfill_dimension(db, tier, spec, dimension)


@MIGRATIONS(name="m006_every_filter")
def m006_every_filter(db: Database) -> None:
    """Fold the compacted rollup rows into ``rollup_pair_day`` for the filters added since
    m003: a prompt version, a model, a provider, an outcome, a user.

    Why: a ranking with one of those filters scanned every rollup row of the window (0.5 to
    3.5 s for 30 days over 10 million spans on ``bench/query.py``'s store). Only the pairs
    m003 did not fold are folded here, so every compacted row reaches each pair once.
    """
    for spec in ROLLUPS:
        done = set(_m003_pairs(spec))
        _backfill_pairs(db, PAIR_DAY, spec, [pair for pair in PAIR_DAY.pairs_from(spec) if pair not in done])


@MIGRATIONS(name="m008_compacted_filter_indexes")
def m008_compacted_filter_indexes(db: MigrationDB) -> None:
    """Index the compacted rollup rows by the filter dimensions of
    :data:`~spanmeter.store.rollup_indexes.INDEXED_FILTERS`, each ``(dimension, bucket)``.

    Partial, ``WHERE seq < 0``: the write path appends rows with a positive ``seq``, so it
    never writes to them (an index leading with a user would scatter its commits);
    compaction writes the merged rows back negative, into them.
    """
    for statement in rollup_indexes.create_statements("seq < 0"):
        db.execute(statement)


def delete_expired(
    transaction: Callable[[], AbstractContextManager[sqlite3.Connection]],
    tier: DimensionTier,
    last_bucket: int,
) -> int:
    """Delete ``tier``'s rows of buckets up to ``last_bucket``; returns how many.

    The key leads with the filter, so old rows are spread over the whole table. Rather
    than scan it (once per chunk, or once to list the prefixes, which would hold the write
    lock for the whole scan), the (filter, value, dimension) prefixes are walked with one
    index seek each, and each prefix's expired rows are one range of the key; a bounded
    number of prefixes per transaction, so ingest waits at most a few milliseconds.
    """
    bucket = tier.bucket_column
    next_prefix = (
        f"SELECT filter_dimension, filter_value, dimension FROM {tier.table}"
        " WHERE (filter_dimension, filter_value, dimension) > (?, ?, ?)"
        " ORDER BY filter_dimension, filter_value, dimension LIMIT 1"
    )
    delete = (
        f"DELETE FROM {tier.table} WHERE filter_dimension = ? AND filter_value = ?"
        f" AND dimension = ? AND {bucket} <= ?"
    )
    deleted = 0
    prefix: tuple[str, str, str] | None = ("", "", "")  # below every key: TEXT NOT NULL
    while prefix is not None:
        with transaction() as conn:
            for _ in range(_PREFIXES_PER_TRANSACTION):
                found = conn.execute(next_prefix, prefix).fetchone()
                if found is None:
                    prefix = None
                    break
                prefix = (found[0], found[1], found[2])
                deleted += conn.execute(delete, (*prefix, last_bucket)).rowcount
    return deleted
