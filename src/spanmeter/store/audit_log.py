"""The audit trail as every store keeps it: who did what to what, and when.

People's changes to a shared service are recorded here: API keys made and revoked, alerts
acknowledged and resolved, re-pricings applied, budgets added and removed. Each entry names
its *actor* (``key:<name>`` for an API caller, ``cli:<os user>`` for the command line,
``anonymous`` for an API caller while authentication is off; never a secret), the *action*
(:data:`ACTIONS`), its *target* (a key's name, an alert's id, a re-pricing's audit id, a
budget's name), a short *detail* and the time.

Where the action is a store write (keys, alert states, re-pricing), the store writes its
entry in the same transaction as the action, so an action is never done without its record
and never recorded without being done. Budgets live in a YAML file, so their edits are
recorded right after the file is written.

This module holds the rules both backends share (the record, its validation, its row form,
the entries each action writes); the SQL is each backend's (``sqlite/audit.py``,
``postgres/audit.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Protocol, runtime_checkable

from ..timeunits import iso
from .analysis_types import RepriceAudit
from .api_keys import ApiKey

__all__ = [
    "ACTIONS",
    "COLUMNS",
    "DEFAULT_LIMIT",
    "MAX_DETAIL_CHARS",
    "MAX_LIMIT",
    "SYSTEM_ACTOR",
    "AuditEvent",
    "AuditLog",
    "action_filter",
    "alert_changed",
    "audit_event",
    "budget_edited",
    "check_limit",
    "event_document",
    "event_from_row",
    "event_row",
    "key_created",
    "key_revoked",
    "repricing_applied",
]

ACTIONS: Final = (
    "key.create",
    "key.revoke",
    "alert.ack",
    "alert.resolve",
    "reprice.apply",
    "budget.add",
    "budget.remove",
)
"""Every action the trail records."""
SYSTEM_ACTOR: Final = "system"
"""The actor of a change made by a program through the store's interface without naming one."""
MAX_DETAIL_CHARS: Final = 500
"""A detail is a short line for people (a note, a reason): longer text is cut here."""
_MAX_NAME_CHARS: Final = 200
DEFAULT_LIMIT: Final = 100
MAX_LIMIT: Final = 10_000
COLUMNS: Final = "at_ns, actor, action, target, detail"
"""The ``audit_log`` table's columns, in :func:`event_row` order (both backends' schema; the
table's ``id`` comes first when read back)."""


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """One entry of the trail."""

    at_ns: int
    """When (Unix ns)."""
    actor: str
    """Who: ``key:<name>``, ``cli:<user>``, ``anonymous`` or :data:`SYSTEM_ACTOR`."""
    action: str
    """What: one of :data:`ACTIONS`."""
    target: str
    """To what: a key's name, an alert's id, a re-pricing's audit id, a budget's name."""
    detail: str = ""
    """A short line: the note, the reason, the scope."""
    id: int | None = None
    """Assigned by the store (increasing); None before it is stored."""


def _line(text: str, limit: int) -> str:
    """``text`` on one line, at most ``limit`` characters (an ellipsis marks a cut)."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def audit_event(at_ns: int, actor: str, action: str, target: str, detail: str = "") -> AuditEvent:
    """A checked entry: a known action, an actor and a target, each on one bounded line.

    Raises:
        ValueError: an unknown action, or an empty actor or target.
    """
    if action not in ACTIONS:
        raise ValueError(f"unknown audit action {action!r}; known: {', '.join(ACTIONS)}")
    actor, target = _line(actor, _MAX_NAME_CHARS), _line(target, _MAX_NAME_CHARS)
    if not actor or not target:
        raise ValueError("an audit entry needs an actor and a target")
    return AuditEvent(int(at_ns), actor, action, target, _line(detail, MAX_DETAIL_CHARS))


def event_row(event: AuditEvent) -> tuple[object, ...]:
    """An entry as a row of :data:`COLUMNS`."""
    return (event.at_ns, event.actor, event.action, event.target, event.detail)


def event_from_row(row: tuple[object, ...]) -> AuditEvent:
    """An entry from a row of ``id`` then :data:`COLUMNS`."""
    event_id, at_ns, actor, action, target, detail = row
    return AuditEvent(int(at_ns), str(actor), str(action), str(target), str(detail), int(event_id))  # type: ignore[arg-type]


def event_document(event: AuditEvent) -> dict[str, object]:
    """An entry as the API answers it and ``spanmeter audit list --format json`` prints it."""
    return {
        "id": event.id,
        "at": iso(event.at_ns),
        "at_ns": event.at_ns,
        "actor": event.actor,
        "action": event.action,
        "target": event.target,
        "detail": event.detail,
    }


def action_filter(action: str | None) -> tuple[bool, str | None]:
    """``(is a prefix, value)`` for an ``action`` filter: ``key.*`` becomes the LIKE pattern
    ``key.%`` (``\\`` escapes), anything else an exact match."""
    if action is None or not action.endswith("*"):
        return False, action
    prefix = action[:-1].replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return True, prefix + "%"


def check_limit(limit: int) -> int:
    """``limit`` if it is 1..:data:`MAX_LIMIT`.

    Raises:
        ValueError: out of range.
    """
    if not 1 <= limit <= MAX_LIMIT:
        raise ValueError(f"limit must be 1..{MAX_LIMIT}, got {limit!r}")
    return limit


# -- the entries each action writes -------------------------------------------------------


def key_created(key: ApiKey, actor: str) -> AuditEvent:
    """``key.create``: the key's name, scope, tenants and expiry (never its secret or hash)."""
    parts = [f"scope {key.scope}"]
    if key.tenants:
        parts.append("tenants " + ", ".join(key.tenants))
    if key.expires_at_ns is not None:
        parts.append("expires " + iso(key.expires_at_ns))
    return audit_event(key.created_at_ns, actor, "key.create", key.name, "; ".join(parts))


def key_revoked(name: str, actor: str, at_ns: int) -> AuditEvent:
    """``key.revoke`` of the usable key ``name``."""
    return audit_event(at_ns, actor, "key.revoke", name)


def alert_changed(action: str, alert_id: int, actor: str, *, by: str, note: str, at_ns: int) -> AuditEvent:
    """``alert.ack`` or ``alert.resolve``: the alert's id; the name given for the alert's history
    (when it is not the actor's own) and the note."""
    parts = [f"by {by}"] if by and by != actor else []
    if note:
        parts.append(note)
    return audit_event(at_ns, actor, action, f"alert {alert_id}", ": ".join(parts))


def repricing_applied(audit: RepriceAudit, actor: str) -> AuditEvent:
    """``reprice.apply``: the re-pricing's audit id, its reason, rows and cost change."""
    detail = (
        f"{audit.reason}; {audit.rows_changed} rows, {iso(audit.window_start_ns)} .. {iso(audit.window_end_ns)},"
        f" cost {audit.cost_before_nano_usd} -> {audit.cost_after_nano_usd} nano-USD"
    )
    return audit_event(audit.applied_at_ns, actor, "reprice.apply", f"reprice {audit.id}", detail)


def budget_edited(action: str, name: str, actor: str, at_ns: int, *, detail: str = "") -> AuditEvent:
    """``budget.add`` or ``budget.remove`` of the budget ``name`` (``detail``: the file, the limit)."""
    return audit_event(at_ns, actor, action, name, detail)


@runtime_checkable
class AuditLog(Protocol):
    """A store that keeps the audit trail (both backends do)."""

    def record_audit_event(self, event: AuditEvent) -> AuditEvent:
        """Store one entry in a transaction of its own; the entry with its id. (Actions that
        are store writes record theirs inside their own transaction instead.)"""
        ...

    def audit_events(
        self, *, since_ns: int | None = None, action: str | None = None, limit: int = DEFAULT_LIMIT
    ) -> list[AuditEvent]:
        """Entries at or after ``since_ns`` of ``action`` (exact, or a prefix ending in ``*``),
        newest first, at most ``limit`` (1..:data:`MAX_LIMIT`).

        Raises:
            ValueError: ``limit`` out of range.
        """
        ...
