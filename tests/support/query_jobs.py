"""Jobs and a slow store for the query-process tests.

They run in a query process, which imports them by module path: the parent's import path
goes to the child with its settings, so ``support`` is found there as it is here.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from spanmeter.store import SpanStore, SQLiteStore

__all__ = [
    "SlowTopStore",
    "delete_requests",
    "fail_with",
    "own_pid",
    "scheduling",
    "sleep_then",
    "store_type",
]


def sleep_then(store: SpanStore, seconds: float, answer: str) -> str:
    """``answer`` after ``seconds``: a query that runs long."""
    time.sleep(seconds)
    return answer


def fail_with(store: SpanStore, kind: str, message: str) -> None:
    """Raise ``ValueError`` (``kind`` "value") or ``RuntimeError`` with ``message``."""
    raise (ValueError if kind == "value" else RuntimeError)(message)


def own_pid(store: SpanStore) -> int:
    """The process id the job ran in."""
    return os.getpid()


def scheduling(store: SpanStore) -> tuple[int, int]:
    """The job's process's scheduling policy and ``nice`` value."""
    return os.sched_getscheduler(0), os.getpriority(os.PRIO_PROCESS, 0)


def delete_requests(store: SpanStore) -> int:
    """Try to delete every stored request through the store's own read connection, as a job
    gone wrong would (query_only switched off first); the rows deleted."""
    assert isinstance(store, SQLiteStore)
    conn = store._reader()  # pyright: ignore[reportPrivateUsage]
    conn.execute("PRAGMA query_only = 0")
    deleted = conn.execute("DELETE FROM requests").rowcount
    conn.commit()
    return deleted


def store_type(store: SpanStore) -> str:
    """The class name of the store the job was given."""
    return type(store).__name__


class SlowTopStore(SQLiteStore):
    """A real SQLite store whose top-N and aggregate reads take a minute longer while the
    file ``slow_flag`` exists (so a test makes the query processes slow after the start)."""

    def __init__(self, path: str | Path, slow_flag: str | Path) -> None:
        super().__init__(path)
        self.slow_flag = Path(slow_flag)

    def _wait(self) -> None:
        if self.slow_flag.exists():
            time.sleep(60.0)

    def top(self, *args: Any, **kwargs: Any) -> Any:
        self._wait()
        return super().top(*args, **kwargs)

    def aggregate(self, *args: Any, **kwargs: Any) -> Any:
        self._wait()
        return super().aggregate(*args, **kwargs)
