"""The coarse tiers on PostgreSQL (migration ``m009_tiers``) and the compaction statement
that folds rollup rows into them.

The tiers are those of :mod:`spanmeter.store.tiers`, table for table and column for column
as in the embedded store, so the same split of a window (:mod:`spanmeter.store.window_cover`)
reads the same rows from either. What differs is how a rollup row is known to be folded:
replicas append rollup rows concurrently, so there is no per-bucket sequence number to make
negative; a ``folded`` flag does that job instead. The write path appends rows with
``folded`` false (the column's default: ``COPY`` needs no change); compaction deletes a
bucket's rows and writes them back merged with ``folded`` true, in the statement that adds
the unfolded ones to the tiers. A partial index on the unfolded rows is both compaction's
list of work (it replaces the old per-rollup watermark, so a late span arriving into an
already compacted bucket is found and folded too) and how a query reads, inside the tiered
part of its window, the rollup rows no tier holds yet.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from .. import rollup_indexes
from ..query_model import RANKED_MEASURES
from ..rollups import MEASURES, ROLLUPS, RollupSpec
from ..tiers import FILTER_TIERS, TIERS, DimensionTier
from .sql_text import sql

if TYPE_CHECKING:
    import psycopg

__all__ = ["ALL_TIERS", "create_filter_indexes", "create_tiers", "fold_statement", "tier_key"]

ALL_TIERS: Final = (*TIERS, *FILTER_TIERS)


def tier_key(tier: DimensionTier) -> tuple[str, ...]:
    """A tier's primary key, in index order: a query seeks on its leading columns (the
    filter, then the ranked dimension, then a range of buckets)."""
    lead = ("filter_dimension", "filter_value") if tier.filtered else ()
    return (*lead, "dimension", tier.bucket_column, "value", "environment", "data_mode")


def _measure_ddl() -> str:
    return ", ".join(
        f"{name} {'double precision' if name == 'latency_ms_sum' else 'bigint'} NOT NULL" for name in MEASURES
    )


def create_tiers(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    """The ``folded`` flag and its partial index on each rollup, and the tier tables.

    Rows already in the rollups are unfolded (the column's default): queries read them from
    the rollup until compaction folds them, so an upgraded store answers exactly at once and
    gets faster as compaction works through its history.

    Every tier's primary key index also carries the measures a ranking sums
    (:data:`~spanmeter.store.query_model.RANKED_MEASURES`, ``INCLUDE``): a ranking reads a
    tier by index only, without visiting the table, whose rows lie in the order compaction
    wrote them (by time), not in the key's order. Measured on ``bench/query.py``'s store
    (200,000 spans), "top tenants where provider = X over 30 days" read 15k filter-tier rows
    from 10k table pages in 88 ms, and 6-20 ms by index only.
    """
    conn.execute("DROP TABLE IF EXISTS rollup_compacted")  # the watermark the partial index replaces
    for spec in ROLLUPS:
        conn.execute(sql(f"ALTER TABLE {spec.table} ADD COLUMN folded boolean NOT NULL DEFAULT false"))
        conn.execute(
            sql(f"CREATE INDEX {spec.table}_unfolded ON {spec.table} ({spec.bucket_column}) WHERE NOT folded")
        )
    for tier in ALL_TIERS:
        key = tier_key(tier)
        columns = ", ".join(
            f"{name} {'bigint' if name == tier.bucket_column else 'text'} NOT NULL" for name in key
        )
        conn.execute(
            sql(
                f"CREATE TABLE {tier.table} ({columns}, {_measure_ddl()}, PRIMARY KEY ({', '.join(key)})"
                f" INCLUDE ({', '.join(RANKED_MEASURES)}))"
            )
        )


def create_filter_indexes(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    """The indexes of the folded rollup rows by a filter dimension
    (:mod:`spanmeter.store.rollup_indexes`): partial, ``WHERE folded``, so the write path,
    which appends unfolded rows, never writes to them; compaction's merged rows go in."""
    for statement in rollup_indexes.create_statements("folded"):
        conn.execute(sql(statement))


def _tier_insert(tier: DimensionTier, spec: RollupSpec) -> str | None:
    """``INSERT ... SELECT ... ON CONFLICT DO UPDATE`` adding the unfolded rows (CTE ``fresh``)
    of ``spec`` to ``tier``, one row per tier group; None when ``tier`` takes nothing from
    ``spec``."""
    width = tier.bucket_seconds
    bucket = f"{spec.bucket_column} / {width} * {width}"
    if tier.filtered:
        pairs = tier.pairs_from(spec)
        if not pairs:
            return None
        values = ", ".join(f"('{name}', {name}, '{dimension}', {dimension})" for name, dimension in pairs)
        lateral = f"(VALUES {values}) AS v (filter_dimension, filter_value, dimension, value)"
        keys = ("v.filter_dimension", "v.filter_value", "v.dimension")
    else:
        dimensions = tier.dimensions_from(spec)
        if not dimensions:
            return None
        values = ", ".join(f"('{dimension}', {dimension})" for dimension in dimensions)
        lateral = f"(VALUES {values}) AS v (dimension, value)"
        keys = ("v.dimension",)
    group = ", ".join((*keys, bucket, "v.value", "environment", "data_mode"))
    sums = ", ".join(f"sum({name})" for name in MEASURES)
    update = ", ".join(f"{name} = {tier.table}.{name} + excluded.{name}" for name in MEASURES)
    return (
        f"INSERT INTO {tier.table} ({', '.join((*tier_key(tier), *MEASURES))})"
        f" SELECT {group}, {sums} FROM fresh CROSS JOIN LATERAL {lateral} GROUP BY {group}"
        f" ON CONFLICT ({', '.join(tier_key(tier))}) DO UPDATE SET {update}"
    )


def fold_statement(spec: RollupSpec) -> str:
    """One statement compacting the buckets of ``spec`` listed in its one parameter (an array):
    every row of them deleted and written back merged (one row per group, ``folded``), and
    the rows not folded before added to every tier that takes a dimension from ``spec``.

    One statement, so one snapshot and all or nothing: a query sees either the rows unfolded
    and the tiers without them, or the rows folded and the tiers with them. Rows a replica
    appends meanwhile are not in the statement's snapshot: they stay unfolded, for the next
    round.
    """
    keys = ", ".join((spec.bucket_column, *spec.dimensions))
    measures = ", ".join(MEASURES)
    sums = ", ".join(f"sum({name})" for name in MEASURES)
    parts = [
        f"gone AS (DELETE FROM {spec.table} WHERE {spec.bucket_column} = ANY(%s)"
        f" RETURNING {keys}, {measures}, folded)",
        "fresh AS (SELECT * FROM gone WHERE NOT folded)",
        f"merged AS (INSERT INTO {spec.table} ({keys}, {measures}, folded)"
        f" SELECT {keys}, {sums}, true FROM gone GROUP BY {keys})",
    ]
    for index, tier in enumerate(ALL_TIERS):
        insert = _tier_insert(tier, spec)
        if insert is not None:
            parts.append(f"tier_{index} AS ({insert})")
    return f"WITH {', '.join(parts)} SELECT count(*) FROM gone"
