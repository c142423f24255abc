"""``spanmeter audit list``: the audit trail (who made and revoked keys, acknowledged and
resolved alerts, applied re-pricings, edited budgets), from a store or a running receiver.

Read from a store (``--store``), or ask a receiver's API (``--url``; it needs an ``admin`` key
in ``--api-key`` or ``SPANMETER_API_KEY``) for the very same document.
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlencode

import click

from ..store import AuditLog, SpanStore
from ..store.audit_log import ACTIONS, DEFAULT_LIMIT, MAX_LIMIT, event_document
from ..timeunits import parse_duration
from .common import api_request, format_option, open_store, receiver_url, store_option, url_option
from .listing import echo_listing

__all__ = ["audit"]


def _audit_log(store: SpanStore) -> AuditLog:
    if not isinstance(store, AuditLog):  # pragma: no cover - both backends keep the trail
        raise click.ClickException(f"the store {store.location} keeps no audit trail")
    return store


@click.group()
def audit() -> None:
    """The audit trail: keys made and revoked, alerts acknowledged and resolved, re-pricings
    applied, budgets edited; each with who, what, when."""


@audit.command("list")
@click.option("--since", help="Only entries newer than this, e.g. 24h, 7d [default: all].")
@click.option(
    "--action", help=f"Only this action ({', '.join(ACTIONS)}); a trailing * matches a prefix (key.*)."
)
@click.option(
    "--limit",
    default=DEFAULT_LIMIT,
    show_default=True,
    type=click.IntRange(1, MAX_LIMIT),
    help="Most entries shown.",
)
@format_option("table", "json")
@store_option()
@url_option()
def list_events(
    since: str | None, action: str | None, limit: int, fmt: str, db: str | None, url: str | None
) -> None:
    """Audit entries, newest first."""
    base = receiver_url(url, local=bool(db))
    if base:
        params = [(k, v) for k, v in (("since", since), ("action", action)) if v]
        params.append(("limit", str(limit)))
        documents: list[dict[str, Any]] = api_request(f"{base}/api/v1/audit?{urlencode(params)}")["events"]
    else:
        try:
            since_ns = None if not since else time.time_ns() - parse_duration(since)
        except ValueError as error:
            raise click.BadParameter(str(error), param_hint="--since") from None
        with open_store(db) as store:
            events = _audit_log(store).audit_events(since_ns=since_ns, action=action or None, limit=limit)
        documents = [event_document(event) for event in events]
    echo_listing(
        fmt,
        "events",
        documents,
        empty="no audit entries",
        header=f"{'at (UTC)':<20} {'actor':<24} {'action':<14} {'target':<24} detail",
        line=_line,
    )


def _line(doc: dict[str, Any]) -> str:
    return f"{doc['at'][:19]:<20} {doc['actor']:<24} {doc['action']:<14} {doc['target']:<24} {doc['detail']}"
