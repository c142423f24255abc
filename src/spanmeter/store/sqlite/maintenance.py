"""Retention for the SQLite store, in bounded steps.

Retention deletes many rows, so it must not hold the single write lock for long: each
chunk is its own short transaction, taken through the store's ``transaction`` factory
(which takes the write lock), and the lock is released between chunks so ingest
transactions interleave with them.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Final

from ...timeunits import NS_PER_MINUTE
from ..api import RetentionResult
from ..retention_rule import check_retention_days, raw_cutoff_ns, rollup_cutoff_s
from ..rollups import ROLLUPS
from ..tiers import FILTER_TIERS, TIERS
from .provider_calls import DELETE_EXPIRED as PROVIDER_CALLS_EXPIRED
from .tier_migrations import delete_expired

__all__ = ["DEFAULT_CHUNK_ROWS", "Transaction", "apply_retention"]

Transaction = Callable[[], AbstractContextManager[sqlite3.Connection]]
"""Opens one write transaction under the store's write lock."""

DEFAULT_CHUNK_ROWS: Final = 5000
"""Rows deleted per retention transaction: a few milliseconds of lock each."""


def _delete_in_chunks(transaction: Transaction, sql: str, params: tuple[object, ...], chunk_rows: int) -> int:
    """Run ``sql`` (ending in ``LIMIT ?``) until a chunk deletes fewer than ``chunk_rows``: one
    short write transaction per chunk, so ingest interleaves. Returns the rows deleted."""
    deleted = 0
    while True:
        with transaction() as conn:
            changed = conn.execute(sql, (*params, chunk_rows)).rowcount
        deleted += changed
        if changed < chunk_rows:
            return deleted


def apply_retention(
    transaction: Transaction,
    now_ns: int,
    *,
    raw_days: int,
    rollup_days: int,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
) -> RetentionResult:
    """See :meth:`SpanStore.apply_retention <spanmeter.store.api.SpanStore.apply_retention>`.

    Raw rows go by start time (their dedupe keys are their index entries and go with them);
    logical-request keys go by the time of their first attempt; a rollup or tier bucket
    goes once it has *ended* before the rollup cutoff (:mod:`spanmeter.store.retention_rule`:
    ``rollup_days`` ago rounded down to the widest tier's bucket, the same in every store).

    Raises:
        ValueError: ``raw_days`` or ``rollup_days`` below 1, or ``chunk_rows`` below 1.
    """
    check_retention_days(raw_days, rollup_days)
    if chunk_rows < 1:
        raise ValueError(f"chunk_rows must be at least 1, got {chunk_rows!r}")
    requests, logical = _delete_raw(transaction, raw_cutoff_ns(now_ns, raw_days), chunk_rows)
    rollup_cutoff = rollup_cutoff_s(now_ns, rollup_days)
    rollup_rows = _delete_rollups(transaction, rollup_cutoff, chunk_rows)
    rollup_rows += _delete_tiers(transaction, rollup_cutoff, chunk_rows)
    return RetentionResult(requests=requests, logical_requests=logical, rollup_rows=rollup_rows)


def _delete_raw(transaction: Transaction, raw_cutoff_ns: int, chunk_rows: int) -> tuple[int, int]:
    """Raw rows and logical-request keys from before ``raw_cutoff_ns``, and the provider
    call counts of those minutes: (raw rows deleted, logical-request keys deleted)."""
    requests = _delete_in_chunks(
        transaction,
        "DELETE FROM requests WHERE id IN"
        " (SELECT id FROM requests WHERE start_time_ns < ? ORDER BY start_time_ns LIMIT ?)",
        (raw_cutoff_ns,),
        chunk_rows,
    )
    logical = _delete_in_chunks(
        transaction,
        "DELETE FROM logical_requests WHERE external_request_id IN"
        " (SELECT external_request_id FROM logical_requests WHERE first_start_ns < ?"
        " ORDER BY first_start_ns LIMIT ?)",
        (raw_cutoff_ns,),
        chunk_rows,
    )
    _delete_in_chunks(transaction, PROVIDER_CALLS_EXPIRED, (raw_cutoff_ns // NS_PER_MINUTE,), chunk_rows)
    return requests, logical


def _delete_rollups(transaction: Transaction, rollup_cutoff_s: int, chunk_rows: int) -> int:
    """Rollup buckets ended by ``rollup_cutoff_s``, and their dirty marks: rows deleted."""
    deleted = 0
    for spec in ROLLUPS:
        last_bucket = rollup_cutoff_s - spec.bucket_seconds  # buckets ending at or before the cutoff
        bucket = spec.bucket_column
        deleted += _delete_in_chunks(
            transaction,
            f"DELETE FROM {spec.table} WHERE ({bucket}, seq) IN"
            f" (SELECT {bucket}, seq FROM {spec.table} WHERE {bucket} <= ? ORDER BY {bucket} LIMIT ?)",
            (last_bucket,),
            chunk_rows,
        )
        with transaction() as conn:
            conn.execute(
                "DELETE FROM rollup_dirty WHERE table_name = ? AND bucket <= ?", (spec.table, last_bucket)
            )
    return deleted


def _delete_tiers(transaction: Transaction, rollup_cutoff_s: int, chunk_rows: int) -> int:
    """Per-dimension and filter tier buckets ended by ``rollup_cutoff_s``: rows deleted."""
    deleted = 0
    for tier in TIERS:
        last_bucket = rollup_cutoff_s - tier.bucket_seconds
        bucket = tier.bucket_column
        for dimension in sorted({d for _, dims in tier.sources for d in dims}):
            # one dimension at a time: the primary key leads with it, so each chunk is a seek
            deleted += _delete_in_chunks(
                transaction,
                f"DELETE FROM {tier.table} WHERE (dimension, {bucket}, value, environment, data_mode) IN"
                f" (SELECT dimension, {bucket}, value, environment, data_mode FROM {tier.table}"
                f" WHERE dimension = ? AND {bucket} <= ? LIMIT ?)",
                (dimension, last_bucket),
                chunk_rows,
            )
    for tier in FILTER_TIERS:
        deleted += delete_expired(transaction, tier, rollup_cutoff_s - tier.bucket_seconds)
    return deleted
