"""Whether a receiver is exposed: an address other machines reach, served without API keys
or with the public user-id hash key.

``spanmeter serve`` refuses such an address unless given ``--insecure-no-auth``; with it,
the same sentence is logged at start and stays in ``/readyz``'s ``warning`` for as long as
it holds (so a dashboard or a probe shows it, not only a log line read once).
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping

from ..environment_variables import SPANMETER_USER_ID_HASH_KEY

__all__ = ["exposure_problem", "is_loopback"]


def is_loopback(host: str) -> bool:
    """Only this machine can reach ``host`` (an IP in 127/8 or ::1, or localhost)."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def exposure_problem(host: str, *, has_keys: bool, environ: Mapping[str, str] | None = None) -> str | None:
    """Why serving ``host`` would expose the receiver (no API key, or the public user-id hash
    key on an address others reach); None on loopback or when both are set."""
    if is_loopback(host):
        return None
    environ = os.environ if environ is None else environ
    problems: list[str] = []
    if not has_keys:
        problems.append("no API key exists, so anyone reaching it could read every tenant's spend")
    if not environ.get(SPANMETER_USER_ID_HASH_KEY):
        problems.append(f"{SPANMETER_USER_ID_HASH_KEY} is unset (user ids hashed with a public key)")
    return " and ".join(problems) or None
