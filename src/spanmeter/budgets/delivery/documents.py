"""JSON documents of alerts, shared by the webhook payloads, the API and the CLI (so they agree)."""

from __future__ import annotations

from typing import Any

from ...store import AlertRecord
from ...timeunits import iso

__all__ = ["alert_document", "alert_fields", "alert_window"]


def alert_fields(alert: AlertRecord) -> dict[str, Any]:
    """What every document about an alert says first: its kind, severity, source, subject,
    title, state and when it occurred (the API's document and the webhook's payload)."""
    return {
        "kind": alert.kind,
        "severity": alert.severity,
        "source": alert.source,
        "subject": alert.subject,
        "title": alert.title,
        "state": alert.state,
        "occurred_at": iso(alert.occurred_at_ns),
    }


def alert_window(alert: AlertRecord) -> dict[str, str | None]:
    """The alert's window, ISO 8601 bounds (None where it has none)."""
    return {
        "from": None if alert.window_start_ns is None else iso(alert.window_start_ns),
        "to": None if alert.window_end_ns is None else iso(alert.window_end_ns),
    }


def alert_document(alert: AlertRecord) -> dict[str, Any]:
    """One alert with its history and deliveries."""
    return {
        "id": alert.id,
        **alert_fields(alert),
        "updated_at": iso(alert.updated_at_ns),
        "window": alert_window(alert),
        "details": dict(alert.details),
        "context": None if alert.context is None else dict(alert.context),
        "history": [
            {"at": iso(h.at_ns), "state": h.state, "actor": h.actor, "note": h.note} for h in alert.history
        ],
        "deliveries": [
            {
                "channel": d.channel,
                "state": d.state,
                "attempts": d.attempts,
                "next_attempt": iso(d.next_attempt_ns) if d.state == "pending" else None,
                "last_error": d.last_error,
                "delivered_at": None if d.delivered_at_ns is None else iso(d.delivered_at_ns),
            }
            for d in alert.deliveries
        ],
    }
