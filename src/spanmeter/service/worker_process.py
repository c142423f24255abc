"""Both ends of a worker process's start: the store process and the query processes alike.

Each worker is started the same way, for the same reasons (see
:mod:`spanmeter.service.store_process`): ``python -c "...worker_main()" FD`` with one
inherited socket rather than ``multiprocessing``, so that it imports the store and not the
transport. The start is one handshake, the same for both: the parent sends the settings
(pickled), the child opens the store and answers ``(READY, pid)``, ``(FAILED, reason)``,
or ``(BUSY, reason)`` when the store is out of reach for now (a query process only).
What each worker does after that (commit batches, run queries) stays in its own module; the
handshake, and the words both say, live here once so the two cannot drift apart.

Example (parent side)::

    process, conn = spawn("spanmeter.service.query_worker", settings, "query process")
    try:
        await_ready(conn, 60.0, "query process")
    except RuntimeError:
        process.kill()
        raise
"""

from __future__ import annotations

import logging
import os
import pickle
import signal
import socket
import subprocess
import sys
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any, Final, TypeVar

from ..store.api import StoreBusy

__all__ = [
    "BUSY",
    "ERROR",
    "FAILED",
    "PROTOCOL",
    "READY",
    "await_ready",
    "child_connection",
    "log_as",
    "open_or_fail",
    "send",
    "spawn",
]

_logger = logging.getLogger(__name__)

PROTOCOL: Final = pickle.HIGHEST_PROTOCOL
READY: Final = "ready"
FAILED: Final = "failed"
BUSY: Final = "busy"
"""The store could not answer now (a database down or restarting): retry later, not a bug."""
ERROR: Final = "error"

_T = TypeVar("_T")


# --------------------------------------------------------------------------- parent side


def spawn(worker_module: str, settings: object, what: str) -> tuple[subprocess.Popen[bytes], Connection]:
    """Start ``worker_module``'s ``worker_main`` in a new interpreter and send it ``settings``.

    The settings go at once, so that several workers open their stores side by side while
    the parent waits for the first (:func:`await_ready`).

    Raises:
        RuntimeError: the settings could not be sent (the child is killed first).
    """
    code = f"from {worker_module} import worker_main; raise SystemExit(worker_main())"
    parent_sock, child_sock = socket.socketpair()
    try:
        process = subprocess.Popen(
            [sys.executable, "-c", code, str(child_sock.fileno())],
            pass_fds=(child_sock.fileno(),),
            stdin=subprocess.DEVNULL,
        )
    finally:
        child_sock.close()
    conn = Connection(parent_sock.detach())
    try:
        conn.send_bytes(pickle.dumps(settings, PROTOCOL))
    except OSError as error:
        process.kill()
        process.wait()
        conn.close()
        raise RuntimeError(f"{what} failed to start: {error!r}") from None
    return process, conn


def await_ready(conn: Connection, timeout_s: float, what: str) -> None:
    """Wait for the child's ``READY``; the caller kills the child when this raises.

    Raises:
        StoreBusy: the child could not open the store for now (``BUSY``: a database down).
        RuntimeError: the child could not open the store (its error is in the message), died,
            or did not answer within ``timeout_s``.
    """
    try:
        if not conn.poll(timeout_s):
            raise RuntimeError(f"{what} did not start within {timeout_s:.0f} s")
        answer = pickle.loads(conn.recv_bytes())
    except (OSError, EOFError) as error:
        raise RuntimeError(f"{what} failed to start: {error!r}") from None
    if answer[0] == BUSY:
        raise StoreBusy(f"{what} cannot open the store now: {answer[1]}", retry_after_s=1.0)
    if answer[0] != READY:
        raise RuntimeError(f"{what} failed to start: {answer[1]}")


# --------------------------------------------------------------------------- child side


def child_connection(fd: int | None = None) -> tuple[Connection, Any]:
    """The child's socket (``fd``, default the first command-line argument) and the settings
    the parent sent on it.

    SIGINT and SIGTERM are ignored first: the parent decides when to stop. A Ctrl-C or a
    service manager's SIGTERM reaches the whole process group, and a store process must not
    end before the parent has drained the exports in flight.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    conn = Connection(int(sys.argv[1]) if fd is None else fd)
    return conn, pickle.loads(conn.recv_bytes())


def log_as(level: int, label: str) -> None:
    """Log to stderr at ``level``, each line naming the process (``store process 1234``), so
    that the receiver's log tells which of its processes said what."""
    logging.basicConfig(
        level=level,
        format=f"%(asctime)s %(levelname)s %(name)s [{label} {os.getpid()}]: %(message)s",
    )


def open_or_fail(
    conn: Connection, open_store: Callable[[], _T], *, busy_if: Callable[[Exception], bool] | None = None
) -> _T | None:
    """``open_store()``, or None after telling the parent why not (``(FAILED, reason)``), so
    that its :func:`await_ready` raises with the child's own error instead of a timeout;
    ``(BUSY, reason)`` instead when ``busy_if(error)`` (the store out of reach for now)."""
    try:
        return open_store()
    except Exception as error:
        reason = f"{type(error).__name__}: {error}"
        if busy_if is not None and busy_if(error):
            _logger.warning("cannot open the store now: %s", reason)  # an outage: no traceback
            send(conn, (BUSY, reason))
        else:
            _logger.exception("cannot open the store")
            send(conn, (FAILED, reason))
        return None


def send(conn: Connection, message: tuple[Any, ...]) -> bool:
    """Send one message to the other end; False if it is gone (nothing more to tell it)."""
    try:
        conn.send_bytes(pickle.dumps(message, PROTOCOL))
    except OSError:
        return False
    return True
