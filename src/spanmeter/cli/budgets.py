"""``spanmeter budgets list|status|check-config|add|remove``: budget definitions and where they stand.

``status`` reads a running receiver (``--url``) or a store file (``--db`` plus the budgets
file, which holds the limits); both answer from :func:`spanmeter.budgets.budget_states`.
``add`` and ``remove`` edit the budgets file (see :mod:`spanmeter.budgets.editing.edit`: validated
as a whole before it is written, written atomically, comments kept); a running receiver
picks the change up like any other edit. Budgets are edited in their file, not through the
API, so these are the budget edits the audit trail records: with ``--store`` (or
``SPANMETER_STORE``/``SPANMETER_DB_PATH``), right after the file is written.
"""

from __future__ import annotations

import json
import os
import time
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

import click

from ..analysis import parse_filters
from ..budgets import BudgetConfigError, BudgetIndex, budget_states, load_config, status_document
from ..budgets.definitions.documents import budgets_document
from ..budgets.definitions.model import BudgetsConfig
from ..budgets.editing import add_budget, remove_budget
from ..environment_variables import SPANMETER_BUDGETS_FILE, SPANMETER_DB_PATH, SPANMETER_STORE
from ..store import AuditLog
from ..store.audit_log import budget_edited
from .common import (
    api_request,
    budgets_of,
    cli_actor,
    format_option,
    open_store,
    receiver_url,
    store_option,
    url_option,
)

__all__ = ["budgets"]

_FILE_HELP = "Budgets file [env SPANMETER_BUDGETS_FILE]."
_AUDIT_STORE_HELP = (
    "Record the edit in this store's audit trail: a SQLite file or a postgresql:// URL"
    " [env SPANMETER_STORE or SPANMETER_DB_PATH; default: not recorded]."
)


def _record_edit(db: str | None, action: str, name: str, detail: str) -> None:
    """Record a budget edit in the audit trail of the store given (none given: nothing). The
    file is already written: a store that cannot record it is an error that says so."""
    target = db or os.environ.get(SPANMETER_STORE) or os.environ.get(SPANMETER_DB_PATH)
    if not target:
        return
    try:
        with open_store(target) as store:
            if not isinstance(store, AuditLog):  # pragma: no cover - both backends keep the trail
                raise click.ClickException(f"the store {store.location} keeps no audit trail")
            store.record_audit_event(budget_edited(action, name, cli_actor(), time.time_ns(), detail=detail))
    except click.ClickException as error:
        raise click.ClickException(
            f"the budgets file was changed, but the edit was not recorded in the audit trail: {error.message}"
        ) from None


def _config(path: str | None) -> BudgetsConfig:
    path = path or os.environ.get(SPANMETER_BUDGETS_FILE)
    if not path:
        raise click.ClickException(
            "no budgets file: pass --file or set SPANMETER_BUDGETS_FILE (or use --url)"
        )
    try:
        return load_config(path)
    except BudgetConfigError as error:
        raise click.ClickException(str(error)) from None


def _scope_text(scope: dict[str, str]) -> str:
    return (
        ", ".join(f"{d}={v}" for d, v in sorted(scope.items()) if not (d == "data_mode" and v == "real"))
        or "all"
    )


@click.group()
def budgets() -> None:
    """Budget definitions and their state in the current windows."""


@budgets.command("list")
@click.option("--file", "path", type=click.Path(dir_okay=False), help=_FILE_HELP)
@url_option()
@format_option("table", "json")
def list_budgets(path: str | None, url: str | None, fmt: str) -> None:
    """Every budget of the budgets file (or of a running receiver)."""
    url = receiver_url(url, local=bool(path))
    document = api_request(url + "/api/v1/budgets") if url else budgets_document(_config(path))
    if fmt == "json":
        click.echo(json.dumps(document, indent=2))
        return
    header = f"{'budget':<28}{'scope':<36}{'window':<22}{'limit USD':>12}  warn at   forecast"
    lines = [header, "-" * len(header)]
    for budget in document["budgets"]:
        lines.append(
            f"{budget['name'][:27]:<28}{_scope_text(budget['scope'])[:35]:<36}{budget['window_text'][:21]:<22}"
            f"{Decimal(budget['limit_usd']):>12.2f}  {','.join(budget['warn_at']) or '-':<9} "
            f"{'yes' if budget['forecast'] else 'no'}"
        )
    lines.append(f"{len(document['budgets'])} budgets, {len(document['rules'])} alert rules")
    click.echo("\n".join(lines))


@budgets.command("status")
@click.option(
    "--where",
    multiple=True,
    help="Only states applying to dim=value (repeatable; user_id: the raw id or the hashed one).",
)
@click.option("--exact", is_flag=True, help="Only states whose scope names the --where values.")
@click.option("--budget", "budget_name", help="Only this budget.")
@click.option("--state", type=click.Choice(("ok", "warning", "exceeded")), help="Only this state.")
@click.option("--file", "path", type=click.Path(dir_okay=False), help=_FILE_HELP)
@store_option()
@url_option()
@format_option("table", "json")
def status(
    where: tuple[str, ...],
    exact: bool,
    budget_name: str | None,
    state: str | None,
    path: str | None,
    db: str | None,
    url: str | None,
    fmt: str,
) -> None:
    """Spend, limit, state and forecast of every budget state in its current window."""
    try:
        filters = parse_filters(where)
    except ValueError as error:
        raise click.BadParameter(str(error)) from None
    url = receiver_url(url, local=bool(path or db))
    if url:
        params: list[tuple[str, str]] = list(filters.items())
        params += [(k, v) for k, v in (("budget", budget_name), ("state", state)) if v]
        if exact:
            params.append(("match", "exact"))
        document: dict[str, Any] = api_request(url + "/api/v1/budgets/status?" + urlencode(params))
    else:
        config = _config(path)
        with open_store(db) as store:  # a ValueError becomes a ClickException there
            now = time.time_ns()
            states = budget_states(
                budgets_of(store),
                BudgetIndex(config.budgets),
                now,
                filters=filters,
                budget=budget_name,
                state=state,
                match="exact" if exact else "applies",
            )
            document = status_document(states, now)
    if fmt == "json":
        click.echo(json.dumps(document, indent=2))
        return
    header = (
        f"{'budget':<24}{'scope':<32}{'spend USD':>12}{'limit USD':>12}{'used':>7}  {'state':<9} forecast"
    )
    lines = [f"budget status at {document['generated_at']}", header, "-" * len(header)]
    for item in document["states"]:
        projected = item["projected_usd"]
        forecast = (
            "-"
            if projected is None
            else f"{Decimal(projected):.2f}" + (" !" if item["forecast_exceeds"] else "")
        )
        lines.append(
            f"{item['budget'][:23]:<24}{_scope_text(item['scope'])[:31]:<32}{Decimal(item['spend_usd']):>12.2f}"
            f"{Decimal(item['limit_usd']):>12.2f}{item['ratio']:>7.0%}  {item['state']:<9} {forecast}"
        )
    counts = document["counts"]
    lines.append(f"{counts['exceeded']} exceeded, {counts['warning']} warning, {counts['ok']} ok")
    click.echo("\n".join(lines))


@budgets.command("check-config")
@click.argument("path", required=False, type=click.Path(dir_okay=False))
def check_config(path: str | None) -> None:
    """Validate a budgets file: every problem is listed, with its entry and field."""
    path = path or os.environ.get(SPANMETER_BUDGETS_FILE)
    if not path:
        raise click.UsageError("give the budgets file (or set SPANMETER_BUDGETS_FILE)")
    try:
        config = load_config(path)
    except BudgetConfigError as error:
        click.echo(str(error), err=True)
        raise SystemExit(1) from None
    click.echo(
        f"{path}: OK: {len(config.budgets)} budgets, {len(config.rules)} alert rules, "
        f"channels: {', '.join(c.name for c in config.channels) or 'none'}"
    )
    for budget in config.budgets:
        scope = _scope_text({d: v for d, v in budget.scope.items()})
        click.echo(f"  budget {budget.name}: {scope}, {budget.window.describe()}, limit ${budget.limit_usd}")
    for rule in config.rules:
        click.echo(f"  rule {rule.name}: {rule.kind}, threshold {rule.threshold}")


def _file(path: str | None) -> str:
    path = path or os.environ.get(SPANMETER_BUDGETS_FILE)
    if not path:
        raise click.UsageError("give the budgets file with --file (or set SPANMETER_BUDGETS_FILE)")
    return path


def _limit(text: str) -> int | str:
    """An integral amount as a YAML number, anything else as an exact decimal string."""
    try:
        amount = Decimal(text)
    except ArithmeticError:
        return text  # the loader reports it, with the rest
    return int(amount) if amount == amount.to_integral_value() and "." not in text else text


@budgets.command("add")
@click.argument("name")
@click.option(
    "--scope", "scopes", multiple=True, help="dim=value, or dim=* for one state per value (repeatable)."
)
@click.option("--window", required=True, help="day, week, month, or rolling:6h.")
@click.option("--limit", "limit_usd", required=True, help="The limit in USD, e.g. 25 or 0.50.")
@click.option("--warn", help="Warning thresholds in percent of the limit, e.g. 50,80 [default: 50,80].")
@click.option("--timezone", help="IANA zone of a calendar window [default: the file's, else UTC].")
@click.option("--description", help="What the budget is for.")
@click.option("--file", "path", type=click.Path(dir_okay=False), help=_FILE_HELP)
@store_option(_AUDIT_STORE_HELP)
def add(
    name: str,
    scopes: tuple[str, ...],
    window: str,
    limit_usd: str,
    warn: str | None,
    timezone: str | None,
    description: str | None,
    path: str | None,
    db: str | None,
) -> None:
    """Add a budget to the budgets file (created if missing); the whole file is validated first."""
    path = _file(path)
    entry: dict[str, Any] = {"name": name}
    if description:
        entry["description"] = description
    scope: dict[str, str] = {}
    for item in scopes:
        dim, sep, value = item.partition("=")
        if not sep or not dim.strip() or not value.strip():
            raise click.BadParameter(f"expected dim=value, got {item!r}", param_hint="--scope")
        scope[dim.strip()] = value.strip()
    if scope:
        entry["scope"] = scope
    kind, _, hours = window.partition(":")
    entry["window"] = {"rolling": hours} if kind == "rolling" and hours else window
    entry["limit_usd"] = _limit(limit_usd)
    if warn is not None:
        entry["warn_at"] = [f"{part.strip().rstrip('%')}%" for part in warn.split(",") if part.strip()]
    if timezone:
        entry["timezone"] = timezone
    try:
        config = add_budget(path, entry)
    except BudgetConfigError as error:
        raise click.ClickException(str(error)) from None
    (budget,) = [b for b in config.budgets if b.name == name]
    described = f"{_scope_text(dict(budget.scope))}, {budget.window.describe()}, limit ${budget.limit_usd}"
    _record_edit(db, "budget.add", name, f"{path}: {described}")
    click.echo(f"{path}: added budget {name}: {described}; {len(config.budgets)} budgets")


@budgets.command("remove")
@click.argument("name")
@click.option("--file", "path", type=click.Path(dir_okay=False), help=_FILE_HELP)
@store_option(_AUDIT_STORE_HELP)
def remove(name: str, path: str | None, db: str | None) -> None:
    """Remove a budget from the budgets file (its counters and alerts stay in the store)."""
    path = _file(path)
    try:
        config = remove_budget(path, name)
    except BudgetConfigError as error:
        raise click.ClickException(str(error)) from None
    _record_edit(db, "budget.remove", name, str(path))
    click.echo(f"{path}: removed budget {name}; {len(config.budgets)} budgets left")
