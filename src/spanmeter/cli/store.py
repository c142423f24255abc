"""``spanmeter store copy``: move a store to another one (a SQLite file to PostgreSQL, or back)."""

from __future__ import annotations

import os
import time
from collections.abc import Generator
from contextlib import contextmanager
from pathlib import Path
from typing import Final

import click

from ..store import SpanStore, describe_target, is_postgres_url
from ..store.copy import DEFAULT_CHUNK_ROWS, PARTS, CopyRefused, PartResult, compare_stores, copy_store
from ..store.sqlite.schema import store_problem
from ..store.transfer import TransferStore
from .common import open_store, opened_store

__all__ = ["store"]

_REPORT_EVERY_S: Final = 2.0
_MOST_DIFFERENCES: Final = 50

_PARTS_HELP: Final = "\n    ".join(f"- {part.name}: {part.description}" for part in PARTS)


@click.group()
def store() -> None:
    """Manage a store: copy it to another one."""


def _source_id(target: str) -> str:
    """How the source is named in the target's progress: a URL without its password, or the
    file's absolute path (so a resumed copy finds its progress from any directory)."""
    return describe_target(target) if is_postgres_url(target) else str(Path(target).resolve())


@contextmanager
def _target(target: str) -> Generator[SpanStore, None, None]:
    """The target store, created if it does not exist (a foreign file is never changed)."""
    if not is_postgres_url(target):
        problem = store_problem(target)
        if problem:
            raise click.ClickException(problem)
    opened = opened_store(target)
    try:
        yield opened
    finally:
        opened.close()


def _transfer(opened: SpanStore) -> TransferStore:
    if not isinstance(opened, TransferStore):
        raise click.ClickException(f"the store {opened.location} cannot be copied")
    return opened


class _Progress:
    """Rows copied per part, on stderr: every few seconds, and when a part is done."""

    def __init__(self) -> None:
        self._last = time.monotonic()

    def __call__(self, result: PartResult) -> None:
        now = time.monotonic()
        if result.done or now - self._last >= _REPORT_EVERY_S:
            self._last = now
            state = "done" if result.done else "copying"
            click.echo(f"{result.name}: {result.total:,} copied ({state})", err=True)


@store.command("copy")
@click.option(
    "--from", "source", required=True, help="The store to copy: a SQLite file or a postgresql:// URL."
)
@click.option(
    "--to",
    "target",
    required=True,
    help="The store to copy into, created if needed: a SQLite file or a postgresql:// URL.",
)
@click.option(
    "--chunk-rows",
    default=DEFAULT_CHUNK_ROWS,
    show_default=True,
    type=click.IntRange(1, 1_000_000),
    help="Rows per target transaction.",
)
@click.option("--no-verify", is_flag=True, help="Skip the comparison of the totals at the end.")
def copy_command(source: str, target: str, chunk_rows: int, no_verify: bool) -> None:
    """Copy a store into another one, e.g. --from spanmeter.db --to postgresql://....

    Stop whatever writes to the source first (its receivers): what arrives there during
    the copy may be missed. Copies rows, keys, rollups, budget counters, alerts and API
    keys as stored, without recomputing anything. Rollups are kept longer than raw rows, and are copied as they are. Progress
    is recorded in the target: run the same command again after an interruption and it
    resumes, and a finished copy copies nothing twice. The target must be new or empty,
    or a copy of this source. Ends by comparing, per day and per dimension value, the
    cost, attempts and logical requests of both stores, then the budget counters and the
    alerts (exit status 1 on a difference).

    \b
    Copied, in order:
    {parts}
    """
    if not is_postgres_url(source) and not os.path.exists(source):
        raise click.ClickException(f"no store at {source}")
    with open_store(source) as opened_source, _target(target) as opened_target:
        source_store, target_store = _transfer(opened_source), _transfer(opened_target)
        try:
            results = copy_store(
                source_store,
                target_store,
                source_id=_source_id(source),
                chunk_rows=chunk_rows,
                on_chunk=_Progress(),
            )
        except CopyRefused as error:
            raise click.ClickException(str(error)) from None
        for result in results:
            click.echo(f"{result.name}: {result.copied:,} copied now, {result.total:,} in all")
        if no_verify:
            return
        click.echo("comparing totals per day and dimension, budget counters and alerts...", err=True)
        differences = compare_stores(source_store, target_store)
    if not differences:
        click.echo("OK: the totals per day and dimension, the budget counters and the alerts are equal")
        return
    for difference in differences[:_MOST_DIFFERENCES]:
        click.echo(f"DIFFERENT {difference}")
    if len(differences) > _MOST_DIFFERENCES:
        click.echo(f"... and {len(differences) - _MOST_DIFFERENCES} more differences")
    raise SystemExit(1)


copy_command.help = (copy_command.help or "").replace("{parts}", _PARTS_HELP)
