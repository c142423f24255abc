"""``spanmeter investigate``: explain a cost spike against a baseline."""

from __future__ import annotations

import click

from ..analysis.investigate import investigate as run_investigation
from ..analysis.investigate_render import INVESTIGATE_FORMATS, render_investigate
from .common import ViewScope, api_get, format_option, open_store, source_options, view_options

__all__ = ["investigate"]


@click.command()
@view_options("24h", noun="Spike window")
@click.option(
    "--baseline",
    default="previous",
    show_default=True,
    help="previous (same length, just before), a shift such as 7d, or FROM..TO; a FROM..TO of"
    " another length than the window is compared per hour (the baseline scaled to the window's length).",
)
@click.option(
    "--limit",
    default=10,
    show_default=True,
    type=click.IntRange(1, 1000),
    help="Drivers per dimension, and as many moving against the total (the largest drops of a rise).",
)
@format_option(*INVESTIGATE_FORMATS, default="table")
@source_options
def investigate(
    scope: ViewScope,
    baseline: str,
    limit: int,
    fmt: str,
    db: str | None,
    url: str | None,
) -> None:
    """Total delta, drivers per dimension split into volume/retry/efficiency/price effects,
    and a classification with evidence; --format triage writes the triage note."""
    if url:
        report = api_get(
            url, "/api/v1/investigate", [("baseline", baseline), ("limit", str(limit)), *scope.params]
        )
    else:
        with open_store(db) as store:
            report = run_investigation(
                store,
                scope.window,
                baseline,
                where=scope.where,
                environment=scope.environment,
                data_mode=scope.data_mode,
                limit=limit,
            )
    click.echo(render_investigate(report, fmt), nl=False)
