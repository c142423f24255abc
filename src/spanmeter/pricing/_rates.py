"""Flat integer rates: what a model costs per token on one day, ready for integer arithmetic.

genai-prices answers "what does this usage cost" in ~80 µs, because every call walks the
price's units, decomposes the usage and does Decimal arithmetic. A span processor cannot
spend that per span, so the price in force for a (provider, model, UTC day) is resolved
once into integers here, and pricing a span becomes five integer multiplications.

Units: **atto-USD per token** (1e-18 USD). A price of $P per million tokens is
``P * 10**12`` atto-USD per token, exact for any price with up to 12 decimals per MTok,
which covers every published price and a percentage discount applied to it.

The decomposition mirrors genai-prices' (``decompose.compute_leaf_values`` over the units
the model prices): cache reads and writes are carved out of input only when the model has a
price for them, otherwise they stay in input at the input rate; reasoning likewise out of
output. Tiered prices are genai-prices' cliff tiers: when the total input tokens (cache
included) exceed a tier's start, the whole request pays that tier's rates.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timezone
from decimal import ROUND_HALF_EVEN, Context, Decimal
from typing import Final

from genai_prices.types import ModelInfo, ModelPrice, StartDateConstraint, TieredPrices, TimeOfDateConstraint

from .overrides import OverridePrice
from .result import PricingStatus

__all__ = [
    "ATTO_PER_NANO",
    "PriceEntry",
    "Provenance",
    "RateTable",
    "Rates",
    "entry_for_model",
    "entry_for_override",
]

ATTO_PER_NANO: Final = 10**9
_ATTO_PER_MTOK_PRICE: Final = 10**12
"""$1 per million tokens is 1e-6 USD = 1e12 atto-USD per token."""
_ATTO_PER_KREQUEST_PRICE: Final = 10**15
"""$1 per thousand requests is 1e-3 USD = 1e15 atto-USD per request."""
_EXACT: Final = Context(prec=80, rounding=ROUND_HALF_EVEN)
"""Wide enough that multiplying a price by a scale and a discount never rounds."""
_GENAI_KEYS: Final = (
    "input_mtok",
    "output_mtok",
    "cache_read_mtok",
    "cache_write_mtok",
    "output_reasoning_mtok",
    "requests_kcount",
)
_US_PER_SECOND: Final = 1_000_000

_Prices = tuple[
    Decimal | None, Decimal | None, Decimal | None, Decimal | None, Decimal | None, Decimal | None
]


@dataclass(frozen=True, slots=True)
class Provenance:
    """Where a rate came from; copied onto every result priced with it."""

    source: str
    source_version: str | None
    matched_provider: str | None
    matched_model: str
    discount: str | None = None
    """Label of the discount applied, if any."""
    keep: Decimal | None = None
    """Share of the price left after the discount (0.85 for 15 %); None: no discount."""


class Rates:
    """Atto-USD per token for each part, plus provenance. Read-only by convention."""

    __slots__ = (
        "cache_read",
        "cache_write",
        "discount",
        "effective_date",
        "input",
        "matched_model",
        "matched_provider",
        "nano",
        "output",
        "provenance_fields",
        "reasoning",
        "request",
        "source",
        "source_version",
    )

    def __init__(self, prices: _Prices, provenance: Provenance, effective_date: date | None) -> None:
        """Convert per-MTok Decimal prices (and a per-1k-requests fee) to integer rates."""
        input_mtok, output_mtok, cache_read_mtok, cache_write_mtok, reasoning_mtok, request_kcount = prices
        keep = provenance.keep
        self.input = _atto(input_mtok, _ATTO_PER_MTOK_PRICE, keep)
        self.output = _atto(output_mtok, _ATTO_PER_MTOK_PRICE, keep)
        # without a price of their own, cache and reasoning tokens cost what their parent
        # (input, output) costs, exactly as in genai-prices
        self.cache_read = (
            self.input if cache_read_mtok is None else _atto(cache_read_mtok, _ATTO_PER_MTOK_PRICE, keep)
        )
        self.cache_write = (
            self.input if cache_write_mtok is None else _atto(cache_write_mtok, _ATTO_PER_MTOK_PRICE, keep)
        )
        self.reasoning = (
            self.output if reasoning_mtok is None else _atto(reasoning_mtok, _ATTO_PER_MTOK_PRICE, keep)
        )
        self.request = _atto(request_kcount, _ATTO_PER_KREQUEST_PRICE, keep)
        parts = (self.input, self.output, self.cache_read, self.cache_write, self.reasoning, self.request)
        # Most prices are whole nano-USD per token ($1/MTok = 1000 nano per token), and then
        # no part ever needs rounding: price such spans without divmod.
        self.nano: tuple[int, int, int, int, int, int] | None = (
            (
                self.input // ATTO_PER_NANO,
                self.output // ATTO_PER_NANO,
                self.cache_read // ATTO_PER_NANO,
                self.cache_write // ATTO_PER_NANO,
                self.reasoning // ATTO_PER_NANO,
                self.request // ATTO_PER_NANO,
            )
            if all(part % ATTO_PER_NANO == 0 for part in parts)
            else None
        )
        self.source = provenance.source
        self.source_version = provenance.source_version
        self.matched_provider = provenance.matched_provider
        self.matched_model = provenance.matched_model
        self.effective_date = effective_date
        self.discount = provenance.discount
        # The tail of a priced span's cost columns (see ``result.CostFields``), built once
        # per rate rather than once per span.
        self.provenance_fields: tuple[str, str | None, str | None, str | None, str | None, str | None] = (
            PricingStatus.PRICED.value,
            self.source,
            self.source_version,
            self.matched_provider,
            self.matched_model,
            None if effective_date is None else effective_date.isoformat(),
        )


def _atto(price: Decimal | None, scale: int, keep: Decimal | None) -> int:
    if price is None:
        return 0
    value = _EXACT.multiply(price, Decimal(scale))
    if keep is not None:
        value = _EXACT.multiply(value, keep)
    # Exact for every price with at most 12 decimals per MTok (15 per 1k requests) and for
    # percentage discounts on them. Anything finer is rounded half-even to the nearest
    # atto-USD per token: an error below 1e-18 USD per token, far under the nano-USD
    # resolution of results.
    return int(value.to_integral_value(rounding=ROUND_HALF_EVEN))


@dataclass(frozen=True, slots=True)
class RateTable:
    """Rates for one price, with its input-size tiers."""

    base: Rates
    tiers: tuple[tuple[int, Rates], ...] = ()
    """``(start, rates)`` by descending start: a request whose total input tokens exceed
    ``start`` pays ``rates`` on every token (a cliff, not a marginal tier)."""


@dataclass(frozen=True, slots=True)
class PriceEntry:
    """Everything needed to price a span of one (provider, model) on one UTC day."""

    table: RateTable
    """The price in force all day, or outside every time window."""
    windows: tuple[tuple[int, int, RateTable], ...] = ()
    """Time-of-day prices (off-peak discounts) as ``(start_us, end_us, table)`` in UTC
    microseconds of the day, in precedence order. Empty for almost every model, which is
    what keeps the entry cacheable per day: the window is picked per span."""

    def table_at(self, us_of_day: int) -> RateTable:
        """The table in force at a UTC time of day (microseconds since midnight)."""
        for start, end, table in self.windows:
            if (start <= us_of_day < end) if start <= end else (us_of_day >= start or us_of_day < end):
                return table
        return self.table


def _price_values(model_price: ModelPrice) -> tuple[Decimal | TieredPrices | None, ...]:
    # read the instance dict: ModelPrice.__getattr__ answers None for every registered
    # unit, which costs a registry lookup per key
    values = model_price.__dict__
    return tuple(values.get(key) for key in _GENAI_KEYS)


def _at_threshold(value: Decimal | TieredPrices | None, threshold: int | None) -> Decimal | None:
    if value is None or isinstance(value, Decimal):
        return value
    price = value.base
    if threshold is not None:
        for tier in value.tiers:  # ascending (TieredPrices sorts them)
            if tier.start <= threshold:
                price = tier.price
    return price


def _table(model_price: ModelPrice, provenance: Provenance, effective_date: date | None) -> RateTable | None:
    values = _price_values(model_price)
    if values[0] is None and values[1] is None:
        return None  # not priced per token (audio hours, pages...): nothing to charge tokens at
    starts = sorted(
        {tier.start for value in values if isinstance(value, TieredPrices) for tier in value.tiers}
    )

    def rates(threshold: int | None) -> Rates:
        inp, out, cache_read, cache_write, reasoning, request = (_at_threshold(v, threshold) for v in values)
        return Rates((inp, out, cache_read, cache_write, reasoning, request), provenance, effective_date)

    # Tier starts of different units are merged: in the segment above start s, each unit
    # pays its highest tier starting at or below s, which is the tier genai-prices'
    # calc_unit_price picks for any total input in that segment.
    return RateTable(rates(None), tuple((start, rates(start)) for start in reversed(starts)))


def _micros_utc(value: time) -> int:
    # genai-prices treats a naive time as UTC and converts an aware one on 1970-01-01
    if value.tzinfo is not None:
        value = datetime.combine(date(1970, 1, 1), value).astimezone(timezone.utc).timetz()
    return ((value.hour * 60 + value.minute) * 60 + value.second) * _US_PER_SECOND + value.microsecond


def entry_for_model(model: ModelInfo, day: date, provenance: Provenance) -> PriceEntry | None:
    """The genai-prices price of ``model`` for spans ending on ``day`` (UTC).

    Follows ``ModelInfo.get_prices``: conditional prices are tried last to first and the
    first active one wins; when none is active, the first is used. Start-date constraints
    are settled by the day; time-of-day constraints met before the winner become windows
    picked per span. Request-context variants (service tier, batch) are not applied.

    Returns:
        None when the model has no per-token price.
    """
    prices = model.prices
    if isinstance(prices, ModelPrice):
        table = _table(prices, provenance, None)
        return None if table is None else PriceEntry(table)
    if not prices:
        return None
    windows: list[tuple[int, int, RateTable]] = []
    chosen = prices[0]
    for conditional in reversed(prices):
        constraint = conditional.constraint
        if constraint is None or (
            isinstance(constraint, StartDateConstraint) and day >= constraint.start_date
        ):
            chosen = conditional
            break
        if isinstance(constraint, TimeOfDateConstraint):
            window = _table(conditional.prices, provenance, None)
            if window is None:
                return None
            windows.append((_micros_utc(constraint.start_time), _micros_utc(constraint.end_time), window))
    constraint = chosen.constraint
    effective = constraint.start_date if isinstance(constraint, StartDateConstraint) else None
    table = _table(chosen.prices, provenance, effective)
    return None if table is None else PriceEntry(table, tuple(windows))


def entry_for_override(price: OverridePrice, provenance: Provenance) -> PriceEntry:
    """A dated override price as a (single-tier, all-day) entry."""
    prices: _Prices = (
        price.input_mtok,
        price.output_mtok,
        price.cache_read_mtok,
        price.cache_write_mtok,
        price.reasoning_mtok,
        None,
    )
    return PriceEntry(RateTable(Rates(prices, provenance, price.effective_from)))
