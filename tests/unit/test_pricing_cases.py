"""Table of priced calls: each expected cost is computed here from the per-MTok prices written
in the case (published list prices, checked against the genai-prices 0.2.3 data), with
Decimal arithmetic, never copied from the code under test."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timezone
from decimal import ROUND_HALF_EVEN, Decimal
from importlib.metadata import version

import pytest

from spanmeter.pricing import PriceBook, PriceOverrides, PriceResult, PricingStatus

MTOK = Decimal(1_000_000)

OVERRIDES_YAML = """
aliases:
  prod-gpt4o: {provider: openai, model: gpt-4o}          # an Azure deployment name
  eu-claude-profile:                                     # a Bedrock custom id
    provider: aws.bedrock
    model: eu.anthropic.claude-3-5-sonnet-20240620-v1:0
models:
  - provider: vllm
    model: llama-3.1-70b-internal
    match: {starts_with: llama-3.1-70b-internal-}
    prices:
      - {effective_from: 2025-01-01, input_mtok: "0.20", output_mtok: "0.60"}
      - effective_from: 2025-07-01
        input_mtok: 0.15
        output_mtok: 0.45
        cache_read_mtok: 0.015
        reasoning_mtok: 0.9
  - provider: openai
    model: gpt-4o
    prices:
      - {effective_from: 2026-01-01, input_mtok: "2.00", output_mtok: "8.00", cache_read_mtok: "1.00"}
discounts:
  - {provider: anthropic, percent: 10}
  - provider: anthropic
    model: claude-3-5-haiku
    percent: 25
    effective_from: 2025-01-01
    effective_until: 2025-06-30
  - {provider: azure.ai.openai, percent: 12.5}
"""


@dataclass(frozen=True)
class Prices:
    """Published USD per million tokens. None: that kind is billed like its parent."""

    input: str
    output: str
    cache_read: str | None = None
    cache_write: str | None = None
    reasoning: str | None = None

    def scaled(self, keep: str) -> Prices:
        """The prices after a discount leaving ``keep`` (e.g. "0.9")."""

        def s(value: str | None) -> str | None:
            return None if value is None else str(Decimal(value) * Decimal(keep))

        return Prices(
            str(Decimal(self.input) * Decimal(keep)),
            str(Decimal(self.output) * Decimal(keep)),
            s(self.cache_read),
            s(self.cache_write),
            s(self.reasoning),
        )


@dataclass(frozen=True)
class Case:
    id: str
    provider: str | None
    model: str
    tokens: tuple[int, int, int, int, int]
    """input (cache included), output (reasoning included), cache_read, cache_write, reasoning"""
    prices: Prices | None
    """None: expect unknown_model."""
    matched: tuple[str, str] | None = None
    """(provider, model) expected in provenance."""
    at: datetime = datetime(2025, 9, 1, 12, 0, tzinfo=timezone.utc)
    book: str = "plain"
    source: str = "genai-prices"
    effective_date: date | None = None
    discount: str | None = None


def nano(usd: Decimal) -> int:
    return int((usd * 1_000_000_000).to_integral_value(rounding=ROUND_HALF_EVEN))


def expected_parts(prices: Prices, tokens: tuple[int, int, int, int, int]) -> dict[str, int]:
    """Input excludes cache tokens, output excludes reasoning; kinds without a price of
    their own cost their parent's price. Each part is rounded to nano-USD on its own."""
    inp, out, cache_read, cache_write, reasoning = tokens
    p_in, p_out = Decimal(prices.input), Decimal(prices.output)
    p_cr = Decimal(prices.cache_read) if prices.cache_read is not None else p_in
    p_cw = Decimal(prices.cache_write) if prices.cache_write is not None else p_in
    p_rs = Decimal(prices.reasoning) if prices.reasoning is not None else p_out
    return {
        "input_nano_usd": nano((inp - cache_read - cache_write) * p_in / MTOK),
        "cache_read_nano_usd": nano(cache_read * p_cr / MTOK),
        "cache_write_nano_usd": nano(cache_write * p_cw / MTOK),
        "output_nano_usd": nano((out - reasoning) * p_out / MTOK),
        "reasoning_nano_usd": nano(reasoning * p_rs / MTOK),
    }


def at(y: int, m: int, d: int, hour: int = 12) -> datetime:
    return datetime(y, m, d, hour, 0, tzinfo=timezone.utc)


GPT_4O = Prices("2.50", "10.00", cache_read="1.25")
GPT_4O_MINI = Prices("0.15", "0.60", cache_read="0.075")
CLAUDE_35_SONNET = Prices("3", "15", cache_read="0.30", cache_write="3.75")
CLAUDE_SONNET_45_OVER_200K = Prices("6", "22.50", cache_read="0.60", cache_write="7.50")
DEEPSEEK_CHAT_PEAK = Prices("0.27", "1.10", cache_read="0.07")
DEEPSEEK_CHAT_OFF_PEAK = Prices("0.135", "0.55", cache_read="0.035")

CASES = [
    # --- OpenAI: no cache-write price, so cache writes cost the input price ---
    Case("gpt-4o", "openai", "gpt-4o", (1000, 500, 0, 0, 0), GPT_4O, ("openai", "gpt-4o")),
    Case("gpt-4o cached", "openai", "gpt-4o", (12_000, 800, 10_240, 0, 0), GPT_4O, ("openai", "gpt-4o")),
    Case(
        "gpt-4o-mini",
        "openai",
        "gpt-4o-mini",
        (5000, 1000, 1024, 0, 0),
        GPT_4O_MINI,
        ("openai", "gpt-4o-mini"),
    ),
    Case("dated snapshot", "openai", "gpt-4o-2024-08-06", (2048, 100, 0, 0, 0), GPT_4O, ("openai", "gpt-4o")),
    # gpt-4o-2024-05-13 kept its launch price ($5 / $15, no cache discount)
    Case(
        "older snapshot",
        "openai",
        "gpt-4o-2024-05-13",
        (3000, 300, 0, 0, 0),
        Prices("5", "15"),
        ("openai", "gpt-4o-2024-05-13"),
    ),
    Case(
        "openai/ prefix",
        "openai",
        "openai/gpt-4o-mini",
        (700, 70, 0, 0, 0),
        GPT_4O_MINI,
        ("openai", "gpt-4o-mini"),
    ),
    Case(
        "litellm prefix, no provider", None, "openai/gpt-4o", (900, 90, 0, 0, 0), GPT_4O, ("openai", "gpt-4o")
    ),
    Case(
        "provider inferred",
        None,
        "gpt-4o-mini-2024-07-18",
        (1234, 567, 0, 0, 0),
        GPT_4O_MINI,
        ("openai", "gpt-4o-mini"),
    ),
    # o-series: reasoning tokens are output tokens billed at the output price
    Case(
        "o1 reasoning",
        "openai",
        "o1",
        (2000, 5000, 0, 0, 4000),
        Prices("15", "60", cache_read="7.50"),
        ("openai", "o1"),
    ),
    Case(
        "o3-mini",
        "openai",
        "o3-mini-2025-01-31",
        (3000, 2000, 1024, 0, 1500),
        Prices("1.10", "4.40", cache_read="0.55"),
        ("openai", "o3-mini"),
    ),
    Case(
        "o4-mini",
        "openai",
        "o4-mini",
        (10_000, 3000, 2048, 0, 2500),
        Prices("1.10", "4.40", cache_read="0.275"),
        ("openai", "o4-mini"),
    ),
    Case(
        "cache write at input price", "openai", "gpt-4o", (4000, 10, 0, 1000, 0), GPT_4O, ("openai", "gpt-4o")
    ),
    # o3's price dropped 80 % on 2025-06-10
    Case(
        "o3 after price cut",
        "openai",
        "o3",
        (10_000, 4000, 2000, 0, 3000),
        Prices("2", "8", cache_read="0.50"),
        ("openai", "o3"),
        at=at(2025, 7, 1),
        effective_date=date(2025, 6, 10),
    ),
    Case(
        "o3 before price cut",
        "openai",
        "o3",
        (10_000, 4000, 2000, 0, 3000),
        Prices("10", "40", cache_read="0.50"),
        ("openai", "o3"),
        at=at(2025, 5, 1),
    ),
    # --- Anthropic: cache writes $3.75 and reads $0.30 per MTok on Sonnet ---
    Case(
        "claude-3-5-sonnet cache",
        "anthropic",
        "claude-3-5-sonnet-20241022",
        (28_000, 700, 20_000, 3000, 0),
        CLAUDE_35_SONNET,
        ("anthropic", "claude-3-5-sonnet"),
    ),
    Case(
        "claude-3-haiku cache write",
        "anthropic",
        "claude-3-haiku-20240307",
        (8000, 300, 0, 6000, 0),
        Prices("0.25", "1.25", cache_read="0.03", cache_write="0.30"),
        ("anthropic", "claude-3-haiku"),
    ),
    Case(
        "claude-3-5-haiku",
        "anthropic",
        "claude-3-5-haiku-20241022",
        (6000, 400, 2000, 1000, 0),
        Prices("0.80", "4", cache_read="0.08", cache_write="1"),
        ("anthropic", "claude-3-5-haiku-latest"),
    ),
    Case(
        "claude-opus-4-1",
        "anthropic",
        "claude-opus-4-1-20250805",
        (5000, 1000, 1000, 2000, 0),
        Prices("15", "75", cache_read="1.50", cache_write="18.75"),
        ("anthropic", "claude-opus-4-1"),
    ),
    Case(
        "claude-3-opus",
        "anthropic",
        "claude-3-opus-20240229",
        (1500, 250, 0, 0, 0),
        Prices("15", "75", cache_read="1.50", cache_write="18.75"),
        ("anthropic", "claude-3-opus-latest"),
    ),
    Case(
        "claude-haiku-4-5",
        "anthropic",
        "claude-haiku-4-5-20251001",
        (9000, 900, 4000, 500, 0),
        Prices("1", "5", cache_read="0.10", cache_write="1.25"),
        ("anthropic", "claude-haiku-4-5"),
    ),
    # tier: over 200k input tokens (cache included) every token pays the long-context price
    Case(
        "claude-sonnet-4-5 over 200k",
        "anthropic",
        "claude-sonnet-4-5-20250929",
        (250_000, 2000, 150_000, 10_000, 0),
        CLAUDE_SONNET_45_OVER_200K,
        ("anthropic", "claude-sonnet-4-5"),
    ),
    Case(
        "claude-sonnet-4-5 at 200k",
        "anthropic",
        "claude-sonnet-4-5",
        (200_000, 2000, 150_000, 10_000, 0),
        CLAUDE_35_SONNET,
        ("anthropic", "claude-sonnet-4-5"),
    ),
    Case(
        "anthropic/ prefix, no provider",
        None,
        "anthropic/claude-3.5-sonnet",
        (1000, 100, 0, 0, 0),
        CLAUDE_35_SONNET,
        ("anthropic", "claude-3-5-sonnet"),
    ),
    # --- Google ---
    Case(
        "gemini-2.5-pro",
        "gcp.vertex_ai",
        "gemini-2.5-pro",
        (100_000, 5000, 20_000, 0, 1000),
        Prices("1.25", "10", cache_read="0.125"),
        ("google", "gemini-2.5-pro"),
    ),
    Case(
        "gemini-2.5-pro over 200k",
        "gcp.gemini",
        "gemini-2.5-pro",
        (300_000, 8000, 50_000, 0, 3000),
        Prices("2.50", "15", cache_read="0.25"),
        ("google", "gemini-2.5-pro"),
    ),
    # $0.01875/MTok is not a whole nano-USD per token: parts round half-even on their own
    Case(
        "gemini-1.5-flash fractional",
        "gcp.gemini",
        "gemini-1.5-flash-002",
        (10_000, 777, 3333, 0, 0),
        Prices("0.075", "0.30", cache_read="0.01875"),
        ("google", "gemini-1.5-flash"),
    ),
    Case(
        "gemini-1.5-pro over 128k",
        "gcp.vertex_ai",
        "gemini-1.5-pro",
        (130_000, 1000, 0, 0, 0),
        Prices("2.50", "10"),
        ("google", "gemini-1.5-pro"),
    ),
    Case(
        "gemini models/ prefix",
        "gcp.gemini",
        "models/gemini-2.0-flash",
        (4000, 400, 1000, 0, 0),
        Prices("0.10", "0.40", cache_read="0.025"),
        ("google", "gemini-2.0-flash"),
    ),
    Case(
        "vertex claude @version",
        "gcp.vertex_ai",
        "claude-3-5-sonnet@20240620",
        (3000, 300, 0, 1000, 0),
        CLAUDE_35_SONNET,
        ("google", "claude-3-5-sonnet"),
    ),
    # --- Mistral ---
    Case(
        "mistral-large",
        "mistral_ai",
        "mistral-large-2512",
        (20_000, 2000, 5000, 0, 0),
        Prices("0.50", "1.50", cache_read="0.05"),
        ("mistral", "mistral-large-2512"),
    ),
    Case(
        "codestral",
        "mistral_ai",
        "codestral-latest",
        (7000, 1500, 0, 0, 0),
        Prices("0.30", "0.90"),
        ("mistral", "codestral"),
    ),
    # mistral-small-latest moved to Small 4 pricing on 2026-03-16
    Case(
        "mistral-small before change",
        "mistral_ai",
        "mistral-small-latest",
        (5000, 500, 0, 0, 0),
        Prices("0.10", "0.30"),
        ("mistral", "mistral-small-latest"),
        at=at(2026, 3, 15),
    ),
    Case(
        "mistral-small after change",
        "mistral_ai",
        "mistral-small-latest",
        (5000, 500, 1000, 0, 0),
        Prices("0.15", "0.60", cache_read="0.015"),
        ("mistral", "mistral-small-latest"),
        at=at(2026, 3, 16),
        effective_date=date(2026, 3, 16),
    ),
    # --- Bedrock ---
    Case(
        "bedrock plain",
        "aws.bedrock",
        "anthropic.claude-3-5-sonnet-20240620-v1:0",
        (5000, 500, 1000, 1000, 0),
        CLAUDE_35_SONNET,
        ("aws", "regional.anthropic.claude-3-5-sonnet-20240620-v1:0"),
    ),
    Case(
        "bedrock regional prefix",
        "aws.bedrock",
        "us.anthropic.claude-3-5-sonnet-20240620-v1:0",
        (5000, 500, 0, 0, 0),
        CLAUDE_35_SONNET,
        ("aws", "regional.anthropic.claude-3-5-sonnet-20240620-v1:0"),
    ),
    Case(
        "bedrock inference profile ARN",
        "aws.bedrock",
        "arn:aws:bedrock:eu-west-1:123456789012:inference-profile/eu.anthropic.claude-3-5-sonnet-20240620-v1:0",
        (6000, 600, 0, 0, 0),
        CLAUDE_35_SONNET,
        ("aws", "regional.anthropic.claude-3-5-sonnet-20240620-v1:0"),
    ),
    Case(
        "bedrock foundation model ARN",
        "aws.bedrock",
        "arn:aws:bedrock:us-west-2::foundation-model/meta.llama3-1-70b-instruct-v1:0",
        (8000, 1200, 0, 0, 0),
        Prices("0.72", "0.72"),
        ("aws", "meta.llama3-1-70b-instruct-v1:0"),
    ),
    Case(
        "bedrock nova",
        "aws.bedrock",
        "us.amazon.nova-pro-v1:0",
        (8000, 1200, 2000, 0, 0),
        Prices("0.80", "3.20", cache_read="0.20"),
        ("aws", "amazon.nova-pro-v1:0"),
    ),
    # --- others ---
    Case(
        "xai grok-3",
        "x_ai",
        "grok-3",
        (3000, 600, 1000, 0, 0),
        Prices("3", "15", cache_read="0.75"),
        ("x-ai", "grok-3"),
    ),
    # DeepSeek's peak window (00:30-16:30 UTC) is priced per span, not per day
    Case(
        "deepseek peak",
        "deepseek",
        "deepseek-chat",
        (10_000, 2000, 4000, 0, 0),
        DEEPSEEK_CHAT_PEAK,
        ("deepseek", "deepseek-chat"),
        at=at(2025, 9, 1, 2),
    ),
    Case(
        "deepseek off-peak",
        "deepseek",
        "deepseek-chat",
        (10_000, 2000, 4000, 0, 0),
        DEEPSEEK_CHAT_OFF_PEAK,
        ("deepseek", "deepseek-chat"),
        at=at(2025, 9, 1, 20),
    ),
    # --- Azure: OpenAI's table when Azure lists no price of its own ---
    Case("azure gpt-4o", "azure.ai.openai", "gpt-4o", (2500, 250, 0, 0, 0), GPT_4O, ("openai", "gpt-4o")),
    Case(
        "azure own table",
        "azure.ai.openai",
        "o4-mini",
        (2500, 250, 0, 0, 100),
        Prices("1.10", "4.40", cache_read="0.275"),
        ("azure", "o4-mini"),
    ),
    # --- overrides and discounts ---
    Case(
        "azure alias with discount",
        "azure.ai.openai",
        "prod-gpt4o",
        (40_000, 2000, 8000, 0, 0),
        GPT_4O.scaled("0.875"),
        ("openai", "gpt-4o"),
        book="overrides",
        discount="azure.ai.openai -12.5%",
    ),
    Case(
        "bedrock alias",
        "aws.bedrock",
        "eu-claude-profile",
        (4000, 400, 0, 0, 0),
        CLAUDE_35_SONNET,
        ("aws", "regional.anthropic.claude-3-5-sonnet-20240620-v1:0"),
        book="overrides",
    ),
    Case(
        "custom model",
        "vllm",
        "llama-3.1-70b-internal",
        (10_000, 1000, 0, 0, 0),
        Prices("0.20", "0.60"),
        ("vllm", "llama-3.1-70b-internal"),
        at=at(2025, 3, 1),
        book="overrides",
        source="override",
        effective_date=date(2025, 1, 1),
    ),
    Case(
        "custom model second price",
        "vllm",
        "llama-3.1-70b-internal-ft-2",
        (10_000, 3000, 2000, 0, 1000),
        Prices("0.15", "0.45", cache_read="0.015", reasoning="0.9"),
        ("vllm", "llama-3.1-70b-internal"),
        at=at(2025, 8, 1),
        book="overrides",
        source="override",
        effective_date=date(2025, 7, 1),
    ),
    Case(
        "custom model before first price",
        "vllm",
        "llama-3.1-70b-internal",
        (10_000, 1000, 0, 0, 0),
        None,
        at=at(2024, 12, 31),
        book="overrides",
    ),
    Case(
        "override newer than package",
        "openai",
        "gpt-4o",
        (10_000, 1000, 4000, 0, 0),
        Prices("2", "8", cache_read="1"),
        ("openai", "gpt-4o"),
        at=at(2026, 2, 1),
        book="overrides",
        source="override",
        effective_date=date(2026, 1, 1),
    ),
    Case(
        "package price before override",
        "openai",
        "gpt-4o",
        (10_000, 1000, 4000, 0, 0),
        GPT_4O,
        ("openai", "gpt-4o"),
        at=at(2025, 12, 31),
        book="overrides",
    ),
    # an override of gpt-4o covers the names genai-prices calls gpt-4o...
    Case(
        "override covers snapshot alias",
        "openai",
        "gpt-4o-2024-08-06",
        (10_000, 1000, 4000, 0, 0),
        Prices("2", "8", cache_read="1"),
        ("openai", "gpt-4o"),
        at=at(2026, 2, 1),
        book="overrides",
        source="override",
        effective_date=date(2026, 1, 1),
    ),
    Case(
        "override covers prefixed name",
        None,
        "openai/gpt-4o",
        (10_000, 1000, 4000, 0, 0),
        Prices("2", "8", cache_read="1"),
        ("openai", "gpt-4o"),
        at=at(2026, 2, 1),
        book="overrides",
        source="override",
        effective_date=date(2026, 1, 1),
    ),
    # ...but not a snapshot genai-prices prices as a model of its own
    Case(
        "override spares distinct snapshot",
        "openai",
        "gpt-4o-2024-05-13",
        (3000, 300, 0, 0, 0),
        Prices("5", "15"),
        ("openai", "gpt-4o-2024-05-13"),
        at=at(2026, 2, 1),
        book="overrides",
    ),
    Case(
        "provider discount",
        "anthropic",
        "claude-3-5-sonnet-20241022",
        (28_000, 700, 20_000, 3000, 0),
        CLAUDE_35_SONNET.scaled("0.9"),
        ("anthropic", "claude-3-5-sonnet"),
        book="overrides",
        discount="anthropic -10%",
    ),
    Case(
        "model discount in window",
        "anthropic",
        "claude-3-5-haiku-20241022",
        (6000, 400, 2000, 1000, 0),
        Prices("0.80", "4", cache_read="0.08", cache_write="1").scaled("0.75"),
        ("anthropic", "claude-3-5-haiku-latest"),
        at=at(2025, 3, 1),
        book="overrides",
        discount="anthropic/claude-3-5-haiku -25%",
    ),
    Case(
        "model discount expired",
        "anthropic",
        "claude-3-5-haiku-20241022",
        (6000, 400, 2000, 1000, 0),
        Prices("0.80", "4", cache_read="0.08", cache_write="1").scaled("0.9"),
        ("anthropic", "claude-3-5-haiku-latest"),
        at=at(2025, 7, 1),
        book="overrides",
        discount="anthropic -10%",
    ),
    # --- unknown models: no amounts, never $0 ---
    Case("unknown openai model", "openai", "gpt-does-not-exist", (1000, 100, 0, 0, 0), None),
    Case("unknown provider", "ibm.watsonx.ai", "granite-3-8b-instruct", (1000, 100, 0, 0, 0), None),
    Case("custom model without overrides", "vllm", "llama-3.1-70b-internal", (1000, 100, 0, 0, 0), None),
]


@pytest.fixture(scope="module")
def books() -> dict[str, PriceBook]:
    return {
        "plain": PriceBook(),
        "overrides": PriceBook(PriceOverrides.from_yaml(OVERRIDES_YAML, origin="test-overrides.yaml")),
    }


def test_enough_cases() -> None:
    assert len(CASES) >= 30
    assert len({case.id for case in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_priced_case(case: Case, books: dict[str, PriceBook]) -> None:
    inp, out, cache_read, cache_write, reasoning = case.tokens
    result = books[case.book].price(
        case.provider,
        case.model,
        input_tokens=inp,
        output_tokens=out,
        cache_read_tokens=cache_read,
        cache_write_tokens=cache_write,
        reasoning_tokens=reasoning,
        at=case.at,
    )
    if case.prices is None:
        assert result == PriceResult(PricingStatus.UNKNOWN_MODEL)
        return
    parts = expected_parts(case.prices, case.tokens)
    assert result.status is PricingStatus.PRICED
    assert {name: getattr(result, name) for name in parts} == parts
    assert result.total_nano_usd == sum(parts.values())
    assert (result.matched_provider, result.matched_model) == case.matched
    assert result.source == case.source
    assert result.effective_date == case.effective_date
    assert result.discount == case.discount
    if case.source == "genai-prices":
        assert result.source_version == version("genai-prices")
    else:
        assert result.source_version is not None and len(result.source_version) == 12


def test_warm_results_equal_cold(books: dict[str, PriceBook]) -> None:
    """A cached resolution prices exactly like a fresh one."""
    fresh = PriceBook()
    for case in CASES:
        if case.book != "plain":
            continue
        inp, out, cache_read, cache_write, reasoning = case.tokens
        kwargs = dict(
            input_tokens=inp,
            output_tokens=out,
            cache_read_tokens=cache_read,
            cache_write_tokens=cache_write,
            reasoning_tokens=reasoning,
            at=case.at,
        )
        warm = books["plain"].price(case.provider, case.model, **kwargs)  # type: ignore[arg-type]
        assert warm == fresh.price(case.provider, case.model, **kwargs)  # type: ignore[arg-type]
