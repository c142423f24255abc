"""The analysis routes: one per view of :data:`spanmeter.analysis.views.VIEWS` and the two
exports, each built from its view's parameter spec (:mod:`spanmeter.analysis.parameters`),
the one the CLI builds its options from.

Query parameters are the CLI options without the dashes (``from``, ``to``, ``data_mode``,
``where`` repeatable), with the same defaults and the same error messages; unknown ones are
ignored. The answer is the JSON document the CLI renders (``format=`` picks another
rendering, the CLI's). ``GET /api/v1/export/requests|rollups`` streams (the parameters
are checked first: once streaming starts, a 400 is too late).

Every view reads the store through :func:`~.tenancy.scoped_store`, so a key limited to
tenants gets its tenants' answer; but the re-pricing audits, a record of changes to every
tenant's rows (:data:`GLOBAL_VIEWS`), which such a key is refused.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from ..analysis.documents import dump
from ..analysis.parameters import EXPORT, REPRICE_AUDITS, ViewSpec
from ..analysis.views import VIEWS, View, export_chunks
from ..store import SpanStore
from .access import Scope
from .http import JSON, Request, Response
from .routes import Content, Route
from .schemas import VIEW
from .tenancy import scoped_store

__all__ = ["GLOBAL_VIEWS", "MEDIA_TYPES", "view_routes"]

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


def _view_route(store: SpanStore, view: View) -> Route:
    spec = view.spec

    def handle(request: Request) -> Response:
        args = spec.parse(request.query, api=True)
        document = view.answer(scoped_store(store, request.caller.tenants), args)
        text = dump(document) if args.fmt == "json" else view.render(document, args.fmt)
        return Response(200, MEDIA_TYPES[args.fmt], [text.encode()])

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


def _export_route(store: SpanStore, what: str, spec: ViewSpec = EXPORT) -> Route:
    def handle(request: Request) -> Response:
        args = spec.parse(request.query, api=True)  # checked first: once streaming starts, a 400 is too late
        chunks = export_chunks(scoped_store(store, request.caller.tenants), what, args)
        return Response(200, MEDIA_TYPES[args.fmt], (chunk.encode() for chunk in chunks))

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


def view_routes(store: SpanStore) -> list[Route]:
    """The analysis routes over ``store`` (read-only)."""
    routes = [_view_route(store, view) for view in VIEWS.values()]
    routes += [_export_route(store, what) for what in ("requests", "rollups")]
    return routes
