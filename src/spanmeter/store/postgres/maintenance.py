"""Retention and rollup compaction on PostgreSQL, each run by one replica at a time.

Both take a transaction-scoped advisory lock with ``pg_try_advisory_xact_lock``: a replica
that finds another one at work skips its turn instead of queuing behind it.

* Retention drops the day partitions of ``requests`` that lie wholly before the cutoff
  (no row-by-row delete, no bloat), deletes the expired rows left in the default partition,
  and the logical-request keys and provider calls that went with them; rollups older than
  their own cutoff are deleted.
* Compaction merges the partial rows of closed buckets (one row per group) with a single
  ``DELETE ... RETURNING`` feeding an ``INSERT ... SELECT ... GROUP BY``, and in the same
  statement folds the rows not folded before into the coarse tiers
  (:mod:`.tier_schema`), so the merge is atomic and replicas appending to a bucket
  meanwhile lose nothing. Its work list is the partial index of unfolded rows: spans
  arriving later for an old bucket add unfolded rows, which every query reads from the
  rollup until the next round folds them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from ...timeunits import NS_PER_DAY, NS_PER_MINUTE
from ..api import RetentionResult
from ..retention_rule import check_retention_days, raw_cutoff_ns, rollup_cutoff_s
from ..rollups import ROLLUPS
from .schema import COMPACTION_LOCK, RETENTION_LOCK, partition_day
from .sql_text import sql
from .tier_schema import ALL_TIERS, fold_statement

if TYPE_CHECKING:
    import psycopg

__all__ = ["apply_retention", "compact_rollups"]

_FOLDS: Final = {spec.table: fold_statement(spec) for spec in ROLLUPS}
_GRACE_BUCKETS: Final = 2
"""Buckets behind the current one left alone: spans of a closed minute still arrive for a
little while (export batching, Collector queues)."""


def _locked(conn: psycopg.Connection[tuple[Any, ...]], key: int) -> bool:
    row = conn.execute("SELECT pg_try_advisory_xact_lock(%s)", (key,)).fetchone()
    return bool(row and row[0])


def apply_retention(
    conn: psycopg.Connection[tuple[Any, ...]], now_ns: int, *, raw_days: int, rollup_days: int
) -> RetentionResult:
    """See :meth:`SpanStore.apply_retention <spanmeter.store.api.SpanStore.apply_retention>`
    (cutoffs from :mod:`spanmeter.store.retention_rule`, as in every store); runs in the
    caller's transaction."""
    check_retention_days(raw_days, rollup_days)
    if not _locked(conn, RETENTION_LOCK):
        return RetentionResult()
    raw_cutoff = raw_cutoff_ns(now_ns, raw_days)
    requests = 0
    for (name,) in conn.execute(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
        " WHERE i.inhparent = 'requests'::regclass AND c.relname <> 'requests_default'"
    ).fetchall():
        day = partition_day(str(name))
        if day is not None and (day + 1) * NS_PER_DAY <= raw_cutoff:  # wholly expired: dropped
            row = conn.execute(sql(f"SELECT count(*) FROM {name}")).fetchone()
            requests += int(row[0]) if row else 0
            conn.execute(sql(f"DROP TABLE {name}"))
    # the partition straddling the cutoff and the default one: row by row
    requests += max(conn.execute("DELETE FROM requests WHERE start_time_ns < %s", (raw_cutoff,)).rowcount, 0)
    logical = conn.execute("DELETE FROM logical_requests WHERE first_start_ns < %s", (raw_cutoff,)).rowcount
    conn.execute("DELETE FROM provider_calls WHERE minute < %s", (raw_cutoff // NS_PER_MINUTE,))
    cutoff_s = rollup_cutoff_s(now_ns, rollup_days)
    rollup_rows = 0
    for spec in ROLLUPS:
        last_bucket = cutoff_s - spec.bucket_seconds  # buckets ending at or before the cutoff
        deleted = conn.execute(
            sql(f"DELETE FROM {spec.table} WHERE {spec.bucket_column} <= %s"), (last_bucket,)
        )
        rollup_rows += max(deleted.rowcount, 0)
    for tier in ALL_TIERS:  # the cutoff is rounded to the widest tier: whole buckets go
        deleted = conn.execute(
            sql(f"DELETE FROM {tier.table} WHERE {tier.bucket_column} <= %s"),
            (cutoff_s - tier.bucket_seconds,),
        )
        rollup_rows += max(deleted.rowcount, 0)
    return RetentionResult(requests=requests, logical_requests=max(logical, 0), rollup_rows=rollup_rows)


def compact_rollups(conn: psycopg.Connection[tuple[Any, ...]], now_s: int, *, max_buckets: int) -> int:
    """Compact up to ``max_buckets`` closed buckets holding unfolded rows, oldest first:
    merge their rows and fold the new ones into the tiers (:func:`.tier_schema.fold_statement`);
    returns how many were compacted (0: nothing left, or another replica is compacting).

    Raises:
        ValueError: ``max_buckets`` below 1.
    """
    if max_buckets < 1:
        raise ValueError(f"max_buckets must be at least 1, got {max_buckets!r}")
    if not _locked(conn, COMPACTION_LOCK):
        return 0
    done = 0
    for spec in ROLLUPS:
        if done >= max_buckets:
            break
        closed_before = (now_s // spec.bucket_seconds - _GRACE_BUCKETS) * spec.bucket_seconds
        column = spec.bucket_column
        # the partial index of unfolded rows lists the work: late rows of old buckets too
        buckets = [
            int(bucket)
            for (bucket,) in conn.execute(
                sql(
                    f"SELECT DISTINCT {column} FROM {spec.table} WHERE NOT folded AND {column} < %s"
                    " ORDER BY 1 LIMIT %s"
                ),
                (closed_before, max_buckets - done),
            )
        ]
        if not buckets:
            continue
        conn.execute(sql(_FOLDS[spec.table]), (buckets,))
        done += len(buckets)
    return done
