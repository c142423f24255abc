"""``spanmeter report weekly``: the weekly AI spend review as markdown or self-contained HTML."""

from __future__ import annotations

from pathlib import Path

import click

from ..analysis.parameters import WEEKLY, ViewArgs
from ..analysis.report_render import render_report
from .common import source_options, spec_options, view_document

__all__ = ["report"]


@click.group()
def report() -> None:
    """Reports filled from the store."""


@report.command()
@spec_options(WEEKLY)
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), help="Write to this file.")
@source_options
def weekly(args: ViewArgs, output: Path | None, db: str | None, url: str | None) -> None:
    """Top drivers by endpoint and tenant/user, prompt-version changes with cost/request
    deltas, budgets and alerts of the week, decisions and one durable control."""
    text = render_report(view_document(WEEKLY, args, db, url), args.fmt)
    if output:
        output.write_text(text, encoding="utf-8")
        click.echo(f"wrote {output}", err=True)
    else:
        click.echo(text, nl=False)
