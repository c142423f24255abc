"""JSON schemas of the documents the API answers with, for the OpenAPI document (and the
tests that check every answer against it). They say what a client may rely on: the
required keys and their types, not every key a view's document carries."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

__all__ = [
    "ALERT",
    "ALERTS",
    "ALERT_CHANGE",
    "AUDIT",
    "BUDGETS",
    "ERROR",
    "HEALTH",
    "OPENAPI",
    "READY",
    "STATUS",
    "VIEW",
]

Schema = Mapping[str, Any]


def _object(required: Mapping[str, Schema], *, closed: bool = False) -> Schema:
    schema: dict[str, Any] = {"type": "object", "required": list(required), "properties": dict(required)}
    if closed:
        schema["additionalProperties"] = False
    return schema


_STR: Final = {"type": "string"}
_OPT_STR: Final = {"type": ["string", "null"]}
_INT: Final = {"type": "integer"}
_OBJ: Final = {"type": "object"}
_ARRAY: Final = {"type": "array"}

ERROR: Final = _object({"error": _STR}, closed=True)
"""Every error: ``{"error": "..."}``."""
HEALTH: Final = _object({"status": {"const": "ok"}}, closed=True)
READY: Final = {
    **_object({"ready": {"type": "boolean"}}, closed=True),
    "properties": {"ready": {"type": "boolean"}, "warning": _STR},
}
"""``warning``: only while served exposed (``--insecure-no-auth``)."""
VIEW: Final = _OBJ
"""An analysis view's document (the one the CLI renders)."""
ALERT: Final = _object(
    {
        "id": _INT,
        "kind": _STR,
        "severity": _STR,
        "source": _STR,
        "subject": _STR,
        "title": _STR,
        "state": _STR,
        "occurred_at": _STR,
        "updated_at": _STR,
        "window": _object({"from": _OPT_STR, "to": _OPT_STR}),
        "details": _OBJ,
        "context": {"type": ["object", "null"]},
        "history": {"type": "array", "items": _object({"at": _STR, "state": _STR})},
        "deliveries": {"type": "array", "items": _object({"channel": _STR, "state": _STR, "attempts": _INT})},
    }
)
ALERTS: Final = _object({"alerts": {"type": "array", "items": ALERT}}, closed=True)
ALERT_CHANGE: Final = {
    "type": "object",
    "properties": {"by": _STR, "note": _STR},
}
"""The body of ``ack`` and ``resolve`` (both optional)."""
STATUS: Final = _object(
    {
        "generated_at": _STR,
        "generated_at_ns": _INT,
        "counts": _object({"ok": _INT, "warning": _INT, "exceeded": _INT}),
        "states": {
            "type": "array",
            "items": _object(
                {
                    "budget": _STR,
                    "scope": _OBJ,
                    "state": {"enum": ["ok", "warning", "exceeded"]},
                    "limit_usd": _STR,
                    "limit_nano_usd": _INT,
                    "spend_usd": _STR,
                    "spend_nano_usd": _INT,
                }
            ),
        },
    }
)
BUDGETS: Final = _object(
    {
        "source": _OPT_STR,
        "config_error": _OPT_STR,
        "budgets": {"type": "array", "items": _object({"name": _STR, "limit_usd": _STR, "scope": _OBJ})},
        "rules": _ARRAY,
        "channels": _ARRAY,
        "fingerprint": _OPT_STR,
        "ledger_fingerprint": _OPT_STR,
    }
)
AUDIT: Final = _object(
    {
        "events": {
            "type": "array",
            "items": _object(
                {
                    "id": _INT,
                    "at": _STR,
                    "at_ns": _INT,
                    "actor": _STR,
                    "action": _STR,
                    "target": _STR,
                    "detail": _STR,
                },
                closed=True,
            ),
        }
    },
    closed=True,
)
"""The audit trail, newest first."""
OPENAPI: Final = _object({"openapi": _STR, "info": _OBJ, "paths": _OBJ})
