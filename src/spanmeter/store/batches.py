"""What every store's write path checks and answers the same way: the ids of the rows (the
dedupe key) and one :class:`~spanmeter.store.api.WriteResult` per batch."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from .api import WriteResult
from .rows import SPAN_ID_BYTES, TRACE_ID_BYTES, RowValues, SpanRow

__all__ = [
    "BindsReceivedValues",
    "batch_results",
    "check_ids",
    "first_attempt_flags",
    "logical_candidates",
]


@runtime_checkable
class BindsReceivedValues(Protocol):
    """A store that can take each row's value tuple along with the row: the store process
    receives rows as those tuples (:func:`~spanmeter.store.rows.row_from_values`), and a
    store that binds them as they are skips reading every row back into a tuple (~0.6 us a
    row at 43 columns). An optional fast path: a store without it is given the rows alone."""

    def write_received_batches(
        self, batches: Sequence[Sequence[SpanRow]], received: Sequence[Sequence[RowValues]]
    ) -> list[WriteResult]:
        """As :meth:`SpanStore.write_batches <spanmeter.store.api.SpanStore.write_batches>`;
        ``received`` must be exactly ``row_values`` of ``batches``, batch by batch and row by
        row."""
        ...


def check_ids(rows: Sequence[SpanRow]) -> None:
    """Refuse malformed ids before anything is written: they are the dedupe key.

    Raises:
        ValueError: a trace id that is not 16 bytes or a span id that is not 8.
    """
    for row in rows:
        if (
            type(row.trace_id) is not bytes
            or type(row.span_id) is not bytes
            or len(row.trace_id) != TRACE_ID_BYTES
            or len(row.span_id) != SPAN_ID_BYTES
        ):
            raise ValueError(
                f"trace_id must be {TRACE_ID_BYTES} bytes and span_id {SPAN_ID_BYTES} bytes: "
                f"got {row.trace_id!r}, {row.span_id!r}"
            )


def batch_results(
    batches: Sequence[Sequence[SpanRow]],
    new_by_batch: Sequence[Sequence[SpanRow]],
    first_attempt: Sequence[bool],
) -> list[WriteResult]:
    """One result per batch, carrying the batch's stored rows and their logical-request flags
    (slices of the transaction's: a few list copies per transaction, nothing per row in Python)."""
    results: list[WriteResult] = []
    offset = 0
    for batch, fresh in zip(batches, new_by_batch, strict=True):
        end = offset + len(fresh)
        results.append(
            WriteResult(
                inserted=len(fresh),
                duplicates=len(batch) - len(fresh),
                new_rows=fresh,
                first_attempts=first_attempt[offset:end],
            )
        )
        offset = end
    return results


def logical_candidates(rows: Sequence[SpanRow]) -> dict[str, int]:
    """The external request ids of billable ``rows``, each with its first row's event time:
    what the transaction tries to record as logical requests (a non-billable attempt never
    counts one)."""
    candidates: dict[str, int] = {}
    for row in rows:
        external_id = row.external_request_id
        if external_id is not None and row.billable and external_id not in candidates:
            candidates[external_id] = row.event_time_ns
    return candidates


def first_attempt_flags(rows: Sequence[SpanRow], fresh: dict[str, int]) -> list[bool]:
    """Per row: does it count a logical request? A row without an external id does; of the
    ids recorded for the first time (``fresh``: id -> first start, consumed as it goes, so the
    writer's own dict is used without a copy), the first billable row does, and later attempts
    of the same id in the transaction are retries."""
    first: list[bool] = []
    for row in rows:
        external_id = row.external_request_id
        if external_id is None:
            first.append(True)
        elif row.billable and external_id in fresh:
            del fresh[external_id]
            first.append(True)
        else:
            first.append(False)
    return first
