"""A real SQLite store whose commits wait while a gate file exists, for backpressure tests.

It runs in the store process, which imports it by module path: tests that use it put the
``tests`` directory on the child's ``PYTHONPATH``. A file is the gate because the test and
the store live in different processes; removing the file opens the gate.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

from spanmeter.store import SpanRow, SQLiteStore, WriteResult
from spanmeter.store.rows import RowValues

__all__ = ["GatedSQLiteStore"]

_LONGEST_WAIT_S = 60.0
"""A forgotten gate must not hang the suite: the store commits anyway after this long."""


class GatedSQLiteStore(SQLiteStore):
    """Every write waits while ``gate`` exists, then ``delay_s``, then commits for real."""

    def __init__(self, path: str | Path, gate: str, delay_s: float = 0.0) -> None:
        super().__init__(path)
        self.gate = Path(gate)
        self.delay_s = delay_s

    def _write(
        self, batches: Sequence[Sequence[SpanRow]], received: Sequence[Sequence[RowValues]] | None
    ) -> list[WriteResult]:
        """Both write paths (rows alone, or with the received tuples) go through here."""
        deadline = time.monotonic() + _LONGEST_WAIT_S
        while self.gate.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(self.delay_s)
        return super()._write(batches, received)
