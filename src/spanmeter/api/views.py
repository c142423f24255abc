"""The analysis routes: one per view of :data:`spanmeter.analysis.views.VIEWS` and the two
exports, each built from its view's parameter spec (:mod:`spanmeter.analysis.parameters`),
the one the CLI builds its options from.

Query parameters are the CLI options without the dashes (``from``, ``to``, ``data_mode``,
``where`` repeatable), with the same defaults and the same error messages; unknown ones are
ignored. The answer is the JSON document the CLI renders (``format=`` picks another
rendering, the CLI's). ``GET /api/v1/export/requests|rollups`` streams (the parameters
are checked first: once streaming starts, a 400 is too late).

Parameters are parsed and checked here, in the dispatcher's process; the answer itself is
computed by a :class:`QueryRunner`: in this process by default, or in a query process of
the receiver's (:mod:`spanmeter.service.query_process`), which sends back the same bytes.

Every view reads the store through :func:`~.tenancy.scoped_store` (wherever the job runs:
the caller's tenants travel with it), so a key limited to tenants gets its tenants' answer;
but the re-pricing audits, a record of changes to every tenant's rows (:data:`GLOBAL_VIEWS`),
which such a key is refused.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final, Protocol

from ..analysis.parameters import EXPORT, REPRICE_AUDITS, ViewArgs, ViewSpec
from ..analysis.views import VIEWS, View, export_body, export_chunks, view_body
from ..store import SpanStore
from .access import Scope
from .http import JSON, Request, Response
from .routes import Content, Route
from .schemas import VIEW
from .tenancy import scoped_store

__all__ = ["GLOBAL_VIEWS", "MEDIA_TYPES", "Job", "QueryRunner", "view_routes"]

GLOBAL_VIEWS: Final = frozenset({REPRICE_AUDITS.route})
"""Views about every tenant at once, refused to a key limited to tenants (403)."""

MEDIA_TYPES: Final = {
    "json": JSON,
    "ndjson": "application/x-ndjson",
    "csv": "text/csv; charset=utf-8",
    "triage": "text/markdown; charset=utf-8",
    "markdown": "text/markdown; charset=utf-8",
    "table": "text/plain; charset=utf-8",
    "html": "text/html; charset=utf-8",
}
"""Each rendering's content type."""

Tenants = frozenset[str] | None
"""The caller's tenants (None: every tenant), which a job reads the store as."""
Job = Callable[[SpanStore, str, ViewArgs, Tenants], bytes]
"""A query: ``job(store, name, args, tenants)`` -> the answer's body (module-level, so it pickles)."""


class QueryRunner(Protocol):
    """Runs a :data:`Job` on a store of its own and returns its body, or raises what the job
    raised (``ValueError``: a bad parameter, 400) or another error (500)."""

    def __call__(self, job: Job, name: str, args: ViewArgs, tenants: Tenants, /) -> bytes: ...


def _content(spec: ViewSpec, json_schema: Mapping[str, Any] = VIEW) -> tuple[Content, ...]:
    """The content types a view answers with, its API default first."""
    formats = [spec.api_format, *(f for f in spec.formats if f != spec.api_format)]
    seen: dict[str, Content] = {}
    for fmt in formats:
        media = MEDIA_TYPES[fmt].split(";")[0]
        if media not in seen:
            seen[media] = Content(media, json_schema if media == JSON else None)
    return tuple(seen.values())


def _operation(spec: ViewSpec) -> str:
    return spec.route.removeprefix("/api/v1/").replace("/", "_").replace("-", "_")


def _in_process(store: SpanStore) -> QueryRunner:
    def run(job: Job, name: str, args: ViewArgs, tenants: Tenants, /) -> bytes:
        return job(store, name, args, tenants)

    return run


def scoped_view_body(store: SpanStore, route: str, args: ViewArgs, tenants: Tenants) -> bytes:
    """:func:`~spanmeter.analysis.views.view_body` over the caller's tenants only (a job: it
    runs here or in a query process, which builds the same scoped store)."""
    return view_body(scoped_store(store, tenants), route, args)


def scoped_export_body(store: SpanStore, what: str, args: ViewArgs, tenants: Tenants) -> bytes:
    """:func:`~spanmeter.analysis.views.export_body` over the caller's tenants only."""
    return export_body(scoped_store(store, tenants), what, args)


def _view_route(store: SpanStore, view: View, queries: QueryRunner | None) -> Route:
    spec = view.spec

    def handle(request: Request) -> Response:
        args = spec.parse(request.query, api=True)
        run = queries if queries is not None else _in_process(store)
        return Response(
            200, MEDIA_TYPES[args.fmt], [run(scoped_view_body, spec.route, args, request.caller.tenants)]
        )

    scope: Scope = "views:read"
    return Route(
        "GET",
        spec.route,
        _operation(spec),
        f"What `spanmeter {spec.name}` answers.",
        scope,
        handle,
        params=spec.all_params,
        content=_content(spec),
        drop_all=True,
        tenant_scoped=spec.route not in GLOBAL_VIEWS,
    )


def _export_route(store: SpanStore, what: str, queries: QueryRunner | None, spec: ViewSpec = EXPORT) -> Route:
    def handle(request: Request) -> Response:
        args = spec.parse(request.query, api=True)  # checked first: once streaming starts, a 400 is too late
        tenants = request.caller.tenants
        body: Iterable[bytes]
        if queries is None:
            body = (chunk.encode() for chunk in export_chunks(scoped_store(store, tenants), what, args))
        else:
            body = [queries(scoped_export_body, what, args, tenants)]
        return Response(200, MEDIA_TYPES[args.fmt], body)

    return Route(
        "GET",
        f"{spec.route}/{what}",
        f"export_{what}",
        f"What `spanmeter export {what}` writes (streamed).",
        "export:read",
        handle,
        params=spec.all_params,
        content=_content(spec, {"type": "array", "items": {"type": "object"}}),
        drop_all=True,
        tenant_scoped=True,
    )


def view_routes(store: SpanStore, queries: QueryRunner | None = None) -> list[Route]:
    """The analysis routes over ``store`` (read-only); their answers are computed by
    ``queries`` when given (a query process reading the same store), else here."""
    routes = [_view_route(store, view, queries) for view in VIEWS.values()]
    routes += [_export_route(store, what, queries) for what in ("requests", "rollups")]
    return routes
