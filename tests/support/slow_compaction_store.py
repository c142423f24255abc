"""A real SQLite store whose rollup compaction has many slow steps to run, for the test that
the store process commits a batch between two steps rather than after a whole round.

It runs in the store process, which imports it by module path: tests that use it put the
``tests`` directory on the child's ``PYTHONPATH``.
"""

from __future__ import annotations

import time
from pathlib import Path

from spanmeter.store import SQLiteStore

__all__ = ["SlowCompactionStore"]


class SlowCompactionStore(SQLiteStore):
    """:class:`SQLiteStore` whose ``compact_rollups`` has ``steps`` steps of ``step_s`` each
    to run (then the real compaction's); each step is a sleep, as a step slowed down by
    queries reading beside it would take. With ``log``, each call appends the monotonic
    times it started and ended to that file (the test reads them from its own process)."""

    def __init__(self, path: str | Path, steps: int, step_s: float, log: str | None = None) -> None:
        super().__init__(path)
        self.steps_left = steps
        self.step_s = step_s
        self.log = log

    def compact_rollups(self, now_ns: int | None = None, *, max_buckets: int = 16) -> int:
        if self.steps_left <= 0:
            return super().compact_rollups(now_ns, max_buckets=max_buckets)
        steps = min(max_buckets, self.steps_left)
        started = time.monotonic()
        time.sleep(steps * self.step_s)
        self.steps_left -= steps
        if self.log is not None:
            with open(self.log, "a") as log:
                log.write(f"{started} {time.monotonic()}\n")
        return steps
