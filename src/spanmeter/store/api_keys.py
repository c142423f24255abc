"""API keys as every store keeps them: the record and the few operations on it.

The store holds a key's id and the hash of its secret, never the secret
(:mod:`spanmeter.auth.keys`). Names are unique among keys not revoked; a revoked key stays
listed (who had access, until when) and can never be used again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

__all__ = ["COLUMNS", "ApiKey", "DuplicateKeyName", "KeyStore", "key_from_row", "key_row"]


class DuplicateKeyName(ValueError):
    """A key that is not revoked already has this name."""


@dataclass(frozen=True, slots=True)
class ApiKey:
    """One API key, as stored."""

    name: str
    key_id: str
    secret_hash: bytes
    scope: str
    """``ingest``, ``read`` or ``admin``."""
    tenants: tuple[str, ...]
    """The tenants the key is limited to; empty: every tenant."""
    created_at_ns: int
    expires_at_ns: int | None = None
    revoked_at_ns: int | None = None
    rate_limit: int | None = None
    """Spans per second an ingest key may export (a token bucket, see
    :mod:`spanmeter.auth.rate_limit`); None: no limit of its own."""

    def usable(self, now_ns: int) -> bool:
        """Not revoked, not expired."""
        return self.revoked_at_ns is None and (self.expires_at_ns is None or now_ns < self.expires_at_ns)


@runtime_checkable
class KeyStore(Protocol):
    """A store that keeps API keys (both backends do)."""

    def add_api_key(self, key: ApiKey, *, actor: str = "system") -> None:
        """Store a new key, and its ``key.create`` audit entry by ``actor`` in the same
        transaction (:mod:`spanmeter.store.audit_log`).

        Raises:
            DuplicateKeyName: a key that is not revoked has the same name.
        """
        ...

    def api_keys(self) -> list[ApiKey]:
        """Every key, revoked ones included, oldest first."""
        ...

    def api_key(self, key_id: str) -> ApiKey | None:
        """The key with this id, if any."""
        ...

    def revoke_api_key(self, name: str, now_ns: int, *, actor: str = "system") -> bool:
        """Revoke the usable key of this name, recording ``key.revoke`` by ``actor`` in the
        same transaction; False if there is none (nothing recorded)."""
        ...

    def has_api_keys(self) -> bool:
        """Is there at least one key that is not revoked? (Authentication is on once there is.)"""
        ...


COLUMNS = "name, key_id, secret_hash, scope, tenants, created_at_ns, expires_at_ns, revoked_at_ns, rate_limit"
"""The ``api_keys`` table's columns, in :func:`key_row` order (both backends' schema)."""


def key_row(key: ApiKey) -> tuple[object, ...]:
    """A key as a row of :data:`COLUMNS` (tenants as one comma-free, newline-joined text)."""
    return (
        key.name,
        key.key_id,
        key.secret_hash,
        key.scope,
        "\n".join(key.tenants),
        key.created_at_ns,
        key.expires_at_ns,
        key.revoked_at_ns,
        key.rate_limit,
    )


def key_from_row(row: tuple[object, ...]) -> ApiKey:
    """A key from a row of :data:`COLUMNS`."""
    name, key_id, secret, scope, tenants, created, expires, revoked, rate_limit = row
    return ApiKey(
        name=str(name),
        key_id=str(key_id),
        secret_hash=bytes(secret),  # type: ignore[arg-type]  # bytes or memoryview
        scope=str(scope),
        tenants=tuple(str(tenants).split("\n")) if tenants else (),
        created_at_ns=int(created),  # type: ignore[arg-type]
        expires_at_ns=None if expires is None else int(expires),  # type: ignore[arg-type]
        revoked_at_ns=None if revoked is None else int(revoked),  # type: ignore[arg-type]
        rate_limit=None if rate_limit is None else int(rate_limit),  # type: ignore[arg-type]
    )
