"""``/api/v1/budgets`` and ``/api/v1/alerts``: status for apps, the inbox for people.

* ``GET /api/v1/budgets``: definitions (rules and channels too; never secrets), with the
  ``fingerprint`` (SHA-256) of the budgets file shown and the ``ledger_fingerprint`` of the
  one the ledger counts with: after editing the file, wait until both are the new file's.
* ``GET /api/v1/budgets/status?tenant_id=acme&endpoint_tag=search``: states of the current
  windows that apply to that traffic (``match=exact`` for states naming the values;
  ``budget=``, ``state=ok|warning|exceeded``). Sends an ``ETag``: an unchanged status
  answers ``304`` to ``If-None-Match``, which keeps :class:`spanmeter.BudgetGuard` polls cheap.
* ``GET /api/v1/alerts?state=open&kind=budget.*&source=&since=24h&limit=50``: newest first.
* ``GET /api/v1/alerts/<id>``: one alert with its context, history and deliveries.
* ``POST /api/v1/alerts/<id>/ack`` (or ``/resolve``), JSON body ``{"by": "...", "note": "..."}``.

Errors are JSON ``{"error": ...}`` with 400, 404 or 405. There is no authentication, like
the rest of the API: bind the receiver to a private address.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Callable, Iterable
from typing import Any, Final, Protocol, cast
from urllib.parse import parse_qs

from ...store import BudgetStore
from ...timeunits import parse_duration
from ..config.watch import ConfigWatcher
from ..definitions.model import DIMENSIONS
from ..delivery.documents import alert_document
from ..ledger.hook import Snapshot
from ..ledger.status import budget_states, status_document
from .documents import budgets_document

__all__ = ["BudgetsSource", "WSGIApp", "make_budgets_api"]

_logger = logging.getLogger(__name__)

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]

_ALERT: Final = re.compile(r"^/api/v1/alerts/(\d{1,18})(?:/(ack|resolve))?/?$")
"""An alert's path; a longer id (past a 64-bit integer) is no alert: 404."""
_MAX_ALERTS: Final = 10_000
"""Most alerts one ``/api/v1/alerts`` answer lists."""
_MAX_BODY: Final = 64 * 1024


class _HTTPError(Exception):
    def __init__(self, status: str, message: str) -> None:
        super().__init__(message)
        self.status = status


def _json(
    start_response: StartResponse, status: str, body: Any, headers: list[tuple[str, str]] | None = None
) -> list[bytes]:
    data = json.dumps(body).encode()
    start_response(
        status,
        [("Content-Type", "application/json"), ("Content-Length", str(len(data))), *(headers or [])],
    )
    return [data]


class BudgetsSource(Protocol):
    """What the routes read and change (:class:`~spanmeter.budgets.BudgetsRuntime` is one):
    the budgets in force, the watcher of their file, the alerts store and the clock."""

    @property
    def budget_store(self) -> BudgetStore: ...
    @property
    def watcher(self) -> ConfigWatcher | None: ...
    @property
    def snapshot(self) -> Snapshot: ...
    @property
    def ledger_fingerprint(self) -> str | None: ...
    @property
    def clock(self) -> Callable[[], int]: ...


def make_budgets_api(runtime: BudgetsSource) -> WSGIApp:
    """The WSGI app of the budgets and alerts endpoints of ``runtime``."""

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        path = environ.get("PATH_INFO", "")
        query = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
        try:
            return _route(runtime, environ, method, path, query, start_response)
        except _HTTPError as error:
            return _json(start_response, error.status, {"error": str(error)})
        except ValueError as error:
            return _json(start_response, "400 Bad Request", {"error": str(error)})
        except Exception:
            _logger.exception("api: %s %s failed", method, path)
            return _json(start_response, "500 Internal Server Error", {"error": "internal error"})

    return app


def _route(
    runtime: BudgetsSource,
    environ: dict[str, Any],
    method: str,
    path: str,
    query: dict[str, list[str]],
    start_response: StartResponse,
) -> list[bytes]:
    """Answer one request; errors are raised (``_HTTPError``, ``ValueError``) for the app
    to turn into JSON."""
    match = _ALERT.match(path)
    if match and match.group(2):
        if method != "POST":
            raise _HTTPError("405 Method Not Allowed", f"use POST for {match.group(2)}")
        return _change(runtime, environ, int(match.group(1)), match.group(2), start_response)
    if method != "GET":
        raise _HTTPError("405 Method Not Allowed", "use GET")
    route = path.rstrip("/")
    if route == "/api/v1/budgets":
        return _budgets(runtime, start_response)
    if route == "/api/v1/budgets/status":
        return _status(runtime, environ, query, start_response)
    if route == "/api/v1/alerts":
        return _alerts(runtime, query, start_response)
    if match:
        record = runtime.budget_store.get_alert(int(match.group(1)))
        if record is None:
            raise _HTTPError("404 Not Found", f"no alert with id {match.group(1)}")
        return _json(start_response, "200 OK", alert_document(record))
    raise _HTTPError("404 Not Found", f"no such endpoint: {path}")


def _one(query: dict[str, list[str]], name: str) -> str | None:
    """The last value of a query parameter (None: absent)."""
    values = query.get(name)
    return values[-1] if values else None


def _budgets(runtime: BudgetsSource, start_response: StartResponse) -> list[bytes]:
    """The definitions, with the fingerprints of the file shown and of the one the ledger
    counts with (equal once an edit is fully applied)."""
    error = runtime.watcher.last_error if runtime.watcher is not None else None
    snapshot = runtime.snapshot
    document = budgets_document(snapshot.config, config_error=error)
    document["fingerprint"] = snapshot.fingerprint
    document["ledger_fingerprint"] = runtime.ledger_fingerprint
    return _json(start_response, "200 OK", document)


def _status(
    runtime: BudgetsSource,
    environ: dict[str, Any],
    query: dict[str, list[str]],
    start_response: StartResponse,
) -> list[bytes]:
    """The states of the current windows that apply to the traffic described by the query,
    with an ETag so an unchanged status answers 304."""
    filters = {dim: values[-1] for dim, values in query.items() if dim in DIMENSIONS and values}
    unknown = sorted(set(query) - set(DIMENSIONS) - {"budget", "state", "match"})
    if unknown:
        raise _HTTPError("400 Bad Request", f"unknown parameter(s) {', '.join(unknown)}")
    match = _one(query, "match") or "applies"
    if match not in ("applies", "exact"):
        raise _HTTPError("400 Bad Request", "match must be applies or exact")
    now = runtime.clock()
    states = budget_states(
        runtime.budget_store,
        runtime.snapshot.index,
        now,
        filters=filters,
        budget=_one(query, "budget"),
        state=_one(query, "state"),
        match=cast(Any, match),
    )
    document = status_document(states, now)
    # The ETag ignores the generation time, so an unchanged status is recognised as such.
    stable = json.dumps(document["states"], sort_keys=True).encode()
    etag = '"' + hashlib.sha256(stable).hexdigest()[:32] + '"'
    if environ.get("HTTP_IF_NONE_MATCH") == etag:
        start_response("304 Not Modified", [("ETag", etag), ("Content-Length", "0")])
        return [b""]
    return _json(start_response, "200 OK", document, [("ETag", etag), ("Cache-Control", "no-cache")])


def _alerts(
    runtime: BudgetsSource, query: dict[str, list[str]], start_response: StartResponse
) -> list[bytes]:
    """The alerts inbox, newest first, filtered by the query."""
    since = _one(query, "since")
    text = (_one(query, "limit") or "50").strip()
    if not (text.isascii() and text.isdigit() and 1 <= int(text) <= _MAX_ALERTS):
        raise ValueError(f"limit: {text[:40]!r} is not a whole number from 1 to {_MAX_ALERTS}")
    limit = int(text)
    records = runtime.budget_store.list_alerts(
        state=_one(query, "state"),
        kind=_one(query, "kind"),
        source=_one(query, "source"),
        since_ns=None if not since else runtime.clock() - parse_duration(since),
        limit=limit,
    )
    return _json(start_response, "200 OK", {"alerts": [alert_document(a) for a in records]})


def _body(environ: dict[str, Any]) -> dict[str, Any]:
    """The request's JSON object body (empty: ``{}``), bounded by ``_MAX_BODY``."""
    length = int(environ.get("CONTENT_LENGTH") or 0)
    if length > _MAX_BODY:
        raise _HTTPError("413 Payload Too Large", "body too large")
    raw = environ["wsgi.input"].read(length) if length else b""
    try:
        parsed: object = json.loads(raw) if raw else {}
    except ValueError:
        raise _HTTPError("400 Bad Request", 'body must be JSON: {"by": ..., "note": ...}') from None
    if not isinstance(parsed, dict):
        raise _HTTPError("400 Bad Request", "body must be a JSON object")
    return cast(dict[str, Any], parsed)


def _change(
    runtime: BudgetsSource,
    environ: dict[str, Any],
    alert_id: int,
    action: str,
    start_response: StartResponse,
) -> list[bytes]:
    """Acknowledge or resolve one alert, by whom and why as the body says."""
    body = _body(environ)
    actor, note = str(body.get("by") or "api"), str(body.get("note") or "")
    try:
        if action == "ack":
            record = runtime.budget_store.acknowledge(
                alert_id, actor=actor, note=note, now_ns=runtime.clock()
            )
        else:
            record = runtime.budget_store.resolve(alert_id, actor=actor, note=note, now_ns=runtime.clock())
    except LookupError as error:
        raise _HTTPError("404 Not Found", str(error)) from None
    return _json(start_response, "200 OK", alert_document(record))
