"""``spanmeter reprice``: recompute cost after a price change, show the diff, apply with an audit."""

from __future__ import annotations

from pathlib import Path

import click

from ..analysis.parameters import REPRICE_AUDITS, REPRICE_PREVIEW, ViewArgs
from ..analysis.reprice import apply_plan, audit_document, plan_repricing, render_audits, render_reprice
from ..pricing import PriceBook
from ..store import StaleRepricing
from .common import api_get, cli_actor, open_store, receiver_url, source_options, spec_options

__all__ = ["reprice"]


@click.command()
@spec_options(REPRICE_PREVIEW, window_optional=True)
@click.option(
    "--pricing-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Override file to price with [default: SPANMETER_PRICING_FILE, else list prices].",
)
@click.option("--dry-run", is_flag=True, help="Show the diff; change nothing.")
@click.option("--reason", help="Why (recorded in the audit trail; required to apply).")
@click.option("--yes", is_flag=True, help="Apply without asking.")
@click.option("--history", is_flag=True, help="List applied re-pricings instead (no window needed).")
@source_options
def reprice(
    args: ViewArgs,
    pricing_file: Path | None,
    dry_run: bool,
    reason: str | None,
    yes: bool,
    history: bool,
    db: str | None,
    url: str | None,
) -> None:
    """Re-price stored spans over a window: per-dimension diff first, then apply and audit.

    With --url only --dry-run and --history: applying writes to the store, so it takes --db."""
    base = receiver_url(url, local=bool(db))
    if history:
        if base:
            document = api_get(base, REPRICE_AUDITS.route, [("format", "json")])
        else:
            with open_store(db) as store:
                document = {"audits": [audit_document(a) for a in store.reprice_audits()]}
        click.echo(render_audits(document, args.fmt), nl=False)
        return
    if args.window is None:
        raise click.UsageError("give the window to re-price: --window FROM..TO or --from/--to")
    if not dry_run and not (reason and reason.strip()):
        raise click.UsageError("--reason is required to apply (it goes in the audit trail); or use --dry-run")
    if base:
        if not dry_run:
            raise click.UsageError("applying writes to the store: use --db (--url can only --dry-run)")
        if pricing_file:
            raise click.UsageError(
                "--pricing-file prices locally: use it with --db (the receiver uses its own)"
            )
        click.echo(render_reprice(api_get(base, REPRICE_PREVIEW.route, args.query), args.fmt), nl=False)
        return
    try:
        book = PriceBook.from_file(pricing_file) if pricing_file else PriceBook.from_env(strict=True)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--pricing-file") from None
    with open_store(db) as store:
        plan = plan_repricing(store, args.window, book, include_reported=args.values["include_reported"])
        click.echo(render_reprice(plan.diff, args.fmt), nl=False)
        if dry_run or not plan.changes:
            if not plan.changes:
                click.echo("nothing to change", err=True)
            return
        if not yes:
            click.confirm(f"apply to {len(plan.changes)} rows?", abort=True)
        try:
            audit = apply_plan(store, plan, reason=reason or "", actor=cli_actor())
        except StaleRepricing as error:
            raise click.ClickException(str(error)) from None
        click.echo(f"applied: audit #{audit.id}, {audit.rows_changed} rows", err=True)
