"""Prometheus exposition of cost, budgets and alerts (``/metrics`` of ``spanmeter serve``).

* :class:`CostMetrics`: counters of committed spend, requests, attempts and tokens with
  bounded labels (tenants capped to the top N + ``other``, label sets capped with the
  overflow folded into ``other``; never user ids), fed once per
  committed batch through :meth:`CostMetrics.metered`;
* :class:`BudgetMetrics`: gauges of budget spend, limit, utilisation and state, and alert
  counts, read from the store at scrape time.

See ``docs/prometheus.md`` for the series, and for what to sum by across restarts and replicas.
"""

from __future__ import annotations

from .budget_metrics import BudgetMetrics
from .cost_metrics import (
    COST_LABELS,
    DEFAULT_PROMOTION_DELAY_S,
    DEFAULT_TOP_TENANTS,
    OTHER_TENANT,
    TOKEN_TYPES,
    CostMetrics,
    MeteredSink,
)
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
    "LabelSetCap",
    "MeteredSink",
]
