"""spanmeter's shipped price overlay: every entry parses, resolves and prices its examples.

Each entry's figures are checked against genai-prices' own ``ModelPrice.calc_price`` run on
the entry's prices (an independent calculation: decimals, its tier rule), at a date the
entry is in force, for plain and long-context usage. Before its date a correction gives
genai-prices' upstream price and an addition gives none. A user's override still wins.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path

import pytest
from genai_prices.data_snapshot import get_snapshot
from genai_prices.types import TieredPrices, Usage

from spanmeter.pricing import PriceBook, PricingStatus
from spanmeter.pricing.explain import check_overlay
from spanmeter.pricing.overlay import OVERLAY, OverlayEntry, PriceOverlay
from spanmeter.pricing.overrides import PriceOverrides

OVERLAY_DATA = PriceOverlay.bundled()
BOOK = PriceBook()
PLAIN = PriceBook(overlay=None)
CASES = [(entry, example) for entry in OVERLAY_DATA.entries for example in entry.examples]


def at(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, 12, tzinfo=timezone.utc)


def expected_nano(entry: OverlayEntry, input_tokens: int, cache_read: int, output: int) -> int:
    usage = Usage(input_tokens=input_tokens, cache_read_tokens=cache_read, output_tokens=output)
    total = entry.prices.calc_price(usage)["total_price"]
    return int((total * 1_000_000_000).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


def test_the_overlay_is_not_empty_and_every_entry_has_examples() -> None:
    assert len(OVERLAY_DATA.entries) >= 5
    for entry in OVERLAY_DATA.entries:
        assert entry.examples, entry.model
        assert entry.source.startswith("https://")
        assert entry.checked >= entry.effective_from or entry.kind == "correction"


@pytest.mark.parametrize(("entry", "example"), CASES, ids=[f"{e.provider}/{x}" for e, x in CASES])
def test_each_entry_prices_its_examples(entry: OverlayEntry, example: str) -> None:
    when = at(max(entry.effective_from, entry.checked))
    cache_read = 100 if "cache_read_mtok" in vars(entry.prices) else 0
    usages = [(1_000, cache_read, 500)]
    if any(isinstance(value, TieredPrices) for value in vars(entry.prices).values()):
        usages.append((300_000, cache_read, 2_000))  # above every tier start we ship
    for input_tokens, read, output in usages:
        result = BOOK.price(
            entry.provider,
            example,
            input_tokens=input_tokens,
            output_tokens=output,
            cache_read_tokens=read,
            at=when,
        )
        assert result.status is PricingStatus.PRICED, (entry.model, example)
        assert result.source == OVERLAY
        assert result.source_version == OVERLAY_DATA.version
        assert result.matched_model == entry.model
        assert result.effective_date == entry.effective_from
        assert result.total_nano_usd == expected_nano(entry, input_tokens, read, output)


@pytest.mark.parametrize(("entry", "example"), CASES, ids=[f"{e.provider}/{x}" for e, x in CASES])
def test_before_its_date_an_entry_gives_way(entry: OverlayEntry, example: str) -> None:
    before = at(entry.effective_from - timedelta(days=1))
    result = BOOK.price(entry.provider, example, input_tokens=1_000, output_tokens=500, at=before)
    if entry.upstream is None:
        assert result.status is PricingStatus.UNKNOWN_MODEL or result.source != OVERLAY
    else:
        # the upstream model's price: what genai-prices alone gives the name, where it knows it
        assert result.source == "genai-prices"
        assert result.matched_model == entry.upstream
        upstream = PLAIN.price(entry.provider, example, input_tokens=1_000, output_tokens=500, at=before)
        if upstream.status is PricingStatus.PRICED:
            assert result.total_nano_usd == upstream.total_nano_usd


def test_corrections_name_real_upstream_models() -> None:
    providers = {provider.id: provider for provider in get_snapshot().providers}
    for entry in OVERLAY_DATA.entries:
        assert entry.provider in providers
        if entry.upstream is not None:
            assert any(model.id == entry.upstream for model in providers[entry.provider].models), (
                entry.upstream
            )


def test_entries_do_not_catch_names_that_keep_other_prices() -> None:
    # Mistral Large 2 keeps its own price: only the -latest alias moved to Large 3
    today = at(date(2026, 12, 1))
    old = BOOK.price("mistral_ai", "mistral-large-2411", input_tokens=1_000_000, output_tokens=0, at=today)
    assert old.source == "genai-prices" and old.total_nano_usd == 2_000_000_000
    new = BOOK.price("mistral_ai", "mistral-large-latest", input_tokens=1_000_000, output_tokens=0, at=today)
    assert new.source == OVERLAY and new.total_nano_usd == 500_000_000


def test_claude_sonnet_4_long_context_tier() -> None:
    today = at(date(2026, 12, 1))
    short = BOOK.price(
        "anthropic", "claude-sonnet-4-20250514", input_tokens=200_000, output_tokens=1_000, at=today
    )
    long = BOOK.price(
        "anthropic", "claude-sonnet-4-20250514", input_tokens=200_001, output_tokens=1_000, at=today
    )
    assert short.total_nano_usd == 200_000 * 3_000 + 1_000 * 15_000
    assert long.total_nano_usd == 200_001 * 6_000 + 1_000 * 22_500


def test_user_overrides_win_over_the_overlay(tmp_path: Path) -> None:
    path = tmp_path / "prices.yaml"
    path.write_text(
        "models:\n  - provider: mistral\n    model: mistral-large-latest\n    prices:\n"
        '      - {effective_from: 2025-01-01, input_mtok: "1", output_mtok: "1"}\n'
    )
    book = PriceBook(PriceOverrides.from_file(path))
    result = book.price("mistral_ai", "mistral-large-latest", input_tokens=1_000_000, output_tokens=0)
    assert result.source == "override" and result.total_nano_usd == 1_000_000_000


BAD = [
    ("entries: [{provider: openai}]", "model"),
    (
        "entries: [{provider: openai, model: m, effective_from: 2026-01-01, checked: 2026-01-02,"
        ' source: "http://x", prices: {input_mtok: "1", output_mtok: "1"}}]',
        "https",
    ),
    (
        "entries: [{provider: openai, model: m, effective_from: 2026-01-01, checked: 2026-01-02,"
        ' source: "https://x", prices: {input_mtok: "-1", output_mtok: "1"}}]',
        "input_mtok",
    ),
    (
        "entries: [{provider: openai, model: m, effective_from: 2026-01-01, checked: 2026-01-02,"
        ' source: "https://x", prices: {input_mtok: "1"}}]',
        "output_mtok",
    ),
    (
        "entries: [{provider: openai, model: m, effective_from: 2026-01-01, checked: 2026-01-02,"
        ' source: "https://x", match: {like: m}, prices: {input_mtok: "1", output_mtok: "1"}}]',
        "like",
    ),
    (
        "entries: [{provider: openai, model: m, effective_from: 2026-01-01, checked: 2026-01-02,"
        ' source: "https://x", prices: {input_mtok: {base: "1", tiers: [{start: 0, price: "2"}]}, output_mtok: "1"}}]',
        "start",
    ),
]


@pytest.mark.parametrize(("text", "named"), BAD)
def test_a_bad_overlay_is_refused_with_where(text: str, named: str) -> None:
    with pytest.raises(ValueError, match=named):
        PriceOverlay.parse(text, "overlay.yaml")


def test_an_entry_that_no_longer_applies_is_left_out_never_fatal() -> None:
    # a newer genai-prices may rename the upstream model: the app keeps running on list
    # prices, and `spanmeter prices check` reports the entry broken
    overlay = PriceOverlay.parse(
        "entries: [{provider: openai, model: m, upstream: no-such-model, effective_from: 2026-01-01,"
        ' checked: 2026-01-02, source: "https://x", prices: {input_mtok: "1", output_mtok: "1"}, examples: [m]}]',
        "overlay.yaml",
    )
    book = PriceBook(overlay=overlay)
    assert book.overlay_problems == ["m: no genai-prices model openai/no-such-model"]
    assert book.price("openai", "gpt-4o", input_tokens=1, output_tokens=1).status is PricingStatus.PRICED
    (verdict,) = check_overlay(overlay, at(date(2026, 2, 1)))
    assert verdict.verdict == "broken"
