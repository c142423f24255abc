"""``spanmeter export requests|rollups``: stream any window to CSV, JSON or NDJSON."""

from __future__ import annotations

import codecs
import os
import sys
from collections.abc import Generator, Iterable, Iterator
from pathlib import Path
from typing import Any, TextIO

import click

from ..analysis.parameters import EXPORT, ViewArgs
from ..analysis.views import export_chunks
from .common import api_stream, open_store, receiver_url, source_options, spec_options

__all__ = ["export"]

_WHAT = ("requests", "rollups")


@click.command()
@click.argument("what", type=click.Choice(_WHAT))
@spec_options(EXPORT)  # --where applies to requests only
@click.option(
    "--output", "-o", type=click.Path(dir_okay=False, path_type=Path), help="Write here [default stdout]."
)
@source_options
def export(what: str, args: ViewArgs, output: Path | None, db: str | None, url: str | None) -> None:
    """Stream raw requests or rollup rows of a window (progress bar only on a terminal)."""
    base = receiver_url(url, local=bool(db))
    if base:
        query = [*args.query, ("format", args.fmt)]
        _deliver(_decoded(api_stream(base, f"{EXPORT.route}/{what}", query)), output)
        return
    window = args.window
    assert window is not None  # EXPORT is windowed
    with open_store(db) as store:
        total = 0
        if what == "requests" and sys.stderr.isatty():
            total = store.count_requests(window.start_ns, window.end_ns, data_mode=args.data_mode)
        _deliver(export_chunks(store, what, args), output, total=total, label=f"exporting {what}")


def _deliver(chunks: Iterable[str], output: Path | None, *, total: int = 0, label: str = "") -> None:
    """Write the chunks; a reader that stops early (``| head``) ends the export quietly, the
    way other Unix tools stop, with the store's cursor closed while the store is open."""
    target: TextIO = output.open("w", encoding="utf-8", newline="") if output else sys.stdout
    try:
        if total:
            with click.progressbar(length=total, label=label, file=sys.stderr) as bar:
                _write(_counted(chunks, bar.update), target)
        else:
            _write(chunks, target)
        target.flush()
    except BrokenPipeError:
        if isinstance(chunks, Generator):
            chunks.close()
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # nothing left to flush into the closed pipe at exit
        raise SystemExit(1) from None
    finally:
        if output:
            target.close()


def _decoded(chunks: Iterable[bytes]) -> Iterator[str]:
    decoder = codecs.getincrementaldecoder("utf-8")()  # a character may straddle two chunks
    for chunk in chunks:
        yield decoder.decode(chunk)
    yield decoder.decode(b"", final=True)


def _counted(chunks: Iterable[str], tick: Any) -> Iterator[str]:
    for chunk in chunks:
        tick(max(chunk.count("\n"), 1))
        yield chunk


def _write(chunks: Iterable[str], target: TextIO) -> None:
    for chunk in chunks:
        target.write(chunk)
