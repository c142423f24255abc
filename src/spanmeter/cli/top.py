"""``spanmeter top``: rank spend by a dimension, from the store or a running receiver's API."""

from __future__ import annotations

import click

from ..analysis import DIMENSIONS, FORMATS, render_top, top_report
from .common import (
    api_get,
    data_mode_value,
    format_option,
    open_store,
    parse_scope,
    scope_options,
    scope_params,
    source_options,
)

__all__ = ["top"]


@click.command()
@click.option(
    "--by",
    type=click.Choice(DIMENSIONS),
    default="endpoint_tag",
    show_default=True,
    help="Dimension to rank.",
)
@click.option("--since", help="Window ending now, e.g. 24h, 7d [default 24h].")
@click.option("--from", "start", help="Window start: ISO 8601 (UTC) or Unix seconds.")
@click.option("--to", "end", help="Window end (exclusive) [default now].")
@scope_options
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 10_000), help="Groups shown.")
@format_option(*FORMATS)
@source_options
def top(
    by: str,
    since: str | None,
    start: str | None,
    end: str | None,
    where: tuple[str, ...],
    environment: str | None,
    data_mode: str,
    limit: int,
    fmt: str,
    db: str | None,
    url: str | None,
) -> None:
    """Cost, logical requests, attempts and tokens per value of a dimension."""
    window, filters = parse_scope(None, since, start, end, where)
    if url:
        params = [("by", by), ("limit", str(limit))]
        params += scope_params(None, since, start, end, where, environment, data_mode)
        report = api_get(url, "/api/v1/top", params)
    else:
        with open_store(db) as store:
            report = top_report(
                store,
                by,
                window,
                where=filters,
                environment=environment,
                data_mode=data_mode_value(data_mode),
                limit=limit,
            )
    click.echo(render_top(report, fmt), nl=False)
