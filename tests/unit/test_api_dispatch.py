"""The API's dispatcher: every request passes the one access check with its route's scope
before the route runs, and what the check or the route raises becomes a JSON error."""

from __future__ import annotations

import json
from typing import Any

import pytest

import spanmeter.api.app as app_module
from spanmeter.api import ApiApp, ApiError, Caller, Request, Route, json_response
from spanmeter.api.access import SCOPES
from spanmeter.api.budgets import budget_routes
from spanmeter.api.health import health_routes
from spanmeter.api.views import view_routes


def _call(app: ApiApp, path: str, method: str = "GET", query: str = "") -> tuple[str, dict[str, str], Any]:
    seen: list[tuple[str, list[tuple[str, str]]]] = []
    environ = {"PATH_INFO": path, "REQUEST_METHOD": method, "QUERY_STRING": query}

    def start_response(status: str, headers: list[tuple[str, str]]) -> None:
        seen.append((status, headers))

    body = b"".join(app(environ, start_response))
    status, headers = seen[0]
    return status, dict(headers), json.loads(body) if body else None


def _echo(request: Request) -> Any:
    return json_response(200, {"query": dict(request.query), "caller": request.caller.name})


def test_every_request_is_authorized_once_with_its_routes_scope(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, str, bool]] = []

    def record(request: Request, scope: str, authenticator: object = None, *, tenant_scoped: bool) -> Caller:
        calls.append((request.path, scope, tenant_scoped))
        return request.caller  # authorize's answer: the caller the route sees

    monkeypatch.setattr(app_module, "authorize", record)
    app = ApiApp(
        [Route("GET", "/api/v1/echo", "echo", "Echo.", "views:read", _echo), *health_routes(lambda: True)]
    )
    assert _call(app, "/api/v1/echo", query="a=1&a=2")[2] == {
        "query": {"a": ["1", "2"]},
        "caller": "anonymous",
    }
    assert _call(app, "/healthz")[0] == "200 OK"
    assert _call(app, "/api/v1/nothing")[0] == "404 Not Found"  # no route: nothing to authorize
    assert calls == [("/api/v1/echo", "views:read", False), ("/healthz", "public", False)]


def test_a_refusal_stops_the_route_and_is_a_json_error(monkeypatch: pytest.MonkeyPatch) -> None:
    ran: list[str] = []

    def refuse(request: Request, scope: str, authenticator: object = None, *, tenant_scoped: bool) -> None:
        raise ApiError(403, f"{request.caller.name} may not {scope}")

    def route(request: Request) -> Any:
        ran.append(request.path)
        return json_response(200, {})

    monkeypatch.setattr(app_module, "authorize", refuse)
    app = ApiApp([Route("POST", "/api/v1/alerts/{id}/ack", "ack", "Ack.", "alerts:write", route)])
    status, headers, body = _call(app, "/api/v1/alerts/7/ack", "POST")
    assert (status, headers["Content-Type"], body) == (
        "403 Forbidden",
        "application/json",
        {"error": "anonymous may not alerts:write"},
    )
    assert ran == []


def test_errors_map_to_statuses_and_a_crash_to_a_bare_500() -> None:
    def bad(request: Request) -> Any:
        raise ValueError("limit: 'x' is not a whole number")

    def crash(request: Request) -> Any:
        raise RuntimeError("secret detail")

    app = ApiApp(
        [
            Route("GET", "/api/v1/bad", "bad", "Bad.", "views:read", bad),
            Route("GET", "/api/v1/crash", "crash", "Crash.", "views:read", crash),
        ]
    )
    assert _call(app, "/api/v1/bad")[::2] == (
        "400 Bad Request",
        {"error": "limit: 'x' is not a whole number"},
    )
    assert _call(app, "/api/v1/crash")[::2] == ("500 Internal Server Error", {"error": "internal error"})
    status, headers, _ = _call(app, "/api/v1/bad", "DELETE")
    assert (status, headers["Allow"]) == ("405 Method Not Allowed", "GET")


def test_every_route_of_the_receiver_declares_a_known_scope() -> None:
    unused: Any = object()  # the routes' handlers are not called: no store needed
    app = ApiApp([*view_routes(unused), *budget_routes(unused), *health_routes(lambda: True)])
    scopes = {(route.method, route.path): route.scope for route in app.routes}
    assert len(scopes) == len(app.routes) == 19
    for (method, path), scope in scopes.items():
        assert scope in SCOPES, (method, path)
    assert scopes["POST", "/api/v1/alerts/{id}/ack"] == "alerts:write"
    assert scopes["GET", "/api/v1/export/requests"] == "export:read"
    assert scopes["GET", "/healthz"] == "public"
