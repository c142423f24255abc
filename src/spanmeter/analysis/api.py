"""The analysis routes of the JSON API (``/api/v1/...``), as one WSGI app.

Mounted behind ``/api/v1/top`` by :func:`spanmeter.service.api.make_api_app`. Query
parameters mirror the CLI options; every route answers the same document the CLI renders
(``format=`` picks another rendering where the CLI has one). Errors are JSON ``{"error":
...}`` with 400 (bad parameters) or 404 (no such route).

Routes:

* ``GET /api/v1/investigate?window=FROM..TO|since=24h&baseline=previous&where=...&format=json|triage|csv|table``
* ``GET /api/v1/compare/prompt-versions?endpoint=X&since=7d&min_samples=30&format=json|csv|table``
* ``GET /api/v1/quality?since=24h&data_mode=all&format=json|table`` (the doctor checklist and score)
* ``GET /api/v1/reprice/preview?from=..&to=..`` (dry run; applying writes, so it is CLI only) and
  ``GET /api/v1/reprice/audits``
* ``GET /api/v1/reports/weekly?week=2026-W10&format=json|markdown|html``
* ``GET /api/v1/export/requests|rollups?from=..&to=..&format=csv|json|ndjson[&granularity=minute|hour]``
  (streamed)
* ``GET /api/v1/economics?since=30d&max_cost_share=0.3&format=json|csv|table`` (revenue: imported by the CLI)
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Callable, Iterable, Mapping
from fractions import Fraction
from typing import Any, Final
from urllib.parse import parse_qs

from ..pricing import PriceBook
from ..store import SpanStore
from .economics import render_economics, unit_economics
from .export import EXPORT_FORMATS, REQUEST_COLUMNS, encode, request_records, rollup_columns, rollup_records
from .investigate import investigate
from .investigate_render import render_investigate
from .prompt_versions import MIN_SAMPLES, compare_prompt_versions, render_prompt_versions
from .quality import quality_report, render_quality
from .report_render import render_report
from .report_weekly import parse_week, week_alerts, weekly_report
from .reprice import plan_repricing, render_reprice
from .window import TimeWindow, parse_filters
from .window_range import resolve_window

__all__ = ["make_analysis_api_app"]

_logger = logging.getLogger(__name__)

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]
Query = Mapping[str, list[str]]
Answer = tuple[str, str, Iterable[bytes]]
"""(status, content type, body chunks)."""

_TEXT_TYPES: Final = {
    "json": "application/json",
    "csv": "text/csv; charset=utf-8",
    "triage": "text/markdown; charset=utf-8",
    "markdown": "text/markdown; charset=utf-8",
    "table": "text/plain; charset=utf-8",
    "html": "text/html; charset=utf-8",
}


def one(query: Query, name: str, default: str | None = None) -> str | None:
    """The last value of a query parameter (or ``default``)."""
    values = query.get(name)
    return values[-1] if values and values[-1] != "" else default


def scope(query: Query) -> dict[str, Any]:
    """``where``, ``environment`` and ``data_mode`` (default ``real``; ``all`` lifts it)."""
    data_mode = one(query, "data_mode", "real")
    return {
        "where": parse_filters(query.get("where", [])),
        "environment": one(query, "environment"),
        "data_mode": None if data_mode == "all" else data_mode,
    }


def window_of(query: Query, default_since: str = "24h") -> TimeWindow:
    """The window from ``window`` or ``since``/``from``/``to``."""
    return resolve_window(
        one(query, "window"),
        one(query, "since"),
        one(query, "from"),
        one(query, "to"),
        default_since=default_since,
    )


def rendered(document: Any, fmt: str, render: Callable[[Any, str], str] | None) -> Answer:
    """A document as JSON, or rendered as text when a renderer and another format are given."""
    if fmt == "json" or render is None:
        return "200 OK", _TEXT_TYPES["json"], [json.dumps(document).encode()]
    if fmt not in _TEXT_TYPES:
        raise ValueError(f"unknown format {fmt!r}")
    return "200 OK", _TEXT_TYPES[fmt], [render(document, fmt).encode()]


def _investigate(store: SpanStore, query: Query) -> Answer:
    report = investigate(
        store,
        window_of(query),
        one(query, "baseline", "previous") or "previous",
        limit=int(one(query, "limit", "10") or 10),
        **scope(query),
    )
    return rendered(report, one(query, "format", "json") or "json", render_investigate)


def _prompt_versions(store: SpanStore, query: Query) -> Answer:
    report = compare_prompt_versions(
        store,
        window_of(query, "7d"),
        endpoint=one(query, "endpoint"),
        min_samples=int(one(query, "min_samples", str(MIN_SAMPLES)) or MIN_SAMPLES),
        **scope(query),
    )
    return rendered(report, one(query, "format", "json") or "json", render_prompt_versions)


def _economics(store: SpanStore, query: Query) -> Answer:
    report = unit_economics(
        store,
        window_of(query, "7d"),
        limit=int(one(query, "limit", "20") or 20),
        max_cost_share=Fraction(one(query, "max_cost_share", "0.3") or "0.3"),
        **scope(query),
    )
    return rendered(report, one(query, "format", "json") or "json", render_economics)


def _quality(store: SpanStore, query: Query) -> Answer:
    data_mode = one(query, "data_mode", "all")
    report = quality_report(
        store,
        window_of(query),
        environment=one(query, "environment"),
        data_mode=None if data_mode == "all" else data_mode,
    )
    return rendered(report, one(query, "format", "json") or "json", render_quality)


def _reprice_preview(store: SpanStore, query: Query) -> Answer:
    """A dry run with the receiver's price configuration; applying is a CLI action (it writes)."""
    plan = plan_repricing(
        store, window_of(query), PriceBook.from_env(), include_reported=one(query, "include_reported") == "1"
    )
    return rendered(plan.diff, one(query, "format", "json") or "json", render_reprice)


def _reprice_audits(store: SpanStore, query: Query) -> Answer:
    audits = [
        dataclasses.asdict(audit) for audit in store.reprice_audits(int(one(query, "limit", "50") or 50))
    ]
    for audit in audits:
        audit["details"] = json.loads(audit["details"])
    return rendered({"audits": audits}, "json", None)


def _weekly(store: SpanStore, query: Query) -> Answer:
    week = parse_week(one(query, "week"))
    data_mode = one(query, "data_mode", "real")
    report = weekly_report(
        store,
        week,
        environment=one(query, "environment"),
        data_mode=None if data_mode == "all" else data_mode,
        workspace=one(query, "workspace"),
        alerts=week_alerts(store, week),
    )
    return rendered(report, one(query, "format", "json") or "json", render_report)


def _export(what: str) -> Route:
    def route(store: SpanStore, query: Query) -> Answer:
        fmt = one(query, "format", "csv") or "csv"
        if fmt not in EXPORT_FORMATS:  # checked here: once streaming starts, a 400 is too late
            raise ValueError(f"unknown format {fmt!r}: use one of {', '.join(EXPORT_FORMATS)}")
        window = window_of(query)
        if what == "requests":
            records = request_records(store, window, **scope(query))
            columns: tuple[str, ...] = REQUEST_COLUMNS
        else:
            data_mode = one(query, "data_mode", "real")
            granularity = "minute" if one(query, "granularity") == "minute" else "hour"
            records = rollup_records(
                store,
                window,
                granularity,
                environment=one(query, "environment"),
                data_mode=None if data_mode == "all" else data_mode,
            )
            columns = rollup_columns(granularity)
        chunks = encode(records, columns, fmt)
        content_type = (
            _TEXT_TYPES["csv"]
            if fmt == "csv"
            else "application/x-ndjson"
            if fmt == "ndjson"
            else "application/json"
        )
        return "200 OK", content_type, (chunk.encode() for chunk in chunks)

    return route


Route = Callable[[SpanStore, Query], Answer]
ROUTES: dict[str, Route] = {
    "/api/v1/investigate": _investigate,
    "/api/v1/compare/prompt-versions": _prompt_versions,
    "/api/v1/economics": _economics,
    "/api/v1/quality": _quality,
    "/api/v1/reprice/preview": _reprice_preview,
    "/api/v1/reprice/audits": _reprice_audits,
    "/api/v1/reports/weekly": _weekly,
    "/api/v1/export/requests": _export("requests"),
    "/api/v1/export/rollups": _export("rollups"),
}
"""Path -> handler. Other analysis modules add their routes here (see the module docstring)."""


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
