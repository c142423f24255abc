"""The store writer in a process of its own, so that decoding and storing use two cores.

Why: every step of ingest is Python work under one GIL (decoding, normalising, pricing,
building rows, then SQLite's inserts and the rollup aggregation), so in one process the
receiver tops out at what one core does. Here the receiver process decodes and prices,
and a child process owns the store: it receives compact row batches (tuples, pickled:
about a microsecond a row each way, as fast as ``marshal`` and far cheaper than pickling
dataclasses), commits whatever arrived meanwhile in one transaction (group commit), and
answers per batch *after* the commit, so an acknowledged export is still a stored one.

Guarantees kept across the process boundary:

* **durable before ack**: a batch's future resolves only on the child's answer, which it
  sends after the transaction committed;
* **bounded memory**: rows sent and not yet answered are bounded here
  (``max_pending_rows``); over the bound :meth:`StoreProcessClient.submit` raises
  :class:`~spanmeter.store.StoreBusy`, which the receiver answers with retryable throttling;
* **shutdown**: :meth:`StoreProcessClient.close` asks the child to commit everything it
  received and exit; the child ignores SIGINT/SIGTERM (a terminal or a service manager
  signals the whole group) and follows its parent instead;
* **counted before ack**: an optional commit observer (``settings.commit_observer``: the
  Prometheus cost counters' summer) runs in the child on what each commit stored; its
  payload arrives before that commit's answers and ``on_observed`` handles it on the reader
  thread before any of those batches' futures resolve;
* **crashes**: if the parent dies, the child reads end-of-file, commits what it has (never
  acknowledged, so the clients resend it and the store deduplicates) and exits; if the
  child dies, every waiting export fails retryably and ``on_exit`` tells the owner.

The child is started with ``subprocess`` and one inherited socket, not ``multiprocessing``,
so it imports the store and not the transport (never the parent's ``__main__``, gRPC or
waitress), and never inherits the listening sockets. Store-agnostic: the child builds the
store from a picklable factory (``functools.partial(SQLiteStore, path)`` by default), and
whatever must run inside the write transaction (the budgets ledger) comes with it.

Example::

    client = StoreProcessClient(StoreProcessSettings(partial(SQLiteStore, "spanmeter.db")))
    client.start()
    client.submit([values, ...]).result()   # WriteResult, once committed in the child
    client.close()
"""

from __future__ import annotations

import collections
import itertools
import logging
import pickle
import subprocess
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from multiprocessing.connection import Connection
from typing import Any, Final

from ..outage import CommitHealth
from ..store import StoreBusy, WriterClosed, WriteResult
from ..store.batches import RefusedBatch
from ..store.rows import RowValues
from .store_worker import CLOSED, CONFIGURE_OBSERVER, OBSERVED, REFUSED, SYNC_LEDGER, StoreProcessSettings
from .worker_process import BUSY, PROTOCOL, await_ready, spawn

__all__ = ["StoreError", "StoreProcessClient", "StoreProcessSettings"]

_logger = logging.getLogger(__name__)

_WORKER: Final = "spanmeter.service.store_worker"
_WHAT: Final = "store process"


class StoreError(Exception):
    """The store process could not commit a batch (the message names the original error)."""


class StoreProcessClient:
    """The parent's side: a :class:`~spanmeter.ingest.sink.RowSink` backed by the store process.

    Args:
        settings: The child's store and limits.
        on_exit: Called once, on the reader thread, if the child ends without being asked
            to (its exit code, or None if unknown).
        on_observed: Called on the reader thread with each payload of the child's commit
            observer, before the answers of the same commit resolve their futures; its
            errors are logged (it must never fail an export).
        start_timeout_s: Longest wait for the child to open the store.
    """

    def __init__(
        self,
        settings: StoreProcessSettings,
        *,
        on_exit: Callable[[int | None], object] | None = None,
        on_observed: Callable[[Any], object] | None = None,
        start_timeout_s: float = 60.0,
    ) -> None:
        if settings.max_pending_rows < 1:
            raise ValueError(f"max_pending_rows must be at least 1, got {settings.max_pending_rows!r}")
        self._settings = settings
        self._on_exit = on_exit
        self._on_observed = on_observed
        self._start_timeout_s = start_timeout_s
        self._lock = threading.Lock()
        self._outbox: collections.deque[bytes] = collections.deque()
        self._outbox_ready = threading.Condition(self._lock)
        self._ids = itertools.count(1)
        self._waiting: dict[int, tuple[Future[WriteResult], int]] = {}
        self._syncs: dict[int, Future[str | None]] = {}  # budgets ledger syncs waiting
        self._pending_rows = 0
        self._closing = False
        self._ended = False
        self._commits = CommitHealth()
        self._conn: Connection | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._reader: threading.Thread | None = None
        self._sender: threading.Thread | None = None

    @property
    def pending_rows(self) -> int:
        """Rows sent to the child and not yet answered."""
        return self._pending_rows

    @property
    def pid(self) -> int | None:
        """The child's process id (after :meth:`start`)."""
        return None if self._process is None else self._process.pid

    @property
    def writes_failing(self) -> bool:
        """True from a commit the child could not make (a disk full, a database down) until
        one succeeds again or a few seconds pass without another
        (:class:`~spanmeter.outage.CommitHealth`): readiness; a refused batch (bad values) does
        not count."""
        return self._commits.failing

    @property
    def alive(self) -> bool:
        """True while the child runs and takes batches."""
        return self._process is not None and not self._ended and not self._closing

    def start(self) -> StoreProcessClient:
        """Start the child and wait until its store is open.

        Raises:
            RuntimeError: The child could not open the store (its error is in the message)
                or did not answer within ``start_timeout_s``.
        """
        self._process, self._conn = spawn(_WORKER, self._settings, _WHAT)
        try:
            await_ready(self._conn, self._start_timeout_s, _WHAT)
        except RuntimeError:
            self._kill()
            raise
        self._reader = threading.Thread(
            target=self._read_answers, name="spanmeter-store-answers", daemon=True
        )
        self._sender = threading.Thread(target=self._send_batches, name="spanmeter-store-sender", daemon=True)
        self._reader.start()
        self._sender.start()
        _logger.info("spanmeter: store process %d started", self._process.pid)
        return self

    def submit(self, rows: Sequence[RowValues]) -> Future[WriteResult]:
        """Send one batch; the future resolves once the child committed it.

        Raises:
            StoreBusy: Accepting the batch would exceed ``max_pending_rows`` (accepted
                anyway when nothing is pending, so a batch above the bound still goes).
            WriterClosed: The child is closing or gone.
        """
        future: Future[WriteResult] = Future()
        if not rows:
            future.set_result(WriteResult())
            return future
        count = len(rows)
        settings = self._settings
        with self._lock:
            if self._closing or self._ended or self._conn is None:
                raise WriterClosed("store process is not running", retry_after_s=settings.retry_after_s)
            if self._pending_rows and self._pending_rows + count > settings.max_pending_rows:
                raise StoreBusy(
                    f"{self._pending_rows} rows waiting to be stored (bound {settings.max_pending_rows})",
                    retry_after_s=settings.retry_after_s,
                )
            batch_id = next(self._ids)
            self._waiting[batch_id] = (future, count)
            self._pending_rows += count
        # Pickled here (~1 us a row), sent by the sender thread: a full socket (the child is
        # committing) must hold up neither this thread nor the next request's decoding.
        data = pickle.dumps((batch_id, rows), PROTOCOL)
        with self._lock:
            if batch_id in self._waiting:  # else the child ended meanwhile and failed it
                self._outbox.append(data)
                self._outbox_ready.notify()
        return future

    def sync_ledger(self, timeout_s: float = 10.0) -> str | None:
        """Budgets ledger sync: the child's ledger reloads its config now (in order with the
        batches sent before); returns its fingerprint (None: no ledger that can say).

        Raises:
            WriterClosed: The child is closing or gone.
            TimeoutError: No answer within ``timeout_s``.
        """
        future: Future[str | None] = Future()
        with self._lock:
            if self._closing or self._ended or self._conn is None:
                raise WriterClosed("store process is not running", retry_after_s=self._settings.retry_after_s)
            request_id = next(self._ids)
            self._syncs[request_id] = future
            self._outbox.append(pickle.dumps((SYNC_LEDGER, request_id), PROTOCOL))
            self._outbox_ready.notify()
        return future.result(timeout_s)

    def configure_observer(self, message: object) -> None:
        """Send ``message`` to the child's commit observer, in order with the batches.

        Before :meth:`start` it is queued and sent first thing; once the child is closing or
        gone it is dropped (nothing more will be committed).
        """
        data = pickle.dumps((CONFIGURE_OBSERVER, message), PROTOCOL)
        with self._lock:
            if self._closing or self._ended:
                return
            self._outbox.append(data)
            self._outbox_ready.notify()

    def close(self, timeout: float | None = 60.0) -> int | None:
        """Ask the child to commit everything it received and exit; wait for it. Idempotent.

        Returns:
            The child's exit code (0 after a clean close), None if it was never started.
        """
        process, conn = self._process, self._conn
        if process is None or conn is None:
            return None
        with self._lock:
            self._closing = True
            self._outbox_ready.notify()  # the sender sends what is queued, then the close
        for thread in (self._sender, self._reader):
            if thread is not None:
                thread.join(timeout)
        try:
            code = process.wait(timeout)
        except subprocess.TimeoutExpired:
            _logger.error("spanmeter: store process %d did not exit; killing it", process.pid)
            code = self._kill()
        conn.close()
        return code

    def _kill(self) -> int | None:
        if self._process is None:
            return None
        self._process.kill()
        return self._process.wait()

    def _resolve(self, batch_id: int) -> Future[WriteResult] | None:
        with self._lock:
            entry = self._waiting.pop(batch_id, None)
            if entry is None:
                return None
            self._pending_rows -= entry[1]
        return entry[0]

    def _send_batches(self) -> None:
        conn = self._conn
        assert conn is not None
        try:
            while True:
                with self._lock:
                    while not self._outbox and not self._closing and not self._ended:
                        self._outbox_ready.wait()
                    if self._ended:
                        return
                    data = self._outbox.popleft() if self._outbox else None
                if data is None:  # closing, and everything queued before is sent
                    conn.send_bytes(pickle.dumps(None, PROTOCOL))
                    return
                conn.send_bytes(data)  # blocks (GIL released) while the child commits
        except (OSError, ValueError):
            pass  # the child is gone: the reader thread fails every waiting batch

    def _read_answers(self) -> None:
        conn = self._conn
        assert conn is not None
        clean = False
        try:
            while True:
                answer = pickle.loads(conn.recv_bytes())
                batch_id = answer[0]
                if batch_id == CLOSED:
                    clean = True
                    break
                if batch_id == OBSERVED:  # before the answers of the same commit
                    if self._on_observed is not None:
                        try:
                            self._on_observed(answer[1])
                        except Exception:
                            _logger.exception("spanmeter: the commit observer's payload was not handled")
                    continue
                if batch_id == SYNC_LEDGER:  # budgets ledger sync
                    with self._lock:
                        sync = self._syncs.pop(answer[1], None)
                    if sync is not None:
                        sync.set_result(answer[2])
                    continue
                future = self._resolve(batch_id)
                if future is None:  # pragma: no cover - the child answers each batch once
                    continue
                if answer[1] is not None:
                    self._commits.succeeded()
                    future.set_result(WriteResult(inserted=answer[1], duplicates=answer[2]))
                elif answer[2] == REFUSED:  # not retryable: the same rows would fail again
                    future.set_exception(RefusedBatch(answer[3]))
                elif answer[2] == BUSY:
                    self._commits.failed()
                    future.set_exception(StoreBusy(answer[3], retry_after_s=self._settings.retry_after_s))
                else:
                    self._commits.failed()
                    future.set_exception(StoreError(answer[3]))
        except (EOFError, OSError):
            pass
        finally:
            with self._lock:
                self._ended = True
                waiting, self._waiting = self._waiting, {}
                syncs, self._syncs = self._syncs, {}
                self._pending_rows = 0
                self._outbox.clear()
                self._outbox_ready.notify()
                expected = self._closing
            for future, _ in waiting.values():
                future.set_exception(
                    WriterClosed("store process ended", retry_after_s=self._settings.retry_after_s)
                )
            for sync in syncs.values():
                sync.set_exception(WriterClosed("store process ended"))
            if not (clean and expected):
                code = None if self._process is None else self._process.poll()
                _logger.error("spanmeter: store process ended unexpectedly (exit code %s)", code)
                if self._on_exit is not None:
                    self._on_exit(code)
