"""Re-pricing and revenue on PostgreSQL: the rows, the rollup corrections and the audit in
one transaction (the plan is :mod:`spanmeter.store.repricing`'s, as in every store)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Final

from ..analysis_types import PRICING_FIELDS, RepriceAudit, RepricedRow, RevenueRow
from ..repricing import AUDIT_FIELDS, audit_row_values, audit_values, correction_rows, update_rows
from ..rollups import MEASURES, ROLLUPS
from .sql_text import sql

if TYPE_CHECKING:
    import psycopg

__all__ = ["list_audits", "put_revenue", "record_repricing", "revenue"]


_UPDATE: Final = (
    f"UPDATE requests SET {', '.join(f'{name} = %s' for name in PRICING_FIELDS)}"
    " WHERE start_time_ns = %s AND span_id = %s AND trace_id = %s"
    " AND cost_nano_usd IS NOT DISTINCT FROM %s AND pricing_status = %s"
)


def record_repricing(
    conn: psycopg.Connection[tuple[Any, ...]], audit: RepriceAudit, changes: Sequence[RepricedRow]
) -> RepriceAudit:
    """Update the rows still holding their old pricing, append the rollup corrections and
    record the audit, inside the caller's transaction.

    Raises:
        StaleRepricing: A row changed since the diff (the caller's transaction rolls back).
    """
    update_rows(lambda params: conn.execute(sql(_UPDATE), params).rowcount, changes)
    for spec, rows in zip(ROLLUPS, correction_rows(changes), strict=True):
        if rows:
            columns = ", ".join((spec.bucket_column, *spec.dimensions, *MEASURES))
            with conn.cursor().copy(sql(f"COPY {spec.table} ({columns}) FROM STDIN")) as copy:
                for row in rows:
                    copy.write_row(row)
    inserted = conn.execute(
        sql(
            f"INSERT INTO reprice_audit ({', '.join(AUDIT_FIELDS)})"
            f" VALUES ({', '.join(['%s'] * len(AUDIT_FIELDS))}) RETURNING id"
        ),
        audit_values(audit),
    ).fetchone()
    audit = replace(audit, id=int(inserted[0]) if inserted else 0)
    with conn.cursor() as cursor:
        cursor.executemany(
            "INSERT INTO reprice_audit_rows VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
            audit_row_values(audit.id, changes),
        )
    return audit


def list_audits(conn: psycopg.Connection[tuple[Any, ...]], limit: int) -> list[RepriceAudit]:
    """Applied re-pricings, newest first."""
    columns = ", ".join(("id", *AUDIT_FIELDS))
    rows = conn.execute(sql(f"SELECT {columns} FROM reprice_audit ORDER BY id DESC LIMIT %s"), (limit,))
    return [RepriceAudit(*row) for row in rows]


def put_revenue(
    conn: psycopg.Connection[tuple[Any, ...]], rows: Sequence[RevenueRow], imported_at_ns: int
) -> int:
    """Upsert revenue rows by (tenant, period), inside the caller's transaction."""
    with conn.cursor() as cursor:
        cursor.executemany(
            "INSERT INTO revenue VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (tenant_id, period) DO UPDATE SET"
            " start_ns = excluded.start_ns, end_ns = excluded.end_ns,"
            " revenue_nano_usd = excluded.revenue_nano_usd, imported_at_ns = excluded.imported_at_ns",
            [
                (row.tenant_id, row.period, row.start_ns, row.end_ns, row.revenue_nano_usd, imported_at_ns)
                for row in rows
            ],
        )
    return len(rows)


def revenue(
    conn: psycopg.Connection[tuple[Any, ...]], start_ns: int | None, end_ns: int | None
) -> list[RevenueRow]:
    """Revenue rows overlapping the window, by tenant and period start."""
    rows = conn.execute(
        "SELECT tenant_id, period, start_ns, end_ns, revenue_nano_usd FROM revenue"
        " WHERE end_ns > %s AND start_ns < %s ORDER BY tenant_id, start_ns",
        (start_ns if start_ns is not None else -(2**62), end_ns if end_ns is not None else 2**62),
    )
    return [RevenueRow(*row) for row in rows]
