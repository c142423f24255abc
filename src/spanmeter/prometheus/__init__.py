"""Prometheus exposition of cost, budgets and alerts (``/metrics`` of ``spanmeter serve``).

* :class:`CostMetrics`: counters of committed spend, requests, attempts and tokens with
  bounded labels (tenants capped to the top N + ``other``, label sets capped with the
  overflow folded into ``other``; never user ids), fed once per
  committed transaction: a :class:`CostSummer` sums what the commit stored where it
  happens (the store process, or the writer thread) and :meth:`CostMetrics.merge` adds it;
* :class:`BudgetMetrics`: gauges of budget spend, limit, utilisation and state, and alert
  counts, read from the store at scrape time.

See ``docs/prometheus.md`` for the series, and for what to sum by across restarts and replicas.

Imported lazily (as :mod:`spanmeter.service` is): the store process imports
:mod:`spanmeter.prometheus.cost_sums` to sum what it commits, and must not load the
receiver, gRPC or ``prometheus_client`` through this package's names.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .budget_metrics import BudgetMetrics
    from .cost_metrics import (
        DEFAULT_PROMOTION_DELAY_S,
        DEFAULT_TOP_TENANTS,
        CostMetrics,
        MeteredSink,
    )
    from .cost_sums import COST_LABELS, OTHER_TENANT, TOKEN_TYPES, CostSummer, CostSums, TenantView
    from .label_sets import DEFAULT_MAX_LABEL_SETS, LabelSetCap

__all__ = [
    "COST_LABELS",
    "DEFAULT_MAX_LABEL_SETS",
    "DEFAULT_PROMOTION_DELAY_S",
    "DEFAULT_TOP_TENANTS",
    "OTHER_TENANT",
    "TOKEN_TYPES",
    "BudgetMetrics",
    "CostMetrics",
    "CostSummer",
    "CostSums",
    "LabelSetCap",
    "MeteredSink",
    "TenantView",
]

_MODULES = {
    "BudgetMetrics": "budget_metrics",
    "CostMetrics": "cost_metrics",
    "DEFAULT_PROMOTION_DELAY_S": "cost_metrics",
    "DEFAULT_TOP_TENANTS": "cost_metrics",
    "MeteredSink": "cost_metrics",
    "COST_LABELS": "cost_sums",
    "OTHER_TENANT": "cost_sums",
    "TOKEN_TYPES": "cost_sums",
    "CostSummer": "cost_sums",
    "CostSums": "cost_sums",
    "TenantView": "cost_sums",
    "DEFAULT_MAX_LABEL_SETS": "label_sets",
    "LabelSetCap": "label_sets",
}


def __getattr__(name: str) -> Any:
    module = _MODULES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f".{module}", __name__), name)
