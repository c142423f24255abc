"""A real SQLite store whose commits fail as on a full disk while a flag file exists.

It may run in the store process, which imports it by module path: tests that use it there
put the ``tests`` directory on the child's ``PYTHONPATH``. A file is the switch because the
test and the store may live in different processes.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path

from spanmeter.store import SpanRow, SQLiteStore, WriteResult
from spanmeter.store.rows import RowValues

__all__ = ["FullDiskSQLiteStore"]


class FullDiskSQLiteStore(SQLiteStore):
    """Every write raises SQLite's "database or disk is full" while ``flag`` exists."""

    def __init__(self, path: str | Path, flag: str) -> None:
        super().__init__(path)
        self.flag = Path(flag)

    def _write(
        self, batches: Sequence[Sequence[SpanRow]], received: Sequence[Sequence[RowValues]] | None
    ) -> list[WriteResult]:
        if self.flag.exists():
            raise sqlite3.OperationalError("database or disk is full")
        return super()._write(batches, received)
