"""The alias table: every attribute key the normaliser reads, and what it means.

The normaliser (:mod:`spanmeter.normalise`) reads its keys from here, and the Collector
configurations (:mod:`spanmeter.collector_config`) derive their GenAI filter and their
rename statements from this very table, so a span the normaliser would count is never
dropped before it reaches spanmeter. The tables themselves are built in private modules
(:mod:`._keys`, :mod:`._aliases`); this is their public face.
"""

from __future__ import annotations

from ._aliases import CANDIDATE_MARKERS, INDEX, NORMALIZER_KEYS, RESOURCE_KEYS, SLOT_KEYS
from ._keys import Family, Key, Slot

__all__ = [
    "CANDIDATE_MARKERS",
    "INDEX",
    "NORMALIZER_KEYS",
    "RESOURCE_KEYS",
    "SLOT_KEYS",
    "Family",
    "Key",
    "Slot",
]
