"""The PostgreSQL write path: dedupe, raw rows, logical requests and rollups in one
transaction, safe with many replicas writing at once.

Per transaction:

0. rows carrying a provider response id claim their call (:func:`claim_provider_calls`):
   the claim is an insert that returns what it inserted, so two replicas claiming one call
   at once queue on its key and the second sees the first's claim;
1. the rows are copied (``COPY``, the fastest way in) into a per-session staging table and
   moved into ``requests`` with ``INSERT ... ON CONFLICT DO NOTHING RETURNING`` on the
   delivery key: what comes back is what is new. A re-delivery that another replica is
   inserting at the same moment waits on that key and is then skipped, so a span is
   stored once whichever replicas took it;
2. the external request ids are inserted the same way: an id returned is a logical request
   counted here, and by no other replica;
3. rollups are aggregated in memory (:func:`spanmeter.store.rollups.aggregate`, as every
   store does) and appended with ``COPY``: one partial row per group, merged later by
   compaction, so replicas never wait on each other's hot rollup rows.

Everything runs inside the caller's transaction (:class:`PostgresStore`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from ..api import WriteResult
from ..batches import batch_results, first_attempt_flags, first_rows_of, logical_candidates
from ..call_claims import CallOwner, call_key, candidates, decide, demote, probes
from ..rollups import MEASURES, ROLLUPS, Aggregates, RollupSpec, aggregate
from ..rows import SpanRow, row_values
from .sql_text import sql
from .staging import COPY_STAGE, MOVE, STAGE

if TYPE_CHECKING:
    import psycopg

__all__ = ["claim_provider_calls", "write_rows"]


def claim_provider_calls(conn: psycopg.Connection[tuple[object, ...]], rows: Sequence[SpanRow]) -> int:
    """Record the calls of ``rows`` and demote each row whose call another span carries
    (see :mod:`spanmeter.store.call_claims`); returns how many rows were demoted."""
    claiming = candidates(rows)
    if not claiming:
        return 0
    keys = [call_key(row) for row in claiming]
    minutes, probed_keys = zip(*probes(claiming, keys), strict=True)
    stored: dict[bytes, CallOwner] = {}
    lookup = (
        "SELECT p.call_key, p.trace_id, p.span_id FROM unnest(%s::bigint[], %s::bytea[]) AS v(minute, call_key)"
        " JOIN provider_calls AS p USING (minute, call_key)"
    )
    for key, trace_id, span_id in conn.execute(lookup, (list(minutes), list(probed_keys))):
        stored[bytes(key)] = (bytes(trace_id), bytes(span_id))  # type: ignore[arg-type]
    demoted, fresh = decide(claiming, keys, stored)
    if not fresh:
        return demoted
    columns = list(zip(*fresh, strict=True))
    inserted = {
        bytes(key)  # type: ignore[arg-type]
        for (key,) in conn.execute(
            "INSERT INTO provider_calls SELECT * FROM unnest(%s::bigint[], %s::bytea[], %s::bytea[], %s::bytea[])"
            " ON CONFLICT DO NOTHING RETURNING call_key",
            [list(column) for column in columns],
        )
    }
    lost = [claim for claim in fresh if claim[1] not in inserted]
    if lost:  # another replica claimed these calls since the lookup: its span carries them
        return demoted + _yield_lost_claims(conn, claiming, keys, lost)
    return demoted


def _yield_lost_claims(
    conn: psycopg.Connection[tuple[object, ...]],
    rows: Sequence[SpanRow],
    keys: Sequence[bytes],
    lost: Sequence[tuple[int, bytes, bytes, bytes]],
) -> int:
    """Demote the rows whose claim lost a race, to the span that won it."""
    winners = {
        bytes(key): (bytes(trace_id), bytes(span_id))  # type: ignore[arg-type]
        for key, trace_id, span_id in conn.execute(
            "SELECT p.call_key, p.trace_id, p.span_id FROM unnest(%s::bigint[], %s::bytea[]) AS v(minute, call_key)"
            " JOIN provider_calls AS p USING (minute, call_key)",
            ([claim[0] for claim in lost], [claim[1] for claim in lost]),
        )
    }
    demoted = 0
    for row, key in zip(rows, keys, strict=True):
        won = winners.get(key)
        if won is not None and won != (row.trace_id, row.span_id) and row.billable:
            demote(row, won[1])
            demoted += 1
    return demoted


def _insert_new(
    conn: psycopg.Connection[tuple[object, ...]], batches: Sequence[Sequence[SpanRow]], rows: list[SpanRow]
) -> tuple[list[SpanRow], list[list[SpanRow]]]:
    """Insert the rows not stored yet (nor earlier in ``batches``): all of them, and each batch's."""
    unique: dict[tuple[int, bytes, bytes], SpanRow] = {}
    for row in rows:
        unique.setdefault((row.start_time_ns, row.span_id, row.trace_id), row)
    conn.execute(sql(STAGE))
    with conn.cursor().copy(sql(COPY_STAGE)) as copy:
        for row in unique.values():
            copy.write_row(row_values(row))
    stored = {
        (int(start), bytes(span_id), bytes(trace_id))  # type: ignore[arg-type]
        for start, span_id, trace_id in conn.execute(sql(MOVE))
    }
    # ``rows`` is ``batches`` in order, so each stored key's first row is the one staged.
    return first_rows_of(batches, stored)


def _first_attempts(conn: psycopg.Connection[tuple[object, ...]], rows: Sequence[SpanRow]) -> list[bool]:
    """Per new row: does it count a logical request? Records the new external ids; an id
    another replica recorded first is a retry here."""
    candidates_by_id = logical_candidates(rows)
    if not candidates_by_id:
        return [True] * len(rows)
    fresh = {
        str(external_id): 0
        for (external_id,) in conn.execute(
            "INSERT INTO logical_requests SELECT * FROM unnest(%s::text[], %s::bigint[])"
            " ON CONFLICT DO NOTHING RETURNING external_request_id",
            (list(candidates_by_id), list(candidates_by_id.values())),
        )
    }
    return first_attempt_flags(rows, fresh)


def _append_rollup(
    conn: psycopg.Connection[tuple[object, ...]], spec: RollupSpec, groups: Aggregates
) -> None:
    if not groups:
        return
    columns = ", ".join((spec.bucket_column, *spec.dimensions, *MEASURES))
    with conn.cursor().copy(sql(f"COPY {spec.table} ({columns}) FROM STDIN")) as copy:
        for key, sums in groups.items():
            copy.write_row(key + sums)


def write_rows(
    conn: psycopg.Connection[tuple[object, ...]],
    batches: Sequence[Sequence[SpanRow]],
    on_new_rows: Callable[[psycopg.Connection[tuple[object, ...]], list[SpanRow]], None] | None = None,
) -> list[WriteResult]:
    """Store ``batches`` inside the caller's open transaction; one result per batch.

    ``on_new_rows`` (the budget ledger) runs last, in the same transaction, with the rows
    actually inserted: re-deliveries never reach it.
    """
    rows = [row for batch in batches for row in batch]  # checked by the caller (check_batches)
    claim_provider_calls(conn, rows)
    new_rows, new_by_batch = _insert_new(conn, batches, rows)
    if not new_rows:
        return [WriteResult(duplicates=len(batch)) for batch in batches]
    first_attempt = _first_attempts(conn, new_rows)
    for spec, groups in zip(ROLLUPS, aggregate(new_rows, first_attempt), strict=True):
        _append_rollup(conn, spec, groups)
    if on_new_rows is not None:
        on_new_rows(conn, new_rows)
    return batch_results(batches, new_by_batch, first_attempt)
