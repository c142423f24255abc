"""The OpenAPI 3.1 document of the API, generated from the route table the dispatcher
serves (so it lists exactly the routes that answer) and the parameter specs the CLI uses
(so a parameter's type, default and choices are the ones ``--help`` shows)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from http import HTTPStatus
from importlib.metadata import PackageNotFoundError, version
from typing import Any, Final

from ..analysis.parameters import Param
from .http import JSON
from .routes import Content, Route
from .schemas import ERROR

__all__ = ["DISPATCH_ERRORS", "openapi_document", "param_schema"]

DISPATCH_ERRORS: Final = (414,)
"""Statuses the dispatcher itself may answer on any route (a query over the limit)."""
_ERROR_REF: Final = {"$ref": "#/components/schemas/Error"}


def _version() -> str:
    try:
        return version("spanmeter")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "0"


def param_schema(param: Param) -> dict[str, Any]:
    """The JSON schema of a parameter's value, as :meth:`Param.parse` reads it."""
    if param.flag:
        return {"type": "boolean", "default": False}
    if param.multiple:
        return {"type": "array", "items": {"type": "string"}}
    schema: dict[str, Any]
    if param.integer:
        schema = {"type": "integer"}
        if param.minimum is not None:
            schema["minimum"] = param.minimum
        if param.maximum is not None:
            schema["maximum"] = param.maximum
        if param.default is not None:
            schema["default"] = int(param.default)
        return schema
    schema = {"type": "string"}
    if param.choices:
        schema["enum"] = list(param.choices)
    if param.default is not None:
        schema["default"] = param.default
    return schema


def _parameters(route: Route) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = [
        {
            "name": path.name,
            "in": "path",
            "required": True,
            "description": path.help,
            "schema": {"type": "integer", "minimum": 0} if path.integer else {"type": "string"},
        }
        for path in route.path_params
    ]
    for param in route.params:
        entry: dict[str, Any] = {
            "name": param.name,
            "in": "query",
            "required": False,
            "description": param.help,
            "schema": param_schema(param),
        }
        if param.multiple:
            entry["style"], entry["explode"] = "form", True
        found.append(entry)
    return found


def _content(contents: Iterable[Content]) -> dict[str, Any]:
    return {c.media_type: {"schema": dict(c.schema)} if c.schema is not None else {} for c in contents}


def _responses(route: Route) -> dict[str, Any]:
    responses: dict[str, Any] = {"200": {"description": "OK", "content": _content(route.content)}}
    for status, (description, content) in route.other.items():
        responses[str(status)] = {"description": description}
        if content is not None:
            responses[str(status)]["content"] = _content([content])
    errors = sorted({*route.errors, *DISPATCH_ERRORS})
    for status in errors:
        responses[str(status)] = {
            "description": HTTPStatus(status).phrase,
            "content": {JSON: {"schema": _ERROR_REF}},
        }
    return responses


def _operation(route: Route) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "operationId": route.name,
        "summary": route.summary,
        "parameters": _parameters(route),
        "responses": _responses(route),
        "x-scope": route.scope,
    }
    if route.body is not None:
        operation["requestBody"] = {
            "required": False,
            "description": route.body.help,
            "content": {JSON: {"schema": dict(route.body.schema)}},
        }
    return operation


def openapi_document(routes: Iterable[Route], *, title: str = "spanmeter") -> Mapping[str, Any]:
    """The OpenAPI 3.1 document of ``routes``."""
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        paths.setdefault(route.path, {})[route.method.lower()] = _operation(route)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": title,
            "version": _version(),
            "description": "LLM cost attribution and budgets: the JSON API of the receiver. "
            'Errors are {"error": "..."} with the status. No authentication: bind the '
            "receiver to a private address.",
        },
        "paths": paths,
        "components": {"schemas": {"Error": dict(ERROR)}},
    }
