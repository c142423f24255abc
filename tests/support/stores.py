"""Every store backend, opened the same way, for the contract tests: a SQLite file in the
test's folder, or a fresh database on the session's PostgreSQL server."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from spanmeter.store import SpanStore, open_store

__all__ = ["BACKENDS", "backend_target", "opened_store"]

BACKENDS = ("sqlite", "postgresql")


def backend_target(kind: str, tmp_path: Path, request: pytest.FixtureRequest, name: str = "spanmeter") -> str:
    """Where a store of ``kind`` lives for this test: a file path or a ``postgresql://`` URL
    (a new database for each call)."""
    if kind == "sqlite":
        return str(tmp_path / f"{name}.db")
    server: Any = request.getfixturevalue("postgres_server")
    return str(server.new_database())


@contextmanager
def opened_store(target: str) -> Iterator[SpanStore]:
    """The store at ``target``, closed afterwards."""
    store = open_store(target)
    try:
        yield store
    finally:
        store.close()
