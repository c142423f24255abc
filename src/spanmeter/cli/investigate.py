"""``spanmeter investigate``: explain a cost spike against a baseline."""

from __future__ import annotations

import click

from ..analysis.investigate import investigate as run_investigation
from ..analysis.investigate_render import INVESTIGATE_FORMATS, render_investigate
from .common import (
    api_get,
    data_mode_value,
    format_option,
    open_store,
    parse_scope,
    scope_options,
    scope_params,
    source_options,
    window_options,
)

__all__ = ["investigate"]


@click.command()
@window_options("24h", noun="Spike window")
@click.option(
    "--baseline",
    default="previous",
    show_default=True,
    help="previous (same length, just before), a shift such as 7d, or FROM..TO.",
)
@scope_options
@click.option(
    "--limit", default=10, show_default=True, type=click.IntRange(1, 1000), help="Drivers per dimension."
)
@format_option(*INVESTIGATE_FORMATS, default="table")
@source_options
def investigate(
    window_text: str | None,
    since: str | None,
    start: str | None,
    end: str | None,
    baseline: str,
    where: tuple[str, ...],
    environment: str | None,
    data_mode: str,
    limit: int,
    fmt: str,
    db: str | None,
    url: str | None,
) -> None:
    """Total delta, drivers per dimension split into volume/retry/efficiency/price effects,
    and a classification with evidence; --format triage writes the triage note."""
    window, filters = parse_scope(window_text, since, start, end, where)
    if url:
        params = [("baseline", baseline), ("limit", str(limit))]
        params += scope_params(window_text, since, start, end, where, environment, data_mode)
        report = api_get(url, "/api/v1/investigate", params)
    else:
        with open_store(db) as store:
            report = run_investigation(
                store,
                window,
                baseline,
                where=filters,
                environment=environment,
                data_mode=data_mode_value(data_mode),
                limit=limit,
            )
    click.echo(render_investigate(report, fmt), nl=False)
