"""Budget and alert gauges on ``/metrics``, read from the budget ledger and the alerts inbox.

Gauges, not counters: a budget's spend restarts with each window and an alert moves from
``open`` to ``resolved``, so these are levels to graph and alert on, never to ``rate()``.
They come from the store (the same numbers as ``GET /api/v1/budgets/status``), so every
replica sharing a store reports the same values: aggregate them with ``max``, not ``sum``.

Cardinality: one series set per budget state, but a ``*`` budget (one state per tenant,
say) exposes only its ``top_states`` most utilised states; ``spanmeter_budget_states``
still counts all of them by state. States whose scope names a user are never a label
(only counted), since user ids must not reach Prometheus even hashed.

Reads are cached for ``cache_s`` so several scrapers do not multiply store reads.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Iterator
from typing import TYPE_CHECKING, Final

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from ..budgets.ledger.status import BudgetState, budget_states
from ..money import NANO_PER_USD, usd_float

if TYPE_CHECKING:
    from ..budgets import BudgetsRuntime

__all__ = ["BudgetMetrics"]

_logger = logging.getLogger(__name__)

_STATES: Final = ("ok", "warning", "exceeded")


class BudgetMetrics(Collector):
    """Budget spend, limit, utilisation and state, plus alert counts, at scrape time.

    Args:
        runtime: The receiver's budgets runtime (budgets in force and the budget store).
        top_states: States of one ``*`` budget exposed with their own series.
        cache_s: Seconds a read is reused.
    """

    def __init__(self, runtime: BudgetsRuntime, *, top_states: int = 20, cache_s: float = 5.0) -> None:
        self._runtime = runtime
        self._top_states = top_states
        self._cache_s = cache_s
        self._lock = threading.Lock()
        self._cached: tuple[float, list[GaugeMetricFamily]] | None = None

    def collect(self) -> Iterator[GaugeMetricFamily]:
        """The gauges, from a read at most ``cache_s`` old; nothing if the store fails."""
        with self._lock:
            now = time.monotonic()
            if self._cached is None or now - self._cached[0] >= self._cache_s:
                try:
                    self._cached = (now, self._read())
                except Exception:  # a failing read must not break the whole scrape
                    _logger.exception("budget metrics: could not read budgets and alerts")
                    return
            families = self._cached[1]
        yield from families

    def describe(self) -> Iterator[GaugeMetricFamily]:
        """Nothing: collected only at scrape time."""
        return iter(())

    def _read(self) -> list[GaugeMetricFamily]:
        runtime = self._runtime
        states = budget_states(runtime.budget_store, runtime.snapshot.index, runtime.clock())
        labels = ("budget", "scope")
        spend = GaugeMetricFamily(
            "spanmeter_budget_spend_usd", "Spend of the budget's current window in USD.", labels=labels
        )
        limit = GaugeMetricFamily("spanmeter_budget_limit_usd", "Limit of the budget in USD.", labels=labels)
        utilisation = GaugeMetricFamily(
            "spanmeter_budget_utilization_ratio", "Spend / limit of the current window.", labels=labels
        )
        projected = GaugeMetricFamily(
            "spanmeter_budget_projected_spend_usd",
            "Spend projected at the end of a calendar window (absent early in the window and for rolling ones).",
            labels=labels,
        )
        state = GaugeMetricFamily(
            "spanmeter_budget_state",
            "1 for the budget state's current level (ok, warning or exceeded), 0 for the others.",
            labels=(*labels, "state"),
        )
        counts = GaugeMetricFamily(
            "spanmeter_budget_states",
            "Budget states (one per value of a * budget) by level, all of them counted.",
            labels=("budget", "state"),
        )
        per_budget: Counter[tuple[str, str]] = Counter()
        shown: dict[str, list[BudgetState]] = {}
        for item in states:
            per_budget[(item.budget.name, item.state)] += 1
            if "user_id" not in item.scope:
                shown.setdefault(item.budget.name, []).append(item)
        for name in sorted({item.budget.name for item in states} | set(runtime.snapshot.index.by_name)):
            for level in _STATES:
                counts.add_metric([name, level], per_budget[(name, level)])
        for name, items in shown.items():
            items.sort(
                key=lambda s: (
                    -s.spend_nano_usd * NANO_PER_USD // max(s.budget.limit_nano_usd, 1),
                    s.scope_key,
                )
            )
            for item in items[: self._top_states]:
                values = [name, item.scope_key]
                spend.add_metric(values, usd_float(item.spend_nano_usd))
                limit.add_metric(values, usd_float(item.budget.limit_nano_usd))
                utilisation.add_metric(values, item.ratio)
                if item.projected_nano_usd is not None:
                    projected.add_metric(values, usd_float(item.projected_nano_usd))
                for level in _STATES:
                    state.add_metric([*values, level], 1.0 if item.state == level else 0.0)
        alerts = GaugeMetricFamily(
            "spanmeter_alerts",
            "Alert events in the inbox by kind, source (budget or rule name), state and severity.",
            labels=("kind", "source", "state", "severity"),
        )
        for kind, source, alert_state, severity, count in runtime.budget_store.alert_counts():
            alerts.add_metric([kind, source, alert_state, severity], count)
        return [spend, limit, utilisation, projected, state, counts, alerts]
