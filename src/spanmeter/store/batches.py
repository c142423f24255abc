"""What every store's write path checks and answers the same way: the rows' ids (the dedupe
key) and integers (each fits a signed 64-bit column), and one
:class:`~spanmeter.store.api.WriteResult` per batch.

Batches of several clients share one transaction (group commit), so a batch no store can
take is refused on its own, with nothing written: :func:`check_batches` raises
:class:`RefusedBatches` naming them (PostgreSQL runs it before every transaction; SQLite
checks the ids before, and the integers only once SQLite has refused to bind one, so its
common write pays nothing for them), and :func:`write_screened` writes the others and hands
each refused batch its :class:`RefusedBatch`. A refused batch is not retryable (the same
rows fail again), unlike a store that is down.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import fields
from itertools import chain
from operator import attrgetter
from typing import Final, Protocol, runtime_checkable

from .api import WriteResult
from .rows import SPAN_ID_BYTES, TRACE_ID_BYTES, RowValues, SpanRow

__all__ = [
    "INTEGER_FIELDS",
    "BindsReceivedValues",
    "RefusedBatch",
    "RefusedBatches",
    "batch_results",
    "check_batch_ids",
    "check_batches",
    "first_attempt_flags",
    "first_rows_of",
    "logical_candidates",
    "write_screened",
]

INTEGER_FIELDS: Final[tuple[str, ...]] = tuple(
    f.name for f in fields(SpanRow) if f.type in ("int", "int | None")
)
"""The row's integer columns (times, token counts, nano-USD): BIGINT in every store."""
_INTEGERS_OF: Final[Callable[[SpanRow], tuple[int | None, ...]]] = attrgetter(*INTEGER_FIELDS)
_MAX_BITS: Final = 63
"""``int.bit_length`` of the widest value a signed 64-bit column takes (-2**63 itself,
64 bits, is refused too: nothing legitimate is that value)."""


class RefusedBatch(ValueError):
    """A batch holds a value no store can take (a malformed id, an integer beyond 64 bits):
    it is refused as a whole and nothing of it is written. Not retryable."""


class RefusedBatches(ValueError):
    """Raised by a store's write before anything is written: these batches (by position in
    the write) hold values no store can take. The others were not written either; write
    them again without these (:func:`write_screened` does)."""

    def __init__(self, reasons: dict[int, str]) -> None:
        self.reasons = reasons
        """Position of each refused batch -> why."""
        super().__init__("; ".join(f"batch {index}: {reason}" for index, reason in sorted(reasons.items())))


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


def _ids_problem(rows: Iterable[SpanRow]) -> str | None:
    for row in rows:
        if (
            type(row.trace_id) is not bytes
            or type(row.span_id) is not bytes
            or len(row.trace_id) != TRACE_ID_BYTES
            or len(row.span_id) != SPAN_ID_BYTES
        ):
            return (
                f"trace_id must be {TRACE_ID_BYTES} bytes and span_id {SPAN_ID_BYTES} bytes: "
                f"got {row.trace_id!r}, {row.span_id!r}"
            )
    return None


def _widest(rows: Iterable[SpanRow]) -> int:
    """Bits of the widest integer in the rows' integer columns, in C-level passes only (about
    a tenth of a microsecond a column): the check every write pays. A value that is not an
    int (None and 0 are skipped) raises TypeError, which sends the caller the careful way."""
    integers: Iterable[int | None] = chain.from_iterable(map(_INTEGERS_OF, rows))
    return max(map(int.bit_length, filter(None, integers)), default=0)


def _range_problem(rows: Iterable[SpanRow]) -> str | None:
    for row in rows:
        for name, value in zip(INTEGER_FIELDS, _INTEGERS_OF(row), strict=True):
            if isinstance(value, int) and value.bit_length() > _MAX_BITS:
                return f"{name} does not fit a signed 64-bit integer"
    return None


def check_batch_ids(batches: Sequence[Sequence[SpanRow]]) -> None:
    """The id half of :func:`check_batches`, for a store whose own write refuses an integer
    past 64 bits (SQLite raises ``OverflowError`` before anything is committed) and which
    runs :func:`check_batches` only then, to name the batches: the common write pays nothing
    for the integers.

    Raises:
        RefusedBatches: naming each batch with a malformed id.
    """
    reasons: dict[int, str] = {}
    for index, batch in enumerate(batches):
        problem = _ids_problem(batch)
        if problem is not None:
            reasons[index] = problem
    if reasons:
        raise RefusedBatches(reasons)


def check_batches(batches: Sequence[Sequence[SpanRow]]) -> None:
    """Refuse, before anything is written, the batches that hold a malformed id (the dedupe
    key) or an integer no 64-bit column takes (which would fail the whole transaction, and
    with it every other client's batch in a group commit).

    Raises:
        RefusedBatches: naming each refused batch and why.
    """
    reasons: dict[int, str] = {}
    for index, batch in enumerate(batches):
        problem = _ids_problem(batch)
        if problem is not None:
            reasons[index] = problem
    try:
        wide = _widest(chain.from_iterable(batches)) > _MAX_BITS
    except TypeError:  # a value that is not an int: the careful way says whether it matters
        wide = True
    if wide:
        for index, batch in enumerate(batches):
            problem = None if index in reasons else _range_problem(batch)
            if problem is not None:
                reasons[index] = problem
    if reasons:
        raise RefusedBatches(reasons)


def write_screened(
    write: Callable[[Sequence[int]], list[WriteResult]], count: int
) -> list[WriteResult | RefusedBatch]:
    """Write ``count`` batches through ``write`` (given the positions of the batches to write,
    it writes them in one transaction and returns their results in order); while the store
    refuses some (:class:`RefusedBatches`), write the others again without them (a store may
    name the batches with bad ids first, those with bad integers on the next try).

    Returns:
        Per batch, its result or why it was refused.

    Raises:
        Whatever ``write`` raises otherwise (nothing was written then).
    """
    answers: list[WriteResult | RefusedBatch] = [RefusedBatch("") for _ in range(count)]
    kept = list(range(count))
    while kept:
        try:
            results = write(kept)
        except RefusedBatches as refused:
            if not refused.reasons:  # pragma: no cover - a store refuses batches by name
                raise
            for position, reason in refused.reasons.items():
                answers[kept[position]] = RefusedBatch(reason)
            kept = [index for position, index in enumerate(kept) if position not in refused.reasons]
            continue
        for index, result in zip(kept, results, strict=True):
            answers[index] = result
        break
    return answers


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


def first_rows_of(
    batches: Sequence[Sequence[SpanRow]], keys: set[tuple[int, bytes, bytes]]
) -> tuple[list[SpanRow], list[list[SpanRow]]]:
    """The rows a write inserted: the first row of each dedupe key in ``keys`` (the keys the
    store took; consumed as it goes, so a key repeated later in the transaction is a
    duplicate), in order: all of them, and each batch's."""
    new_rows: list[SpanRow] = []
    new_by_batch: list[list[SpanRow]] = []
    for batch in batches:
        fresh: list[SpanRow] = []
        for row in batch:
            key = (row.start_time_ns, row.span_id, row.trace_id)
            if key in keys:
                keys.discard(key)
                fresh.append(row)
        new_rows.extend(fresh)
        new_by_batch.append(fresh)
    return new_rows, new_by_batch


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
