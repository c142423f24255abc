"""Who is calling: the ``Authorization: Bearer <key>`` of a request checked against the keys in
the store, and what the key's scope allows.

Authentication is on as soon as one usable key exists (so a new install is open on its
loopback address until its operator makes a key), and off again only when every key is
revoked. What the store says is cached briefly (:data:`CACHE_S`): a key made, revoked or
expired takes effect on every replica within that time, without a store read per request.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Literal

from ..store.api_keys import ApiKey, KeyStore
from .keys import Scope, parse_key, secret_matches

__all__ = ["CACHE_S", "AuthError", "Authenticator", "Identity", "allows"]

CACHE_S: Final = 5.0
"""How long a key (or its absence) is trusted before the store is asked again."""
_CACHE_LIMIT: Final = 10_000


@dataclass(frozen=True, slots=True)
class Identity:
    """A caller with a valid key (never its secret)."""

    name: str
    scope: Scope
    tenants: frozenset[str] | None
    """The tenants it is limited to; None: every tenant."""
    rate_limit: int | None = None
    """Spans/s an ingest key may export (:mod:`spanmeter.receiver.rate_limit`); None: no own limit."""


class AuthError(Exception):
    """A request refused: ``unauthenticated`` (no or no valid key: 401 / UNAUTHENTICATED) or
    ``forbidden`` (a valid key without the scope: 403 / PERMISSION_DENIED)."""

    def __init__(self, kind: Literal["unauthenticated", "forbidden"], message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


_GRANTS: Final[dict[str, frozenset[str]]] = {
    "ingest": frozenset({"ingest"}),
    "read": frozenset({"read"}),
    "admin": frozenset({"read", "admin"}),
}


def allows(scope: str, needed: Scope) -> bool:
    """Does a key of ``scope`` allow ``needed``? ``admin`` reads too; ``ingest`` only exports."""
    return needed in _GRANTS.get(scope, frozenset())


class Authenticator:
    """Checks requests against the keys of one store.

    Args:
        keys: The store keeping the keys.
        clock: Monotonic seconds (tests move it).
        wall_clock_ns: Unix ns, for key expiry.
    """

    def __init__(
        self,
        keys: KeyStore,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        self._keys = keys
        self._clock = clock
        self._now_ns = wall_clock_ns
        self._lock = threading.Lock()
        self._enabled: tuple[float, bool] = (-CACHE_S, False)
        self._found: dict[str, tuple[float, ApiKey | None]] = {}

    def enabled(self) -> bool:
        """Is there a usable key (so every request needs one)?"""
        now = self._clock()
        checked_at, answer = self._enabled
        if now - checked_at < CACHE_S:
            return answer
        answer = self._keys.has_api_keys()
        self._enabled = (now, answer)
        return answer

    def _key(self, key_id: str) -> ApiKey | None:
        now = self._clock()
        cached = self._found.get(key_id)
        if cached is not None and now - cached[0] < CACHE_S:
            return cached[1]
        key = self._keys.api_key(key_id)
        with self._lock:
            if len(self._found) >= _CACHE_LIMIT:
                self._found.clear()
            self._found[key_id] = (now, key)
        return key

    def check(self, authorization: str | None, needed: Scope) -> Identity | None:
        """The caller of a request whose ``Authorization`` header is ``authorization``, if it
        may do ``needed``; None while authentication is off.

        Raises:
            AuthError: no key, an unknown, revoked or expired one, or one without the scope.
        """
        if not self.enabled():
            return None
        scheme, _, credential = (authorization or "").strip().partition(" ")
        if scheme.lower() != "bearer" or not credential.strip():
            raise AuthError("unauthenticated", "an API key is required: Authorization: Bearer <key>")
        parsed = parse_key(credential)
        key = None if parsed is None else self._key(parsed[0])
        if parsed is None or key is None or not secret_matches(parsed[1], key.secret_hash):
            raise AuthError("unauthenticated", "unknown API key")
        if not key.usable(self._now_ns()):
            raise AuthError("unauthenticated", f"API key {key.name!r} is revoked or expired")
        if not allows(key.scope, needed):
            raise AuthError(
                "forbidden", f"API key {key.name!r} has scope {key.scope!r}; this needs {needed!r}"
            )
        return Identity(key.name, key.scope, frozenset(key.tenants) or None, key.rate_limit)  # type: ignore[arg-type]
