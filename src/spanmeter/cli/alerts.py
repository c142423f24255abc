"""``spanmeter alerts list|show|ack``: the alerts inbox, from a running receiver or a store file."""

from __future__ import annotations

import getpass
import json
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

import click

from ..analysis import parse_duration
from ..budgets.delivery.documents import alert_document
from . import common

__all__ = ["alerts"]


def _url(url: str | None, db: str | None) -> str | None:
    return common.receiver_url(url, local=bool(db))


@click.group()
def alerts() -> None:
    """The alerts inbox: budget transitions and alert rule firings."""


@alerts.command("list")
@click.option("--state", type=click.Choice(("open", "acknowledged", "resolved")), help="Only this state.")
@click.option("--kind", help="Only this kind, e.g. budget.exceeded or 'rule.*'.")
@click.option("--source", help="Only this budget or rule.")
@click.option("--since", help="Only alerts newer than this, e.g. 24h, 7d.")
@click.option(
    "--limit", default=50, show_default=True, type=click.IntRange(1, 10_000), help="Most alerts shown."
)
@common.store_option()
@common.url_option()
@common.format_option("table", "json")
def list_alerts(
    state: str | None,
    kind: str | None,
    source: str | None,
    since: str | None,
    limit: int,
    db: str | None,
    url: str | None,
    fmt: str,
) -> None:
    """Alerts, newest first."""
    base = _url(url, db)
    if base:
        params = [
            (k, v) for k, v in (("state", state), ("kind", kind), ("source", source), ("since", since)) if v
        ]
        params.append(("limit", str(limit)))
        documents: list[dict[str, Any]] = common.api_request(f"{base}/api/v1/alerts?{urlencode(params)}")[
            "alerts"
        ]
    else:
        try:
            since_ns = None if not since else time.time_ns() - parse_duration(since)
        except ValueError as error:
            raise click.BadParameter(str(error)) from None
        with common.open_store(db) as store:
            records = common.budgets_of(store).list_alerts(
                state=state, kind=kind, source=source, since_ns=since_ns, limit=limit
            )
            documents = [alert_document(record) for record in records]
    if fmt == "json":
        click.echo(json.dumps({"alerts": documents}, indent=2))
        return
    header = f"{'id':>6}  {'occurred (UTC)':<20}{'state':<14}{'kind':<32}title"
    lines = [header, "-" * 100]
    for doc in documents:
        lines.append(
            f"{doc['id']:>6}  {doc['occurred_at'][:19]:<20}{doc['state']:<14}{doc['kind'][:31]:<32}{doc['title']}"
        )
    if not documents:
        lines.append("no alerts")
    click.echo("\n".join(lines))


@alerts.command("show")
@click.argument("alert_id", type=int)
@common.store_option()
@common.url_option()
@common.format_option("text", "json")
def show(alert_id: int, db: str | None, url: str | None, fmt: str) -> None:
    """One alert: its numbers, drivers, focused views, history and deliveries."""
    base = _url(url, db)
    if base:
        doc: dict[str, Any] = common.api_request(f"{base}/api/v1/alerts/{alert_id}")
    else:
        with common.open_store(db) as store:
            record = common.budgets_of(store).get_alert(alert_id)
        if record is None:
            raise click.ClickException(f"no alert with id {alert_id}")
        doc = alert_document(record)
    if fmt == "json":
        click.echo(json.dumps(doc, indent=2))
        return
    window = doc["window"]
    lines = [
        f"alert {doc['id']} [{doc['severity']}] {doc['kind']}: {doc['state']}",
        doc["title"],
        f"occurred {doc['occurred_at']}; source {doc['source']}; subject {doc['subject'] or '-'}",
    ]
    if window["from"]:
        lines.append(f"window {window['from']} .. {window['to']}")
    details = {k: v for k, v in doc["details"].items() if k not in ("filters", "type")}
    lines.append("details: " + json.dumps(details, sort_keys=True))
    context: Mapping[str, Any] = doc["context"] or {}
    if context:
        lines.append(f"baseline {context['baseline']['from']} .. {context['baseline']['to']}")
        drivers: Mapping[str, Mapping[str, Any]] = context.get("drivers", {})
        for dim, info in drivers.items():
            lines.append(
                f"  driver {dim}: {info['value']} ${info['cost_usd']} ({info['share']:.0%} of the window),"
                f" {info['logical_requests']} requests, baseline ${info['baseline_cost_usd']}"
            )
        focus = context.get("focus")
        if focus:
            lines += [f"focused view: {focus['cli']}", f"              {focus['api']}"]
    else:
        lines.append("context: not built yet (it is added when the alert is first delivered)")
    for entry in doc["history"]:
        note = f": {entry['note']}" if entry["note"] else ""
        lines.append(f"  {entry['at']} {entry['state']} by {entry['actor']}{note}")
    for delivery in doc["deliveries"]:
        error = f" ({delivery['last_error']})" if delivery["last_error"] else ""
        lines.append(
            f"  delivery {delivery['channel']}: {delivery['state']} after {delivery['attempts']} attempts{error}"
        )
    click.echo("\n".join(lines))


@alerts.command("ack")
@click.argument("alert_id", type=int)
@click.option("--note", default="", help="What was done (kept in the alert's history).")
@click.option("--by", "actor", help="Who acknowledges [default: the current user].")
@common.store_option()
@common.url_option()
def ack(alert_id: int, note: str, actor: str | None, db: str | None, url: str | None) -> None:
    """Acknowledge an alert."""
    actor = actor or getpass.getuser()
    base = _url(url, db)
    if base:
        doc = common.api_request(f"{base}/api/v1/alerts/{alert_id}/ack", body={"by": actor, "note": note})
    else:
        with common.open_store(db) as store:
            try:
                record = common.budgets_of(store).acknowledge(
                    alert_id, actor=actor, note=note, now_ns=time.time_ns(), audit_actor=common.cli_actor()
                )
            except LookupError as error:
                raise click.ClickException(str(error)) from None
        doc = alert_document(record)
    click.echo(f"alert {doc['id']}: {doc['state']} ({doc['title']})")
