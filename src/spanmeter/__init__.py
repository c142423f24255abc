"""spanmeter: LLM cost attribution and budgets on OpenTelemetry.

The app-side surface, importable from the top::

    import spanmeter

    spanmeter.configure(endpoint="http://spanmeter:4318", service_name="checkout")
    with spanmeter.attribution(endpoint_tag="checkout.ai_summary", tenant_id="t_42"):
        ...
"""

from __future__ import annotations

from .otel_exporter import configure
from .processor import BudgetDecision, BudgetGuard, CostSpanProcessor, attribution

__all__ = ["BudgetDecision", "BudgetGuard", "CostSpanProcessor", "attribution", "configure"]
