"""Retention and rollup compaction on PostgreSQL, each run by one replica at a time.

Both take a transaction-scoped advisory lock with ``pg_try_advisory_xact_lock``: a replica
that finds another one at work skips its turn instead of queuing behind it.

* Retention drops the day partitions of ``requests`` that lie wholly before the cutoff
  (no row-by-row delete, no bloat), deletes the expired rows left in the default partition,
  and the logical-request keys and provider calls that went with them; rollups older than
  their own cutoff are deleted.
* Compaction merges the partial rows of closed buckets (one row per group) with a single
  ``DELETE ... RETURNING`` feeding an ``INSERT ... SELECT ... GROUP BY``, so the merge is
  atomic and replicas appending to a bucket meanwhile lose nothing. A watermark per rollup
  remembers how far it got; spans arriving later for an old bucket add partial rows that
  every query still sums.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from ...timeunits import NS_PER_DAY, NS_PER_MINUTE
from ..api import RetentionResult
from ..retention_rule import check_retention_days, raw_cutoff_ns, rollup_cutoff_s
from ..rollups import MEASURES, ROLLUPS
from .schema import COMPACTION_LOCK, RETENTION_LOCK, partition_day
from .sql_text import sql

if TYPE_CHECKING:
    import psycopg

__all__ = ["apply_retention", "compact_rollups"]

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
    return RetentionResult(requests=requests, logical_requests=max(logical, 0), rollup_rows=rollup_rows)


def compact_rollups(conn: psycopg.Connection[tuple[Any, ...]], now_s: int, *, max_buckets: int) -> int:
    """Merge the partial rows of up to ``max_buckets`` closed buckets; returns how many were
    merged (0: nothing left, or another replica is compacting)."""
    if not _locked(conn, COMPACTION_LOCK):
        return 0
    conn.execute(
        "CREATE TABLE IF NOT EXISTS rollup_compacted (table_name text PRIMARY KEY, up_to bigint NOT NULL)"
    )
    done = 0
    for spec in ROLLUPS:
        if done >= max_buckets:
            break
        closed_before = (now_s // spec.bucket_seconds - _GRACE_BUCKETS) * spec.bucket_seconds
        row = conn.execute(
            "SELECT up_to FROM rollup_compacted WHERE table_name = %s", (spec.table,)
        ).fetchone()
        start = int(row[0]) if row else None
        buckets = [
            int(bucket)
            for (bucket,) in conn.execute(
                sql(
                    f"SELECT DISTINCT {spec.bucket_column} FROM {spec.table}"
                    f" WHERE {spec.bucket_column} < %s AND {spec.bucket_column} >= %s ORDER BY 1 LIMIT %s"
                ),
                (closed_before, start if start is not None else -(2**62), max_buckets - done),
            )
        ]
        if not buckets:
            continue
        keys = ", ".join((spec.bucket_column, *spec.dimensions))
        sums = ", ".join(f"sum({name})" for name in MEASURES)
        columns = f"{keys}, {', '.join(MEASURES)}"
        conn.execute(
            sql(
                f"WITH gone AS (DELETE FROM {spec.table} WHERE {spec.bucket_column} >= %s"
                f" AND {spec.bucket_column} <= %s RETURNING {columns}) INSERT INTO {spec.table} ({columns})"
                f" SELECT {keys}, {sums} FROM gone GROUP BY {keys}"
            ),
            (buckets[0], buckets[-1]),
        )
        conn.execute(
            "INSERT INTO rollup_compacted VALUES (%s, %s) ON CONFLICT (table_name) DO UPDATE SET up_to = excluded.up_to",
            (spec.table, buckets[-1] + spec.bucket_seconds),
        )
        done += len(buckets)
    return done
