"""Group commit: many ingest threads, one writer thread, one transaction per wake-up.

A commit has a fixed cost (the write-ahead log append, locks, and an fsync at each
checkpoint) that is paid per transaction, not per row, and the rollups compress better the
more rows a transaction holds. So rather than every ingest thread committing its own
batch, the writer takes *everything* pending, commits it in one transaction, and only then
resolves each submitter's future: durable before ack, and under load transactions grow by
themselves, which is exactly when the per-row cost has to shrink.

Store-agnostic: it needs only :class:`~spanmeter.store.api.BatchWriter`.

Example::

    with GroupCommitWriter(store, max_pending_rows=100_000) as writer:
        future = writer.submit(rows)            # raises StoreBusy when over the bound
        result = future.result()                # WriteResult, once committed
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Final

from ..outage import CommitHealth, OutageLog
from .api import BatchWriter, StoreBusy, WriterClosed, WriteResult
from .batches import RefusedBatch, write_screened
from .maintenance_pacer import MaintenancePacer
from .rows import SpanRow

__all__ = ["DEFAULT_MAX_PENDING_ROWS", "GroupCommitWriter"]

_logger = logging.getLogger(__name__)

DEFAULT_MAX_PENDING_ROWS: Final = 100_000
"""Default bound on rows accepted but not yet committed (~2 s of ingest at 50k spans/s)."""


class GroupCommitWriter:
    """Owns the single writer thread of a store and batches submits into transactions.

    Args:
        store: Where rows go; only this writer's thread calls its ``write_batches``.
        max_pending_rows: Bound on rows submitted but not yet committed (those being
            committed included). A submit that would go past it raises
            :class:`~spanmeter.store.api.StoreBusy`, except when nothing is pending, so a
            single batch larger than the bound is still accepted rather than refused forever.
        on_idle: One step of maintenance that must not run concurrently with writes
            (e.g. one step of ``store.compact_rollups``), called on the writer thread when no
            rows are pending; a true result means there may be more to do. Paced by a
            :class:`~spanmeter.store.maintenance_pacer.MaintenancePacer`: back to back while
            no batch arrives, at most a fifth of the writer's time while batches do. Must
            do bounded work; its errors are logged.
        idle_interval_s: Pause after an ``on_idle`` call that found nothing to do.
        retry_after_s: The back-off hint carried by ``StoreBusy``.
        name: Name of the writer thread.

    Raises:
        ValueError: A non-positive bound or interval.
    """

    def __init__(
        self,
        store: BatchWriter,
        *,
        max_pending_rows: int = DEFAULT_MAX_PENDING_ROWS,
        on_idle: Callable[[], object] | None = None,
        idle_interval_s: float = 1.0,
        retry_after_s: float = 1.0,
        name: str = "spanmeter-store-writer",
    ) -> None:
        if max_pending_rows < 1:
            raise ValueError(f"max_pending_rows must be at least 1, got {max_pending_rows!r}")
        if not idle_interval_s > 0:
            raise ValueError(f"idle_interval_s must be positive, got {idle_interval_s!r}")
        self._store = store
        self._outage = OutageLog(_logger, "store writes")  # a database down: one warning, not one per commit
        self._max_pending_rows = max_pending_rows
        self._on_idle = on_idle
        self._idle_interval_s = idle_interval_s
        self._retry_after_s = retry_after_s
        self._condition = threading.Condition()
        self._queue: list[tuple[Sequence[SpanRow], Future[WriteResult]]] = []
        self._pending_rows = 0
        self._closing = False
        self._transactions = 0
        self._commits = CommitHealth()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    @property
    def pending_rows(self) -> int:
        """Rows accepted and not yet committed (or failed)."""
        return self._pending_rows

    @property
    def writes_failing(self) -> bool:
        """True from a failed commit (a disk full, a database down) until one succeeds again
        or a few seconds pass without another (:class:`~spanmeter.outage.CommitHealth`):
        readiness, since a receiver that cannot store answers every export retryably."""
        return self._commits.failing

    @property
    def transactions(self) -> int:
        """Transactions attempted so far (committed or failed)."""
        return self._transactions

    def submit(self, rows: Sequence[SpanRow]) -> Future[WriteResult]:
        """Queue a batch; the future resolves once it is committed (or with the error).

        Raises:
            StoreBusy: Accepting the batch would exceed ``max_pending_rows``.
            WriterClosed: :meth:`close` has been called.
        """
        future: Future[WriteResult] = Future()
        if not rows:
            future.set_result(WriteResult())
            return future
        count = len(rows)
        with self._condition:
            if self._closing or not self._thread.is_alive():  # dead only after a BaseException
                raise WriterClosed("store writer is closed", retry_after_s=self._retry_after_s)
            if self._pending_rows and self._pending_rows + count > self._max_pending_rows:
                raise StoreBusy(
                    f"{self._pending_rows} rows waiting to be stored (bound {self._max_pending_rows})",
                    retry_after_s=self._retry_after_s,
                )
            self._pending_rows += count
            self._queue.append((rows, future))
            self._condition.notify()
        return future

    def close(self, timeout: float | None = None) -> None:
        """Commit everything pending, then stop the writer thread. Idempotent.

        Args:
            timeout: Longest wait for the thread, in seconds (None: until done).
        """
        with self._condition:
            self._closing = True
            self._condition.notify()
        self._thread.join(timeout)

    def __enter__(self) -> GroupCommitWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _run(self) -> None:
        pacer = MaintenancePacer(recheck_s=self._idle_interval_s)
        while True:
            with self._condition:
                while not self._queue and not self._closing:
                    if self._on_idle is None:
                        self._condition.wait()
                        continue
                    remaining = pacer.delay()
                    if remaining <= 0:
                        break
                    self._condition.wait(remaining)
                if not self._queue:
                    if self._closing:
                        return
                    taken: list[tuple[Sequence[SpanRow], Future[WriteResult]]] = []
                else:
                    taken, self._queue = self._queue, []
            if taken:
                pacer.batch_arrived()
                self._commit(taken)
            else:
                pacer.run_step(self._idle)

    def _commit(self, taken: list[tuple[Sequence[SpanRow], Future[WriteResult]]]) -> None:
        # A future cancelled while queued is dropped here, before its rows are written.
        live = [(rows, future) for rows, future in taken if future.set_running_or_notify_cancel()]
        results: list[WriteResult | RefusedBatch] = []
        try:
            if live:
                self._transactions += 1
                results = write_screened(self._write(live), len(live))
        except BaseException as exc:  # nothing was committed: every submitter must learn it
            self._release(taken)
            for _, future in live:
                future.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            self._commits.failed()
            if isinstance(exc, StoreBusy):  # unreachable: one warning for the whole outage
                self._outage.failed(exc)
            else:
                _logger.warning("spanmeter: store write of %d batches failed: %r", len(live), exc)
        else:
            self._outage.succeeded()
            self._commits.succeeded()
            self._release(taken)
            for (_, future), result in zip(live, results, strict=True):
                if isinstance(result, RefusedBatch):  # that batch alone (its submitter says
                    future.set_exception(result)  # why); the others are stored
                else:
                    future.set_result(result)

    def _write(
        self, live: list[tuple[Sequence[SpanRow], Future[WriteResult]]]
    ) -> Callable[[Sequence[int]], list[WriteResult]]:
        def write(positions: Sequence[int]) -> list[WriteResult]:
            results = self._store.write_batches([live[index][0] for index in positions])
            if len(results) != len(positions):
                raise RuntimeError(f"store returned {len(results)} results for {len(positions)} batches")
            return results

        return write

    def _release(self, taken: list[tuple[Sequence[SpanRow], Future[WriteResult]]]) -> None:
        # Before the futures resolve: a submitter that sees its result also sees its rows
        # no longer pending (they are committed, or failed).
        with self._condition:
            self._pending_rows -= sum(len(rows) for rows, _ in taken)

    def _idle(self) -> bool:
        """One maintenance step, never fatal; True if there may be more to do."""
        assert self._on_idle is not None
        try:
            return bool(self._on_idle())
        except StoreBusy as busy:  # unreachable: the writes say so once; maintenance waits
            self._outage.failed(busy)
        except Exception:  # maintenance must not stop ingest
            _logger.exception("spanmeter: store maintenance failed")
        return False
