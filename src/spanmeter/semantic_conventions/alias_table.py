"""The normaliser's alias table, public for code generated from it.

The Collector configurations (:mod:`spanmeter.collector_config`) derive their GenAI filter
and their rename statements from this very table, so a span the normaliser would count is
never dropped before it reaches spanmeter. The table itself stays in private modules that
the normaliser's hot path reads directly.
"""

from __future__ import annotations

from ._aliases import CANDIDATE_MARKERS, SLOT_KEYS
from ._keys import Key, Slot

__all__ = ["CANDIDATE_MARKERS", "SLOT_KEYS", "Key", "Slot"]
