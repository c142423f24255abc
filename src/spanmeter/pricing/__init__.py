"""Prices for GenAI spans: genai-prices by default, local overrides on top, exact integers out.

:class:`PriceBook` is the entry point (see :mod:`spanmeter.pricing.book`); the override
file's shape is documented in :mod:`spanmeter.pricing.overrides`.
"""

from __future__ import annotations

from ._stats import PricingStats
from .book import PriceBook
from .matching import PROVIDER_IDS, name_variants, provider_ids
from .overrides import Discount, ModelAlias, OverrideModel, OverridePrice, PriceOverrides
from .policy import CostPolicy
from .result import NANO_PER_USD, PriceResult, PricingStatus

__all__ = [
    "NANO_PER_USD",
    "PROVIDER_IDS",
    "CostPolicy",
    "Discount",
    "ModelAlias",
    "OverrideModel",
    "OverridePrice",
    "PriceBook",
    "PriceOverrides",
    "PriceResult",
    "PricingStats",
    "PricingStatus",
    "name_variants",
    "provider_ids",
]
