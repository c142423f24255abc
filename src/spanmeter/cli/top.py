"""``spanmeter top``: rank spend by a dimension, from the store or a running receiver's API."""

from __future__ import annotations

import click

from ..analysis import render_top
from ..analysis.parameters import TOP, ViewArgs
from .common import source_options, spec_options, view_document

__all__ = ["top"]


@click.command()
@spec_options(TOP)
@source_options
def top(args: ViewArgs, db: str | None, url: str | None) -> None:
    """Cost, logical requests, attempts and tokens per value of a dimension."""
    click.echo(render_top(view_document(TOP, args, db, url), args.fmt), nl=False)
