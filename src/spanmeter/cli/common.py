"""Options and plumbing shared by the CLI commands that read a store or a running receiver.

Commands read a store (``--store``, a file or a ``postgresql://`` URL; ``--db`` is the same option) or ask a running receiver's API (``--url``, or
``SPANMETER_URL`` when neither is given) for the very same JSON document, then render it
locally: the CLI and the API can never disagree. A view's options are built from its
parameter spec (:mod:`spanmeter.analysis.parameters`), the one the API route is built from.
"""

from __future__ import annotations

import functools
import getpass
import http.client
import json
import os
import sqlite3
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Generator, Iterator, Sequence
from contextlib import contextmanager, suppress
from typing import IO, Any, TypeVar

import click

from ..analysis import TimeWindow, parse_filters
from ..analysis.parameters import DATA_MODE_CHOICES, ViewArgs, ViewSpec
from ..analysis.window_range import resolve_window
from ..environment_variables import SPANMETER_API_KEY, SPANMETER_DB_PATH, SPANMETER_STORE, SPANMETER_URL
from ..store import BudgetStore, SpanStore, SupportsBudgets, describe_target, is_postgres_url
from ..store import open_store as store_factory_open
from ..store.sqlite.schema import store_problem

__all__ = [
    "API_KEY_HELP",
    "DB_HELP",
    "URL_HELP",
    "api_get",
    "api_request",
    "api_stream",
    "budgets_of",
    "cli_actor",
    "data_mode_value",
    "first_line",
    "format_option",
    "is_driver_error",
    "open_store",
    "opened_store",
    "parse_scope",
    "receiver_url",
    "source_options",
    "spec_options",
    "store_option",
    "store_target",
    "url_option",
    "view_document",
    "window_options",
]

DB_HELP = (
    "Store to read: a SQLite file or a postgresql:// URL"
    " [env SPANMETER_STORE or SPANMETER_DB_PATH; default spanmeter.db]."
)
URL_HELP = "Ask a running receiver's HTTP port instead, e.g. http://127.0.0.1:4318 [env SPANMETER_URL]."
API_KEY_HELP = (
    "API key sent to the receiver with --url as Authorization: Bearer (a read key; admin to"
    " acknowledge or resolve alerts) [env SPANMETER_API_KEY, which keeps it out of the process list]."
)
_API_KEY = "spanmeter.api_key"
"""Where ``--api-key`` is kept in the click context's ``meta`` (shared by nested contexts),
so that the one function sending requests finds it without every command passing it on."""

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


def data_mode_value(data_mode: str) -> str | None:
    """``all`` lifts the data-mode filter; anything but a data mode or ``all`` is a usage error."""
    if data_mode not in DATA_MODE_CHOICES:
        raise click.BadParameter(
            f"data_mode: {data_mode!r} is not one of {', '.join(DATA_MODE_CHOICES)}", param_hint="--data-mode"
        )
    return None if data_mode == "all" else data_mode


def spec_options(
    spec: ViewSpec, *, skip: Sequence[str] = (), window_optional: bool = False
) -> Callable[[F], F]:
    """The options of ``spec``'s parameters (but ``skip``), handed to the command as one
    ``args`` argument (a :class:`~spanmeter.analysis.parameters.ViewArgs`).

    Every option is read by :meth:`ViewSpec.parse`, like the API's query parameters, so the
    defaults and error messages are the API's; an invalid value is a usage error.
    """
    params = [param for param in spec.all_params if param.name not in skip]

    def decorate(function: F) -> F:
        @functools.wraps(function)
        def command(*args: Any, **kwargs: Any) -> Any:
            raw = {param.name: kwargs.pop(_dest(param.name)) for param in params}
            if "format" not in raw:
                raw["format"] = None
            try:
                given = {name: value for name, value in raw.items() if value not in (None, False)}
                view_args = spec.parse(given, window_optional=window_optional)
            except ValueError as error:
                raise click.BadParameter(str(error)) from None
            return function(*args, args=view_args, **kwargs)

        decorated: Any = command
        for param in reversed(params):
            names = [param.option, _dest(param.name)]
            if param.flag:
                decorated = click.option(*names, is_flag=True, default=False, help=param.describe())(
                    decorated
                )
            else:
                decorated = click.option(
                    *names,
                    multiple=param.multiple,
                    metavar="|".join(param.choices)
                    if 1 < len(param.choices) <= 8
                    else ("INTEGER" if param.integer else None),
                    help=param.describe(),
                )(decorated)
        return decorated  # type: ignore[no-any-return]

    return decorate


def _dest(name: str) -> str:
    return f"param_{name}"


def store_option(help_text: str = DB_HELP) -> Callable[[F], F]:
    """``--store`` (or its older name ``--db``), passed as ``db``: a SQLite file or a
    ``postgresql://`` URL, opened by :func:`open_store`."""
    return click.option("--store", "--db", "db", help=help_text)


def url_option(help_text: str = URL_HELP) -> Callable[[F], F]:
    """``--url`` (passed as ``url``) and ``--api-key`` with it: every command that can ask a
    receiver takes both. The key is not passed to the command: :func:`api_request` and
    :func:`api_stream` send it (else ``SPANMETER_API_KEY``)."""

    def remember(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
        if value:
            ctx.meta[_API_KEY] = value.strip()

    def decorate(function: F) -> F:
        function = click.option(
            "--api-key", metavar="KEY", expose_value=False, callback=remember, help=API_KEY_HELP
        )(function)
        return click.option("--url", help=help_text)(function)

    return decorate


def source_options(function: F) -> F:
    """``--store``/``--db`` and ``--url`` (with ``--api-key``): read a store or ask a running
    receiver."""
    function = url_option()(function)
    return store_option()(function)


def _api_key() -> str:
    """The key to send: ``--api-key``, else ``SPANMETER_API_KEY``, else none (empty)."""
    context = click.get_current_context(silent=True)
    given = None if context is None else context.meta.get(_API_KEY)
    return str(given or os.environ.get(SPANMETER_API_KEY, "")).strip()


def receiver_url(url: str | None, *, local: bool = False) -> str | None:
    """The receiver to ask: ``--url``, else ``SPANMETER_URL`` unless a local source was given
    (``local``: ``--db`` or a file), else None (read the store). A URL without ``http://``
    or ``https://`` and a host is a usage error."""
    chosen = url or (None if local else os.environ.get(SPANMETER_URL) or None)
    if not chosen:
        return None
    parsed = urllib.parse.urlsplit(chosen)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        source = "--url" if url else SPANMETER_URL
        raise click.UsageError(
            f"{source} {chosen!r}: give the receiver's HTTP address with its scheme, e.g. http://127.0.0.1:4318"
        )
    return chosen.rstrip("/")


def is_driver_error(error: BaseException) -> bool:
    """An error of the PostgreSQL driver (psycopg is an optional extra, so not imported to
    name its classes): the database is down, refuses the login, or the URL is wrong."""
    return type(error).__module__.startswith(("psycopg", "psycopg_pool"))


def first_line(error: BaseException) -> str:
    """The first line of an error's text (drivers add hints and context on further lines)."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def cli_actor() -> str:
    """Who the audit trail names for a change made on the command line: ``cli:<os user>``
    (``cli:unknown`` where the system cannot say)."""
    try:
        return f"cli:{getpass.getuser()}"
    except Exception:  # no login name and no passwd entry (some containers): still record the change
        return "cli:unknown"


def budgets_of(store: SpanStore) -> BudgetStore:
    """The budgets and alerts side of ``store`` (SQLite and PostgreSQL stores hold one), or a
    one-line error for a store without one."""
    if not isinstance(store, SupportsBudgets):
        raise click.ClickException(f"the store {store.location} holds no budgets or alerts")
    return store.budget_store


def store_target(db: str | None) -> str:
    """The store asked for: ``db``, else ``SPANMETER_STORE``, else ``SPANMETER_DB_PATH``, else
    ``spanmeter.db``."""
    return db or os.environ.get(SPANMETER_STORE) or os.environ.get(SPANMETER_DB_PATH) or "spanmeter.db"


@contextmanager
def open_store(db: str | None, *, create: bool = False) -> Generator[SpanStore, None, None]:
    """The store at ``db`` (see :func:`store_target`). A file must exist (``create``: or is
    made, for commands that prepare a store before its receiver starts) and be a spanmeter
    store (a foreign file is never changed); a PostgreSQL database is migrated if needed."""
    path = store_target(db)
    if is_postgres_url(path) or (create and not os.path.exists(path)):
        with _opened(path) as store:
            yield store
        return
    if not os.path.exists(path):
        raise click.ClickException(f"no store at {path}: run `spanmeter serve` first, or pass --db or --url")
    problem = store_problem(path) or (
        None if os.path.getsize(path) else f"{path} is an empty file, not a store"
    )
    if problem:
        raise click.ClickException(problem)
    with _opened(path) as store:
        yield store


def opened_store(target: str) -> SpanStore:
    """The store at ``target``, opened; failing to open it is one line for the user (the
    store's own refusal, or the driver's first line; a URL's password never shown).

    Raises:
        click.ClickException: the store could not be opened.
    """
    try:
        return store_factory_open(target)
    except (sqlite3.Error, OSError, RuntimeError, ValueError) as error:
        raise click.ClickException(f"cannot open the store {describe_target(target)}: {error}") from None
    except Exception as error:
        if not is_driver_error(error):
            raise
        raise click.ClickException(
            f"cannot open the store {describe_target(target)}: {first_line(error)}"
        ) from None


@contextmanager
def _opened(target: str) -> Generator[SpanStore, None, None]:
    """The store at ``target`` (see :func:`opened_store`), its usage errors turned into
    one-line messages too."""
    store = opened_store(target)
    try:
        yield store
    except ValueError as error:
        raise click.ClickException(str(error)) from None
    finally:
        store.close()


def _open(url: str, body: dict[str, Any] | None) -> IO[bytes]:
    data = None if body is None else json.dumps(body).encode()
    headers = {"Content-Type": "application/json"}
    key = _api_key()
    if key:  # the receiver's API key (spanmeter keys create): sent, never printed
        headers["Authorization"] = f"Bearer {key}"
    request = urllib.request.Request(
        url, data=data, method="GET" if body is None else "POST", headers=headers
    )
    try:
        return urllib.request.urlopen(request, timeout=60)
    except urllib.error.HTTPError as error:
        detail = error.read().decode(errors="replace")
        error.close()
        with suppress(ValueError, KeyError, TypeError):
            detail = json.loads(detail)["error"]
        if error.code == 401 and not key:
            detail += f" (pass --api-key or set {SPANMETER_API_KEY})"
        elif error.code == 403:  # the receiver's message names the scope the key lacks
            detail += " (use a key with that scope: spanmeter keys create --scope ...)"
        raise click.ClickException(f"{url}: HTTP {error.code}: {detail}") from None
    except (http.client.HTTPException, ConnectionError) as error:
        raise click.ClickException(_not_http(url, error)) from None
    except (urllib.error.URLError, OSError, ValueError) as error:
        reason = getattr(error, "reason", error)
        raise click.ClickException(f"{url}: cannot reach the receiver: {reason}") from None


def _not_http(url: str, error: object) -> str:
    return (
        f"{url}: the server did not answer HTTP ({type(error).__name__}); is this the receiver's"
        " HTTP port (4318 by default) and not its gRPC port (4317)?"
    )


def api_request(url: str, *, body: dict[str, Any] | None = None, raw: bool = False) -> Any:
    """GET ``url`` (or POST ``body`` as JSON); the decoded JSON answer (or the text with ``raw``).

    HTTP and connection errors become ``ClickException`` with the receiver's own message; an
    answer that is not the API's (another server, the gRPC port) says so.
    """
    with _open(url, body) as response:
        try:
            answer = response.read()
        except (http.client.HTTPException, OSError) as error:
            raise click.ClickException(_not_http(url, error)) from None
    if raw:
        return answer.decode(errors="replace")
    try:
        return json.loads(answer)
    except ValueError:
        raise click.ClickException(f"{url}: the answer is not JSON: is this a spanmeter receiver?") from None


def api_get(url: str, path: str, params: Sequence[tuple[str, str | None]], *, raw: bool = False) -> Any:
    """GET ``path`` on a receiver with the non-empty ``params``."""
    return api_request(_url(url, path, params), raw=raw)


def api_stream(url: str, path: str, params: Sequence[tuple[str, str | None]]) -> Iterator[bytes]:
    """GET ``path`` on a receiver, its body in chunks as they arrive (for exports)."""
    full = _url(url, path, params)
    with _open(full, None) as response:
        while True:
            try:
                chunk = response.read(64 * 1024)
            except (http.client.HTTPException, OSError) as error:
                raise click.ClickException(_not_http(full, error)) from None
            if not chunk:
                return
            yield chunk


def _url(url: str, path: str, params: Sequence[tuple[str, str | None]]) -> str:
    query = urllib.parse.urlencode([(key, value) for key, value in params if value not in (None, "")])
    return url.rstrip("/") + path + ("?" + query if query else "")


def view_document(spec: ViewSpec, args: ViewArgs, db: str | None, url: str | None) -> Any:
    """The document of ``spec``'s view: from the receiver at ``url`` (or ``SPANMETER_URL``
    unless ``db`` is given), else computed from the store."""
    from ..analysis.views import answer  # here: only the commands that show a view need it

    base = receiver_url(url, local=bool(db))
    if base:
        return api_get(base, spec.route, [*args.query, ("format", "json")])
    with open_store(db) as store:
        return answer(spec, store, args)
