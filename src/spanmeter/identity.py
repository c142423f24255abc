"""Keyed hashing of user ids, so no raw user identifier leaves the app or lands in storage.

A user id is hashed with HMAC-SHA256 under a secret key shared by every service of a
deployment (``SPANMETER_USER_ID_HASH_KEY``): the same user maps to the same opaque id
everywhere, so per-user spend and concentration are real, while a dictionary attack on
emails needs the key. A value that already looks hashed (our own ``uh_`` form, or a hex
digest of 32/40/64 characters as produced by md5/sha1/sha256) is kept as is, so ids that
the app hashed itself, or that an upstream service already hashed, are not re-hashed.

Example::

    hasher = UserIdHasher(key=b"s3cret")
    hasher("alice@example.com")   # -> 'uh_5f0c...' (27 characters)
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import re
from typing import Final

from .environment_variables import SPANMETER_USER_ID_HASH_KEY

__all__ = ["HASHED_PREFIX", "UserIdHasher", "default_hasher", "looks_hashed"]

_logger = logging.getLogger(__name__)

HASHED_PREFIX: Final = "uh_"
"""Prefix of ids hashed by spanmeter: ``uh_`` + 24 hex characters (96 bits)."""

_DIGEST_HEX_CHARS: Final = 24
_ALREADY_HASHED = re.compile(r"uh_[0-9a-f]{24}|[0-9a-fA-F]{32}|[0-9a-fA-F]{40}|[0-9a-fA-F]{64}")

# Used only when no key is configured: hashes are then stable across services but not
# secret (anyone with this source can test guesses), which is why a warning is logged.
_FALLBACK_KEY: Final = b"spanmeter-default-user-id-key-set-SPANMETER_USER_ID_HASH_KEY"


def looks_hashed(value: str) -> bool:
    """True when ``value`` is already an opaque hash and must not be hashed again."""
    return _ALREADY_HASHED.fullmatch(value) is not None


class UserIdHasher:
    """Callable that maps a raw user id to a stable keyed hash (idempotent on hashes)."""

    __slots__ = ("_cache", "_key")

    _CACHE_LIMIT: Final = 4096

    def __init__(self, key: bytes | str | None = None) -> None:
        """Create a hasher.

        Args:
            key: HMAC key. Defaults to ``SPANMETER_USER_ID_HASH_KEY``; without either, a
                fixed public key is used and a warning is logged once.
        """
        if key is None:
            env_key = os.environ.get(SPANMETER_USER_ID_HASH_KEY, "")
            if env_key:
                key = env_key
            else:
                _logger.warning(
                    "spanmeter: %s is not set; user ids are hashed with a public default key",
                    SPANMETER_USER_ID_HASH_KEY,
                )
                key = _FALLBACK_KEY
        self._key = key.encode() if isinstance(key, str) else key
        # The same few users repeat; caching keeps HMAC off the hot path. Bounded by a
        # simple clear-when-full policy, since an LRU costs more than it saves here.
        self._cache: dict[str, str] = {}

    def __call__(self, user_id: str) -> str:
        cached = self._cache.get(user_id)
        if cached is not None:
            return cached
        if looks_hashed(user_id):
            hashed = user_id
        else:
            digest = hmac.new(self._key, user_id.encode("utf-8", "surrogatepass"), hashlib.sha256)
            hashed = HASHED_PREFIX + digest.hexdigest()[:_DIGEST_HEX_CHARS]
        if len(self._cache) >= self._CACHE_LIMIT:
            self._cache.clear()
        self._cache[user_id] = hashed
        return hashed


_default: UserIdHasher | None = None


def default_hasher() -> UserIdHasher:
    """The process-wide hasher keyed from the environment (created on first use)."""
    global _default
    if _default is None:
        _default = UserIdHasher()
    return _default
