"""API keys in the SQLite store (:mod:`spanmeter.store.api_keys`)."""

from __future__ import annotations

import sqlite3

from ..key_store import KeysBase
from .migration_db import MigrationDB
from .schema import MIGRATIONS

__all__ = ["SQLiteKeysMixin"]


@MIGRATIONS(name="m_keys_001_api_keys")
def _m_api_keys(db: MigrationDB) -> None:
    """API keys: the id and the hash of the secret, never the secret; one usable key a name."""
    db.execute(
        "CREATE TABLE api_keys (name TEXT NOT NULL, key_id TEXT PRIMARY KEY, secret_hash BLOB NOT NULL,"
        " scope TEXT NOT NULL, tenants TEXT NOT NULL, created_at_ns INTEGER NOT NULL,"
        " expires_at_ns INTEGER, revoked_at_ns INTEGER)"
    )
    db.execute("CREATE UNIQUE INDEX api_keys_usable_name ON api_keys (name) WHERE revoked_at_ns IS NULL")


@MIGRATIONS(name="m_keys_002_rate_limit")
def _m_api_key_rate_limit(db: MigrationDB) -> None:
    """An ingest key's own rate limit in spans per second (NULL: none); keys made before have none."""
    db.execute("ALTER TABLE api_keys ADD COLUMN rate_limit INTEGER")


class SQLiteKeysMixin(KeysBase):
    """The :class:`~spanmeter.store.api_keys.KeyStore` methods
    (:class:`~spanmeter.store.key_store.KeysBase`'s); the host class
    (:class:`~spanmeter.store.sqlite.SQLiteStore`) provides the connections."""

    _mark = "?"
    _duplicate_key = sqlite3.IntegrityError
