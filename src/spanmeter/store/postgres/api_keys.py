"""API keys in the PostgreSQL store (:mod:`spanmeter.store.api_keys`), shared by every replica:
a key made or revoked on one replica holds on all of them at once."""

from __future__ import annotations

import psycopg

from ..key_store import KeysBase

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


class PostgresKeysMixin(KeysBase):
    """The :class:`~spanmeter.store.api_keys.KeyStore` methods
    (:class:`~spanmeter.store.key_store.KeysBase`'s); the host class
    (:class:`~spanmeter.store.postgres.store.PostgresStore`) provides the connections."""

    _mark = "%s"
    _duplicate_key = psycopg.errors.UniqueViolation
