"""API keys in the SQLite store (:mod:`spanmeter.store.api_keys`)."""

from __future__ import annotations

import sqlite3
from typing import Any

from ..api_keys import COLUMNS, ApiKey, DuplicateKeyName, key_from_row, key_row
from ..audit_log import SYSTEM_ACTOR, key_created, key_revoked
from .audit import insert_audit_event
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


class SQLiteKeysMixin:
    """The :class:`~spanmeter.store.api_keys.KeyStore` methods; the host class
    (:class:`~spanmeter.store.sqlite.SQLiteStore`) provides the connections."""

    def _reader(self) -> sqlite3.Connection:  # provided by SQLiteStore
        raise NotImplementedError

    def _transaction(self) -> Any:  # provided by SQLiteStore (a Transaction)
        raise NotImplementedError

    def add_api_key(self, key: ApiKey, *, actor: str = SYSTEM_ACTOR) -> None:
        """Store a new key and its audit entry (see :meth:`KeyStore.add_api_key
        <spanmeter.store.api_keys.KeyStore.add_api_key>`)."""
        try:
            with self._transaction() as conn:
                conn.execute(
                    f"INSERT INTO api_keys ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", key_row(key)
                )
                insert_audit_event(conn, key_created(key, actor))
        except sqlite3.IntegrityError as error:
            raise DuplicateKeyName(f"a key named {key.name!r} exists: revoke it first") from error

    def api_keys(self) -> list[ApiKey]:
        """Every key, oldest first."""
        rows = self._reader().execute(f"SELECT {COLUMNS} FROM api_keys ORDER BY created_at_ns, name")
        return [key_from_row(row) for row in rows]

    def api_key(self, key_id: str) -> ApiKey | None:
        """The key with this id, if any."""
        row = self._reader().execute(f"SELECT {COLUMNS} FROM api_keys WHERE key_id = ?", (key_id,)).fetchone()
        return None if row is None else key_from_row(row)

    def revoke_api_key(self, name: str, now_ns: int, *, actor: str = SYSTEM_ACTOR) -> bool:
        """Revoke the usable key of this name, with its audit entry; False if there is none."""
        with self._transaction() as conn:
            changed = conn.execute(
                "UPDATE api_keys SET revoked_at_ns = ? WHERE name = ? AND revoked_at_ns IS NULL",
                (now_ns, name),
            ).rowcount
            if changed:
                insert_audit_event(conn, key_revoked(name, actor, now_ns))
        return changed > 0

    def has_api_keys(self) -> bool:
        """Is there a key that is not revoked?"""
        row = self._reader().execute("SELECT 1 FROM api_keys WHERE revoked_at_ns IS NULL LIMIT 1").fetchone()
        return row is not None
