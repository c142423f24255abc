"""Who is calling and what they may do: the hook points authentication and tenant scoping
plug into, called once per request by the dispatcher (:mod:`.app`), never by a route.

Today every caller is :data:`ANONYMOUS` and :func:`authorize` allows everything (the API
has no authentication: bind the receiver to a private address). API keys replace
:func:`identify` (a key in a header -> a :class:`Caller` with its scopes and tenants) and
:func:`authorize` (raise :class:`~.http.ApiError` 401/403); tenant isolation reads
:attr:`Caller.tenants` where the route answers (the views' ``where`` filter, the budgets'
status filters, the alerts inbox).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Literal

if TYPE_CHECKING:
    from .http import Request

__all__ = ["ANONYMOUS", "SCOPES", "Caller", "Scope", "authorize", "identify"]

Scope = Literal["public", "views:read", "export:read", "budgets:read", "alerts:read", "alerts:write"]
"""What a route needs; each route in the table declares exactly one."""
SCOPES: Final[tuple[Scope, ...]] = (
    "public",
    "views:read",
    "export:read",
    "budgets:read",
    "alerts:read",
    "alerts:write",
)


@dataclass(frozen=True, slots=True)
class Caller:
    """The identity a request was made with."""

    name: str
    """Shown in logs and audit trails (never a secret)."""
    scopes: frozenset[Scope] | None = None
    """What the caller may do; None: everything (no authentication configured)."""
    tenants: frozenset[str] | None = None
    """The tenants whose data the caller may read; None: every tenant."""


ANONYMOUS: Final = Caller("anonymous")
"""The caller of every request while the API has no authentication."""


def identify(environ: Mapping[str, Any]) -> Caller:
    """The caller of a request (from its headers, once keys exist). No-op: :data:`ANONYMOUS`."""
    del environ
    return ANONYMOUS


def authorize(request: Request, scope: Scope) -> None:
    """Let the request through or raise :class:`~.http.ApiError` (401/403).

    The one check every route passes (the dispatcher calls it with the route's declared
    scope). No-op while there is no authentication: every caller may do everything.
    """
    del request, scope
