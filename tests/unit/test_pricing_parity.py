"""The fast path agrees with genai-prices' own ``calc_price`` on models sampled from its data."""

from __future__ import annotations

import random
from datetime import date, datetime, time, timedelta, timezone
from decimal import ROUND_HALF_EVEN, Decimal

import genai_prices
import pytest
from genai_prices.data_snapshot import DataSnapshot, get_snapshot
from genai_prices.types import (
    ClauseEquals,
    ConditionalPrice,
    ModelInfo,
    ModelPrice,
    Provider,
    StartDateConstraint,
    TieredPrices,
    TimeOfDateConstraint,
    calc_unit_price,
)

from spanmeter.pricing import PriceBook, PricingStatus

PROVIDERS = ("openai", "anthropic", "google", "mistral", "aws")
MODELS_PER_PROVIDER = 14
USAGES_PER_MODEL = 6
SEED = 20240620


def nano(usd: Decimal) -> int:
    return int((usd * 1_000_000_000).to_integral_value(rounding=ROUND_HALF_EVEN))


def token_priced(model: ModelInfo) -> bool:
    prices = [model.prices] if isinstance(model.prices, ModelPrice) else [c.prices for c in model.prices]
    return any(
        p.__dict__.get("input_mtok") is not None or p.__dict__.get("output_mtok") is not None for p in prices
    )


def tier_starts(model: ModelInfo) -> list[int]:
    prices = [model.prices] if isinstance(model.prices, ModelPrice) else [c.prices for c in model.prices]
    return sorted(
        {t.start for p in prices for v in p.__dict__.values() if isinstance(v, TieredPrices) for t in v.tiers}
    )


def sample() -> list[tuple[str, ModelInfo, tuple[int, int, int, int, int], datetime]]:
    rng = random.Random(SEED)
    by_id = {p.id: p for p in get_snapshot().providers}
    out = []
    for pid in PROVIDERS:
        models = [m for m in by_id[pid].models if token_priced(m)]
        for model in rng.sample(models, min(MODELS_PER_PROVIDER, len(models))):
            starts = tier_starts(model)
            for i in range(USAGES_PER_MODEL):
                if starts and i < 2:
                    inp = starts[0] + i  # exactly at the cliff, then one token over it
                else:
                    inp = rng.choice([0, rng.randrange(1, 2000), rng.randrange(1, 400_000)])
                cache_read = rng.randrange(0, inp + 1) if inp and rng.random() < 0.6 else 0
                cache_write = (
                    rng.randrange(0, inp - cache_read + 1) if inp - cache_read and rng.random() < 0.4 else 0
                )
                out_tokens = rng.randrange(0, 20_000)
                reasoning = rng.randrange(0, out_tokens + 1) if out_tokens and rng.random() < 0.4 else 0
                when = datetime(2024, 1, 1, tzinfo=timezone.utc) + timedelta(
                    days=rng.randrange(0, 1000), seconds=rng.randrange(0, 86_400)
                )
                out.append((pid, model, (inp, out_tokens, cache_read, cache_write, reasoning), when))
    return out


SAMPLE = sample()


def exact_parts(price: ModelPrice, tokens: tuple[int, int, int, int, int]) -> list[Decimal]:
    """genai-prices' own unit arithmetic per part, split the way spanmeter reports parts."""
    inp, out, cache_read, cache_write, reasoning = tokens
    per = 1_000_000
    input_price = price.input_mtok
    output_price = price.output_mtok
    cache_read_price = price.cache_read_mtok if price.cache_read_mtok is not None else input_price
    cache_write_price = price.cache_write_mtok if price.cache_write_mtok is not None else input_price
    reasoning_price = price.output_reasoning_mtok if price.output_reasoning_mtok is not None else output_price
    return [
        calc_unit_price(input_price, inp - cache_read - cache_write, inp, per),
        calc_unit_price(cache_read_price, cache_read, inp, per),
        calc_unit_price(cache_write_price, cache_write, inp, per),
        calc_unit_price(output_price, out - reasoning, inp, per),
        calc_unit_price(reasoning_price, reasoning, inp, per),
    ]


def test_sample_is_broad() -> None:
    assert len({(pid, model.id) for pid, model, _, _ in SAMPLE}) >= 50
    assert {pid for pid, _, _, _ in SAMPLE} == set(PROVIDERS)


@pytest.fixture(scope="module")
def book() -> PriceBook:
    return PriceBook(overlay=None)  # parity with genai-prices alone: the overlay is tested apart


def check(
    book: PriceBook, pid: str, model_id: str, tokens: tuple[int, int, int, int, int], when: datetime
) -> int | None:
    """Price once both ways and compare; the rounding discrepancy, or None if not comparable."""
    inp, out, cache_read, cache_write, reasoning = tokens
    usage = genai_prices.Usage(
        input_tokens=inp,
        output_tokens=out,
        cache_read_tokens=cache_read,
        cache_write_tokens=cache_write,
        output_reasoning_tokens=reasoning,
    )
    try:
        calc = genai_prices.calc_price(usage, model_id, provider_id=pid, genai_request_timestamp=when)
    except LookupError:
        return None  # the id does not match itself in genai-prices; our matching is wider
    result = book.price(
        pid,
        model_id,
        input_tokens=inp,
        output_tokens=out,
        cache_read_tokens=cache_read,
        cache_write_tokens=cache_write,
        reasoning_tokens=reasoning,
        at=when,
    )
    context = (pid, model_id, tokens, when)
    assert result.status is PricingStatus.PRICED, context
    assert result.matched_model == calc.model.id, context
    parts = exact_parts(calc.model_price, tokens)
    # the split is exhaustive: the exact parts add up to genai-prices' total
    assert sum(parts) == calc.total_price, context
    rounded = [nano(part) for part in parts]
    assert [
        result.input_nano_usd,
        result.cache_read_nano_usd,
        result.cache_write_nano_usd,
        result.output_nano_usd,
        result.reasoning_nano_usd,
    ] == rounded, context
    assert result.total_nano_usd == sum(rounded), context
    # Rounding each part can move the sum by a nano-USD against rounding the total:
    # allowed, and only by exactly that discrepancy.
    discrepancy = sum(rounded) - nano(calc.total_price)
    assert abs(discrepancy) <= 1, context
    assert result.total_nano_usd == nano(calc.total_price) + discrepancy, context
    return discrepancy


def test_fast_path_matches_calc_price(book: PriceBook) -> None:
    outcomes = [check(book, pid, model.id, tokens, when) for pid, model, tokens, when in SAMPLE]
    assert sum(outcome is not None for outcome in outcomes) >= 250


# Models whose rates are fractions of a nano-USD per token on two parts at once, where
# rounding the parts and rounding the total can disagree.
FRACTIONAL = [
    ("deepseek", "deepseek-v3.2"),  # $0.2288 / $0.3432 per MTok
    ("openrouter", "meta-llama/llama-4-maverick"),  # $0.1875 / $0.6525 per MTok
]


def test_rounding_discrepancy_is_exactly_accounted_for(book: PriceBook) -> None:
    rng = random.Random(SEED)
    when = datetime(2026, 1, 5, 12, tzinfo=timezone.utc)
    discrepancies = []
    for pid, model_id in FRACTIONAL:
        for _ in range(200):
            inp, out = rng.randrange(1, 50_000), rng.randrange(1, 5000)
            discrepancies.append(check(book, pid, model_id, (inp, out, 0, 0, 0), when))
    assert None not in discrepancies
    assert any(discrepancies), "expected some parts-vs-total rounding differences"


def test_time_and_date_constraints_match_genai_prices() -> None:
    """Start dates settle per day, time-of-day windows per span, wrapping midnight included."""
    night = timezone(timedelta(hours=2))
    model = ModelInfo(
        id="m",
        match=ClauseEquals(equals="m"),
        prices=[
            ConditionalPrice(prices=ModelPrice(input_mtok=Decimal("1"), output_mtok=Decimal("2"))),
            ConditionalPrice(
                constraint=StartDateConstraint(start_date=date(2025, 1, 2)),
                prices=ModelPrice(input_mtok=Decimal("3"), output_mtok=Decimal("4")),
            ),
            # 21:00-02:00 UTC, written in UTC+2 and naive UTC like genai-prices allows
            ConditionalPrice(
                constraint=TimeOfDateConstraint(start_time=time(23, 0, tzinfo=night), end_time=time(2, 0)),
                prices=ModelPrice(input_mtok=Decimal("0.5"), output_mtok=Decimal("0.25")),
            ),
        ],
    )
    provider = Provider(id="acme", name="Acme", api_pattern="acme", models=[model])
    book = PriceBook(snapshot=DataSnapshot(providers=[provider], from_auto_update=False), overlay=None)
    usage = genai_prices.Usage(input_tokens=1000, output_tokens=100)
    start = datetime(2024, 12, 31, 0, 0, tzinfo=timezone.utc)
    seen = set()
    for step in range(3 * 24 * 4):  # every 15 minutes for three days
        when = start + timedelta(minutes=15 * step)
        expected = nano(model.calc_price(usage, provider, genai_request_timestamp=when).total_price)
        result = book.price("acme", "m", input_tokens=1000, output_tokens=100, at=when)
        assert result.total_nano_usd == expected, when
        seen.add(expected)
    assert len(seen) == 3  # base, newer price, night price all exercised
