"""The audit trail route: ``GET /api/v1/audit?since=7d&action=key.*&limit=100``, newest first.

Who made and revoked keys, acknowledged and resolved alerts, applied re-pricings and edited
budgets (:mod:`spanmeter.store.audit_log`). It tells who holds which powers and what they did
with them, so it needs an ``admin`` key (scope ``audit:read``), like the changes it lists.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from ..analysis.parameters import Param
from ..store.audit_log import DEFAULT_LIMIT, MAX_LIMIT, AuditLog, event_document
from ..timeunits import parse_duration
from .http import JSON, Request, Response, json_response
from .params import value
from .routes import Content, Route
from .schemas import AUDIT

__all__ = ["AUDIT_PARAMS", "audit_routes"]

AUDIT_PARAMS: Final = (
    Param("since", "Only entries of this last duration, e.g. 7d.", convert=parse_duration),
    Param("action", "Only this action (key.create, alert.ack, ...); a trailing * matches a prefix (key.*)."),
    Param("limit", "Most entries listed.", str(DEFAULT_LIMIT), minimum=1, maximum=MAX_LIMIT, integer=True),
)


def audit_routes(log: AuditLog, clock: Callable[[], int]) -> list[Route]:
    """The audit trail of ``log``; ``clock`` (Unix ns) anchors ``since``."""

    def audit(request: Request) -> Response:
        """The entries the query asks for, newest first."""
        since, action, limit = (value(request.query, param) for param in AUDIT_PARAMS)
        events = log.audit_events(
            since_ns=None if since is None else clock() - since, action=action or None, limit=limit
        )
        return json_response(200, {"events": [event_document(event) for event in events]})

    return [
        Route(
            "GET",
            "/api/v1/audit",
            "audit",
            "The audit trail (keys, alert acks and resolves, re-pricings, budget edits), newest first.",
            "audit:read",
            audit,
            params=AUDIT_PARAMS,
            content=(Content(JSON, AUDIT),),
        )
    ]
