"""The route table's entry: what a route is, declared once, for the dispatcher (matching,
methods, the scope to authorize) and for the OpenAPI document alike."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from ..analysis.parameters import Param
from .access import Scope
from .http import Request, Response

__all__ = ["Body", "Content", "Handler", "PathParam", "Route"]

Handler = Callable[[Request], Response]
_PLACEHOLDER: Final = re.compile(r"\{(\w+)\}")


@dataclass(frozen=True, slots=True)
class PathParam:
    """A ``{name}`` segment of a route's path; ``integer``: a positive whole number."""

    name: str
    help: str
    integer: bool = True


@dataclass(frozen=True, slots=True)
class Content:
    """One content type a route answers 200 with, and the JSON schema of a JSON body."""

    media_type: str
    schema: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Body:
    """A route's JSON request body: its schema (for the document; the route reads it)."""

    schema: Mapping[str, Any]
    help: str


@dataclass(frozen=True, slots=True)
class Route:
    """One operation: method and path, the scope it needs, its parameters and answers."""

    method: str
    path: str
    """``/api/v1/alerts/{id}``: placeholders are :attr:`path_params`."""
    name: str
    """The OpenAPI operation id."""
    summary: str
    scope: Scope
    handler: Handler
    params: tuple[Param, ...] = ()
    path_params: tuple[PathParam, ...] = ()
    content: tuple[Content, ...] = ()
    """200's content types, first the default."""
    errors: tuple[int, ...] = (400,)
    """Statuses answered with ``{"error": ...}``."""
    other: Mapping[int, tuple[str, Content | None]] = field(
        default_factory=dict[int, "tuple[str, Content | None]"]
    )
    """Other statuses: what each means and its body (None: ``304``, no body)."""
    body: Body | None = None
    drop_all: bool = False
    """``.*`` values are dropped from the query (the dashboards' "All", see :mod:`.params`)."""
    also_head: bool = False
    """HEAD is answered like GET (health probes)."""
    tenant_scoped: bool = False
    """The handler limits its answer to :attr:`Request.caller`'s tenants (through
    :mod:`.tenancy`); False: a key limited to tenants gets 403 here."""

    @property
    def pattern(self) -> re.Pattern[str]:
        """The path as a regex; each placeholder matches one segment."""
        parts = _PLACEHOLDER.split(self.path)
        regex = "".join(
            f"(?P<{part}>[^/]+)" if index % 2 else re.escape(part) for index, part in enumerate(parts)
        )
        return re.compile(f"^{regex}$")

    def allows(self, method: str) -> bool:
        """Whether ``method`` is this route's (HEAD too when :attr:`also_head`)."""
        return method == self.method or (self.also_head and method == "HEAD")
