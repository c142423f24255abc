"""Leadership of cluster-wide scheduled work: one replica at a time, handed over when it dies.

Budget maintenance and alert rules must run once per tick for the whole cluster, not once
per replica (a rule that fires per evaluation would alert once per replica). The leader of
a job is the replica holding a *session* advisory lock (``pg_try_advisory_lock``) on a
connection of its own. The lock lives as long as that connection: when the replica dies,
or its connection breaks, PostgreSQL releases it, and the next replica to ask takes it
over (the scheduler asks every tick, so within one tick).

Example::

    leader = AdvisoryLeader(url)
    if leader.lead("budgets"):
        evaluate_rules()
"""

from __future__ import annotations

import threading
from typing import Any, Final

import psycopg

from .alerts import lock_key
from .schema import LEADER_LOCKS

__all__ = ["AdvisoryLeader"]

_CONNECT_TIMEOUT_S: Final = 5


class AdvisoryLeader:
    """Session advisory locks on one dedicated connection, one per job name.

    Args:
        url: The database (the store's URL).
    """

    def __init__(self, url: str) -> None:
        self._url = url
        self._lock = threading.Lock()
        self._conn: psycopg.Connection[tuple[Any, ...]] | None = None
        self._held: set[str] = set()
        self._closed = False

    def lead(self, name: str) -> bool:
        """Whether this process leads ``name`` now: True while it holds the lock (checked on
        the connection, which must still be alive), else whether it could take it now. A
        database it cannot reach makes it a follower, never an error."""
        with self._lock:
            if self._closed:
                return False
            for _ in range(2):  # a dead session first: one new connection, asked at once
                try:
                    return self._try(name)
                except psycopg.OperationalError:
                    self._drop()
            return False

    def _try(self, name: str) -> bool:
        """One attempt on the current connection (a new one if it is gone)."""
        conn = self._conn
        if conn is None or conn.closed or conn.broken:
            self._held.clear()  # a new session holds nothing
            conn = self._conn = psycopg.connect(
                self._url, autocommit=True, connect_timeout=_CONNECT_TIMEOUT_S
            )
        if name in self._held:
            conn.execute("SELECT 1").fetchone()  # still our session, so still our lock
            return True
        row = conn.execute("SELECT pg_try_advisory_lock(%s, %s)", (LEADER_LOCKS, lock_key(name))).fetchone()
        if row is not None and row[0]:
            self._held.add(name)
            return True
        return False

    def backend_pid(self) -> int | None:
        """The server process of the leadership connection (None without one), for operators
        and tests."""
        with self._lock:
            conn = self._conn
            return None if conn is None or conn.closed else conn.info.backend_pid

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        self._held.clear()
        if conn is not None:
            conn.close()

    def close(self) -> None:
        """Give up every lock (closing the connection releases them)."""
        with self._lock:
            self._closed = True
            self._drop()
