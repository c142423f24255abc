"""Who is calling and what they may do: authentication and tenant scoping, called once per
request by the dispatcher (:mod:`.app`), never by a route.

:func:`identify` keeps the request's ``Authorization`` header with its caller;
:func:`authorize` checks it against the store's API keys (:class:`spanmeter.auth.Authenticator`)
for the route's scope: read routes need a ``read`` or ``admin`` key, ``alerts:write`` and
``audit:read`` (the audit trail) an ``admin`` key, ``public`` ones (health, the OpenAPI
document) none; the caller it returns names the key, for the audit trail. While no key exists
(or the API was built without an authenticator) every caller may do everything.

A key created with ``--tenant`` gives a :class:`Caller` whose :attr:`Caller.tenants` is
set. The dispatcher then answers 403 on every route not marked
:attr:`~.routes.Route.tenant_scoped` (re-pricing audits, budget definitions, the audit trail:
data of every tenant); the scoped ones read through :mod:`.tenancy` (the views' and exports'
store with a forced ``tenant_id`` filter, the budgets status' states and the alerts of those
tenants only), so such a key never sees another tenant's data nor a total beyond its tenants.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Final, Literal

from ..auth import Authenticator, AuthError

if TYPE_CHECKING:
    from .http import Request

__all__ = ["ANONYMOUS", "SCOPES", "Caller", "Scope", "authorize", "identify"]

Scope = Literal[
    "public", "views:read", "export:read", "budgets:read", "alerts:read", "alerts:write", "audit:read"
]
"""What a route needs; each route in the table declares exactly one."""
SCOPES: Final[tuple[Scope, ...]] = (
    "public",
    "views:read",
    "export:read",
    "budgets:read",
    "alerts:read",
    "alerts:write",
    "audit:read",
)
_ADMIN_SCOPES: Final[frozenset[Scope]] = frozenset({"alerts:write", "audit:read"})
"""Route scopes only an ``admin`` key has; every other non-public scope takes ``read``."""


@dataclass(frozen=True, slots=True)
class Caller:
    """The identity a request was made with."""

    name: str
    """Shown in logs and audit trails (never a secret)."""
    scopes: frozenset[Scope] | None = None
    """What the caller may do; None: everything (no authentication configured)."""
    tenants: frozenset[str] | None = None
    """The tenants whose data the caller may read; None: every tenant."""
    authorization: str | None = field(default=None, repr=False)
    """The request's ``Authorization`` header, checked by :func:`authorize` (never logged)."""
    key_name: str | None = None
    """The name of the API key the request was authenticated with (None: no key checked)."""

    @property
    def actor(self) -> str:
        """Who the audit trail names: ``key:<name>``, or ``anonymous`` while the API has no
        authentication (never a secret)."""
        return "anonymous" if self.key_name is None else f"key:{self.key_name}"


ANONYMOUS: Final = Caller("anonymous")
"""The caller of every request while the API has no authentication."""


def identify(environ: Mapping[str, Any]) -> Caller:
    """The caller of a request: anonymous, carrying its ``Authorization`` header for
    :func:`authorize`."""
    header = environ.get("HTTP_AUTHORIZATION")
    return ANONYMOUS if header is None else Caller("bearer", authorization=str(header))


def authorize(
    request: Request, scope: Scope, authenticator: Authenticator | None = None, *, tenant_scoped: bool = False
) -> Caller:
    """The caller, let through, or :class:`~.http.ApiError` (401 with a ``Bearer``
    challenge, or 403).

    The one check every route passes (the dispatcher calls it with the route's declared
    scope, and whether the route answers a key limited to tenants with their data only).
    Without an authenticator, or while no key exists, every caller may do everything.
    """
    caller = request.caller
    if authenticator is None or scope == "public":
        return caller
    from .http import ApiError  # here: .http imports this module for the Caller type

    needed = "admin" if scope in _ADMIN_SCOPES else "read"
    try:
        identity = authenticator.check(caller.authorization, needed)
    except AuthError as refused:
        if refused.kind == "unauthenticated":
            raise ApiError(401, refused.message, [("WWW-Authenticate", 'Bearer realm="spanmeter"')]) from None
        raise ApiError(403, refused.message) from None
    if identity is None:
        return caller
    if identity.tenants is not None and not tenant_scoped:
        raise ApiError(
            403,
            f"API key {identity.name!r} is limited to tenants; this route answers with data of every tenant",
        )
    granted: frozenset[Scope] = frozenset(
        s for s in SCOPES if s not in _ADMIN_SCOPES or identity.scope == "admin"
    )
    return replace(
        caller, name=identity.name, scopes=granted, key_name=identity.name, tenants=identity.tenants
    )
