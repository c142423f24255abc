"""``spanmeter economics``: unit economics, and tenant margins from an imported revenue CSV."""

from __future__ import annotations

from pathlib import Path

import click

from ..analysis.economics import render_economics
from ..analysis.parameters import ECONOMICS, ViewArgs
from ..analysis.revenue import parse_revenue_csv
from .common import open_store, receiver_url, source_options, spec_options, view_document

__all__ = ["economics"]


@click.command()
@spec_options(ECONOMICS)
@click.option(
    "--revenue",
    "revenue_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Import this revenue CSV (tenant,period,revenue) into the store first.",
)
@source_options
def economics(args: ViewArgs, revenue_file: Path | None, db: str | None, url: str | None) -> None:
    """Cost per tenant, user, endpoint and successful request; retry ratio, fallback rate,
    token tails; tenant margins when revenue is imported."""
    if revenue_file:
        if receiver_url(url, local=bool(db)):
            raise click.UsageError("--revenue imports into a local store: use it with --db")
        try:
            revenue = parse_revenue_csv(revenue_file.read_text())
        except ValueError as error:
            raise click.BadParameter(str(error), param_hint="--revenue") from None
        with open_store(db) as store:
            click.echo(f"imported {store.put_revenue(revenue)} revenue rows", err=True)
    click.echo(render_economics(view_document(ECONOMICS, args, db, url), args.fmt), nl=False)
