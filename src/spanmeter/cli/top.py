"""``spanmeter top``: rank spend by a dimension, from the store or a running receiver's API."""

from __future__ import annotations

import click

from ..analysis import DIMENSIONS, FORMATS, render_top, top_report
from .common import ViewScope, api_get, format_option, open_store, source_options, view_options

__all__ = ["top"]


@click.command()
@click.option(
    "--by",
    type=click.Choice(DIMENSIONS),
    default="endpoint_tag",
    show_default=True,
    help="Dimension to rank.",
)
@view_options("24h", window=False)
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 10_000), help="Groups shown.")
@format_option(*FORMATS)
@source_options
def top(
    by: str,
    scope: ViewScope,
    limit: int,
    fmt: str,
    db: str | None,
    url: str | None,
) -> None:
    """Cost, logical requests, attempts and tokens per value of a dimension."""
    if url:
        report = api_get(url, "/api/v1/top", [("by", by), ("limit", str(limit)), *scope.params])
    else:
        with open_store(db) as store:
            report = top_report(
                store,
                by,
                scope.window,
                where=scope.where,
                environment=scope.environment,
                data_mode=scope.data_mode,
                limit=limit,
            )
    click.echo(render_top(report, fmt), nl=False)
