"""API keys: what a key looks like, how it is made and checked, and what each scope allows.

Keys live in the store (both backends; :mod:`spanmeter.store.api_keys`), only as a hash of
their secret; the secret is shown once, when the key is made.
"""

from __future__ import annotations

from .authenticator import CACHE_S, Authenticator, AuthError, Identity, allows
from .keys import KEY_PREFIX, SCOPES, IssuedKey, Scope, issue_key, parse_key, secret_hash, secret_matches

__all__ = [
    "CACHE_S",
    "KEY_PREFIX",
    "SCOPES",
    "AuthError",
    "Authenticator",
    "Identity",
    "IssuedKey",
    "Scope",
    "allows",
    "issue_key",
    "parse_key",
    "secret_hash",
    "secret_matches",
]
