"""The SQLite implementation of the store: the only place in spanmeter that holds SQL.

Schema and migrations in :mod:`.schema`, the write path in :mod:`.writer`, queries in
:mod:`.queries`, retention and compaction in :mod:`.maintenance`, and the class tying them
together in :mod:`.store`.
"""

from __future__ import annotations

from .store import SQLiteStore

__all__ = ["SQLiteStore"]
