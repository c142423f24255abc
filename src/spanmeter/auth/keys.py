"""The key format, and making and checking keys.

A key reads ``spm_<id>_<secret>``: ``id`` (8 random bytes, hex) names the key in the store
without revealing anything, ``secret`` (32 random bytes, 256 bits, URL-safe base64) is the
part only its holder knows. The store keeps the id and a SHA-256 hash of the secret: a plain
hash suffices for a 256-bit random secret (nobody can guess one to match a leaked hash, so
a slow password hash would only cost every request time), and the check compares hashes in
constant time, so response timing tells nothing about how much of a secret was right.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from typing import Final, Literal, get_args

__all__ = [
    "KEY_PREFIX",
    "SCOPES",
    "IssuedKey",
    "Scope",
    "issue_key",
    "parse_key",
    "secret_hash",
    "secret_matches",
]

Scope = Literal["ingest", "read", "admin"]
"""``ingest`` may only export spans; ``read`` may only read; ``admin`` may read, ack and
resolve alerts, apply re-pricing and manage keys."""
SCOPES: Final[tuple[str, ...]] = get_args(Scope)
KEY_PREFIX: Final = "spm_"
_ID_BYTES: Final = 8
_SECRET_BYTES: Final = 32
_KEY = re.compile(r"^spm_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$")


@dataclass(frozen=True, slots=True)
class IssuedKey:
    """A new key: ``key`` is shown to its owner once; the store keeps ``key_id`` and ``hash``."""

    key: str
    key_id: str
    hash: bytes


def secret_hash(secret: str) -> bytes:
    """The stored form of a key's secret."""
    return hashlib.sha256(secret.encode()).digest()


def issue_key() -> IssuedKey:
    """A fresh random key."""
    key_id = secrets.token_hex(_ID_BYTES)
    secret = base64.urlsafe_b64encode(secrets.token_bytes(_SECRET_BYTES)).decode().rstrip("=")
    return IssuedKey(f"{KEY_PREFIX}{key_id}_{secret}", key_id, secret_hash(secret))


def parse_key(text: str) -> tuple[str, str] | None:
    """``(key_id, secret)`` of a well-formed key, else None (never raises)."""
    match = _KEY.match(text.strip())
    return (match.group(1), match.group(2)) if match else None


def secret_matches(secret: str, stored_hash: bytes) -> bool:
    """Does ``secret`` hash to ``stored_hash``? Compared in constant time."""
    return hmac.compare_digest(secret_hash(secret), stored_hash)
