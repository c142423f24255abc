"""What a migration step needs of the database, typed.

Migrations get a sqlite_utils ``Database``, whose ``execute`` takes a bare ``Sequence`` of
parameters, which a strict checker reads as a sequence of unknowns. Steps that only run SQL
without parameters take a :class:`MigrationDB` instead: a ``Database`` is one, and the SQL still goes through
``Database.execute`` (which rolls back a statement's implicit transaction when it fails).
"""

from __future__ import annotations

import sqlite3
from typing import Protocol

__all__ = ["MigrationDB"]


class MigrationDB(Protocol):
    """A database that runs SQL, as ``sqlite_utils.Database`` does."""

    def execute(self, sql: str) -> sqlite3.Cursor: ...
