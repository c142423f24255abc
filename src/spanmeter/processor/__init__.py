"""The SDK side: attribution scopes, the cost span processor and the budget guard."""

from __future__ import annotations

from .attribution import ATTRIBUTION_KEYS, attribution, current_attribution
from .budget_guard import BudgetDecision, BudgetGuard
from .cost_metrics import CostInstruments
from .cost_processor import AttributionSpanProcessor, CostSpanProcessor
from .enriched_span import EnrichedSpan
from .enrichment import SpanEnricher

__all__ = [
    "ATTRIBUTION_KEYS",
    "AttributionSpanProcessor",
    "BudgetDecision",
    "BudgetGuard",
    "CostInstruments",
    "CostSpanProcessor",
    "EnrichedSpan",
    "SpanEnricher",
    "attribution",
    "current_attribution",
]
