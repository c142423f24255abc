"""``spanmeter economics``: unit economics, and tenant margins from an imported revenue CSV."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import click

from ..analysis.economics import DEFAULT_MAX_COST_SHARE, ECONOMICS_FORMATS, render_economics, unit_economics
from ..analysis.revenue import parse_revenue_csv
from .common import ViewScope, api_get, format_option, open_store, source_options, view_options

__all__ = ["economics"]


@click.command()
@view_options("7d")
@click.option(
    "--revenue",
    "revenue_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Import this revenue CSV (tenant,period,revenue) into the store first.",
)
@click.option(
    "--max-cost-share",
    default=str(float(DEFAULT_MAX_COST_SHARE)),
    show_default=True,
    help="Flag tenants whose LLM cost exceeds this share of revenue.",
)
@click.option(
    "--limit", default=20, show_default=True, type=click.IntRange(1, 10_000), help="Rows per dimension."
)
@format_option(*ECONOMICS_FORMATS, default="table")
@source_options
def economics(
    scope: ViewScope,
    revenue_file: Path | None,
    max_cost_share: str,
    limit: int,
    fmt: str,
    db: str | None,
    url: str | None,
) -> None:
    """Cost per tenant, user, endpoint and successful request; retry ratio, fallback rate,
    token tails; tenant margins when revenue is imported."""
    try:
        share = Fraction(max_cost_share)
        revenue = parse_revenue_csv(revenue_file.read_text()) if revenue_file else []
    except ValueError as error:
        raise click.BadParameter(str(error)) from None
    if url:
        if revenue:
            raise click.UsageError("--revenue imports into a local store: use it with --db")
        params = [("limit", str(limit)), ("max_cost_share", max_cost_share), *scope.params]
        report = api_get(url, "/api/v1/economics", params)
    else:
        with open_store(db) as store:
            if revenue:
                click.echo(f"imported {store.put_revenue(revenue)} revenue rows", err=True)
            report = unit_economics(
                store,
                scope.window,
                where=scope.where,
                environment=scope.environment,
                data_mode=scope.data_mode,
                limit=limit,
                max_cost_share=share,
            )
    click.echo(render_economics(report, fmt), nl=False)
