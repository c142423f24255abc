"""Plain result types of the analysis queries of :class:`~spanmeter.store.api.SpanStore`.

Kept apart from :mod:`spanmeter.store.api` so the protocol module stays readable; they are
re-exported from :mod:`spanmeter.store`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Final

from .rows import SpanRow

if TYPE_CHECKING:
    from ..pricing import PriceResult

__all__ = [
    "PRICING_FIELDS",
    "AggregateResult",
    "GroupMeasures",
    "Measures",
    "RepriceAudit",
    "RepricedRow",
    "RepricingRun",
    "RevenueRow",
    "StaleRepricing",
    "pricing_fields",
]


@dataclass(frozen=True, slots=True)
class Measures:
    """The summed measures of a rollup group (see :mod:`spanmeter.store.rollups`)."""

    attempts: int = 0
    logical_requests: int = 0
    cost_nano_usd: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    errors: int = 0
    """Attempts whose outcome is ``error``."""
    unpriced: int = 0
    """Attempts without a cost."""
    latency_ms_sum: float = 0.0
    latency_count: int = 0

    @classmethod
    def of(cls, values: Sequence[int | float | None]) -> Measures:
        """From sums in :data:`~spanmeter.store.rollups.MEASURES` order (None counts as 0)."""
        counts = [int(value or 0) for value in values]
        a, lr, cost, tin, tout, cr, cw, rs, err, unp, _, lc = counts
        return cls(a, lr, cost, tin, tout, cr, cw, rs, err, unp, float(values[10] or 0.0), lc)

    def __add__(self, other: Measures) -> Measures:
        return Measures(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(Measures)))

    @property
    def tokens(self) -> int:
        """Input plus output tokens."""
        return self.input_tokens + self.output_tokens

    @property
    def retries(self) -> int:
        """Attempts beyond the first of their logical request."""
        return self.attempts - self.logical_requests

    @property
    def successes(self) -> int:
        """Attempts that did not fail. With retry-safe request ids an app stops retrying at
        the first success, so this is also the number of successful logical requests."""
        return self.attempts - self.errors


@dataclass(frozen=True, slots=True)
class GroupMeasures:
    """One group of an aggregation: its dimension values and measures."""

    key: tuple[str | None, ...]
    """One value per requested dimension; None for attempts that did not carry it."""
    measures: Measures


@dataclass(frozen=True, slots=True)
class AggregateResult:
    """Measures per group of some dimensions over an aligned window, and the window total."""

    dimensions: tuple[str, ...]
    window_start_ns: int
    """Start of the first bucket counted (see :class:`~spanmeter.store.api.TopResult`)."""
    window_end_ns: int
    bucket_seconds: int
    """60 (minute rollup) or 3600 (hourly rollup, whenever ``user_id`` is involved)."""
    groups: list[GroupMeasures]
    """Every group, highest cost first, ties by key."""
    total: Measures

    def by_key(self) -> dict[tuple[str | None, ...], Measures]:
        """The groups as a mapping."""
        return {group.key: group.measures for group in self.groups}


PRICING_FIELDS: Final = (
    "cost_nano_usd",
    "input_cost_nano_usd",
    "output_cost_nano_usd",
    "cache_read_cost_nano_usd",
    "cache_write_cost_nano_usd",
    "reasoning_cost_nano_usd",
    "pricing_status",
    "pricing_source",
    "pricing_source_version",
    "pricing_provider",
    "pricing_model",
    "pricing_effective_date",
)
"""The row fields a re-pricing may change; everything else must stay as stored."""


def pricing_fields(price: PriceResult) -> dict[str, object]:
    """The :data:`PRICING_FIELDS` of a row priced by ``price`` (keyword arguments of ``SpanRow``)."""
    effective = price.effective_date
    return {
        "cost_nano_usd": price.total_nano_usd,
        "input_cost_nano_usd": price.input_nano_usd,
        "output_cost_nano_usd": price.output_nano_usd,
        "cache_read_cost_nano_usd": price.cache_read_nano_usd,
        "cache_write_cost_nano_usd": price.cache_write_nano_usd,
        "reasoning_cost_nano_usd": price.reasoning_nano_usd,
        "pricing_status": price.status.value,
        "pricing_source": price.source,
        "pricing_source_version": price.source_version,
        "pricing_provider": price.matched_provider,
        "pricing_model": price.matched_model,
        "pricing_effective_date": None if effective is None else effective.isoformat(),
    }


@dataclass(frozen=True, slots=True)
class RepricedRow:
    """One stored attempt before and after re-pricing."""

    old: SpanRow
    """The row as stored (its pricing fields guard against a concurrent change)."""
    new: SpanRow
    """The same row with new pricing fields (only :data:`PRICING_FIELDS` may differ)."""

    @property
    def cost_delta_nano_usd(self) -> int:
        """New cost minus old cost (a missing cost counts as 0)."""
        return (self.new.cost_nano_usd or 0) - (self.old.cost_nano_usd or 0)


class StaleRepricing(ValueError):
    """A row changed since the re-pricing diff was computed: nothing was applied."""


@dataclass(frozen=True, slots=True)
class RepricingRun:
    """Why and over what a re-pricing is applied: the audit entry's own fields (its figures
    come from the changed rows). One object, so the store protocol, its implementations and
    their callers name these once."""

    reason: str
    window_start_ns: int
    window_end_ns: int
    price_source: str
    """Which prices were applied (genai-prices version, override file hash)."""
    details: str = ""
    """The per-dimension diff as shown before applying (JSON)."""
    applied_at_ns: int | None = None
    """None: now."""


@dataclass(frozen=True, slots=True)
class RepriceAudit:
    """What one applied re-pricing changed, and why (kept in the store for audits)."""

    id: int
    applied_at_ns: int
    reason: str
    window_start_ns: int
    window_end_ns: int
    rows_changed: int
    cost_before_nano_usd: int
    """Sum of the changed rows' costs before (missing costs as 0)."""
    cost_after_nano_usd: int
    price_source: str
    """Which prices were applied (genai-prices version, override file hash)."""
    details: str
    """The per-dimension diff as shown before applying (JSON)."""


@dataclass(frozen=True, slots=True)
class RevenueRow:
    """Revenue of one tenant over one period, imported for tenant profitability."""

    tenant_id: str
    period: str
    """As written in the import (``2026-03``, ``2026-W10``, ``2026-03-02``, ``FROM..TO``)."""
    start_ns: int
    end_ns: int
    """The period as a half-open window, Unix ns."""
    revenue_nano_usd: int
