"""What a key limited to tenants may see, decided once for every route that answers one.

A key created with ``spanmeter keys create --tenant T [--tenant U ...]`` reads its tenants'
data only. The dispatcher (:mod:`.app`) refuses such a key (403) on every route whose table
entry is not :attr:`~.routes.Route.tenant_scoped`; the scoped routes read through this
module:

* the analysis views and exports read the store through :func:`scoped_store`, which adds a
  ``tenant_id`` filter to every read (one tenant: ``tenant_id = T``; several: ``tenant_id IN
  (...)``, the query model's :data:`~spanmeter.store.query_model.FilterValue`), so totals are
  the totals of those tenants. A caller's own ``where tenant_id=X`` outside the key's
  tenants (or ``''``, traffic naming none) is a 403, never other data. Any store method not
  listed here raises, so a view that starts reading something new fails closed;
* the budgets status keeps the states whose scope names one of the tenants (a budget over
  all traffic, or one constrained only by other dimensions, would show spend beyond them);
* the alerts inbox keeps the alerts whose filters name one of the tenants (budget alerts of
  tenant-scoped budgets, rule alerts grouped by tenant); other alerts are "not found".
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from types import MappingProxyType
from typing import Any, Final, Literal, cast

from ..store import SpanStore
from ..store.analysis_types import AggregateResult, RevenueRow
from ..store.api import TopResult
from ..store.inbox import AlertRecord, SupportsBudgets
from ..store.query_model import Filters, FilterValue
from ..store.rollups import TopDimension
from ..store.rows import SpanRow
from .http import ApiError

__all__ = ["TENANT", "alert_visible", "scoped_store", "state_visible", "tenant_filter"]

TENANT: Final = "tenant_id"
_NO_FILTERS: Final[Filters] = MappingProxyType({})


def tenant_filter(tenants: frozenset[str], where: Filters) -> dict[str, FilterValue]:
    """``where`` with the key's tenants forced on ``tenant_id``.

    Raises:
        ApiError: 403, ``where`` asks for a tenant outside ``tenants``.
    """
    asked = where.get(TENANT)
    if asked is None:
        forced: FilterValue = next(iter(tenants)) if len(tenants) == 1 else tuple(sorted(tenants))
    else:
        values = asked if isinstance(asked, tuple) else (asked,)
        outside = [value for value in values if value not in tenants]
        if outside:
            raise ApiError(403, f"this API key may not read tenant_id={outside[0]!r}")
        forced = asked
    return {**where, TENANT: forced}


def scoped_store(store: SpanStore, tenants: frozenset[str] | None) -> SpanStore:
    """``store`` as a key limited to ``tenants`` may read it (None: every tenant, ``store``)."""
    if tenants is None:
        return store
    # The proxy answers the reads the views make, each limited to the tenants, and raises on
    # anything else: typed as the store so the views take it unchanged.
    return cast(SpanStore, _TenantStore(store, tenants))


class _TenantStore:
    """A read-only view of a store limited to some tenants (see the module doc)."""

    def __init__(self, store: SpanStore, tenants: frozenset[str]) -> None:
        self._store = store
        self._tenants = tenants

    def top(
        self, by: TopDimension, start_ns: int, end_ns: int, *, where: Filters = _NO_FILTERS, **scope: Any
    ) -> TopResult:
        return self._store.top(by, start_ns, end_ns, where=tenant_filter(self._tenants, where), **scope)

    def aggregate(
        self, dimensions: Sequence[str], start_ns: int, end_ns: int, **scope: Any
    ) -> AggregateResult:
        where = tenant_filter(self._tenants, scope.pop("where", _NO_FILTERS))
        return self._store.aggregate(dimensions, start_ns, end_ns, where=where, **scope)

    def scan_requests(
        self, start_ns: int, end_ns: int, *, where: Filters = _NO_FILTERS, **scope: Any
    ) -> Iterator[tuple[Any, ...]]:
        return self._store.scan_requests(start_ns, end_ns, where=tenant_filter(self._tenants, where), **scope)

    def iter_rollup_groups(
        self, granularity: Literal["minute", "hour"], start_ns: int, end_ns: int, **scope: Any
    ) -> Iterator[dict[str, Any]]:
        where = tenant_filter(self._tenants, scope.pop("where", _NO_FILTERS))
        return self._store.iter_rollup_groups(granularity, start_ns, end_ns, where=where, **scope)

    def iter_requests(
        self, start_ns: int | None = None, end_ns: int | None = None, **scope: Any
    ) -> Iterator[SpanRow]:
        tenants = self._tenants
        return (
            row for row in self._store.iter_requests(start_ns, end_ns, **scope) if row.tenant_id in tenants
        )

    def revenue(self, start_ns: int | None = None, end_ns: int | None = None) -> list[RevenueRow]:
        return [row for row in self._store.revenue(start_ns, end_ns) if row.tenant_id in self._tenants]

    @property
    def budget_store(self) -> _TenantAlerts:
        store = self._store
        if not isinstance(store, SupportsBudgets):
            raise AttributeError("budget_store")  # a store without budgets: none to show
        return _TenantAlerts(store.budget_store, self._tenants)

    @property
    def ledger(self) -> None:
        return None  # with budget_store: SupportsBudgets, for the reports reading the inbox

    def attach_ledger(self, hook: object) -> None:
        raise ApiError(403, "this API key is limited to tenants; it changes nothing")

    def __getattr__(self, name: str) -> Any:
        raise ApiError(403, f"this API key is limited to tenants; {name} reads data of every tenant")


class _TenantAlerts:
    """The alerts inbox limited to some tenants' alerts (the weekly report reads it)."""

    def __init__(self, inbox: Any, tenants: frozenset[str]) -> None:
        self._inbox = inbox
        self._tenants = tenants

    def list_alerts(self, **filters: Any) -> list[AlertRecord]:
        limit = int(filters.pop("limit", 50))
        records = cast(list[AlertRecord], self._inbox.list_alerts(limit=ALERT_SCAN, **filters))
        return [record for record in records if alert_visible(record, self._tenants)][:limit]

    def __getattr__(self, name: str) -> Any:
        raise ApiError(403, f"this API key is limited to tenants; {name} reads data of every tenant")


ALERT_SCAN: Final = 10_000
"""The newest alerts a tenant's inbox is picked from (the inbox's own largest ``limit``)."""


def alert_visible(record: AlertRecord, tenants: frozenset[str] | None) -> bool:
    """Whether a key limited to ``tenants`` may see ``record``: its filters name one of them."""
    if tenants is None:
        return True
    filters = record.details.get("filters")
    if not isinstance(filters, Mapping):
        return False
    return cast(Mapping[str, Any], filters).get(TENANT) in tenants


def state_visible(scope: Mapping[str, str], tenants: frozenset[str] | None) -> bool:
    """Whether a key limited to ``tenants`` may see a budget state of ``scope``: the scope
    names one of them (a state over more than its tenants would show others' spend)."""
    return tenants is None or scope.get(TENANT) in tenants
