"""``spanmeter top``: rank spend by a dimension, from the store or a running receiver's API."""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.parse
import urllib.request

import click

from ..analysis import DIMENSIONS, FORMATS, parse_filters, parse_window, render_top, top_report
from ..environment_variables import SPANMETER_DB_PATH
from ..store import SQLiteStore

__all__ = ["top"]


@click.command()
@click.option(
    "--by",
    type=click.Choice(DIMENSIONS),
    default="endpoint_tag",
    show_default=True,
    help="Dimension to rank.",
)
@click.option("--since", help="Window ending now, e.g. 24h, 7d [default 24h].")
@click.option("--from", "start", help="Window start: ISO 8601 (UTC) or Unix seconds.")
@click.option("--to", "end", help="Window end (exclusive) [default now].")
@click.option("--where", multiple=True, help="Filter dim=value (repeatable).")
@click.option("--environment", help="Only this environment.")
@click.option("--data-mode", default="real", show_default=True, help="real, test, demo or all.")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 10_000), help="Groups shown.")
@click.option(
    "--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True, help="Output format."
)
@click.option("--db", help="SQLite store to read [env SPANMETER_DB_PATH; default spanmeter.db].")
@click.option("--url", help="Ask a running receiver instead, e.g. http://127.0.0.1:4318.")
def top(
    by: str,
    since: str | None,
    start: str | None,
    end: str | None,
    where: tuple[str, ...],
    environment: str | None,
    data_mode: str,
    limit: int,
    fmt: str,
    db: str | None,
    url: str | None,
) -> None:
    """Cost, logical requests, attempts and tokens per value of a dimension."""
    try:
        window = parse_window(since, start, end)
        filters = parse_filters(where)
    except ValueError as error:
        raise click.BadParameter(str(error)) from None
    if url:
        report = _from_api(url, by, since, start, end, where, environment, data_mode, limit)
    else:
        path = db or os.environ.get(SPANMETER_DB_PATH) or "spanmeter.db"
        if not os.path.exists(path):
            raise click.ClickException(f"no store at {path}: run `spanmeter serve` first or pass --db")
        store = SQLiteStore(path)
        try:
            report = top_report(
                store,
                by,
                window,
                where=filters,
                environment=environment,
                data_mode=None if data_mode == "all" else data_mode,
                limit=limit,
            )
        except ValueError as error:
            raise click.ClickException(str(error)) from None
        finally:
            store.close()
    click.echo(render_top(report, fmt), nl=False)


def _from_api(
    url: str,
    by: str,
    since: str | None,
    start: str | None,
    end: str | None,
    where: tuple[str, ...],
    environment: str | None,
    data_mode: str,
    limit: int,
) -> dict[str, object]:
    params: list[tuple[str, str]] = [("by", by), ("data_mode", data_mode), ("limit", str(limit))]
    for name, value in (("since", since), ("from", start), ("to", end), ("environment", environment)):
        if value:
            params.append((name, value))
    params += [("where", pair) for pair in where]
    target = url.rstrip("/") + "/api/v1/top?" + urllib.parse.urlencode(params)
    try:
        with urllib.request.urlopen(target, timeout=30) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as error:
        detail = error.read().decode(errors="replace")
        raise click.ClickException(f"{target}: HTTP {error.code}: {detail}") from None
    except (urllib.error.URLError, OSError) as error:
        raise click.ClickException(f"{target}: {error}") from None
