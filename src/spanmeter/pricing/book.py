"""The price book: exact integer cost of a GenAI span in a few microseconds.

Typical use, once per process::

    from spanmeter.pricing import CostPolicy, PriceBook

    book = PriceBook.from_env()  # genai-prices, plus SPANMETER_PRICING_FILE when set
    result = book.price_record(record)  # a GenAIRecord from the normaliser
    result.status, result.total_nano_usd, result.input_nano_usd, result.matched_model

    book.price("openai", "gpt-4o", input_tokens=1200, output_tokens=300)
    book.stats().unknown_models  # what to add to the override file

How a span is priced:

1. The span's (provider, model) is matched once (overrides, then genai-prices with
   tolerant name rewriting) and the price in force on the span's end day (UTC) is
   flattened to integer atto-USD rates, discount applied. Both are cached, misses too.
2. Each part is an exact integer in atto-USD (tokens x rate), rounded half-even to
   nano-USD. The total is the sum of the rounded parts, so parts always add up.
   Parts: ``input`` (input minus cache reads and writes, plus any per-request fee),
   ``cache_read``, ``cache_write``, ``output`` (output minus reasoning), ``reasoning``.
3. A model nothing prices gives ``unknown_model`` with no amounts, never $0, and is
   counted in :meth:`PriceBook.stats`.

A PriceBook is safe to share between threads. The warm path takes no lock: caches are
plain dicts (atomic get/set under the GIL; two threads may both resolve a cold key, with
the same result) and counters are per thread.
"""

from __future__ import annotations

import logging
import os
import time
from datetime import datetime, timedelta, timezone
from decimal import ROUND_HALF_EVEN, Context, Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Final, Literal, cast

import genai_prices
from genai_prices.data_snapshot import DataSnapshot, get_snapshot

from ..environment_variables import SPANMETER_PRICING_FILE
from ..timeunits import NS_PER_DAY
from ._rates import ATTO_PER_NANO, PriceEntry, Rates
from ._resolve import Resolver
from ._stats import PricingStats, StatusCounter
from .overlay import PriceOverlay
from .overrides import PriceOverrides
from .policy import CostPolicy
from .result import NANO_PER_USD, CostFields, PriceResult, PricingStatus, cost_fields

if TYPE_CHECKING:  # only read by attribute: pricing does not import the normaliser
    from ..normalise.record import GenAIRecord

__all__ = ["PriceBook"]

_logger = logging.getLogger(__name__)

_NS_PER_US: Final = 1_000
_US_PER_DAY: Final = 86_400 * 10**6
_HALF_NANO: Final = ATTO_PER_NANO // 2
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MICROSECOND: Final = timedelta(microseconds=1)
_WIDE: Final = Context(prec=80, rounding=ROUND_HALF_EVEN)
_REPORTED_SOURCE: Final = "reported"
_PROVIDER: Final = "provider"
_UNKNOWN: Final = False
"""Cache value for a (provider, model, day) that nothing prices."""

_PRICED: Final = PricingStatus.PRICED
_REPORTED: Final = PricingStatus.REPORTED
_FALLBACK_TO_REPORTED: Final = frozenset(
    {PricingStatus.UNKNOWN_MODEL, PricingStatus.NO_MODEL, PricingStatus.NO_USAGE, PricingStatus.INVALID_USAGE}
)
# Results without amounts carry nothing span-specific: share one instance of each.
_RESULT_UNKNOWN_MODEL: Final = PriceResult(PricingStatus.UNKNOWN_MODEL)
_RESULT_NO_MODEL: Final = PriceResult(PricingStatus.NO_MODEL)
_RESULT_NO_USAGE: Final = PriceResult(PricingStatus.NO_USAGE)
_RESULT_INVALID_USAGE: Final = PriceResult(PricingStatus.INVALID_USAGE)
_RESULT_NOT_BILLABLE: Final = PriceResult(PricingStatus.NOT_BILLABLE)

_Amounts = tuple[Rates, int, int, int, int, int, int]
"""A priced call: the rates applied, then the total and the parts in nano-USD."""


def _nano(atto: int) -> int:
    """Atto-USD to nano-USD, rounded half to even (no bias when summing many parts)."""
    quotient, remainder = divmod(atto, ATTO_PER_NANO)
    if remainder > _HALF_NANO or (remainder == _HALF_NANO and quotient & 1):
        return quotient + 1
    return quotient


class PriceBook:
    """Prices GenAI spans from genai-prices data and local overrides."""

    def __init__(
        self,
        overrides: PriceOverrides | None = None,
        *,
        snapshot: DataSnapshot | None = None,
        overlay: PriceOverlay | Literal["bundled"] | None = "bundled",
        max_cache_entries: int = 100_000,
        max_unknown_names: int = 1_000,
    ) -> None:
        """Create a price book.

        Args:
            overrides: Aliases, custom prices and discounts (see :mod:`.overrides`).
            snapshot: genai-prices data. Default: the current snapshot (the bundled data,
                or what ``genai_prices.UpdatePrices`` installed), taken now.
            overlay: spanmeter's checked corrections and additions, applied on top of
                ``snapshot`` (below the overrides). Default: the one shipped in the package;
                None prices with genai-prices alone.
            max_cache_entries: Cached (provider, model, day) resolutions; the cache restarts
                when full, which bounds memory however many junk model names arrive.
            max_unknown_names: Distinct unknown (provider, model) names itemised in stats.

        Raises:
            ValueError: A limit is not positive.
        """
        if max_cache_entries < 1 or max_unknown_names < 1:
            raise ValueError("max_cache_entries and max_unknown_names must be positive")
        self._overrides = overrides
        self._overlay = PriceOverlay.bundled() if overlay == "bundled" else overlay
        base = snapshot if snapshot is not None else get_snapshot()
        self._applied = self._overlay.apply(base) if self._overlay is not None else None
        self._resolver = Resolver(base, overrides, genai_prices.__version__, max_cache_entries, self._applied)
        self._entries: dict[tuple[str | None, str, int], PriceEntry | Literal[False]] = {}
        self._max_entries = max_cache_entries
        self._counter = StatusCounter(max_unknown_names)
        self._overrides_error: str | None = None

    @classmethod
    def from_file(cls, path: str | Path) -> PriceBook:
        """A price book with the overrides in a YAML file.

        Raises:
            ValueError: The file cannot be read or is invalid (the message says where).
        """
        return cls(PriceOverrides.from_file(path))

    @classmethod
    def from_env(cls, *, strict: bool = False) -> PriceBook:
        """A price book with the overrides named by ``SPANMETER_PRICING_FILE``, if set.

        This runs inside the host app (the processor, the OTel entry points), where a bad
        configuration must not stop the app: by default a file that cannot be used is
        logged as a warning and genai-prices list prices are used, with the problem kept in
        :attr:`overrides_error` for diagnostics. A server that should refuse to start on a
        bad file passes ``strict=True``.

        Args:
            strict: Raise instead of falling back.

        Raises:
            ValueError: Only with ``strict``: the file cannot be read or is invalid.
        """
        path = os.environ.get(SPANMETER_PRICING_FILE, "").strip()
        if not path:
            return cls()
        try:
            return cls.from_file(path)
        except ValueError as exc:
            if strict:
                raise
            _logger.warning("spanmeter: price overrides not used, list prices apply: %s", exc)
            book = cls()
            book._overrides_error = str(exc)
            return book

    @property
    def overrides(self) -> PriceOverrides | None:
        """The overrides in use."""
        return self._overrides

    @property
    def overlay(self) -> PriceOverlay | None:
        """spanmeter's shipped price corrections in use (None: genai-prices alone)."""
        return self._overlay

    @property
    def overlay_problems(self) -> list[str]:
        """Overlay entries left out because genai-prices lacks their provider or model."""
        return list(self._applied.problems) if self._applied is not None else []

    @property
    def overrides_error(self) -> str | None:
        """Why :meth:`from_env` could not use the override file, if it could not."""
        return self._overrides_error

    def price(
        self,
        provider: str | None,
        model: str | None,
        *,
        input_tokens: int | None,
        output_tokens: int | None,
        cache_read_tokens: int = 0,
        cache_write_tokens: int = 0,
        reasoning_tokens: int = 0,
        at: datetime | None = None,
    ) -> PriceResult:
        """Price one call from its usage (token semantics as in OTel, see below).

        Args:
            provider: ``gen_ai.provider.name`` value (or a genai-prices id); None to infer
                it from the model name.
            model: Model name as reported.
            input_tokens: All input tokens, cache reads and writes included.
            output_tokens: All output tokens, reasoning included.
            cache_read_tokens: Input tokens read from the prompt cache.
            cache_write_tokens: Input tokens written to the prompt cache.
            reasoning_tokens: Output tokens spent reasoning.
            at: When the call ended; naive means UTC. Default: now.

        Returns:
            The result; never raises for unknown models or bad usage (see the statuses).
        """
        if at is None:
            ns = time.time_ns()
        else:
            if at.tzinfo is None:
                at = at.replace(tzinfo=timezone.utc)
            ns = (at - _EPOCH) // _MICROSECOND * _NS_PER_US
        result = _as_result(
            self._amounts(
                provider,
                model,
                input_tokens,
                output_tokens,
                cache_read_tokens,
                cache_write_tokens,
                reasoning_tokens,
                ns,
            )
        )
        self._counter.cells()[result.status] += 1
        return result

    def price_record(
        self, record: GenAIRecord, policy: CostPolicy = CostPolicy.PREFER_PROVIDER
    ) -> PriceResult:
        """Price a normalised span, taking a cost already on it into account per ``policy``.

        Prices in force at the span's end time apply (its start time, or now, when absent).
        """
        if not record.billable:
            result = _RESULT_NOT_BILLABLE
        else:
            reported = record.reported_cost_usd
            if reported is not None and (
                policy is CostPolicy.TRUST_REPORTED
                or (policy is CostPolicy.PREFER_PROVIDER and record.reported_cost_source == _PROVIDER)
            ):
                result = _reported(reported, record)
                if result is not None:
                    self._counter.cells()[_REPORTED] += 1
                    return result
            ns = record.end_time_ns
            if ns is None:
                ns = record.start_time_ns if record.start_time_ns is not None else time.time_ns()
            if record.usage_invalid and (record.response_model or record.request_model):
                # Pricing the counts that survived validation would undercount the span.
                result = _RESULT_INVALID_USAGE
            else:
                result = _as_result(
                    self._amounts(
                        record.provider,
                        record.response_model or record.request_model,
                        record.input_tokens,
                        record.output_tokens,
                        record.cache_read_tokens,
                        record.cache_write_tokens,
                        record.reasoning_tokens,
                        ns,
                    )
                )
            if (
                reported is not None
                and policy is not CostPolicy.ALWAYS_COMPUTE
                and result.status in _FALLBACK_TO_REPORTED
            ):
                result = _reported(reported, record) or result
        self._counter.cells()[result.status] += 1
        return result

    def price_record_fields(
        self, record: GenAIRecord, policy: CostPolicy = CostPolicy.PREFER_PROVIDER
    ) -> CostFields:
        """:meth:`price_record` as the stored row's cost columns (:data:`CostFields`), what
        ingest stores; the same prices, statuses and counts.

        Why a second entry point: the common span (billable, usable counts, no cost of its
        own, a known model) is priced here without building a :class:`PriceResult` and
        reading it back (~1.5 us a span at ingest, see ``bench/README.md``); every other
        span goes through :meth:`price_record` itself, so the two cannot disagree on them.
        """
        if record.billable and record.reported_cost_usd is None and not record.usage_invalid:
            ns = record.end_time_ns
            if ns is None:
                ns = record.start_time_ns if record.start_time_ns is not None else time.time_ns()
            model = record.response_model or record.request_model
            entry = self._entries.get((record.provider, model, ns // NS_PER_DAY)) if model else None
            # Only a cached, known (provider, model, day) takes this path: then _amounts has
            # no side effect (no resolution, no unknown-model count) and may be run again
            # by price_record below if it does not price the span.
            if entry is not None and entry is not False:
                amounts = self._amounts(
                    record.provider,
                    model,
                    record.input_tokens,
                    record.output_tokens,
                    record.cache_read_tokens,
                    record.cache_write_tokens,
                    record.reasoning_tokens,
                    ns,
                )
                if amounts.__class__ is tuple:
                    priced = cast(_Amounts, amounts)
                    self._counter.cells()[_PRICED] += 1
                    return priced[1:] + priced[0].provenance_fields  # type: ignore[return-value]
        return cost_fields(self.price_record(record, policy))

    def entry_at(self, provider: str | None, model: str, at: datetime) -> PriceEntry | None:
        """The rates that price ``model`` for spans ending at ``at`` (naive: UTC), with
        their provenance; None when nothing prices it. For explaining a price
        (``spanmeter prices show``), not for pricing spans: it bypasses the caches."""
        if at.tzinfo is None:
            at = at.replace(tzinfo=timezone.utc)
        day = (at - _EPOCH) // timedelta(days=1)
        return self._resolver.entry(provider, model, day)

    def stats(self) -> PricingStats:
        """Results so far by status, and the unknown models with their counts."""
        return self._counter.snapshot()

    def clear_cache(self) -> None:
        """Forget resolved prices and matches (to measure cold lookups, or free memory).

        The genai-prices data stays the snapshot taken at construction: to use newer data
        (``genai_prices.UpdatePrices``), build a new PriceBook.
        """
        self._entries.clear()
        self._resolver.clear()

    def _amounts(
        self,
        provider: str | None,
        model: str | None,
        input_tokens: int | None,
        output_tokens: int | None,
        cache_read: int,
        cache_write: int,
        reasoning: int,
        ns: int,
    ) -> _Amounts | PriceResult:
        """The rates applied and the exact parts (total first) of a priced call, or the
        shared result without amounts that says why it is not priced."""
        if not model:
            return _RESULT_NO_MODEL
        if input_tokens is None:
            if output_tokens is None:
                return _RESULT_NO_USAGE
            input_tokens = 0
        elif output_tokens is None:
            output_tokens = 0
        key = (provider, model, ns // NS_PER_DAY)
        entry = self._entries.get(key)
        if entry is None:
            entry = self._resolve(key)
        if entry is False:
            self._counter.unknown(provider, model)
            return _RESULT_UNKNOWN_MODEL
        # Tokens must be ints (bool is not) and the parts must not be negative: genai-prices
        # raises on such usage, we return invalid_usage instead of guessing.
        if (
            input_tokens.__class__ is not int
            or output_tokens.__class__ is not int
            or cache_read.__class__ is not int
            or cache_write.__class__ is not int
            or reasoning.__class__ is not int
        ):
            return _RESULT_INVALID_USAGE
        uncached = input_tokens - cache_read - cache_write
        visible = output_tokens - reasoning
        if uncached < 0 or visible < 0 or cache_read < 0 or cache_write < 0 or reasoning < 0:
            return _RESULT_INVALID_USAGE
        table = entry.table if not entry.windows else entry.table_at((ns // _NS_PER_US) % _US_PER_DAY)
        rates = table.base
        for start, tier_rates in table.tiers:
            if input_tokens > start:
                rates = tier_rates
                break
        nano = rates.nano
        if nano is not None:  # whole nano-USD rates: the exact amounts are the parts
            input_part = uncached * nano[0] + nano[5]
            output_part = visible * nano[1]
            cache_read_part = cache_read * nano[2]
            cache_write_part = cache_write * nano[3]
            reasoning_part = reasoning * nano[4]
        else:
            input_part = _nano(uncached * rates.input + rates.request)
            output_part = _nano(visible * rates.output)
            cache_read_part = _nano(cache_read * rates.cache_read)
            cache_write_part = _nano(cache_write * rates.cache_write)
            reasoning_part = _nano(reasoning * rates.reasoning)
        return (
            rates,
            input_part + output_part + cache_read_part + cache_write_part + reasoning_part,
            input_part,
            output_part,
            cache_read_part,
            cache_write_part,
            reasoning_part,
        )

    def _resolve(self, key: tuple[str | None, str, int]) -> PriceEntry | Literal[False]:
        entry = self._resolver.entry(*key)
        value: PriceEntry | Literal[False] = _UNKNOWN if entry is None else entry
        if len(self._entries) >= self._max_entries:
            self._entries.clear()
        self._entries[key] = value
        return value


def _as_result(amounts: _Amounts | PriceResult) -> PriceResult:
    """The :class:`PriceResult` of what :meth:`PriceBook._amounts` found."""
    if amounts.__class__ is PriceResult:
        return cast(PriceResult, amounts)
    rates, total, input_part, output_part, cache_read_part, cache_write_part, reasoning_part = cast(
        _Amounts, amounts
    )
    # positional for speed (a frozen dataclass __init__ costs per keyword); the order is
    # PriceResult's field order, checked by a test
    return PriceResult(
        _PRICED,
        total,
        input_part,
        output_part,
        cache_read_part,
        cache_write_part,
        reasoning_part,
        rates.source,
        rates.source_version,
        rates.matched_provider,
        rates.matched_model,
        rates.effective_date,
        rates.discount,
    )


def _reported(cost: Decimal, record: GenAIRecord) -> PriceResult | None:
    """A reported USD cost as a result; None when it is not a usable amount.

    A reported 0 on a span that used tokens is not a price but the absence of one: OpenLIT
    writes ``gen_ai.usage.cost = 0`` for every model it cannot price. Taking it would store
    an unknown model at $0 and hide it from every "attempts without a price" count, so the
    span keeps the status its own pricing gave it (``unknown_model``...). A 0 on a span
    without tokens (a call that failed before the model ran) is a true $0.
    """
    if not cost.is_finite() or cost < 0:
        return None
    if not cost and ((record.input_tokens or 0) > 0 or (record.output_tokens or 0) > 0):
        return None
    nano = int(_WIDE.multiply(cost, Decimal(NANO_PER_USD)).to_integral_value(rounding=ROUND_HALF_EVEN))
    return PriceResult(_REPORTED, nano, source=_REPORTED_SOURCE)
