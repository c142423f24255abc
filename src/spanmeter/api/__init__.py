"""The JSON API: one WSGI app serving every route of the receiver's HTTP port but OTLP and
``/metrics``.

Layout, each module with one job:

* :mod:`.app`: the dispatcher (routing, methods, limits, the access hooks, errors as JSON);
* :mod:`.access`: who calls and what they may do (:func:`authorize`: API keys, and keys
  limited to tenants refused on routes not marked ``tenant_scoped``; a no-op while there
  is no authentication);
* :mod:`.tenancy`: what a key limited to tenants reads on the scoped routes (the store with
  a forced ``tenant_id`` filter, its budget states and alerts);
* :mod:`.http`: :class:`Request`, :class:`Response`, :class:`ApiError`, the one JSON helper;
* :mod:`.params`: the one query parser (the views hand it to their parameter specs);
* :mod:`.routes`: what a route declares; :mod:`.views`, :mod:`.budgets`, :mod:`.audit` and
  :mod:`.health` build the routes; :mod:`.openapi` the OpenAPI 3.1 document from them
  (served at ``/api/v1/openapi.json``); :mod:`.schemas` the documents' JSON schemas.

It sits above :mod:`spanmeter.analysis`, :mod:`spanmeter.budgets` and
:mod:`spanmeter.store`, which never import it. Example::

    app = make_api(store, budgets=runtime, ready=lambda: True)
    routes = {"/metrics": metrics_app, **app.mounts()}
"""

from __future__ import annotations

import time
from collections.abc import Callable

from ..auth import Authenticator
from ..store import AuditLog, SpanStore
from .access import ANONYMOUS, Caller, Scope, authorize, identify
from .app import MAX_BODY_BYTES, MAX_QUERY_BYTES, OPENAPI_PATH, ApiApp
from .audit import audit_routes
from .budgets import BudgetsSource, budget_routes
from .health import health_routes
from .http import ApiError, Request, Response, WSGIApp, json_response
from .openapi import openapi_document
from .routes import Route
from .views import Job, QueryRunner, view_routes

__all__ = [
    "ANONYMOUS",
    "MAX_BODY_BYTES",
    "MAX_QUERY_BYTES",
    "OPENAPI_PATH",
    "ApiApp",
    "ApiError",
    "BudgetsSource",
    "Caller",
    "Job",
    "QueryRunner",
    "Request",
    "Response",
    "Route",
    "Scope",
    "WSGIApp",
    "authorize",
    "identify",
    "json_response",
    "make_api",
    "openapi_document",
]


def make_api(
    store: SpanStore,
    *,
    budgets: BudgetsSource | None = None,
    ready: Callable[[], bool] | None = None,
    warning: Callable[[], str | None] | None = None,
    authenticator: Authenticator | None = None,
    queries: QueryRunner | None = None,
) -> ApiApp:
    """The API over ``store`` (read-only): the analysis views always, the audit trail when the
    store keeps one, the budgets and alerts routes with ``budgets``, ``/healthz`` and
    ``/readyz`` with ``ready`` (``/readyz`` adding ``warning``'s sentence when it has one);
    API keys checked by ``authenticator`` (None: open); the views' answers computed by
    ``queries`` (None: here)."""
    routes = view_routes(store, queries)
    if isinstance(store, AuditLog):
        routes += audit_routes(store, time.time_ns if budgets is None else budgets.clock)
    if budgets is not None:
        routes += budget_routes(budgets)
    if ready is not None:
        routes += health_routes(ready, warning)
    return ApiApp(routes, authenticator=authenticator)
