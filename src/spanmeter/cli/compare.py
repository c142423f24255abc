"""``spanmeter compare prompt-versions``: cost and tokens per prompt version, deltas per deploy."""

from __future__ import annotations

import click

from ..analysis.parameters import PROMPT_VERSIONS, ViewArgs
from ..analysis.prompt_versions import render_prompt_versions
from .common import source_options, spec_options, view_document

__all__ = ["compare"]


@click.group()
def compare() -> None:
    """Compare cost drivers side by side."""


@compare.command("prompt-versions")
@spec_options(PROMPT_VERSIONS)
@source_options
def prompt_versions(args: ViewArgs, db: str | None, url: str | None) -> None:
    """Per prompt version: cost/request, tokens/call, p50/p95/p99 tokens, success rate, first and
    last seen, and the delta against the previous version (marked when samples are small)."""
    report = view_document(PROMPT_VERSIONS, args, db, url)
    click.echo(render_prompt_versions(report, args.fmt), nl=False)
