"""Delivery channels: a signed generic webhook, a Slack-compatible incoming webhook, the log.

Generic webhook: ``POST`` of the event as JSON with

* ``Idempotency-Key``: stable per event (the same on every retry and after a restart), so
  a receiver that saw a delivery whose acknowledgement was lost can drop the repeat;
* ``X-Spanmeter-Timestamp`` (Unix seconds) and ``X-Spanmeter-Signature``:
  ``sha256=`` + hex HMAC-SHA256 of ``timestamp + "." + body`` with the channel's secret
  (a channel without a secret sends no signature rather than one anyone could make).
  Signing the timestamp with the body lets a receiver refuse replays of an old delivery
  (:mod:`.signing` signs, and checks both).

A 2xx answer is a delivery. 408, 425, 429 and 5xx, and network errors, are retried with
backoff (honouring ``Retry-After``); any other 4xx is permanent (a wrong URL or a refused
signature does not get better by retrying) and the delivery is marked dead.

Receivers check the signature with :func:`~spanmeter.budgets.delivery.signing.verify_signature`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from importlib.metadata import PackageNotFoundError, version
from typing import Any, Final

from ...store import AlertRecord
from ..definitions.model import Channel
from .documents import alert_fields, alert_window
from .signing import sign

__all__ = [
    "DeliveryError",
    "idempotency_key",
    "send",
    "slack_payload",
    "webhook_payload",
]

ALERT_LOGGER: Final = logging.getLogger("spanmeter.alerts")
"""The log channel's logger: one WARNING line per alert."""
_RETRYABLE: Final = frozenset({408, 425, 429})


def _user_agent() -> str:
    try:
        return f"spanmeter/{version('spanmeter')}"
    except PackageNotFoundError:
        return "spanmeter"


class DeliveryError(Exception):
    """A failed delivery attempt."""

    def __init__(self, message: str, *, retryable: bool, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.retry_after_s = retry_after_s


def idempotency_key(alert: AlertRecord) -> str:
    """Stable id of an event across retries and restarts (from its unique dedupe key)."""
    return "evt_" + hashlib.sha256(alert.dedupe_key.encode()).hexdigest()[:32]


def webhook_payload(alert: AlertRecord) -> dict[str, Any]:
    """The JSON document a generic webhook receives."""
    return {
        "id": idempotency_key(alert),
        "alert_id": alert.id,
        **alert_fields(alert),
        "window": alert_window(alert),
        "details": alert.details,
        "context": alert.context,
    }


def slack_payload(alert: AlertRecord) -> dict[str, Any]:
    """A Slack incoming-webhook message: the title, the drivers, the focused view."""
    icon = {"critical": ":rotating_light:", "warning": ":warning:"}.get(
        alert.severity, ":information_source:"
    )
    lines = [f"{icon} *{alert.title}*"]
    context = alert.context or {}
    drivers: Mapping[str, Any] = context.get("drivers") or {}
    if drivers:
        parts = [
            f"{dim} `{info.get('value')}` ${info.get('cost_usd')} ({float(info.get('share') or 0):.0%})"
            for dim, info in drivers.items()
        ]
        lines.append("Drivers: " + "; ".join(parts))
    focus = context.get("focus")
    if focus:
        lines.append(f"Focused view: `{focus['cli']}`")
        if str(focus.get("api", "")).startswith("http"):
            lines.append(f"<{focus['api']}|Open in the API>")
    lines.append(f"Alert {alert.id} · `spanmeter alerts ack {alert.id}`")
    return {"text": "\n".join(lines)}


def _post(url: str, body: bytes, headers: dict[str, str], timeout_s: float) -> None:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            response.read()
    except urllib.error.HTTPError as error:
        status = error.code
        retry_after: float | None = None
        header = error.headers.get("Retry-After") if error.headers else None
        if header:
            try:
                retry_after = float(header)
            except ValueError:
                retry_after = None
        retryable = status in _RETRYABLE or status >= 500
        raise DeliveryError(f"HTTP {status}", retryable=retryable, retry_after_s=retry_after) from None
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise DeliveryError(f"{type(error).__name__}: {reason}", retryable=True) from None


def send(
    channel: Channel, alert: AlertRecord, *, timeout_s: float = 10.0, now_s: float | None = None
) -> None:
    """Deliver ``alert`` to ``channel`` once.

    Raises:
        DeliveryError: it did not arrive (``retryable`` says whether to try again).
    """
    if channel.type == "log":
        ALERT_LOGGER.warning("alert %d [%s] %s", alert.id, alert.kind, alert.title)
        return
    if not channel.url:
        raise DeliveryError(f"channel {channel.name!r} has no URL", retryable=False)
    headers = {"Content-Type": "application/json", "User-Agent": _user_agent(), **channel.headers}
    if channel.type == "slack":
        body = json.dumps(slack_payload(alert)).encode()
    else:
        body = json.dumps(webhook_payload(alert), sort_keys=True, default=str).encode()
        timestamp = str(int(time.time() if now_s is None else now_s))
        headers.update(
            {
                "Idempotency-Key": idempotency_key(alert),
                "X-Spanmeter-Event": alert.kind,
                "X-Spanmeter-Alert-Id": str(alert.id),
                "X-Spanmeter-Timestamp": timestamp,
            }
        )
        if channel.secret:  # no secret, no signature: an HMAC with the empty key proves nothing
            headers["X-Spanmeter-Signature"] = sign(channel.secret, timestamp, body)
    _post(channel.url, body, headers, timeout_s)
