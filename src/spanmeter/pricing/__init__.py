"""Prices for GenAI spans: genai-prices by default, local overrides on top, exact integers out."""

from __future__ import annotations

from .result import NANO_PER_USD, PriceResult, PricingStatus

__all__ = ["NANO_PER_USD", "PriceResult", "PricingStatus"]
