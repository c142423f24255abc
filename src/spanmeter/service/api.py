"""The JSON API (``/api/v1/...``) and health endpoints, as WSGI apps on the OTLP/HTTP port.

Query parameters mirror the CLI options, from the same parameter specs
(:mod:`spanmeter.analysis.parameters`): ``GET /api/v1/top?by=endpoint_tag&since=24h
&where=tenant_id=t1&environment=prod&data_mode=real&limit=20``. ``data_mode`` defaults to
``real``; ``data_mode=all`` lifts the filter. Errors are JSON ``{"error": ...}`` with 400.
The routes themselves are :mod:`spanmeter.analysis.api`'s.

A parameter (or a ``where`` filter) whose value is ``.*`` is dropped: that is the "All"
value of the shipped Grafana dashboards' variables, which feed PromQL regex matchers and
these URLs alike, and here it means "no filter".
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any, Final
from urllib.parse import parse_qsl, urlencode

from ..analysis.api import make_analysis_api_app
from ..store import SpanStore

__all__ = ["make_api_app", "make_health_app"]

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


def _json(start_response: StartResponse, status: str, body: Any) -> list[bytes]:
    data = json.dumps(body).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
    return [data]


_ALL: Final = ".*"
"""The "All" value of the Grafana dashboards' variables (see the module docstring)."""


def _without_all(query_string: str) -> str:
    pairs = parse_qsl(query_string, keep_blank_values=True)
    kept = [(k, v) for k, v in pairs if v != _ALL and not (k == "where" and v.partition("=")[2] == _ALL)]
    return query_string if len(kept) == len(pairs) else urlencode(kept)


def make_api_app(store: SpanStore) -> WSGIApp:
    """``/api/v1/*`` over ``store`` (read-only)."""
    analysis = make_analysis_api_app(store)

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD", "GET") != "GET":
            return _json(start_response, "405 Method Not Allowed", {"error": "use GET"})
        if ".%2A" in environ.get("QUERY_STRING", "").upper() or ".*" in environ.get("QUERY_STRING", ""):
            environ = {**environ, "QUERY_STRING": _without_all(environ["QUERY_STRING"])}
        return analysis(environ, start_response)

    return app


def make_health_app(ready: Callable[[], bool]) -> WSGIApp:
    """``/healthz`` (the process answers) and ``/readyz`` (accepting and storing)."""

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO", "").startswith("/readyz"):
            ok = ready()
            return _json(start_response, "200 OK" if ok else "503 Service Unavailable", {"ready": ok})
        return _json(start_response, "200 OK", {"status": "ok"})

    return app
