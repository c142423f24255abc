"""Every store backend, opened the same way, for the contract tests: a SQLite file in the
test's folder, or a fresh database on the session's PostgreSQL server."""

from __future__ import annotations

from collections.abc import Generator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from spanmeter.store import SpanStore, SQLiteStore, open_store
from spanmeter.store.postgres import PostgresStore

__all__ = ["BACKENDS", "BudgetHost", "backend_target", "opened_budget_store", "opened_store"]

BACKENDS = ("sqlite", "postgresql")


def backend_target(kind: str, tmp_path: Path, request: pytest.FixtureRequest, name: str = "spanmeter") -> str:
    """Where a store of ``kind`` lives for this test: a file path or a ``postgresql://`` URL
    (a new database for each call)."""
    if kind == "sqlite":
        return str(tmp_path / f"{name}.db")
    server: Any = request.getfixturevalue("postgres_server")
    return str(server.new_database())


@contextmanager
def opened_store(target: str) -> Generator[SpanStore, None, None]:
    """The store at ``target``, closed afterwards."""
    store = open_store(target)
    try:
        yield store
    finally:
        store.close()


BudgetHost = SQLiteStore | PostgresStore
"""A store that holds budgets and alerts (both backends do)."""


@contextmanager
def opened_budget_store(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Generator[BudgetHost, None, None]:
    """A fresh store of ``kind`` (``sqlite`` or ``postgresql``) for a budgets test, closed afterwards."""
    target = backend_target(kind, tmp_path, request)
    store: BudgetHost = SQLiteStore(target) if kind == "sqlite" else PostgresStore(target)
    try:
        yield store
    finally:
        store.close()
