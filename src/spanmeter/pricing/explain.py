"""Why a model costs what it costs: the layer, the entry, the tier and the amounts.

``spanmeter prices show`` prints :func:`explain`'s answer; ``spanmeter prices check``
prints :func:`check_overlay`'s. Both are plain functions over a
:class:`~spanmeter.pricing.PriceBook`, so the answer is the one the price book gives spans.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Final, Literal

from ._rates import Rates, RateTable
from ._resolve import GENAI_PRICES, OVERRIDE
from .book import PriceBook
from .overlay import OVERLAY, OverlayEntry, PriceOverlay
from .result import PriceResult

__all__ = ["OverlayCheck", "PriceExplanation", "Usage", "check_overlay", "explain", "parse_usage"]

_ATTO_PER_MTOK: Final = Decimal(10**12)
_ATTO_PER_KREQUEST: Final = Decimal(10**15)
_USAGE_KEYS: Final = {
    "in": "input_tokens",
    "input": "input_tokens",
    "out": "output_tokens",
    "output": "output_tokens",
    "cache_read": "cache_read_tokens",
    "cache_write": "cache_write_tokens",
    "reasoning": "reasoning_tokens",
}


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts in OTel semantics (input includes cache, output includes reasoning)."""

    input_tokens: int = 1_000_000
    output_tokens: int = 1_000_000
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0


def parse_usage(text: str) -> Usage:
    """``in=1200,cache_read=1000,out=300`` (also ``input``, ``output``, ``cache_write``,
    ``reasoning``); parts not named are 0.

    Raises:
        ValueError: A part is unknown, repeated or not a non-negative integer.
    """
    counts: dict[str, int] = {}
    for part in filter(None, (piece.strip() for piece in text.split(","))):
        name, _, value = part.partition("=")
        key = _USAGE_KEYS.get(name.strip())
        if key is None:
            raise ValueError(
                f"unknown usage part {name.strip()!r}: use {', '.join(sorted(set(_USAGE_KEYS)))}"
            )
        if key in counts:
            raise ValueError(f"usage part {name.strip()!r} given twice")
        if not value.strip().isdigit():
            raise ValueError(f"usage part {name.strip()!r} must be a whole number of tokens, got {value!r}")
        counts[key] = int(value)
    return Usage(**{"input_tokens": 0, "output_tokens": 0, **counts})


@dataclass(frozen=True, slots=True)
class PriceExplanation:
    """Which layer priced a model on a day, at what rates, and what a usage costs."""

    provider: str | None
    model: str
    at: datetime
    usage: Usage
    layer: Literal["genai-prices", "spanmeter-overlay", "override", "none"]
    source_version: str | None = None
    matched_provider: str | None = None
    matched_model: str | None = None
    effective_date: date | None = None
    overlay_entry: OverlayEntry | None = None
    tier_start: int | None = None
    """The input-size tier the usage falls in (its start, in tokens); None: the base rates."""
    rates_mtok: dict[str, Decimal] = field(default_factory=dict[str, Decimal])
    """USD per million tokens (``request_kcount``: per thousand requests), discount applied."""
    discount: str | None = None
    result: PriceResult | None = None


def _rates_mtok(rates: Rates) -> dict[str, Decimal]:
    parts = {
        "input_mtok": rates.input,
        "output_mtok": rates.output,
        "cache_read_mtok": rates.cache_read,
        "cache_write_mtok": rates.cache_write,
        "reasoning_mtok": rates.reasoning,
    }
    mtok = {name: (Decimal(atto) / _ATTO_PER_MTOK).normalize() for name, atto in parts.items()}
    if rates.request:
        mtok["request_kcount"] = (Decimal(rates.request) / _ATTO_PER_KREQUEST).normalize()
    return mtok


def _tier(table: RateTable, input_tokens: int) -> tuple[int | None, Rates]:
    for start, rates in table.tiers:  # by descending start, as the price book reads them
        if input_tokens > start:
            return start, rates
    return None, table.base


def explain(
    book: PriceBook, provider: str | None, model: str, at: datetime, usage: Usage
) -> PriceExplanation:
    """How ``book`` prices ``usage`` of ``model`` (by ``provider``) for a call ending at ``at``."""
    if at.tzinfo is None:
        at = at.replace(tzinfo=timezone.utc)
    result = book.price(
        provider,
        model,
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        cache_read_tokens=usage.cache_read_tokens,
        cache_write_tokens=usage.cache_write_tokens,
        reasoning_tokens=usage.reasoning_tokens,
        at=at,
    )
    entry = book.entry_at(provider, model, at)
    if entry is None:
        return PriceExplanation(provider, model, at, usage, "none", result=result)
    us_of_day = (at.hour * 3600 + at.minute * 60 + at.second) * 1_000_000 + at.microsecond
    table = entry.table_at(us_of_day) if entry.windows else entry.table
    tier_start, rates = _tier(table, usage.input_tokens)
    layer: Literal["genai-prices", "spanmeter-overlay", "override"] = (
        "override" if rates.source == OVERRIDE else OVERLAY if rates.source == OVERLAY else GENAI_PRICES
    )
    overlay = book.overlay
    fix = _overlay_entry(overlay, rates.matched_provider, rates.matched_model) if layer == OVERLAY else None
    return PriceExplanation(
        provider,
        model,
        at,
        usage,
        layer,
        source_version=rates.source_version,
        matched_provider=rates.matched_provider,
        matched_model=rates.matched_model,
        effective_date=rates.effective_date,
        overlay_entry=fix,
        tier_start=tier_start,
        rates_mtok=_rates_mtok(rates),
        discount=rates.discount,
        result=result,
    )


def _overlay_entry(
    overlay: PriceOverlay | None, provider: str | None, model: str | None
) -> OverlayEntry | None:
    if overlay is None:
        return None
    return next((e for e in overlay.entries if e.provider == provider and e.model == model), None)


OverlayVerdict = Literal["needed", "redundant", "conflict", "broken"]


@dataclass(frozen=True, slots=True)
class OverlayCheck:
    """One overlay entry against the installed genai-prices, on one day."""

    entry: OverlayEntry
    verdict: OverlayVerdict
    detail: str


_PROBES: Final = (
    Usage(input_tokens=1_000, output_tokens=500, cache_read_tokens=100),
    Usage(input_tokens=300_000, output_tokens=2_000, cache_read_tokens=100),
)
"""Usages compared: a plain call, and one above every long-context tier start we know."""


def check_overlay(overlay: PriceOverlay, at: datetime) -> list[OverlayCheck]:
    """Each entry's verdict on ``at`` (its effective date when later):

    * ``broken``: an example is not priced by the entry (it no longer resolves);
    * ``redundant``: genai-prices alone gives every example the same amounts: drop it;
    * ``conflict``: an addition whose names genai-prices now prices differently: review
      which is right;
    * ``needed``: genai-prices still lacks it or prices it otherwise.

    An entry the overlay could not apply (its provider or upstream model is gone) is
    ``broken`` too.
    """
    with_overlay = PriceBook(overlay=overlay)
    plain = PriceBook(overlay=None)
    checks: list[OverlayCheck] = []
    for entry in overlay.entries:
        when = max(at, datetime.combine(entry.effective_from, datetime.min.time(), tzinfo=timezone.utc))
        verdicts: list[tuple[OverlayVerdict, str]] = []
        for example in entry.examples or (entry.model,):
            for usage in _PROBES:
                ours = explain(with_overlay, entry.provider, example, when, usage)
                theirs = explain(plain, entry.provider, example, when, usage)
                if ours.layer != OVERLAY or ours.matched_model != entry.model:
                    verdicts.append(
                        ("broken", f"{example}: priced by {ours.layer} {ours.matched_model or ''}")
                    )
                elif theirs.result is not None and ours.result is not None:
                    same = theirs.result.total_nano_usd == ours.result.total_nano_usd
                    if theirs.layer == "none":
                        verdicts.append(("needed", f"{example}: genai-prices does not price it"))
                    elif same:
                        verdicts.append(("redundant", f"{example}: genai-prices agrees"))
                    elif entry.upstream is None:
                        verdicts.append(
                            ("conflict", f"{example}: genai-prices now prices it as {theirs.matched_model}")
                        )
                    else:
                        verdicts.append(("needed", f"{example}: genai-prices gives another price"))
        for verdict in ("broken", "conflict", "needed", "redundant"):
            found = [detail for kind, detail in verdicts if kind == verdict]
            if found:
                checks.append(OverlayCheck(entry, verdict, found[0]))
                break
    return checks
