"""Writes behind re-pricing and revenue import, and the tables they need.

Re-pricing keeps rows and rollups consistent without recomputing any rollup: rollups are
additive partial aggregates (:mod:`spanmeter.store.rollups`), so the change of a row's cost
is appended as one more partial row per affected group and bucket, holding only the cost
and unpriced deltas. Compaction later folds it into the tiers like any other partial row,
and every query is exact in between. The raw rows are updated only where they still hold
the old pricing, so a diff computed before a concurrent change is refused whole.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import replace
from typing import Final

from ..analysis_types import PRICING_FIELDS, RepriceAudit, RepricedRow, RevenueRow
from ..audit_log import repricing_applied
from ..repricing import AUDIT_FIELDS, audit_row_values, audit_values, correction_rows, update_rows
from ..rollups import MEASURES, ROLLUPS, RollupSpec
from .audit import insert_audit_event
from .maintenance import Transaction
from .migration_db import MigrationDB
from .schema import MIGRATIONS
from .writer import RowWriter

__all__ = ["append_partial_rows", "apply_repricing", "list_audits", "put_revenue", "revenue"]

_SEQ_GAP: Final = 2**32
"""Correction rows and imported groups take sequence numbers far above the bucket's highest:
a receiver's writer in another process caches its next number per bucket and would otherwise
collide with them (a failed, retried transaction); any positive number is a valid partial row."""
_AUDIT_COLUMNS: Final = ", ".join(("id", *AUDIT_FIELDS))


@MIGRATIONS(name="m_analysis_001_reprice_audit_and_revenue")
def _m_reprice_audit_and_revenue(db: MigrationDB) -> None:
    """The re-pricing audit trail (one row per change, kept to explain any number later)
    and imported tenant revenue."""
    db.execute(
        """
        CREATE TABLE reprice_audit (
            id INTEGER PRIMARY KEY,
            applied_at_ns INTEGER NOT NULL,
            reason TEXT NOT NULL,
            window_start_ns INTEGER NOT NULL,
            window_end_ns INTEGER NOT NULL,
            rows_changed INTEGER NOT NULL,
            cost_before_nano_usd INTEGER NOT NULL,
            cost_after_nano_usd INTEGER NOT NULL,
            price_source TEXT NOT NULL,
            details TEXT NOT NULL
        )
        """
    )
    db.execute(
        """
        CREATE TABLE reprice_audit_rows (
            audit_id INTEGER NOT NULL REFERENCES reprice_audit (id),
            start_time_ns INTEGER NOT NULL,
            span_id BLOB NOT NULL,
            trace_id BLOB NOT NULL,
            old_cost_nano_usd INTEGER,
            new_cost_nano_usd INTEGER,
            old_status TEXT NOT NULL,
            new_status TEXT NOT NULL
        )
        """
    )
    db.execute("CREATE INDEX reprice_audit_rows_audit ON reprice_audit_rows (audit_id)")
    db.execute(
        """
        CREATE TABLE revenue (
            tenant_id TEXT NOT NULL,
            period TEXT NOT NULL,
            start_ns INTEGER NOT NULL,
            end_ns INTEGER NOT NULL,
            revenue_nano_usd INTEGER NOT NULL,
            imported_at_ns INTEGER NOT NULL,
            PRIMARY KEY (tenant_id, period)
        )
        """
    )


_UPDATE: Final = (
    f"UPDATE requests SET {', '.join(f'{name} = ?' for name in PRICING_FIELDS)}"
    " WHERE start_time_ns = ? AND span_id = ? AND trace_id = ? AND cost_nano_usd IS ? AND pricing_status = ?"
)


def append_partial_rows(
    conn: sqlite3.Connection, writer: RowWriter, spec: RollupSpec, rows: Sequence[Sequence[object]]
) -> None:
    """Append ``rows`` (``(bucket, *dimensions, *measures)``: re-pricing corrections, imported
    groups) as partial rows of their buckets, marked for compaction, past any sequence number
    a writer may hold for them (see :data:`_SEQ_GAP`)."""
    columns = (spec.bucket_column, *spec.dimensions, *MEASURES, "seq")
    insert = f"INSERT INTO {spec.table} ({', '.join(columns)}) VALUES ({','.join('?' * len(columns))})"
    next_seq: dict[int, int] = {}
    params: list[tuple[object, ...]] = []
    for row in rows:
        bucket = int(str(row[0]))
        if bucket not in next_seq:
            (highest,) = conn.execute(
                f"SELECT coalesce(max(seq), 0) FROM {spec.table} WHERE {spec.bucket_column} = ? AND seq > 0",
                (bucket,),
            ).fetchone()
            next_seq[bucket] = int(highest) + _SEQ_GAP
        params.append((*row, next_seq[bucket]))
        next_seq[bucket] += 1
    conn.executemany(insert, params)
    conn.executemany(
        "INSERT OR IGNORE INTO rollup_dirty (table_name, bucket) VALUES (?, ?)",
        [(spec.table, bucket) for bucket in next_seq],
    )
    for bucket in next_seq:  # this process's writer caches next sequence numbers too
        writer.forget(spec.table, bucket)


def apply_repricing(
    transaction: Transaction,
    writer: RowWriter,
    changes: Sequence[RepricedRow],
    audit: RepriceAudit,
    actor: str,
) -> RepriceAudit:
    """See :meth:`SpanStore.apply_repricing <spanmeter.store.api.SpanStore.apply_repricing>`;
    ``audit`` is the entry to record (its id is assigned by the insert), returned with its id,
    and ``actor`` the audit trail's (:mod:`spanmeter.store.audit_log`).
    The changes are checked (:func:`~spanmeter.store.repricing.check_changes`) by the caller."""
    with transaction() as conn:
        update_rows(lambda params: conn.execute(_UPDATE, params).rowcount, changes)
        for spec, corrections in zip(ROLLUPS, correction_rows(changes), strict=True):
            append_partial_rows(conn, writer, spec, corrections)
        cursor = conn.execute(
            f"INSERT INTO reprice_audit ({', '.join(AUDIT_FIELDS)})"
            f" VALUES ({', '.join('?' * len(AUDIT_FIELDS))})",
            audit_values(audit),
        )
        audit = replace(audit, id=int(cursor.lastrowid or 0))
        conn.executemany(
            "INSERT INTO reprice_audit_rows VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            audit_row_values(audit.id, changes),
        )
        insert_audit_event(conn, repricing_applied(audit, actor))
    return audit


def list_audits(conn: sqlite3.Connection, limit: int) -> list[RepriceAudit]:
    """Applied re-pricings, newest first."""
    rows = conn.execute(f"SELECT {_AUDIT_COLUMNS} FROM reprice_audit ORDER BY id DESC LIMIT ?", (limit,))
    return [RepriceAudit(*row) for row in rows]


def put_revenue(conn: sqlite3.Connection, rows: Sequence[RevenueRow], imported_at_ns: int) -> int:
    """Upsert revenue rows by (tenant, period), inside the caller's transaction."""
    conn.executemany(
        "INSERT OR REPLACE INTO revenue VALUES (?, ?, ?, ?, ?, ?)",
        [
            (row.tenant_id, row.period, row.start_ns, row.end_ns, row.revenue_nano_usd, imported_at_ns)
            for row in rows
        ],
    )
    return len(rows)


def revenue(conn: sqlite3.Connection, start_ns: int | None, end_ns: int | None) -> list[RevenueRow]:
    """Revenue rows overlapping the window, by tenant and period start."""
    rows = conn.execute(
        "SELECT tenant_id, period, start_ns, end_ns, revenue_nano_usd FROM revenue"
        " WHERE end_ns > ? AND start_ns < ? ORDER BY tenant_id, start_ns",
        (start_ns if start_ns is not None else -(2**62), end_ns if end_ns is not None else 2**62),
    )
    return [RevenueRow(*row) for row in rows]
