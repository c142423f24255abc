"""``spanmeter investigate``: explain a cost spike against a baseline."""

from __future__ import annotations

import click

from ..analysis.investigate_render import render_investigate
from ..analysis.parameters import INVESTIGATE, ViewArgs
from .common import source_options, spec_options, view_document

__all__ = ["investigate"]


@click.command()
@spec_options(INVESTIGATE)
@source_options
def investigate(args: ViewArgs, db: str | None, url: str | None) -> None:
    """Total delta, drivers per dimension split into volume/retry/efficiency/price effects,
    and a classification with evidence; --format triage writes the triage note."""
    click.echo(render_investigate(view_document(INVESTIGATE, args, db, url), args.fmt), nl=False)
