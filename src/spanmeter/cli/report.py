"""``spanmeter report weekly``: the weekly AI spend review as markdown or self-contained HTML."""

from __future__ import annotations

from pathlib import Path

import click

from ..analysis.report_render import REPORT_FORMATS, render_report
from ..analysis.report_weekly import parse_week, week_alerts, weekly_report
from .common import api_get, data_mode_value, format_option, open_store, source_options

__all__ = ["report"]


@click.group()
def report() -> None:
    """Reports filled from the store."""


@report.command()
@click.option("--week", help="ISO week (2026-W10) or a date inside it [default: last complete week].")
@click.option("--environment", help="Only this environment.")
@click.option("--data-mode", default="real", show_default=True, help="real, test, demo or all.")
@click.option("--workspace", help="Name shown in the header [default: spanmeter].")
@format_option(*REPORT_FORMATS, default="markdown")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), help="Write to this file.")
@source_options
def weekly(
    week: str | None,
    environment: str | None,
    data_mode: str,
    workspace: str | None,
    fmt: str,
    output: Path | None,
    db: str | None,
    url: str | None,
) -> None:
    """Top drivers by endpoint and tenant/user, prompt-version changes with cost/request
    deltas, budgets and alerts of the week, decisions and one durable control."""
    try:
        window = parse_week(week)
    except ValueError as error:
        raise click.BadParameter(str(error)) from None
    if url:
        params = [
            ("week", week),
            ("environment", environment),
            ("data_mode", data_mode),
            ("workspace", workspace),
        ]
        document = api_get(url, "/api/v1/reports/weekly", params)
    else:
        with open_store(db) as store:
            document = weekly_report(
                store,
                window,
                environment=environment,
                data_mode=data_mode_value(data_mode),
                workspace=workspace,
                alerts=week_alerts(store, window),
            )
    text = render_report(document, fmt)
    if output:
        output.write_text(text, encoding="utf-8")
        click.echo(f"wrote {output}", err=True)
    else:
        click.echo(text, nl=False)
