"""Options and plumbing shared by the analysis commands (investigate, compare, economics...).

Every analysis command reads the local store (``--db``) or asks a running receiver's API
(``--url``) for the very same JSON document, then renders it locally: the CLI and the API
can never disagree.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

import click

from ..environment_variables import SPANMETER_DB_PATH
from ..store import SQLiteStore

__all__ = ["api_get", "data_mode_value", "open_store", "scope_options", "source_options"]

F = TypeVar("F", bound=Callable[..., Any])


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


def data_mode_value(data_mode: str) -> str | None:
    """``all`` lifts the data-mode filter."""
    return None if data_mode == "all" else data_mode


@contextmanager
def open_store(db: str | None) -> Iterator[SQLiteStore]:
    """The store at ``db`` (or ``SPANMETER_DB_PATH``, or ``spanmeter.db``); it must exist."""
    path = db or os.environ.get(SPANMETER_DB_PATH) or "spanmeter.db"
    if not os.path.exists(path):
        raise click.ClickException(f"no store at {path}: run `spanmeter serve` first or pass --db")
    store = SQLiteStore(path)
    try:
        yield store
    except ValueError as error:
        raise click.ClickException(str(error)) from None
    finally:
        store.close()


def api_get(url: str, path: str, params: Sequence[tuple[str, str | None]], *, raw: bool = False) -> Any:
    """GET ``path`` on a receiver; the decoded JSON document (or the text body with ``raw``)."""
    query = urllib.parse.urlencode([(key, value) for key, value in params if value not in (None, "")])
    target = url.rstrip("/") + path + ("?" + query if query else "")
    try:
        with urllib.request.urlopen(target, timeout=60) as response:
            body = response.read()
    except urllib.error.HTTPError as error:
        detail = error.read().decode(errors="replace")
        raise click.ClickException(f"{target}: HTTP {error.code}: {detail}") from None
    except (urllib.error.URLError, OSError) as error:
        raise click.ClickException(f"{target}: {error}") from None
    return body.decode() if raw else json.loads(body)
