"""``spanmeter compare prompt-versions``: cost and tokens per prompt version, deltas per deploy."""

from __future__ import annotations

import click

from ..analysis.prompt_versions import (
    COMPARE_FORMATS,
    MIN_SAMPLES,
    compare_prompt_versions,
    render_prompt_versions,
)
from .common import ViewScope, api_get, format_option, open_store, source_options, view_options

__all__ = ["compare"]


@click.group()
def compare() -> None:
    """Compare cost drivers side by side."""


@compare.command("prompt-versions")
@click.option("--endpoint", help="Only this endpoint tag.")
@view_options("7d")
@click.option(
    "--min-samples",
    default=MIN_SAMPLES,
    show_default=True,
    type=click.IntRange(2, None),
    help="Logical requests per version before a delta can be significant.",
)
@format_option(*COMPARE_FORMATS, default="table")
@source_options
def prompt_versions(
    endpoint: str | None,
    scope: ViewScope,
    min_samples: int,
    fmt: str,
    db: str | None,
    url: str | None,
) -> None:
    """Per prompt version: cost/request, tokens/call, p50/p95/p99 tokens, success rate, first and
    last seen, and the delta against the previous version (marked when samples are small)."""
    if url:
        params = [("endpoint", endpoint), ("min_samples", str(min_samples)), *scope.params]
        report = api_get(url, "/api/v1/compare/prompt-versions", params)
    else:
        with open_store(db) as store:
            report = compare_prompt_versions(
                store,
                scope.window,
                endpoint=endpoint,
                where=scope.where,
                environment=scope.environment,
                data_mode=scope.data_mode,
                min_samples=min_samples,
            )
    click.echo(render_prompt_versions(report, fmt), nl=False)
