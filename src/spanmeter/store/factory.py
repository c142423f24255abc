"""One way to open a store: from a path (the embedded SQLite store) or a ``postgresql://``
URL (the shared PostgreSQL store for several replicas).

Every command that reads or writes a store calls this; nothing else names a backend. The
backend's module is imported only here, on demand, so ``import spanmeter.store`` pulls in
neither sqlite-utils nor psycopg.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from .postgres.store import PostgresStore
    from .sqlite.store import SQLiteStore

__all__ = [
    "POSTGRES_SCHEMES",
    "describe_target",
    "is_postgres_url",
    "is_unavailable",
    "open_store",
    "open_store_for_reading",
]

POSTGRES_SCHEMES: Final = ("postgresql://", "postgres://")


def is_postgres_url(target: str | Path) -> bool:
    """Does ``target`` name a PostgreSQL database rather than a SQLite file?"""
    return isinstance(target, str) and target.startswith(POSTGRES_SCHEMES)


def describe_target(target: str | Path) -> str:
    """``target`` for logs and messages: a URL without its password, or the path."""
    if not is_postgres_url(target):
        return str(target)
    text = str(target)
    scheme, _, rest = text.partition("://")
    credentials, at, location = rest.rpartition("@")
    if not at:
        return text
    user = credentials.partition(":")[0]
    return f"{scheme}://{user}@{location}"


def open_store(target: str | Path) -> SQLiteStore | PostgresStore:
    """Open (creating and migrating as needed) the store at ``target``.

    Raises:
        RuntimeError: a PostgreSQL URL without the ``spanmeter[postgres]`` extra installed.
        ValueError: an empty target.
    """
    if str(target) == "":
        raise ValueError("no store given: a SQLite file path or a postgresql:// URL")
    if is_postgres_url(target):
        try:
            from .postgres.store import PostgresStore
        except ImportError as error:  # psycopg missing
            raise RuntimeError(
                "a postgresql:// store needs the PostgreSQL extra: pip install 'spanmeter[postgres]'"
            ) from error
        return PostgresStore(str(target))
    from .sqlite.store import SQLiteStore

    return SQLiteStore(target)


def open_store_for_reading(target: str | Path) -> SQLiteStore | PostgresStore:
    """Open the store at ``target`` for a process that only reads it (the API's query
    processes): a SQLite file read-only (no write connection, no migration, SQLite refuses
    writes: see :class:`~spanmeter.store.sqlite.store.SQLiteStore`); a PostgreSQL URL as
    :func:`open_store` does (its readers are pooled connections already).

    Raises:
        RuntimeError: a SQLite file that is missing or not migrated; see :func:`open_store`.
        ValueError: an empty target.
    """
    if str(target) == "" or is_postgres_url(target):
        return open_store(target)
    from .sqlite.store import SQLiteStore

    return SQLiteStore(target, read_only=True)


def is_unavailable(error: BaseException) -> bool:
    """Is ``error`` the store out of reach for now (a database down or restarting: retry
    later) rather than a store that is broken or misconfigured?

    For a process that opens the store after the receiver started (the API's query processes
    start with the first query): the receiver answers such a query retry-later, as it does
    once a store that was open becomes unreachable (:class:`~spanmeter.store.api.StoreBusy`).
    """
    from .api import StoreBusy

    if isinstance(error, StoreBusy):
        return True
    try:
        import psycopg  # only with the postgres extra; a SQLite store never raises its errors
    except ImportError:
        return False
    return isinstance(error, psycopg.OperationalError)
