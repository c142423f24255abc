"""The JSON API's analysis routes (``/api/v1/...``), as one WSGI app.

Every route is built from its view's parameter spec (:mod:`spanmeter.analysis.parameters`)
and answered by the view's function (:mod:`spanmeter.analysis.views`), the very ones the
CLI uses: query parameters are the CLI options without the dashes (``from``, ``to``,
``data_mode``, ``where`` repeatable), with the same defaults and the same error messages.
The answer is the JSON document the CLI renders (``format=`` picks another rendering).
Errors are JSON ``{"error": ...}`` with 400 (bad parameters) or 404 (no such route).

Routes:

* ``GET /api/v1/top?by=endpoint_tag&since=24h&where=tenant_id=t1&limit=20``
* ``GET /api/v1/investigate?window=FROM..TO|since=24h&baseline=previous&where=...&format=json|triage|csv|table``
* ``GET /api/v1/compare/prompt-versions?endpoint=X&since=7d&min_samples=30&format=json|csv|table``
* ``GET /api/v1/quality?since=24h&data_mode=real&format=json|table`` (the doctor checklist and score)
* ``GET /api/v1/reprice/preview?from=..&to=..`` (dry run with the receiver's prices; applying
  writes, so it is CLI only) and ``GET /api/v1/reprice/audits?limit=50``
* ``GET /api/v1/reports/weekly?week=2026-W10&format=json|markdown|html``
* ``GET /api/v1/export/requests|rollups?from=..&to=..&format=csv|json|ndjson[&granularity=minute|hour]``
  (streamed)
* ``GET /api/v1/economics?since=30d&max_cost_share=0.3&format=json|csv|table`` (revenue: imported by the CLI)
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final
from urllib.parse import parse_qs

from ..store import SpanStore
from .documents import dump
from .export import REQUEST_COLUMNS, encode, request_records, rollup_columns, rollup_records
from .parameters import EXPORT, ViewArgs, ViewSpec
from .views import VIEWS

__all__ = ["ROUTES", "export_chunks", "make_analysis_api_app"]

_logger = logging.getLogger(__name__)

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]
Query = Mapping[str, list[str]]
Answer = tuple[str, str, Iterable[bytes]]
"""(status, content type, body chunks)."""

_TEXT_TYPES: Final = {
    "json": "application/json",
    "ndjson": "application/x-ndjson",
    "csv": "text/csv; charset=utf-8",
    "triage": "text/markdown; charset=utf-8",
    "markdown": "text/markdown; charset=utf-8",
    "table": "text/plain; charset=utf-8",
    "html": "text/html; charset=utf-8",
}


def export_chunks(store: SpanStore, what: str, args: ViewArgs) -> Iterable[str]:
    """``export requests|rollups`` as encoded text chunks (streamed: nothing is held)."""
    window = args.window
    assert window is not None  # EXPORT is windowed
    if what == "requests":
        records = request_records(
            store, window, where=args.where, environment=args.environment, data_mode=args.data_mode
        )
        return encode(records, REQUEST_COLUMNS, args.fmt)
    granularity = "minute" if args.values["granularity"] == "minute" else "hour"
    rows = rollup_records(store, window, granularity, environment=args.environment, data_mode=args.data_mode)
    return encode(rows, rollup_columns(granularity), args.fmt)


def _view(route: str) -> Route:
    view = VIEWS[route]

    def serve(store: SpanStore, query: Query) -> Answer:
        args = view.spec.parse(query, api=True)
        document = view.answer(store, args)
        if args.fmt == "json":
            return "200 OK", _TEXT_TYPES["json"], [dump(document).encode()]
        return "200 OK", _TEXT_TYPES[args.fmt], [view.render(document, args.fmt).encode()]

    return serve


def _export(what: str, spec: ViewSpec = EXPORT) -> Route:
    def serve(store: SpanStore, query: Query) -> Answer:
        args = spec.parse(query, api=True)  # checked first: once streaming starts, a 400 is too late
        chunks = export_chunks(store, what, args)
        return "200 OK", _TEXT_TYPES[args.fmt], (chunk.encode() for chunk in chunks)

    return serve


Route = Callable[[SpanStore, Query], Answer]
ROUTES: Final[dict[str, Route]] = {
    **{route: _view(route) for route in VIEWS},
    EXPORT.route + "/requests": _export("requests"),
    EXPORT.route + "/rollups": _export("rollups"),
}
"""Path -> handler."""


def make_analysis_api_app(store: SpanStore) -> WSGIApp:
    """The analysis routes over ``store`` (read-only), as a WSGI app."""

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "").rstrip("/")
        route = ROUTES.get(path)
        if route is None:
            return _error(start_response, "404 Not Found", f"no such endpoint: {path}")
        if environ.get("REQUEST_METHOD", "GET") != "GET":
            return _error(start_response, "405 Method Not Allowed", "use GET")
        query = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
        try:
            status, content_type, body = route(store, query)
        except ValueError as error:
            return _error(start_response, "400 Bad Request", str(error))
        except Exception:
            _logger.exception("api: %s failed", path)
            return _error(start_response, "500 Internal Server Error", "internal error")
        headers = [("Content-Type", content_type)]
        if isinstance(body, list):
            headers.append(("Content-Length", str(sum(len(chunk) for chunk in body))))
        start_response(status, headers)
        return body

    return app


def _error(start_response: StartResponse, status: str, message: str) -> list[bytes]:
    data = json.dumps({"error": message}).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
    return [data]
