"""The API's WSGI dispatcher: the one place every request passes through.

In order, for every request: match the path against the route table (404), check the
method (405, with ``Allow``), bound the query (414) and the body (413), parse the query
(:mod:`.params`), identify the caller and :func:`~.access.authorize` it for the route's
scope (a key limited to tenants: only on a route marked ``tenant_scoped``), call the
route with that caller, and map what it raises to a JSON error (:class:`~.http.ApiError`:
its status; ``ValueError``: 400, a bad parameter; ``TimeoutError``: 503 with ``Retry-After``,
a query its runner ended at the time limit, and ``StoreBusy``: 503 with ``Retry-After``, the
store down; anything else: 500, logged). Routes do
none of this themselves, so authentication, tenant scoping and limits are added here once.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any, Final

from ..auth import Authenticator
from ..store import StoreBusy
from .access import authorize, identify
from .http import (
    ApiError,
    Request,
    Response,
    StartResponse,
    WSGIApp,
    error_response,
    json_response,
    status_line,
)
from .openapi import openapi_document
from .params import parse_query
from .routes import Content, Route
from .schemas import OPENAPI

__all__ = ["MAX_BODY_BYTES", "MAX_QUERY_BYTES", "OPENAPI_PATH", "ApiApp", "pattern_match"]

_logger = logging.getLogger(__name__)

MAX_BODY_BYTES: Final = 64 * 1024
"""The largest request body a route reads (an alert's ``ack``: a name and a note)."""
MAX_QUERY_BYTES: Final = 16 * 1024
"""The longest query string (a few dozen filters fit many times over)."""
OPENAPI_PATH: Final = "/api/v1/openapi.json"
_DIGITS: Final = re.compile(r"[0-9]+")
_RETRY_AFTER_S: Final = "5"


class ApiApp:
    """The API as one WSGI app over a route table (plus its own OpenAPI document).

    Mount it with :meth:`mounts` on the receiver's router: ``/api/v1/`` and, when the table
    has them, the health routes.
    """

    def __init__(self, routes: Sequence[Route], *, authenticator: Authenticator | None = None) -> None:
        self._authenticator = authenticator
        table = [*routes]
        table.append(
            Route(
                "GET",
                OPENAPI_PATH,
                "openapi",
                "This document: every route, its parameters and answers (OpenAPI 3.1).",
                "public",
                lambda request: json_response(200, self.openapi),
                content=(Content("application/json", OPENAPI),),
                errors=(),
            )
        )
        self.routes: tuple[Route, ...] = tuple(table)
        self.openapi: Mapping[str, Any] = openapi_document(self.routes)

    def mounts(self) -> dict[str, WSGIApp]:
        """Router key -> this app: the ``/api/v1/`` prefix and each path outside it."""
        mounts: dict[str, WSGIApp] = {"/api/v1/": self}
        mounts.update({route.path: self for route in self.routes if not route.path.startswith("/api/v1/")})
        return mounts

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        path = environ.get("PATH_INFO", "").rstrip("/") or "/"
        try:
            response = self._dispatch(environ, method, path)
        except ApiError as error:
            response = error_response(error)
        except ValueError as error:
            response = error_response(ApiError(400, str(error)))
        except TimeoutError as error:  # a query process killed at the time limit: retry later
            response = error_response(ApiError(503, str(error), [("Retry-After", _RETRY_AFTER_S)]))
        except StoreBusy as error:  # the store down or restarting: retry later, not a bug
            retry_after = str(max(1, math.ceil(error.retry_after_s)))
            response = error_response(
                ApiError(503, f"store unavailable: {error}", [("Retry-After", retry_after)])
            )
        except Exception:
            _logger.exception("api: %s %s failed", method, path)
            response = error_response(ApiError(500, "internal error"))
        return _send(response, start_response)

    def _dispatch(self, environ: dict[str, Any], method: str, path: str) -> Response:
        matches = [
            (route, found) for route in self.routes if (found := pattern_match(route, path)) is not None
        ]
        if not matches:
            raise ApiError(404, f"no such endpoint: {path}")
        chosen = next(((route, found) for route, found in matches if route.allows(method)), None)
        if chosen is None:
            allowed = ", ".join(sorted({route.method for route, _ in matches}))
            raise ApiError(405, f"use {allowed}", [("Allow", allowed)])
        route, path_params = chosen
        query_string = environ.get("QUERY_STRING", "")
        if len(query_string) > MAX_QUERY_BYTES:
            raise ApiError(414, f"query string over {MAX_QUERY_BYTES} bytes")
        request = Request(
            method=method,
            path=path,
            query=parse_query(query_string, drop_all=route.drop_all),
            environ=environ,
            path_params=path_params,
            caller=identify(environ),
            body=_body(environ) if route.body is not None else b"",
        )
        # the one check: every route declares its scope, and whether it answers a key limited
        # to tenants (through .tenancy); the caller it returns names the key and its tenants
        caller = authorize(request, route.scope, self._authenticator, tenant_scoped=route.tenant_scoped)
        return route.handler(request if caller is request.caller else replace(request, caller=caller))


def pattern_match(route: Route, path: str) -> dict[str, str] | None:
    """The path parameters if ``route`` answers ``path`` (an integer parameter is digits)."""
    found = route.pattern.match(path)
    if found is None:
        return None
    values = found.groupdict()
    if any(p.integer and not _DIGITS.fullmatch(values[p.name]) for p in route.path_params):
        return None
    return values


def _body(environ: Mapping[str, Any]) -> bytes:
    """The request body, at most :data:`MAX_BODY_BYTES`."""
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        raise ApiError(400, "bad Content-Length") from None
    if length > MAX_BODY_BYTES:
        raise ApiError(413, "body too large")
    return environ["wsgi.input"].read(length) if length > 0 else b""


def _send(response: Response, start_response: StartResponse) -> Iterable[bytes]:
    headers: list[tuple[str, str]] = []
    if response.content_type is not None:
        headers.append(("Content-Type", response.content_type))
    body = response.body
    if isinstance(body, list) and not any(name == "Content-Length" for name, _ in response.headers):
        headers.append(("Content-Length", str(sum(len(chunk) for chunk in body))))
    start_response(status_line(response.status), [*headers, *response.headers])
    return body
