"""``spanmeter export requests|rollups``: stream any window to CSV, JSON or NDJSON."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, TextIO

import click

from ..analysis.export import (
    EXPORT_FORMATS,
    REQUEST_COLUMNS,
    encode,
    request_records,
    rollup_columns,
    rollup_records,
)
from .common import ViewScope, format_option, open_store, view_options

__all__ = ["export"]

_WHAT = ("requests", "rollups")


@click.command()
@click.argument("what", type=click.Choice(_WHAT))
@view_options("24h")  # --where applies to requests only
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
    scope: ViewScope,
    granularity: str,
    fmt: str,
    output: Path | None,
    db: str | None,
) -> None:
    """Stream raw requests or rollup rows of a window (progress bar only on a terminal)."""
    window, environment, mode = scope.window, scope.environment, scope.data_mode
    with open_store(db) as store:
        if what == "requests":
            records: Iterable[Sequence[Any]] = request_records(
                store, window, where=scope.where, environment=environment, data_mode=mode
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
