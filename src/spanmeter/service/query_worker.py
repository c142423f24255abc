"""A query process itself: open the store, run the queries the receiver sends, answer each.

Started by :class:`~spanmeter.service.query_process.QueryProcesses` as ``python -c
"...worker_main()" FD`` with one inherited socket; see that module for why. Everything here
runs in the child, which imports the store and the analysis (through the jobs it is sent),
never the transport.

Protocol, one pickled message per ``Connection.send_bytes`` frame:

* parent -> child: :class:`QueryProcessSettings` once, then ``(job, args)`` per query (``job``
  a module-level function called as ``job(store, *args)``), then ``None`` to close;
* child -> parent: ``("ready", pid)`` or ``("failed", reason)`` once; per query ``("ok",
  result)``, ``("value-error", message)`` (a bad parameter, the API's 400) or ``("error",
  message)``.

The child never outlives its parent: it reads end-of-file when the parent is gone between
queries, and a watchdog thread ends it (``os._exit``) within a second of the parent's
death mid-query, SIGKILL included (its parent process id changes).
"""

from __future__ import annotations

import importlib
import logging
import os
import pickle
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from multiprocessing.connection import Connection
from typing import Any, Final

from ..store import SpanStore, StoreBusy
from ..store.factory import is_unavailable
from .worker_process import BUSY, ERROR, PROTOCOL, READY, child_connection, log_as, open_or_fail, send

__all__ = [
    "DEFAULT_IDLE_CLASS",
    "DEFAULT_NICENESS",
    "OK",
    "VALUE_ERROR",
    "QueryProcessSettings",
    "worker_main",
]

_logger = logging.getLogger(__name__)

OK: Final = "ok"
VALUE_ERROR: Final = "value-error"

DEFAULT_NICENESS: Final = 10
"""How much lower the query processes' CPU priority is than the receiver's (``nice``): the
kernel then gives decoding, pricing and committing the cores first and the queries what is
left (at 10, a query process weighs about a tenth of an ingest process on a busy core), so a
dashboard's queries slow down under ingest, not the other way round."""
DEFAULT_IDLE_CLASS: Final = True
"""Run the query processes in Linux's idle scheduling class (``SCHED_IDLE``) too: a core
goes to them only when nothing else wants it, and a woken receiver or store process takes it
back at once. Why ``nice`` alone was not enough: one exporter's ingest is a relay (receiver,
then store process, then the answer), each step waking up on a core the queries hold; at
``nice`` 10 the two query processes still took 0.2-0.5 cores and the store process waited on
the run queue about twice as long as with no queries (0.4 against 0.2 s per second, measured
with ``/proc/PID/schedstat`` on the 2-core machine of ``bench/ingest_under_api_load.py``).
The price: on a machine busy with other work the queries may run into the API's time limit
(503), where ``nice`` would have given them a share. Where the OS has no such class, ``nice``
alone applies."""
_SCHED_IDLE: Final[int | None] = getattr(os, "SCHED_IDLE", None)
_WATCHDOG_S: Final = 0.5


@dataclass(frozen=True)
class QueryProcessSettings:
    """What a query process needs; pickled to it once at start."""

    store_factory: Callable[[], SpanStore]
    """Opens the store in the child; must pickle (a module-level class or a ``partial``).
    The child only reads."""
    niceness: int = DEFAULT_NICENESS
    """Added to the child's ``nice`` value (0: the receiver's priority)."""
    idle_class: bool = DEFAULT_IDLE_CLASS
    """Also in the idle scheduling class, where the OS has one (see :data:`DEFAULT_IDLE_CLASS`)."""
    log_level: int = logging.WARNING
    sys_path: tuple[str, ...] = field(default_factory=lambda: tuple(sys.path))
    """The parent's import path, so that a job defined outside the installed package (a
    test's) is found by name."""
    preload: tuple[str, ...] = ("spanmeter.analysis.views",)
    """Modules imported before the child says it is ready, so that its first query does not
    pay for importing what the jobs need."""


def worker_main(fd: int | None = None) -> int:
    """The query process: open the store, answer queries on socket ``fd`` until closed.

    Returns:
        The exit code: 0 after a close or once the parent is gone, 1 if the store could not
        be opened.
    """
    parent = os.getppid()
    conn, received = child_connection(fd)
    settings: QueryProcessSettings = received
    log_as(settings.log_level, "query process")
    sys.path.extend(path for path in settings.sys_path if path not in sys.path)
    _lower_priority(settings)  # before any thread starts: on Linux a thread inherits it
    threading.Thread(
        target=_follow_parent, args=(parent,), name="spanmeter-query-watchdog", daemon=True
    ).start()
    store = open_or_fail(conn, partial(_open_store, settings), busy_if=is_unavailable)
    if store is None:
        return 1
    send(conn, (READY, os.getpid()))
    try:
        _serve(conn, store)
    finally:
        store.close()
        conn.close()
    return 0


def _open_store(settings: QueryProcessSettings) -> SpanStore:
    """Import what the jobs need, then open the store: both before the child says it is
    ready, so that its first query pays for neither."""
    for module in settings.preload:
        importlib.import_module(module)
    return settings.store_factory()


def _lower_priority(settings: QueryProcessSettings) -> None:
    """``nice`` the process, then (where the OS has it) put it in the idle scheduling class;
    neither failing is fatal: the queries then compete with ingest as (near) equals."""
    if settings.niceness:
        try:
            os.nice(settings.niceness)
        except OSError as error:
            _logger.warning("cannot lower the query process's priority: %s", error)
    if settings.idle_class and _SCHED_IDLE is not None:
        try:
            os.sched_setscheduler(0, _SCHED_IDLE, os.sched_param(0))
        except OSError as error:
            _logger.warning("cannot put the query process in the idle scheduling class: %s", error)


def _serve(conn: Connection, store: SpanStore) -> None:
    """Run each query received until ``None`` or end-of-file, answering each one."""
    while True:
        try:
            data = conn.recv_bytes()
        except (EOFError, OSError):
            return  # the parent is gone
        try:
            message = pickle.loads(data)
            if message is None:
                return
            job, args = message
            answer: tuple[Any, ...] = (OK, job(store, *args))
        except ValueError as error:
            answer = (VALUE_ERROR, str(error))
        except StoreBusy as error:  # the outage is the store's to log, once
            answer = (BUSY, str(error))
        except Exception as error:
            _logger.exception("query failed")
            answer = (ERROR, f"{type(error).__name__}: {error}")
        try:
            payload = pickle.dumps(answer, PROTOCOL)
        except Exception as error:  # a result that does not pickle: the job's bug, not fatal
            payload = pickle.dumps((ERROR, f"answer not sendable: {type(error).__name__}: {error}"), PROTOCOL)
        try:
            conn.send_bytes(payload)
        except OSError:
            return  # the parent is gone


def _follow_parent(parent: int) -> None:
    """End this process once its parent is gone (it is then adopted: another parent id),
    even in the middle of a query that would otherwise run on for seconds."""
    while os.getppid() == parent:
        threading.Event().wait(_WATCHDOG_S)
    os._exit(0)
