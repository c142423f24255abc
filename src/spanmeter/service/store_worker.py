"""The store process itself: receive row batches, commit them, answer each one.

Started by :class:`~spanmeter.service.store_process.StoreProcessClient` as
``python -c "...worker_main()" FD`` with one inherited socket; see that module for why and
for the guarantees. Everything here runs in the child, which imports only the store (this
module and :mod:`spanmeter.service.maintenance` stay clear of gRPC and the transport).

Protocol, one pickled message per ``Connection.send_bytes`` frame:

* parent -> child: :class:`StoreProcessSettings` once, then ``(batch_id, [row tuples])``
  per batch, then ``None`` to close; ``(SYNC_LEDGER, request_id)`` any time: the store's
  ledger reloads its config now (budgets; see ``_sync_ledger``); ``(CONFIGURE_OBSERVER,
  message)`` any time: handed to the commit observer, in order with the batches;
* child -> parent: ``("ready", pid)`` or ``("failed", reason)`` once; per transaction, when
  there is a commit observer and it has something to say, ``(OBSERVED, payload)`` *before*
  that transaction's answers; per batch ``(batch_id, inserted, duplicates)`` after its
  commit, or ``(batch_id, None, "busy" | "error" | "refused", reason)`` ("refused": that
  batch holds values no store takes, see :func:`~spanmeter.store.batches.check_batches`); ``("closed",)`` after the last
  commit of a requested close; ``(SYNC_LEDGER, request_id, fingerprint)`` per ledger sync.
"""

from __future__ import annotations

import logging
import os
import pickle
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from multiprocessing.connection import Connection
from typing import Final, Protocol

from ..outage import OutageLog
from ..store import DEFAULT_MAX_PENDING_ROWS, SpanRow, SpanStore, StoreBusy, WriteResult
from ..store.batches import BindsReceivedValues, RefusedBatch, write_screened
from ..store.maintenance_pacer import MaintenancePacer
from ..store.rows import RowValues, row_from_values
from .maintenance import RetentionLoop, tune_gc
from .worker_process import BUSY, ERROR, READY, child_connection, log_as, open_or_fail, send

__all__ = [
    "CLOSED",
    "CONFIGURE_OBSERVER",
    "OBSERVED",
    "REFUSED",
    "SYNC_LEDGER",
    "CommitObserver",
    "StoreProcessSettings",
    "worker_main",
]

_logger = logging.getLogger(__name__)
_WRITES = OutageLog(_logger, "store writes")
"""One warning per outage of the store (a database down), however many commits fail in it."""

CLOSED: Final = "closed"
REFUSED: Final = "refused"
SYNC_LEDGER: Final = "sync-ledger"
OBSERVED: Final = "observed"
CONFIGURE_OBSERVER: Final = "configure-observer"


class CommitObserver(Protocol):
    """Runs in the child after each commit, on the rows the commit stored, and answers with a
    compact payload for the parent (the Prometheus cost counters' per-label-set sums: per-row
    work that would otherwise load the receiver, which bounds ingest)."""

    def observe(self, results: Sequence[WriteResult]) -> object | None:
        """The payload for one committed transaction's results (None: nothing to send)."""
        ...

    def configure(self, message: object) -> None:
        """Take a message the parent sent (in order with the batches)."""
        ...


@dataclass(frozen=True)
class StoreProcessSettings:
    """What the child needs; pickled to it once at start."""

    store_factory: Callable[[], SpanStore]
    """Builds the store in the child; must pickle (a module-level class or a ``partial``).
    Whatever must run inside the store's write transaction is attached here, in the child."""
    max_pending_rows: int = DEFAULT_MAX_PENDING_ROWS
    """Rows sent and not yet answered before the client refuses more."""
    raw_retention_days: int = 30
    rollup_retention_days: int = 400
    retry_after_s: float = 1.0
    """The back-off hint carried by ``StoreBusy``."""
    log_level: int = logging.WARNING
    commit_observer: Callable[[], CommitObserver] | None = None
    """Builds the child's :class:`CommitObserver` (picklable, like ``store_factory``); its
    payloads reach the parent's ``on_observed`` before the answers of the same commit."""


_MAX_TRANSACTION_ROWS: Final = 8192
"""Rows committed in one transaction at most: large enough that a transaction's fixed cost
and its partial rollup rows are shared by many spans (~10% cheaper per row than 2,048),
small enough that one commit stays well under the latency target."""
_IDLE_INTERVAL_S: Final = 1.0


def worker_main(fd: int | None = None) -> int:
    """The store process: receive batches on socket ``fd``, commit, answer; exit on close.

    One thread does everything (receive, commit, answer) and, when nothing arrives for a
    second, the store's idle maintenance (rollup compaction); retention runs on its own
    timer thread. A second thread only receiving would steal the GIL from the commit every
    time SQLite releases it (once per inserted row) and make the commit slower, not faster.

    Args:
        fd: The inherited socket (default: the first command-line argument).

    Returns:
        The exit code: 0 after a clean close or once the parent is gone, 1 if the store
        could not be opened.
    """
    conn, received = child_connection(fd)
    settings: StoreProcessSettings = received
    log_as(settings.log_level, "store process")
    store = open_or_fail(conn, settings.store_factory)
    if store is None:
        return 1
    retention = RetentionLoop(
        store, raw_days=settings.raw_retention_days, rollup_days=settings.rollup_retention_days
    ).start()
    send(conn, (READY, os.getpid()))
    tune_gc()  # after the store is open: what exists now lives as long as the process
    observer = settings.commit_observer() if settings.commit_observer is not None else None
    try:
        closed = _serve(conn, store, observer)
    finally:
        retention.stop()
        store.close()
    if closed:
        send(conn, (CLOSED,))
    conn.close()
    return 0


def _serve(conn: Connection, store: SpanStore, observer: CommitObserver | None = None) -> bool:
    """Commit what arrives until close (True) or end-of-file (False), answering each batch.

    Batches that arrived during a commit go into the next transaction together (group
    commit), up to :data:`_MAX_TRANSACTION_ROWS`. Waiting on purpose for more (a linger of
    5-10 ms) was measured too: no fewer CPU seconds per row, only more latency.
    """
    taken: list[tuple[int, list[SpanRow], list[RowValues]]] = []
    taken_rows = 0
    ending: bool | None = None  # True: asked to close; False: the parent is gone
    pacer = MaintenancePacer(recheck_s=_IDLE_INTERVAL_S)  # compaction beside ingest
    while True:
        wait = 0.0 if taken else pacer.delay()
        if ending is None and taken_rows < _MAX_TRANSACTION_ROWS and conn.poll(wait):
            try:
                message = pickle.loads(conn.recv_bytes())
            except (EOFError, OSError):
                _logger.warning("the receiver process is gone: committing what was received, then exiting")
                ending = False
                continue
            if message is None:
                ending = True
                continue
            if message[0] == SYNC_LEDGER:  # budgets ledger sync (see _sync_ledger)
                send(conn, (SYNC_LEDGER, message[1], _sync_ledger(store)))
                continue
            if message[0] == CONFIGURE_OBSERVER:
                if observer is not None:
                    try:
                        observer.configure(message[1])
                    except Exception:
                        _logger.exception("commit observer refused its configuration")
                continue
            batch_id, values = message
            try:
                rows = [row_from_values(item) for item in values]
            except Exception as error:  # malformed rows: refuse the batch, keep the process
                send(conn, (batch_id, None, ERROR, f"{type(error).__name__}: {error}"))
                continue
            taken.append((batch_id, rows, values))
            taken_rows += len(rows)
            pacer.batch_arrived()
        elif taken:
            _commit(conn, store, taken, observer)
            taken, taken_rows = [], 0
        elif ending is not None:
            return ending
        else:
            pacer.run_step(partial(_maintain, store))


def _commit(
    conn: Connection,
    store: SpanStore,
    taken: list[tuple[int, list[SpanRow], list[RowValues]]],
    observer: CommitObserver | None = None,
) -> None:
    """One transaction for every batch taken, then the observer's payload, then one answer
    per batch (the parent handles the payload before it resolves any of them).

    The store also gets the value tuples each row was built from, to bind as they are."""

    def write(positions: Sequence[int]) -> list[WriteResult]:
        batches = [taken[index][1] for index in positions]
        if isinstance(store, BindsReceivedValues):  # binds the received tuples as they are
            results = store.write_received_batches(batches, [taken[index][2] for index in positions])
        else:
            results = store.write_batches(batches)
        if len(results) != len(positions):
            raise RuntimeError(f"store returned {len(results)} results for {len(positions)} batches")
        return results

    try:
        answers = write_screened(write, len(taken))
    except StoreBusy as error:  # the store cannot be reached: retryable, logged once an outage
        _WRITES.failed(error)
        for batch_id, _, _ in taken:
            send(conn, (batch_id, None, BUSY, str(error)))
        return
    except Exception as error:  # nothing was committed: every sender must learn it
        _logger.warning("store write of %d batches failed: %r", len(taken), error)
        message = f"{type(error).__name__}: {error}"
        for batch_id, _, _ in taken:
            send(conn, (batch_id, None, ERROR, message))
        return
    _WRITES.succeeded()
    results = [answer for answer in answers if not isinstance(answer, RefusedBatch)]
    if observer is not None:
        try:
            payload = observer.observe(results)
        except Exception:  # committed all the same: the answers must go
            _logger.exception("commit observer failed")
            payload = None
        if payload is not None:
            send(conn, (OBSERVED, payload))
    for (batch_id, _, _), answer in zip(taken, answers, strict=True):
        if isinstance(answer, RefusedBatch):  # that batch alone; the others are committed
            send(conn, (batch_id, None, REFUSED, str(answer)))
        else:
            send(conn, (batch_id, answer.inserted, answer.duplicates))


def _sync_ledger(store: SpanStore) -> str | None:
    """Budgets ledger sync: the store's ledger reloads its config now, if it can (a
    :class:`~spanmeter.budgets.ledger.hook.BudgetLedgerHook` has ``sync()``); its fingerprint.

    The receiver asks before it shows new budgets, so the API never shows budgets that
    this process does not count yet. Never fatal.
    """
    sync = getattr(getattr(store, "ledger", None), "sync", None)
    if not callable(sync):
        return None
    try:
        result = sync()
    except Exception:
        _logger.exception("ledger sync failed")
        return None
    return result if isinstance(result, str) else None


def _maintain(store: SpanStore) -> bool:
    """Idle-time maintenance, one compaction step (one short transaction) per call, never
    fatal; True if there may be more to do.

    One step, then back to the socket: a batch that arrived meanwhile is committed before
    the next step, and :class:`~spanmeter.store.maintenance_pacer.MaintenancePacer` keeps the
    steps to a fifth of a busy process's time. Why: this one thread both commits and
    compacts, and a whole round (up to 16 steps) could keep an exporter waiting for tens of
    seconds when the steps are slowed down by queries reading beside them (measured: one
    export waited 45 s behind a round of compaction while the API's query processes ran,
    ``bench/ingest_under_api_load.py``); one step between every two batches still cut an
    exporter to a fifth of its rate.
    """
    try:
        return store.compact_rollups(max_buckets=1) > 0
    except StoreBusy as error:  # unreachable: the writes say so once; compaction waits
        _WRITES.failed(error)
    except Exception:
        _logger.exception("store maintenance failed")
    return False
