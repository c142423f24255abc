"""The API's request, response and error types, and its one JSON response helper.

A route handler takes a :class:`Request` and returns a :class:`Response` or raises
:class:`ApiError` (or ``ValueError``, a bad parameter: 400); the dispatcher (:mod:`.app`)
turns both into WSGI. Errors are always ``{"error": "..."}`` with the status.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, Final, TypeAlias

from .access import ANONYMOUS, Caller
from .params import Query, one

__all__ = [
    "JSON",
    "ApiError",
    "Request",
    "Response",
    "StartResponse",
    "WSGIApp",
    "error_response",
    "json_response",
    "status_line",
]

StartResponse: TypeAlias = Callable[..., Any]
WSGIApp: TypeAlias = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]
"""The one WSGI app type of the API (and what the receiver's router mounts)."""
JSON: Final = "application/json"


class ApiError(Exception):
    """An answer other than success, with its status and a message for the caller."""

    def __init__(self, status: int, message: str, headers: Iterable[tuple[str, str]] = ()) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = list(headers)


@dataclass(frozen=True, slots=True)
class Request:
    """One request as a route sees it: who calls, what they ask, nothing of WSGI but the
    environ (for headers and the body)."""

    method: str
    path: str
    """Without a trailing ``/``."""
    query: Query
    """Query parameter -> its values in order (blank values kept)."""
    environ: Mapping[str, Any]
    path_params: Mapping[str, str] = field(default_factory=dict[str, str])
    caller: Caller = ANONYMOUS
    """Who calls (:func:`~.access.identify`); what they may see is theirs to check."""
    body: bytes = b""
    """The request body, read (bounded) only for a route that takes one."""

    def param(self, name: str) -> str | None:
        """The last value of a query parameter (None: absent)."""
        return one(self.query, name)

    def header(self, name: str) -> str | None:
        """A request header (``If-None-Match``...)."""
        return self.environ.get("HTTP_" + name.upper().replace("-", "_"))


@dataclass(frozen=True, slots=True)
class Response:
    """A status, a content type (None: no body) and the body's chunks; a list body gets a
    ``Content-Length``, any other iterable is streamed."""

    status: int
    content_type: str | None
    body: Iterable[bytes]
    headers: list[tuple[str, str]] = field(default_factory=list[tuple[str, str]])


def status_line(status: int) -> str:
    """``404`` -> ``"404 Not Found"``."""
    return f"{status} {HTTPStatus(status).phrase}"


def json_response(status: int, document: Any, headers: Iterable[tuple[str, str]] = ()) -> Response:
    """The one way the API answers JSON."""
    return Response(status, JSON, [json.dumps(document).encode()], list(headers))


def error_response(error: ApiError) -> Response:
    """``{"error": message}`` with the error's status."""
    return json_response(error.status, {"error": error.message}, error.headers)
