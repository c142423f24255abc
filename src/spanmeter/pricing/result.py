"""What pricing one span produces: exact integer amounts plus their provenance."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import date

from ..money import NANO_PER_USD

__all__ = ["NANO_PER_USD", "CostFields", "PriceResult", "PricingStatus", "cost_fields"]


class PricingStatus(str, enum.Enum):
    """Why a span has (or has no) cost. Stored with every row; feeds data quality."""

    PRICED = "priced"
    """Cost computed by spanmeter from a price table."""
    REPORTED = "reported"
    """Cost taken from the span itself (provider-reported, per the cost policy)."""
    UNKNOWN_MODEL = "unknown_model"
    """A model was named but no price matches it: no cost, never $0, and counted."""
    NO_MODEL = "no_model"
    """The span names no model."""
    NO_USAGE = "no_usage"
    """The span reports no token usage."""
    INVALID_USAGE = "invalid_usage"
    """Token counts present but unusable (negative, absurd, not numbers)."""
    NOT_BILLABLE = "not_billable"
    """An outer span whose usage is the sum of its children: priced on the children."""


@dataclass(frozen=True, slots=True)
class PriceResult:
    """Cost of one span in nano-USD, split by token kind, with provenance.

    The parts always add up exactly to ``total_nano_usd``. All amounts are None unless
    ``status`` is PRICED or REPORTED (a reported cost has a total but no parts).
    """

    status: PricingStatus
    total_nano_usd: int | None = None
    input_nano_usd: int | None = None
    """Uncached input tokens."""
    output_nano_usd: int | None = None
    """Output tokens other than reasoning."""
    cache_read_nano_usd: int | None = None
    cache_write_nano_usd: int | None = None
    reasoning_nano_usd: int | None = None
    source: str | None = None
    """``genai-prices``, ``override`` or ``reported``."""
    source_version: str | None = None
    """genai-prices version, or the override file's content hash."""
    matched_provider: str | None = None
    """Provider id in the price source."""
    matched_model: str | None = None
    """Model id in the price source."""
    effective_date: date | None = None
    """Date from which the applied price was in force, when the source says."""
    discount: str | None = None
    """Description of the negotiated discount applied, if any (e.g. ``openai -15%``)."""

    @property
    def total_usd(self) -> float | None:
        """The total as a float, for span attributes and Prometheus only (never sum it)."""
        return None if self.total_nano_usd is None else self.total_nano_usd / NANO_PER_USD


CostFields = tuple[
    int | None,
    int | None,
    int | None,
    int | None,
    int | None,
    int | None,
    str,
    str | None,
    str | None,
    str | None,
    str | None,
    str | None,
]
"""A result as the stored row's cost columns, in their order: total, input, output, cache
read, cache write and reasoning nano-USD, then the status value, source, source version,
matched provider, matched model and effective date (ISO text).

What ingest needs of a result, as one tuple: building a frozen :class:`PriceResult` per
span, then reading it back field by field, cost ~1.5 us of a receiver's ~18 a span
(``bench/README.md``, ingest); :meth:`PriceBook.price_record_fields
<spanmeter.pricing.PriceBook.price_record_fields>` returns this directly."""


def cost_fields(result: PriceResult) -> CostFields:
    """``result`` as :data:`CostFields` (the stored row's cost columns)."""
    effective = result.effective_date
    return (
        result.total_nano_usd,
        result.input_nano_usd,
        result.output_nano_usd,
        result.cache_read_nano_usd,
        result.cache_write_nano_usd,
        result.reasoning_nano_usd,
        result.status.value,
        result.source,
        result.source_version,
        result.matched_provider,
        result.matched_model,
        None if effective is None else effective.isoformat(),
    )
