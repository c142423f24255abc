"""``spanmeter export requests|rollups``: stream any window to CSV, JSON or NDJSON."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, TextIO

import click

from ..analysis import parse_filters
from ..analysis.export import (
    EXPORT_FORMATS,
    REQUEST_COLUMNS,
    encode,
    request_records,
    rollup_columns,
    rollup_records,
)
from ..analysis.window_range import resolve_window
from .common import data_mode_value, format_option, open_store

__all__ = ["export"]

_WHAT = ("requests", "rollups")


@click.command()
@click.argument("what", type=click.Choice(_WHAT))
@click.option("--window", "window_text", help="Window FROM..TO (ISO 8601 UTC or Unix seconds).")
@click.option("--from", "start", help="Or: window start.")
@click.option("--to", "end", help="Window end (exclusive) [default now].")
@click.option("--since", help="Or: the window ending now, e.g. 7d [default 24h].")
@click.option("--where", multiple=True, help="Filter dim=value (repeatable; requests only).")
@click.option("--environment", help="Only this environment.")
@click.option("--data-mode", default="real", show_default=True, help="real, test, demo or all.")
@click.option(
    "--granularity",
    type=click.Choice(("minute", "hour")),
    default="hour",
    show_default=True,
    help="Rollups to export.",
)
@format_option(*EXPORT_FORMATS, default="csv")
@click.option(
    "--output", "-o", type=click.Path(dir_okay=False, path_type=Path), help="Write here [default stdout]."
)
@click.option("--db", help="SQLite store to read [env SPANMETER_DB_PATH; default spanmeter.db].")
def export(
    what: str,
    window_text: str | None,
    start: str | None,
    end: str | None,
    since: str | None,
    where: tuple[str, ...],
    environment: str | None,
    data_mode: str,
    granularity: str,
    fmt: str,
    output: Path | None,
    db: str | None,
) -> None:
    """Stream raw requests or rollup rows of a window (progress bar only on a terminal)."""
    try:
        window = resolve_window(window_text, since, start, end)
        filters = parse_filters(where)
    except ValueError as error:
        raise click.BadParameter(str(error)) from None
    mode = data_mode_value(data_mode)
    with open_store(db) as store:
        if what == "requests":
            records: Iterable[Sequence[Any]] = request_records(
                store, window, where=filters, environment=environment, data_mode=mode
            )
            columns: Sequence[str] = REQUEST_COLUMNS
            total = store.count_requests(window.start_ns, window.end_ns, data_mode=mode)
        else:
            level = "minute" if granularity == "minute" else "hour"
            records = rollup_records(store, window, level, environment=environment, data_mode=mode)
            columns, total = rollup_columns(level), 0
        target: TextIO = output.open("w", encoding="utf-8", newline="") if output else sys.stdout
        try:
            if sys.stderr.isatty() and total:
                with click.progressbar(length=total, label=f"exporting {what}", file=sys.stderr) as bar:
                    _write(encode(_counted(records, bar.update), columns, fmt), target)
            else:
                _write(encode(records, columns, fmt), target)
        finally:
            if output:
                target.close()


def _counted(records: Iterable[Sequence[Any]], tick: Any) -> Iterator[Sequence[Any]]:
    for count, record in enumerate(records, start=1):
        if count % 1000 == 0:
            tick(1000)
        yield record


def _write(chunks: Iterable[str], target: TextIO) -> None:
    for chunk in chunks:
        target.write(chunk)
