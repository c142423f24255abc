"""API keys in the PostgreSQL store (:mod:`spanmeter.store.api_keys`), shared by every replica:
a key made or revoked on one replica holds on all of them at once."""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

import psycopg

from ..api_keys import COLUMNS, ApiKey, DuplicateKeyName, key_from_row, key_row
from ..audit_log import SYSTEM_ACTOR, key_created, key_revoked
from .audit import insert_audit_event
from .sql_text import sql

if TYPE_CHECKING:
    Conn = psycopg.Connection[tuple[Any, ...]]

__all__ = ["PostgresKeysMixin", "add_api_key_rate_limit", "create_api_keys"]


def create_api_keys(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    """Migration ``m006_api_keys``: as SQLite's ``m_keys_001_api_keys``."""
    conn.execute(
        "CREATE TABLE api_keys (name text NOT NULL, key_id text PRIMARY KEY, secret_hash bytea NOT NULL,"
        " scope text NOT NULL, tenants text NOT NULL, created_at_ns bigint NOT NULL,"
        " expires_at_ns bigint, revoked_at_ns bigint)"
    )
    conn.execute("CREATE UNIQUE INDEX api_keys_usable_name ON api_keys (name) WHERE revoked_at_ns IS NULL")


def add_api_key_rate_limit(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    """Migration ``m008_api_key_rate_limit``: as SQLite's ``m_keys_002_rate_limit`` (an ingest
    key's own limit in spans per second; NULL: none)."""
    conn.execute("ALTER TABLE api_keys ADD COLUMN rate_limit bigint")


class PostgresKeysMixin:
    """The :class:`~spanmeter.store.api_keys.KeyStore` methods; the host class
    (:class:`~spanmeter.store.postgres.store.PostgresStore`) provides the connections."""

    def _reader(self) -> AbstractContextManager[Conn]:  # provided by PostgresStore
        raise NotImplementedError

    def add_api_key(self, key: ApiKey, *, actor: str = SYSTEM_ACTOR) -> None:
        """Store a new key and its audit entry (see :meth:`KeyStore.add_api_key
        <spanmeter.store.api_keys.KeyStore.add_api_key>`)."""
        try:
            with self._reader() as conn, conn.transaction():
                conn.execute(
                    sql(f"INSERT INTO api_keys ({COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"),
                    key_row(key),
                )
                insert_audit_event(conn, key_created(key, actor))
        except psycopg.errors.UniqueViolation as error:
            raise DuplicateKeyName(f"a key named {key.name!r} exists: revoke it first") from error

    def api_keys(self) -> list[ApiKey]:
        """Every key, oldest first."""
        with self._reader() as conn:
            rows = conn.execute(
                sql(f"SELECT {COLUMNS} FROM api_keys ORDER BY created_at_ns, name")
            ).fetchall()
        return [key_from_row(row) for row in rows]

    def api_key(self, key_id: str) -> ApiKey | None:
        """The key with this id, if any."""
        with self._reader() as conn:
            row = conn.execute(sql(f"SELECT {COLUMNS} FROM api_keys WHERE key_id = %s"), (key_id,)).fetchone()
        return None if row is None else key_from_row(row)

    def revoke_api_key(self, name: str, now_ns: int, *, actor: str = SYSTEM_ACTOR) -> bool:
        """Revoke the usable key of this name, with its audit entry; False if there is none."""
        with self._reader() as conn, conn.transaction():
            changed = conn.execute(
                "UPDATE api_keys SET revoked_at_ns = %s WHERE name = %s AND revoked_at_ns IS NULL",
                (now_ns, name),
            ).rowcount
            if changed:
                insert_audit_event(conn, key_revoked(name, actor, now_ns))
        return changed > 0

    def has_api_keys(self) -> bool:
        """Is there a key that is not revoked?"""
        with self._reader() as conn:
            row = conn.execute("SELECT 1 FROM api_keys WHERE revoked_at_ns IS NULL LIMIT 1").fetchone()
        return row is not None
