"""The budgets and alerts routes: status for apps, the inbox for people.

* ``GET /api/v1/budgets``: definitions (rules and channels too; never secrets), with the
  ``fingerprint`` (SHA-256) of the budgets file shown and the ``ledger_fingerprint`` of the
  one the ledger counts with: after editing the file, wait until both are the new file's.
* ``GET /api/v1/budgets/status?tenant_id=acme&endpoint_tag=search``: states of the current
  windows that apply to that traffic (``match=exact`` for states naming the values;
  ``budget=``, ``state=ok|warning|exceeded``). Sends an ``ETag``: an unchanged status
  answers ``304`` to ``If-None-Match``, which keeps :class:`spanmeter.BudgetGuard` polls cheap.
* ``GET /api/v1/alerts?state=open&kind=budget.*&source=&since=24h&limit=50``: newest first.
* ``GET /api/v1/alerts/{id}``: one alert with its context, history and deliveries.
* ``POST /api/v1/alerts/{id}/ack`` (or ``/resolve``), JSON body ``{"by": "...", "note": "..."}``:
  the alert's history shows ``by``; the audit trail names the API key that did it.

A key limited to tenants (:mod:`.tenancy`) gets 403 on the definitions (every tenant's
budgets); on the status, only states whose scope names one of its tenants (never a budget
over all traffic: its spend is everyone's); in the inbox, only alerts whose filters name
one of its tenants, any other alert being "not found" (404) to it, for ack and resolve too.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any, Final, Literal, Protocol, cast

from ..analysis.parameters import Param
from ..budgets.config.watch import ConfigWatcher
from ..budgets.definitions import budgets_document
from ..budgets.definitions.model import DIMENSIONS
from ..budgets.delivery.documents import alert_document
from ..budgets.ledger import Snapshot, budget_states, status_document
from ..store import BudgetStore
from ..store.inbox import AlertRecord
from ..timeunits import parse_duration
from .http import JSON, ApiError, Request, Response, json_response
from .params import value
from .routes import Body, Content, PathParam, Route
from .schemas import ALERT, ALERT_CHANGE, ALERTS, BUDGETS, STATUS
from .tenancy import ALERT_SCAN, alert_visible, state_visible, tenant_filter

__all__ = ["BudgetsSource", "budget_routes"]

_LARGEST_ID: Final = 2**63 - 1


class BudgetsSource(Protocol):
    """What the routes read and change (:class:`~spanmeter.budgets.BudgetsRuntime` is one):
    the budgets in force, the watcher of their file, the alerts store and the clock."""

    @property
    def budget_store(self) -> BudgetStore: ...
    @property
    def watcher(self) -> ConfigWatcher | None: ...
    @property
    def snapshot(self) -> Snapshot: ...
    @property
    def ledger_fingerprint(self) -> str | None: ...
    @property
    def clock(self) -> Callable[[], int]: ...


_STATUS_FILTERS: Final = tuple(Param(dim, f"Traffic with this {dim}.") for dim in DIMENSIONS)
_BUDGET: Final = Param("budget", "Only this budget.")
_STATE: Final = Param("state", "Only states at this level.", choices=("ok", "warning", "exceeded"))
_MATCH: Final = Param(
    "match",
    "applies: states whose scope covers the traffic; exact: states naming the given values.",
    "applies",
    ("applies", "exact"),
)
_STATUS_PARAMS: Final = (*_STATUS_FILTERS, _BUDGET, _STATE, _MATCH)
_ALERT_PARAMS: Final = (
    Param("state", "Only alerts in this state (open, acknowledged, resolved)."),
    Param("kind", "Only this kind; a trailing * matches a prefix (budget.*)."),
    Param("source", "Only alerts from this source (a budget or rule name)."),
    Param("since", "Only alerts that occurred in this last duration, e.g. 24h.", convert=parse_duration),
    Param("limit", "Most alerts listed.", "50", minimum=1, maximum=10_000, integer=True),
)
_ID: Final = PathParam("id", "The alert's id.")


def budget_routes(source: BudgetsSource) -> list[Route]:
    """The budgets and alerts routes of ``source``."""

    def definitions(request: Request) -> Response:
        """The definitions, with the fingerprints of the file shown and of the one the ledger
        counts with (equal once an edit is fully applied)."""
        error = source.watcher.last_error if source.watcher is not None else None
        snapshot = source.snapshot
        document = budgets_document(snapshot.config, config_error=error)
        document["fingerprint"] = snapshot.fingerprint
        document["ledger_fingerprint"] = source.ledger_fingerprint
        return json_response(200, document)

    def status(request: Request) -> Response:
        """The states of the current windows that apply to the traffic described by the
        query, with an ETag so an unchanged status answers 304."""
        query = request.query
        unknown = sorted(set(query) - {param.name for param in _STATUS_PARAMS})
        if unknown:
            raise ApiError(400, f"unknown parameter(s) {', '.join(unknown)}")
        filters = {dim: values[-1] for dim, values in query.items() if dim in DIMENSIONS and values}
        tenants = request.caller.tenants
        if tenants is not None and "tenant_id" in filters:
            tenant_filter(tenants, filters)  # 403 for a tenant outside the key's
        now = source.clock()
        states = budget_states(
            source.budget_store,
            source.snapshot.index,
            now,
            filters=filters,
            budget=value(query, _BUDGET),
            state=value(query, _STATE),
            match=cast(Literal["applies", "exact"], value(query, _MATCH)),
        )
        states = [item for item in states if state_visible(item.scope, tenants)]
        document = status_document(states, now)
        # The ETag ignores the generation time, so an unchanged status is recognised as such.
        stable = json.dumps(document["states"], sort_keys=True).encode()
        etag = '"' + hashlib.sha256(stable).hexdigest()[:32] + '"'
        if request.header("If-None-Match") == etag:
            return Response(304, None, [b""], [("ETag", etag), ("Content-Length", "0")])
        return json_response(200, document, [("ETag", etag), ("Cache-Control", "no-cache")])

    def alerts(request: Request) -> Response:
        """The alerts inbox, newest first, filtered by the query."""
        state, kind, source_name, since, limit = (value(request.query, p) for p in _ALERT_PARAMS)
        tenants = request.caller.tenants
        records = source.budget_store.list_alerts(
            state=state,
            kind=kind,
            source=source_name,
            since_ns=None if since is None else source.clock() - since,
            limit=limit if tenants is None else ALERT_SCAN,
        )
        records = [a for a in records if alert_visible(a, tenants)][:limit]
        return json_response(200, {"alerts": [alert_document(a) for a in records]})

    def alert(request: Request) -> Response:
        return json_response(200, alert_document(_visible_alert(source, request)))

    def change(action: Literal["ack", "resolve"]) -> Callable[[Request], Response]:
        def handle(request: Request) -> Response:
            """Acknowledge or resolve one alert, by whom and why as the body says."""
            alert_id = _visible_alert(source, request).id
            body = _object_body(request)
            actor, note = str(body.get("by") or "api"), str(body.get("note") or "")
            store, now = source.budget_store, source.clock()
            try:
                # the history shows the name given; the audit trail the key that did it
                audited = request.caller.actor
                if action == "ack":
                    record = store.acknowledge(
                        alert_id, actor=actor, note=note, now_ns=now, audit_actor=audited
                    )
                else:
                    record = store.resolve(alert_id, actor=actor, note=note, now_ns=now, audit_actor=audited)
            except LookupError as error:
                raise ApiError(404, str(error)) from None
            return json_response(200, alert_document(record))

        return handle

    return [
        Route(
            "GET",
            "/api/v1/budgets",
            "budgets",
            "Budget definitions, rules and channels (no secrets), with the file's fingerprints.",
            "budgets:read",
            definitions,
            content=(Content(JSON, BUDGETS),),
            errors=(),
        ),
        Route(
            "GET",
            "/api/v1/budgets/status",
            "budgets_status",
            "Where each budget stands in its current window, for the traffic the query describes.",
            "budgets:read",
            status,
            params=_STATUS_PARAMS,
            content=(Content(JSON, STATUS),),
            tenant_scoped=True,
            other={304: ("Unchanged since the ETag given in If-None-Match.", None)},
        ),
        Route(
            "GET",
            "/api/v1/alerts",
            "alerts",
            "The alerts inbox, newest first.",
            "alerts:read",
            alerts,
            params=_ALERT_PARAMS,
            content=(Content(JSON, ALERTS),),
            tenant_scoped=True,
        ),
        Route(
            "GET",
            "/api/v1/alerts/{id}",
            "alert",
            "One alert with its context, history and deliveries.",
            "alerts:read",
            alert,
            path_params=(_ID,),
            content=(Content(JSON, ALERT),),
            errors=(404,),
            tenant_scoped=True,
        ),
        *(
            Route(
                "POST",
                f"/api/v1/alerts/{{id}}/{action}",
                f"alert_{action}",
                f"{'Acknowledge' if action == 'ack' else 'Resolve'} one alert.",
                "alerts:write",
                change(action),
                path_params=(_ID,),
                content=(Content(JSON, ALERT),),
                errors=(400, 404, 413),
                body=Body(ALERT_CHANGE, "Who does it (by, default api) and why (note)."),
                tenant_scoped=True,
            )
            for action in ("ack", "resolve")
        ),
    ]


def _visible_alert(source: BudgetsSource, request: Request) -> AlertRecord:
    """The alert of the path, if the caller may see it (404 otherwise: a key limited to
    tenants is not told that another tenant's alert exists)."""
    alert_id = _alert_id(request)
    record = source.budget_store.get_alert(alert_id)
    if record is None or not alert_visible(record, request.caller.tenants):
        raise ApiError(404, f"no alert with id {alert_id}")
    return record


def _alert_id(request: Request) -> int:
    """The ``{id}`` of the path (digits, the dispatcher checked); beyond any id: 404."""
    alert_id = int(request.path_params["id"])
    if alert_id > _LARGEST_ID:
        raise ApiError(404, f"no alert with id {alert_id}")
    return alert_id


def _object_body(request: Request) -> dict[str, Any]:
    """The request's JSON object body (empty: ``{}``)."""
    raw = request.body
    try:
        parsed: object = json.loads(raw) if raw else {}
    except ValueError:
        raise ApiError(400, 'body must be JSON: {"by": ..., "note": ...}') from None
    if not isinstance(parsed, dict):
        raise ApiError(400, "body must be a JSON object")
    return cast(dict[str, Any], parsed)
