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
from dataclasses import fields, replace
from operator import attrgetter
from typing import Final

from ..analysis_types import PRICING_FIELDS, RepriceAudit, RepricedRow, RevenueRow, StaleRepricing
from ..rollups import MEASURES, ROLLUPS
from ..rows import SpanRow
from .maintenance import Transaction
from .migration_db import MigrationDB
from .schema import MIGRATIONS
from .writer import RowWriter

__all__ = ["apply_repricing", "list_audits", "put_revenue", "revenue"]

_SEQ_GAP: Final = 2**32
"""Correction rows take sequence numbers far above the bucket's highest: a receiver's writer
in another process caches its next number per bucket and would otherwise collide with them
(a failed, retried transaction); any positive number is a valid partial row."""
_COST: Final = MEASURES.index("cost_nano_usd")
_UNPRICED: Final = MEASURES.index("unpriced")
_IDENTITY: Final = frozenset(f.name for f in fields(SpanRow)) - frozenset(PRICING_FIELDS)
_AUDIT_FIELDS: Final = tuple(f.name for f in fields(RepriceAudit) if f.name != "id")
"""The audit's columns but its id (which the insert assigns), in the dataclass's order."""
_AUDIT_COLUMNS: Final = ", ".join(("id", *_AUDIT_FIELDS))


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
_pricing_values = attrgetter(*PRICING_FIELDS)


def _check(change: RepricedRow) -> None:
    old, new = change.old, change.new
    for name in _IDENTITY:
        if getattr(old, name) != getattr(new, name):
            raise ValueError(f"a re-pricing may only change pricing fields, not {name!r}")


def _rollup_deltas(changes: Sequence[RepricedRow]) -> list[dict[tuple[object, ...], list[int]]]:
    """Per rollup, the cost and unpriced deltas per (bucket, dimensions) group."""
    deltas: list[dict[tuple[object, ...], list[int]]] = [{} for _ in ROLLUPS]
    for change in changes:
        old, new = change.old, change.new
        if not old.billable:
            continue
        cost = (new.cost_nano_usd or 0) - (old.cost_nano_usd or 0)
        unpriced = (new.cost_nano_usd is None) - (old.cost_nano_usd is None)
        if not cost and not unpriced:
            continue
        for spec, groups in zip(ROLLUPS, deltas, strict=True):
            bucket = old.event_time_ns // spec.bucket_ns * spec.bucket_seconds
            key = (bucket, *("" if value is None else value for value in attrgetter(*spec.dimensions)(old)))
            sums = groups.setdefault(key, [0, 0])
            sums[0] += cost
            sums[1] += unpriced
    return deltas


def _append_deltas(conn: sqlite3.Connection, writer: RowWriter, changes: Sequence[RepricedRow]) -> None:
    for spec, groups in zip(ROLLUPS, _rollup_deltas(changes), strict=True):
        columns = (spec.bucket_column, *spec.dimensions, *MEASURES, "seq")
        insert = f"INSERT INTO {spec.table} ({', '.join(columns)}) VALUES ({','.join('?' * len(columns))})"
        next_seq: dict[int, int] = {}
        params: list[tuple[object, ...]] = []
        for key, (cost, unpriced) in sorted(groups.items(), key=lambda item: str(item[0])):
            if not cost and not unpriced:
                continue
            bucket = int(str(key[0]))
            if bucket not in next_seq:
                (highest,) = conn.execute(
                    f"SELECT coalesce(max(seq), 0) FROM {spec.table} WHERE {spec.bucket_column} = ? AND seq > 0",
                    (bucket,),
                ).fetchone()
                next_seq[bucket] = int(highest) + _SEQ_GAP
            sums: list[object] = [0] * len(MEASURES)
            sums[_COST], sums[_UNPRICED] = cost, unpriced
            sums[MEASURES.index("latency_ms_sum")] = 0.0
            params.append((*key, *sums, next_seq[bucket]))
            next_seq[bucket] += 1
        conn.executemany(insert, params)
        conn.executemany(
            "INSERT OR IGNORE INTO rollup_dirty (table_name, bucket) VALUES (?, ?)",
            [(spec.table, bucket) for bucket in next_seq],
        )
        for bucket in next_seq:  # this process's writer caches next sequence numbers too
            writer.forget(spec.table, bucket)


def apply_repricing(
    transaction: Transaction, writer: RowWriter, changes: Sequence[RepricedRow], audit: RepriceAudit
) -> RepriceAudit:
    """See :meth:`SpanStore.apply_repricing <spanmeter.store.api.SpanStore.apply_repricing>`;
    ``audit`` is the entry to record (its id is assigned by the insert), returned with its id."""
    for change in changes:
        _check(change)
    with transaction() as conn:
        _update_rows(conn, changes)
        _append_deltas(conn, writer, changes)
        audit = _record_audit(conn, audit, changes)
    return audit


def _update_rows(conn: sqlite3.Connection, changes: Sequence[RepricedRow]) -> None:
    """Write each row's new pricing, only where the row still holds the pricing the diff was
    computed from: any other row means the diff is stale, and raising rolls everything back.

    Raises:
        StaleRepricing: A row changed since the diff.
    """
    for change in changes:
        old = change.old
        updated = conn.execute(
            _UPDATE,
            (
                *_pricing_values(change.new),
                old.start_time_ns,
                old.span_id,
                old.trace_id,
                old.cost_nano_usd,
                old.pricing_status,
            ),
        ).rowcount
        if updated != 1:
            raise StaleRepricing(
                f"row {old.trace_id.hex()}/{old.span_id.hex()} changed since the diff was computed:"
                " nothing applied, compute the diff again"
            )


def _record_audit(
    conn: sqlite3.Connection, audit: RepriceAudit, changes: Sequence[RepricedRow]
) -> RepriceAudit:
    """Insert the audit entry and, per changed row, its cost and status before and after;
    the entry is returned with the id the insert assigned."""
    cursor = conn.execute(
        f"INSERT INTO reprice_audit ({', '.join(_AUDIT_FIELDS)})"
        f" VALUES ({', '.join('?' * len(_AUDIT_FIELDS))})",
        tuple(getattr(audit, name) for name in _AUDIT_FIELDS),
    )
    audit = replace(audit, id=int(cursor.lastrowid or 0))
    conn.executemany(
        "INSERT INTO reprice_audit_rows VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (
                audit.id,
                change.old.start_time_ns,
                change.old.span_id,
                change.old.trace_id,
                change.old.cost_nano_usd,
                change.new.cost_nano_usd,
                change.old.pricing_status,
                change.new.pricing_status,
            )
            for change in changes
        ],
    )
    return audit


def list_audits(conn: sqlite3.Connection, limit: int) -> list[RepriceAudit]:
    """Applied re-pricings, newest first."""
    rows = conn.execute(f"SELECT {_AUDIT_COLUMNS} FROM reprice_audit ORDER BY id DESC LIMIT ?", (limit,))
    return [RepriceAudit(*row) for row in rows]


def put_revenue(transaction: Transaction, rows: Sequence[RevenueRow], imported_at_ns: int) -> int:
    """Upsert revenue rows by (tenant, period)."""
    with transaction() as conn:
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
