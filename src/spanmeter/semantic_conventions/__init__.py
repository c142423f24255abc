"""spanmeter's attribute contract: canonical keys and the typed GenAI record.

The normaliser that maps any instrumentation's names onto this contract lives in
:mod:`spanmeter.semantic_conventions.normalize`.
"""

from __future__ import annotations

from .attributes import *  # noqa: F403  (constants only; the list is attributes.__all__)
from .attributes import __all__ as _attribute_names
from .record import DATA_MODES, CostSource, GenAIRecord, SpanOutcome

__all__ = [*_attribute_names, "DATA_MODES", "CostSource", "GenAIRecord", "SpanOutcome"]
