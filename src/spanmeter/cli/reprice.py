"""``spanmeter reprice``: recompute cost after a price change, show the diff, apply with an audit."""

from __future__ import annotations

import json
from pathlib import Path

import click

from ..analysis.common import usd
from ..analysis.reprice import apply_plan, plan_repricing, render_reprice
from ..analysis.window import TimeWindow
from ..analysis.window_range import resolve_window
from ..pricing import PriceBook
from ..store import RepriceAudit, StaleRepricing
from .common import format_option, open_store

__all__ = ["reprice"]


@click.command()
@click.option("--window", "window_text", help="Window FROM..TO (ISO 8601 UTC or Unix seconds).")
@click.option("--from", "start", help="Or: window start.")
@click.option("--to", "end", help="Window end (exclusive) [default now].")
@click.option(
    "--pricing-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Override file to price with [default: SPANMETER_PRICING_FILE, else list prices].",
)
@click.option("--include-reported", is_flag=True, help="Also replace provider-reported costs.")
@click.option("--dry-run", is_flag=True, help="Show the diff; change nothing.")
@click.option("--reason", help="Why (recorded in the audit trail; required to apply).")
@click.option("--yes", is_flag=True, help="Apply without asking.")
@click.option("--history", is_flag=True, help="List applied re-pricings instead.")
@format_option("table", "json")
@click.option("--db", help="SQLite store [env SPANMETER_DB_PATH; default spanmeter.db].")
def reprice(
    window_text: str | None,
    start: str | None,
    end: str | None,
    pricing_file: Path | None,
    include_reported: bool,
    dry_run: bool,
    reason: str | None,
    yes: bool,
    history: bool,
    fmt: str,
    db: str | None,
) -> None:
    """Re-price stored spans over a window: per-dimension diff first, then apply and audit."""
    with open_store(db) as store:
        if history:
            audits = store.reprice_audits()
            if fmt == "json":
                click.echo(json.dumps([_audit(a) for a in audits], indent=2))
            for audit in audits if fmt == "table" else []:
                entry = _audit(audit)
                click.echo(
                    f"#{entry['id']} {entry['applied_at']} {entry['rows_changed']} rows"
                    f" {entry['cost_before_usd']} -> {entry['cost_after_usd']} USD"
                    f" ({entry['price_source']}): {entry['reason']}"
                )
            return
        if not (window_text or start):
            raise click.UsageError("give the window to re-price: --window FROM..TO or --from/--to")
        if not dry_run and not (reason and reason.strip()):
            raise click.UsageError(
                "--reason is required to apply (it goes in the audit trail); or use --dry-run"
            )
        try:
            window = resolve_window(window_text, None, start, end)
            book = PriceBook.from_file(pricing_file) if pricing_file else PriceBook.from_env(strict=True)
        except ValueError as error:
            raise click.BadParameter(str(error)) from None
        plan = plan_repricing(store, window, book, include_reported=include_reported)
        click.echo(render_reprice(plan.diff, fmt), nl=False)
        if dry_run or not plan.changes:
            if not plan.changes:
                click.echo("nothing to change", err=True)
            return
        if not yes:
            click.confirm(f"apply to {len(plan.changes)} rows?", abort=True)
        try:
            audit = apply_plan(store, plan, reason=reason or "")
        except StaleRepricing as error:
            raise click.ClickException(str(error)) from None
        click.echo(f"applied: audit #{audit.id}, {audit.rows_changed} rows", err=True)


def _audit(audit: RepriceAudit) -> dict[str, object]:
    return {
        "id": audit.id,
        "applied_at": TimeWindow(audit.applied_at_ns, audit.applied_at_ns + 1).iso()[0],
        "reason": audit.reason,
        "window": dict(
            zip(("from", "to"), TimeWindow(audit.window_start_ns, audit.window_end_ns).iso(), strict=True)
        ),
        "rows_changed": audit.rows_changed,
        "cost_before_usd": usd(audit.cost_before_nano_usd),
        "cost_after_usd": usd(audit.cost_after_nano_usd),
        "price_source": audit.price_source,
    }
