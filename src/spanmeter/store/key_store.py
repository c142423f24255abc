"""API keys' statements around a backend's connections (:mod:`spanmeter.store.api_keys` holds
the record and its row form).

What each :class:`~spanmeter.store.api_keys.KeyStore` operation writes and reads (a key and
its audit entry in one transaction, a revocation recorded only when it revoked something) is
the same on every backend; a backend gives its parameter marker, its connections and the
error its engine raises when a second usable key would take a name.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any

from .api_keys import COLUMNS, ApiKey, DuplicateKeyName, key_from_row, key_row
from .audit_log import SYSTEM_ACTOR, key_created, key_revoked
from .audit_store import insert_audit_event

__all__ = ["KeysBase"]


class KeysBase:
    """The :class:`~spanmeter.store.api_keys.KeyStore` methods on the host's connections.

    The host sets ``_mark`` and ``_duplicate_key`` and implements :meth:`_reading` and
    :meth:`_short_transaction`.
    """

    _mark: str
    """The parameter marker (``?``, ``%s``)."""
    _duplicate_key: type[Exception]
    """What the engine raises when the unique index on usable names refuses a key."""

    def _reading(self) -> AbstractContextManager[Any]:
        """A connection for one read."""
        raise NotImplementedError

    def _short_transaction(self) -> AbstractContextManager[Any]:
        """One short write transaction of its own."""
        raise NotImplementedError

    def add_api_key(self, key: ApiKey, *, actor: str = SYSTEM_ACTOR) -> None:
        """Store a new key and its audit entry (see :meth:`KeyStore.add_api_key
        <spanmeter.store.api_keys.KeyStore.add_api_key>`)."""
        marks = ", ".join([self._mark] * len(COLUMNS.split(",")))
        try:
            with self._short_transaction() as conn:
                conn.execute(f"INSERT INTO api_keys ({COLUMNS}) VALUES ({marks})", key_row(key))
                insert_audit_event(conn, self._mark, key_created(key, actor))
        except self._duplicate_key as error:
            raise DuplicateKeyName(f"a key named {key.name!r} exists: revoke it first") from error

    def api_keys(self) -> list[ApiKey]:
        """Every key, oldest first."""
        with self._reading() as conn:
            rows = conn.execute(f"SELECT {COLUMNS} FROM api_keys ORDER BY created_at_ns, name").fetchall()
        return [key_from_row(row) for row in rows]

    def api_key(self, key_id: str) -> ApiKey | None:
        """The key with this id, if any."""
        with self._reading() as conn:
            row = conn.execute(
                f"SELECT {COLUMNS} FROM api_keys WHERE key_id = {self._mark}", (key_id,)
            ).fetchone()
        return None if row is None else key_from_row(row)

    def revoke_api_key(self, name: str, now_ns: int, *, actor: str = SYSTEM_ACTOR) -> bool:
        """Revoke the usable key of this name, with its audit entry; False if there is none."""
        mark = self._mark
        with self._short_transaction() as conn:
            changed = int(
                conn.execute(
                    f"UPDATE api_keys SET revoked_at_ns = {mark} WHERE name = {mark} AND revoked_at_ns IS NULL",
                    (now_ns, name),
                ).rowcount
            )
            if changed:
                insert_audit_event(conn, mark, key_revoked(name, actor, now_ns))
        return changed > 0

    def has_api_keys(self) -> bool:
        """Is there a key that is not revoked?"""
        with self._reading() as conn:
            row = conn.execute("SELECT 1 FROM api_keys WHERE revoked_at_ns IS NULL LIMIT 1").fetchone()
        return row is not None
