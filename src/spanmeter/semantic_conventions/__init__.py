"""spanmeter's attribute contract: canonical keys, the typed GenAI record, the normaliser.

:func:`normalize` maps any instrumentation's span attributes onto this contract; see
:mod:`spanmeter.semantic_conventions.normalizer`.
"""

from __future__ import annotations

from . import attributes as _attributes
from .attributes import *  # noqa: F403  (constants only; the list is attributes.__all__)
from .normalizer import NORMALIZER_KEYS, RESOURCE_KEYS, canonical_provider, is_genai_candidate, normalize
from .record import DATA_MODES, CostSource, GenAIRecord, SpanOutcome

__all__ = [
    "DATA_MODES",
    "NORMALIZER_KEYS",
    "RESOURCE_KEYS",
    "CostSource",
    "GenAIRecord",
    "SpanOutcome",
    "canonical_provider",
    "is_genai_candidate",
    "normalize",
]
__all__ += _attributes.__all__
