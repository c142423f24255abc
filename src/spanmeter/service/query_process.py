"""The JSON API's heavy queries in processes of their own, at a lower CPU priority than ingest.

Why: the analysis views (a top-N over ``user_id``, an investigation, an export) are Python
work, seconds of it on a large store. Run on the receiver's threads they share its GIL with
decoding, normalising and pricing, and however few run at once (the API's cap), ingest kept
about 1/(1 + running queries) of its rate (see ``bench/ingest_under_api_load.py``). Here each
query runs in one of a few query processes that open the same store and only read it: the
receiver keeps its GIL for ingest, and the query processes run ``nice``-d
(:data:`~spanmeter.service.query_worker.DEFAULT_NICENESS`) and in Linux's idle scheduling
class (:data:`~spanmeter.service.query_worker.DEFAULT_IDLE_CLASS`), so that the kernel
schedules the receiver and the store process first. The receiver opens our SQLite store for
them read-only (:func:`~spanmeter.store.open_store_for_reading`): no write connection, no
migration, and SQLite refuses any write from them.

How:

* up to ``size`` processes (the API's cap: at most that many queries run at once anyway); a
  query takes an idle one, sends it ``(job, args)`` (a module-level function and plain
  values, pickled) and waits for the answer. The answers are the bytes the route sends, so
  they are exactly what the same job answers in this process;
* **memory only while the API is used**: the receiver starts them lazily (the first query
  that finds no idle process starts one, ~0.3 s once) and a process idle for
  ``idle_exit_s`` (:data:`DEFAULT_IDLE_EXIT_S`) exits; a replica that only ingests holds
  none (each one is ~55 MB resident at start, more after a large query: measured against
  the 300 MB a replica may hold, ``bench/ingest.py``);
* **time limit**: a query still running after ``timeout_s`` is ended by killing its process
  (neither store can cancel a query from outside its connection, a process can be killed),
  which frees its place at once; the next query that needs the place starts a new process;
* **no orphans**: a query process ends when its parent is gone, SIGKILL included (see
  :mod:`~spanmeter.service.query_worker`), and :meth:`QueryProcesses.close` ends them all;
* started with ``subprocess`` and one inherited socket, like the store process, so a child
  imports the store and the analysis, never the transport, and inherits no listening socket.

Used by :class:`~spanmeter.service.ReceiverService` when it runs a store process (POSIX,
a store it opens itself, SQLite or PostgreSQL alike: the child opens its own connection);
with a writer thread (one process, or a store instance passed in, which cannot move to
another process) the queries run in the receiver, as before.

Example::

    queries = QueryProcesses(QueryProcessSettings(partial(open_store, "spanmeter.db")), size=2, timeout_s=30)
    queries.start()
    body = queries(scoped_view_body, "/api/v1/top", args, None)
    queries.close()
"""

from __future__ import annotations

import logging
import pickle
import queue
import subprocess
import threading
import time
from collections.abc import Callable
from typing import Any, Final, TypeVar

from ..store import StoreBusy
from .query_worker import OK, VALUE_ERROR, QueryProcessSettings
from .worker_process import BUSY, PROTOCOL, await_ready, spawn

__all__ = ["DEFAULT_IDLE_EXIT_S", "QueryFailed", "QueryProcessSettings", "QueryProcesses", "QueryTimeout"]

_logger = logging.getLogger(__name__)

DEFAULT_IDLE_EXIT_S: Final = 300.0
"""How long a query process stays idle before it exits: longer than a dashboard's refresh
interval (so Grafana finds warm processes), short enough that memory comes back soon."""
_WORKER: Final = "spanmeter.service.query_worker"
_WHAT: Final = "query process"
_T = TypeVar("_T")


class QueryTimeout(TimeoutError):
    """The query ran over the time limit; its process was killed (the API answers 503)."""


class QueryFailed(Exception):
    """The query raised in its process (the message names the error), or the process died."""


class _Child:
    """One query process and its end of the socket."""

    def __init__(self, settings: QueryProcessSettings) -> None:
        self.process, self.conn = spawn(_WORKER, settings, _WHAT)
        self.idle_since = time.monotonic()

    def wait_ready(self, timeout_s: float) -> None:
        """Raises RuntimeError unless the child opened the store within ``timeout_s``
        (StoreBusy: it could not for now, the database being out of reach)."""
        try:
            await_ready(self.conn, timeout_s, _WHAT)
        except (RuntimeError, StoreBusy):
            self.kill()
            raise

    def kill(self) -> None:
        self.process.kill()
        self.process.wait()
        self.conn.close()

    def close(self, timeout_s: float) -> None:
        """Ask the child to exit (it is idle); kill it if it does not within ``timeout_s``."""
        try:
            self.conn.send_bytes(pickle.dumps(None, PROTOCOL))
            self.process.wait(timeout_s)
        except (OSError, subprocess.TimeoutExpired):
            self.process.kill()
            self.process.wait()
        self.conn.close()


class QueryProcesses:
    """Runs jobs ``job(store, *args)`` in ``size`` query processes (see the module).

    Args:
        settings: the children's store and priority.
        size: processes, hence queries running at once (more callers wait for one).
        timeout_s: longest a query may run; then its process is killed (:class:`QueryTimeout`).
        start_timeout_s: longest wait for a child to open the store.
        idle_exit_s: a process idle this long exits (its place waits for the next query);
            None: they stay.

    Raises:
        ValueError: a limit is not positive.
    """

    def __init__(
        self,
        settings: QueryProcessSettings,
        *,
        size: int,
        timeout_s: float,
        start_timeout_s: float = 60.0,
        idle_exit_s: float | None = None,
    ) -> None:
        if size <= 0 or not timeout_s > 0 or (idle_exit_s is not None and not idle_exit_s > 0):
            raise ValueError(
                f"must be positive: size={size!r}, timeout_s={timeout_s!r}, idle_exit_s={idle_exit_s!r}"
            )
        self._idle_exit_s = idle_exit_s
        self._settings = settings
        self._size = size
        self._timeout_s = timeout_s
        self._start_timeout_s = start_timeout_s
        # Places: an idle child, or None where one must be started (first use, after a kill).
        self._idle: queue.LifoQueue[_Child | None] = queue.LifoQueue()
        self._lock = threading.Lock()
        self._children: set[_Child] = set()
        self._closed = False
        self._started = False
        self._reaper_stop = threading.Event()
        self._draining = threading.Lock()  # the reaper and close() each take every idle place

    @property
    def pids(self) -> list[int]:
        """Process ids of the query processes running now."""
        with self._lock:
            return sorted(child.process.pid for child in self._children)

    def start(self, *, lazily: bool = False) -> QueryProcesses:
        """Start every process and wait until each opened the store; or, ``lazily``, none
        (the queries start them as they need them).

        Raises:
            RuntimeError: a child could not open the store (its error is in the message).
        """
        if self._idle_exit_s is not None:
            threading.Thread(target=self._reap_idle, name="spanmeter-query-reaper", daemon=True).start()
        if lazily:
            with self._lock:
                self._started = True
            for _ in range(self._size):
                self._idle.put(None)
            return self
        children = [_Child(self._settings) for _ in range(self._size)]
        try:
            for child in children:
                child.wait_ready(self._start_timeout_s)
        except BaseException:
            for child in children:
                if child.process.poll() is None:
                    child.kill()
            raise
        with self._lock:
            self._children.update(children)
            self._started = True
        for child in children:
            self._idle.put(child)
        _logger.info("spanmeter: %d query processes started", self._size)
        return self

    def __call__(self, job: Callable[..., _T], /, *args: Any) -> _T:
        """Run ``job(store, *args)`` in a query process (``job``: a module-level function, its
        arguments plain values: both are pickled); its result.

        Raises:
            ValueError: the job raised one (a bad parameter; same message).
            QueryTimeout: it ran over the time limit (its process was killed).
            QueryFailed: it raised anything else, or its process died, or none is running.
        """
        if not self._started:
            raise QueryFailed("query processes are not running")
        try:
            child = self._idle.get(timeout=self._timeout_s)
        except queue.Empty:
            raise QueryTimeout(f"no query process free within {self._timeout_s:g} s") from None
        keep: _Child | None = None
        try:
            if self._closed:
                raise QueryFailed("query processes are closed")
            if child is None:
                child = self._spawn()
            answer = self._ask(child, job, args, time.monotonic() + self._timeout_s)
            keep = child  # answered: healthy, whatever the answer
        finally:
            self._give_back(child, keep)
        if answer[0] == OK:
            return answer[1]
        if answer[0] == VALUE_ERROR:
            raise ValueError(answer[1])
        if answer[0] == BUSY:
            raise StoreBusy(answer[1], retry_after_s=1.0)
        raise QueryFailed(answer[1])

    def _spawn(self) -> _Child:
        """A new process in a place left empty (its start is not part of the query's time)."""
        child = _Child(self._settings)
        with self._lock:
            self._children.add(child)
        try:
            child.wait_ready(self._start_timeout_s)
        except (RuntimeError, StoreBusy) as error:
            with self._lock:
                self._children.discard(child)
            if isinstance(error, StoreBusy):
                raise  # the database is down: the API answers retry-later, as for a query
            raise QueryFailed(str(error)) from None
        return child

    def _ask(
        self, child: _Child, job: Callable[..., Any], args: tuple[Any, ...], deadline: float
    ) -> tuple[Any, ...]:
        """The child's answer to one job; raises (and the caller kills the child) if it ran
        over the time limit or died."""
        try:
            child.conn.send_bytes(pickle.dumps((job, args), PROTOCOL))
            if child.conn.poll(max(0.0, deadline - time.monotonic())):
                return pickle.loads(child.conn.recv_bytes())
        except (EOFError, OSError) as error:
            code = child.process.poll()
            raise QueryFailed(f"query process ended (exit code {code}): {error!r}") from None
        _logger.warning(
            "query %s ran over its time limit of %ss; its process %d is killed",
            getattr(job, "__name__", job),
            self._timeout_s,
            child.process.pid,
        )
        raise QueryTimeout(f"query exceeded the time limit of {self._timeout_s:g} s")

    def _give_back(self, child: _Child | None, keep: _Child | None) -> None:
        """Return the place: ``keep`` idle again, else the child (if any) killed and the place
        left for a new one, so a time limit or a crash frees it at once."""
        if child is not None and keep is None:
            with self._lock:
                self._children.discard(child)
            child.kill()
        if keep is not None and self._closed:
            with self._lock:
                self._children.discard(keep)
            keep.close(1.0)
            keep = None
        if keep is not None:
            keep.idle_since = time.monotonic()
        self._idle.put(keep)

    def _reap_idle(self) -> None:
        """End the processes idle for ``idle_exit_s`` (their places wait for new ones)."""
        assert self._idle_exit_s is not None
        limit = self._idle_exit_s
        while not self._reaper_stop.wait(min(limit / 2, 30.0)):
            with self._draining:
                if self._closed:
                    return
                places = self._take_idle()  # most recently used first
                now, stale = time.monotonic(), list[_Child]()
                for index, child in enumerate(places):
                    if child is not None and now - child.idle_since >= limit:
                        stale.append(child)
                        places[index] = None
                for place in reversed(places):  # back in the same order
                    self._idle.put(place)
            for child in stale:
                with self._lock:
                    self._children.discard(child)
                child.close(1.0)
            if stale:
                _logger.info("spanmeter: %d idle query processes ended", len(stale))

    def _take_idle(self) -> list[_Child | None]:
        """Every idle place, taken off the queue, most recently used first."""
        places: list[_Child | None] = []
        while True:
            try:
                places.append(self._idle.get_nowait())
            except queue.Empty:
                return places

    def close(self, timeout_s: float = 5.0) -> None:
        """End every query process: idle ones are asked to exit, running ones are killed
        (call it after the API stopped answering: a query still running is abandoned)."""
        self._closed = True
        self._reaper_stop.set()
        with self._draining:
            idle = [child for child in self._take_idle() if child is not None]
        for child in idle:
            child.close(timeout_s)
        with self._lock:
            self._children.difference_update(idle)
            running = list(self._children)
        for child in running:  # its caller reads end-of-file, then closes the connection
            child.process.kill()
