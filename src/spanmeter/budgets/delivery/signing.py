"""Signing of generic webhook deliveries, and its check for receivers.

The signature is ``sha256=`` + hex HMAC-SHA256 of ``timestamp + "." + body`` with the
channel's secret, sent as ``X-Spanmeter-Signature`` next to ``X-Spanmeter-Timestamp``.
Signing the timestamp with the body lets a receiver refuse replays of an old delivery.

Example (a receiver)::

    if not verify_signature(secret, body, headers["X-Spanmeter-Timestamp"],
                            headers["X-Spanmeter-Signature"]):
        return 401
"""

from __future__ import annotations

import hashlib
import hmac
import time

__all__ = ["sign", "verify_signature"]


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """``sha256=<hex HMAC-SHA256(secret, timestamp + "." + body)>``."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify_signature(
    secret: str,
    body: bytes,
    timestamp: str,
    signature: str,
    *,
    tolerance_s: float = 300.0,
    now_s: float | None = None,
) -> bool:
    """Whether ``signature`` signs ``body`` at ``timestamp``, within ``tolerance_s`` of now.

    For webhook receivers; compares in constant time.
    """
    try:
        sent = float(timestamp)
    except ValueError:
        return False
    now = time.time() if now_s is None else now_s
    if abs(now - sent) > tolerance_s:
        return False
    return hmac.compare_digest(sign(secret, timestamp, body), signature)
