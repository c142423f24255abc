"""Normalisation: any instrumentation's GenAI span attributes -> one :class:`GenAIRecord`.

The SDK processor (in the app) and the receiver (at ingest) both call :func:`normalize`,
so the two sides can never disagree on what a span means. The keys it reads are the
constants of :mod:`spanmeter.semantic_conventions` (the attribute contract and its alias
table); the logic that reads them lives here. This package imports nothing but those
constants and :mod:`spanmeter.money`, so the processor that runs in the app stays light
(a test checks it).
"""

from __future__ import annotations

from .normalizer import canonical_provider, is_genai_candidate, normalize
from .record import CostSource, GenAIRecord, SpanOutcome

__all__ = [
    "CostSource",
    "GenAIRecord",
    "SpanOutcome",
    "canonical_provider",
    "is_genai_candidate",
    "normalize",
]
