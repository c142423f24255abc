"""Options and plumbing shared by the CLI commands that read a store or a running receiver.

Commands read the local store (``--db``) or ask a running receiver's API (``--url``) for the
very same JSON document, then render it locally: the CLI and the API can never disagree.
"""

from __future__ import annotations

import functools
import json
import os
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import click

from ..analysis import TimeWindow, parse_filters
from ..analysis.window_range import resolve_window
from ..environment_variables import SPANMETER_DB_PATH
from ..store import SQLiteStore

__all__ = [
    "ViewScope",
    "api_get",
    "api_request",
    "data_mode_value",
    "format_option",
    "open_store",
    "parse_scope",
    "scope_options",
    "scope_params",
    "source_options",
    "view_options",
    "window_options",
]

F = TypeVar("F", bound=Callable[..., Any])


def format_option(*choices: str, default: str | None = None) -> Callable[[F], F]:
    """``--format`` (stored as ``fmt``) over ``choices``; the first is the default."""
    return click.option(
        "--format",
        "fmt",
        type=click.Choice(choices),
        default=default or choices[0],
        show_default=True,
        help="Output format.",
    )


def window_options(default_since: str, *, noun: str = "Window", window: bool = True) -> Callable[[F], F]:
    """``--window FROM..TO`` (unless ``window`` is false), or ``--since`` (ending now), or
    ``--from``/``--to``: the time range every analysis view takes, resolved by
    :func:`spanmeter.analysis.window_range.resolve_window`."""
    since_help = f"the window ending now, e.g. {default_since} [default {default_since}]."
    start_help = "window start (ISO 8601 UTC or Unix seconds)."

    def decorate(function: F) -> F:
        function = click.option("--to", "end", help="Window end (exclusive) [default now].")(function)
        function = click.option(
            "--from", "start", help=f"Or: {start_help}" if window else "W" + start_help[1:]
        )(function)
        function = click.option("--since", help=f"Or: {since_help}" if window else "T" + since_help[1:])(
            function
        )
        if not window:
            return function
        return click.option(
            "--window", "window_text", help=f"{noun} FROM..TO (ISO 8601 UTC or Unix seconds)."
        )(function)

    return decorate


@dataclass(frozen=True)
class ViewScope:
    """What a view reads: its window, ``--where`` filters, environment and data mode, and
    the same as the API's query parameters (the options as given: the receiver resolves
    them exactly as they are resolved here)."""

    window: TimeWindow
    where: dict[str, str]
    environment: str | None
    data_mode: str | None
    """None: every data mode (``--data-mode all``)."""
    params: list[tuple[str, str | None]]


def view_options(default_since: str, *, noun: str = "Window", window: bool = True) -> Callable[[F], F]:
    """:func:`window_options` and :func:`scope_options`, handed to the command as one
    ``scope`` argument (a :class:`ViewScope`); a window or filter that cannot be read is a
    usage error."""

    def decorate(function: F) -> F:
        @functools.wraps(function)
        def command(
            *args: Any,
            since: str | None,
            start: str | None,
            end: str | None,
            where: tuple[str, ...],
            environment: str | None,
            data_mode: str,
            window_text: str | None = None,
            **kwargs: Any,
        ) -> Any:
            resolved, filters = parse_scope(
                window_text, since, start, end, where, default_since=default_since
            )
            scope = ViewScope(
                window=resolved,
                where=filters,
                environment=environment,
                data_mode=data_mode_value(data_mode),
                params=scope_params(window_text, since, start, end, where, environment, data_mode),
            )
            return function(*args, scope=scope, **kwargs)

        return window_options(default_since, noun=noun, window=window)(scope_options(command))  # type: ignore[return-value]

    return decorate


def scope_options(function: F) -> F:
    """``--where``, ``--environment`` and ``--data-mode``: the scope every view keeps."""
    function = click.option(
        "--data-mode", default="real", show_default=True, help="real, test, demo or all."
    )(function)
    function = click.option("--environment", help="Only this environment.")(function)
    return click.option("--where", multiple=True, help="Filter dim=value (repeatable).")(function)


def source_options(function: F) -> F:
    """``--db`` and ``--url``: read the local store or ask a running receiver."""
    function = click.option("--url", help="Ask a running receiver instead, e.g. http://127.0.0.1:4318.")(
        function
    )
    return click.option("--db", help="SQLite store to read [env SPANMETER_DB_PATH; default spanmeter.db].")(
        function
    )


def parse_scope(
    window_text: str | None,
    since: str | None,
    start: str | None,
    end: str | None,
    where: Sequence[str],
    *,
    default_since: str = "24h",
) -> tuple[TimeWindow, dict[str, str]]:
    """The window and ``--where`` filters of a view; an invalid one is a usage error."""
    try:
        window = resolve_window(window_text, since, start, end, default_since=default_since)
        return window, parse_filters(where)
    except ValueError as error:
        raise click.BadParameter(str(error)) from None


def scope_params(
    window_text: str | None,
    since: str | None,
    start: str | None,
    end: str | None,
    where: Sequence[str],
    environment: str | None,
    data_mode: str,
) -> list[tuple[str, str | None]]:
    """The API query parameters carrying a view's window and scope (the options as given:
    the receiver resolves them exactly as :func:`parse_scope` does here)."""
    params: list[tuple[str, str | None]] = [("window", window_text), ("since", since), ("from", start)]
    params += [("to", end), ("environment", environment), ("data_mode", data_mode)]
    return params + [("where", pair) for pair in where]


def data_mode_value(data_mode: str) -> str | None:
    """``all`` lifts the data-mode filter."""
    return None if data_mode == "all" else data_mode


@contextmanager
def open_store(db: str | None) -> Iterator[SQLiteStore]:
    """The store at ``db`` (or ``SPANMETER_DB_PATH``, or ``spanmeter.db``); it must exist."""
    path = db or os.environ.get(SPANMETER_DB_PATH) or "spanmeter.db"
    if not os.path.exists(path):
        raise click.ClickException(f"no store at {path}: run `spanmeter serve` first, or pass --db or --url")
    store = SQLiteStore(path)
    try:
        yield store
    except ValueError as error:
        raise click.ClickException(str(error)) from None
    finally:
        store.close()


def api_request(url: str, *, body: dict[str, Any] | None = None, raw: bool = False) -> Any:
    """GET ``url`` (or POST ``body`` as JSON); the decoded JSON answer (or the text with ``raw``).

    HTTP and connection errors become ``ClickException`` with the receiver's own message.
    """
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        url, data=data, method="GET" if body is None else "POST", headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            answer = response.read()
    except urllib.error.HTTPError as error:
        detail = error.read().decode(errors="replace")
        raise click.ClickException(f"{url}: HTTP {error.code}: {detail}") from None
    except (urllib.error.URLError, OSError) as error:
        raise click.ClickException(f"{url}: {error}") from None
    return answer.decode() if raw else json.loads(answer)


def api_get(url: str, path: str, params: Sequence[tuple[str, str | None]], *, raw: bool = False) -> Any:
    """GET ``path`` on a receiver with the non-empty ``params``."""
    query = urllib.parse.urlencode([(key, value) for key, value in params if value not in (None, "")])
    return api_request(url.rstrip("/") + path + ("?" + query if query else ""), raw=raw)
