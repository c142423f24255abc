"""The SDK side: attribution scopes and the cost span processor."""

from __future__ import annotations

from .attribution import ATTRIBUTION_KEYS, attribution, current_attribution
from .cost_metrics import CostMetrics
from .cost_processor import AttributionSpanProcessor, CostSpanProcessor
from .enriched_span import EnrichedSpan
from .enrichment import SpanEnricher

__all__ = [
    "ATTRIBUTION_KEYS",
    "AttributionSpanProcessor",
    "CostMetrics",
    "CostSpanProcessor",
    "EnrichedSpan",
    "SpanEnricher",
    "attribution",
    "current_attribution",
]
