"""PriceBook behaviour around the arithmetic: statuses, cost policy, time, stats, threads."""

from __future__ import annotations

import dataclasses
import threading
from datetime import datetime, timezone
from decimal import Decimal

import pytest

from spanmeter.normalise.record import GenAIRecord
from spanmeter.pricing import CostPolicy, PriceBook, PriceResult, PricingStatus

NS = 1_000_000_000


def ns(when: datetime) -> int:
    return int(when.timestamp()) * NS


JULY = ns(datetime(2025, 7, 1, 12, tzinfo=timezone.utc))
MAY = ns(datetime(2025, 5, 1, 12, tzinfo=timezone.utc))


def gpt_4o(**changes: object) -> GenAIRecord:
    record = GenAIRecord(
        provider="openai", request_model="gpt-4o", input_tokens=1000, output_tokens=100, end_time_ns=JULY
    )
    return dataclasses.replace(record, **changes)  # type: ignore[arg-type]


# gpt-4o: $2.50 input, $10 output per MTok -> 1000 in + 100 out = $0.0025 + $0.001
GPT_4O_COST_NANO = 2_500_000 + 1_000_000


@pytest.fixture
def book() -> PriceBook:
    return PriceBook()


def test_price_result_field_order_matches_fast_path() -> None:
    """The fast path builds PriceResult positionally; reordering its fields must fail here."""
    assert [f.name for f in dataclasses.fields(PriceResult)] == [
        "status",
        "total_nano_usd",
        "input_nano_usd",
        "output_nano_usd",
        "cache_read_nano_usd",
        "cache_write_nano_usd",
        "reasoning_nano_usd",
        "source",
        "source_version",
        "matched_provider",
        "matched_model",
        "effective_date",
        "discount",
    ]


def test_priced_record(book: PriceBook) -> None:
    result = book.price_record(gpt_4o())
    assert result.status is PricingStatus.PRICED
    assert result.total_nano_usd == GPT_4O_COST_NANO
    assert result.total_usd == pytest.approx(0.0035)


@pytest.mark.parametrize(
    ("changes", "status"),
    [
        ({"request_model": None}, PricingStatus.NO_MODEL),
        ({"request_model": ""}, PricingStatus.NO_MODEL),
        ({"input_tokens": None, "output_tokens": None}, PricingStatus.NO_USAGE),
        ({"billable": False}, PricingStatus.NOT_BILLABLE),
        ({"request_model": "gpt-unknown"}, PricingStatus.UNKNOWN_MODEL),
        ({"input_tokens": -1}, PricingStatus.INVALID_USAGE),
        ({"cache_read_tokens": 800, "cache_write_tokens": 300}, PricingStatus.INVALID_USAGE),
        ({"reasoning_tokens": 101}, PricingStatus.INVALID_USAGE),
        ({"input_tokens": 10.5}, PricingStatus.INVALID_USAGE),
        ({"output_tokens": True}, PricingStatus.INVALID_USAGE),
    ],
)
def test_statuses_without_cost(book: PriceBook, changes: dict[str, object], status: PricingStatus) -> None:
    result = book.price_record(gpt_4o(**changes))
    assert result == PriceResult(status)  # no amounts at all: never $0


def test_missing_side_of_usage_is_zero(book: PriceBook) -> None:
    assert book.price_record(gpt_4o(output_tokens=None)).total_nano_usd == 2_500_000
    assert book.price_record(gpt_4o(input_tokens=None)).total_nano_usd == 1_000_000


def test_response_model_wins(book: PriceBook) -> None:
    result = book.price_record(gpt_4o(request_model="gpt-4o", response_model="gpt-4o-mini-2024-07-18"))
    assert result.matched_model == "gpt-4o-mini"


def test_prices_at_end_time(book: PriceBook) -> None:
    """o3 went from $10/$40 to $2/$8 per MTok on 2025-06-10; the span's end time decides."""
    record = GenAIRecord(provider="openai", request_model="o3", input_tokens=1000, output_tokens=100)
    after = book.price_record(dataclasses.replace(record, start_time_ns=MAY, end_time_ns=JULY))
    before = book.price_record(dataclasses.replace(record, end_time_ns=MAY))
    start_only = book.price_record(dataclasses.replace(record, start_time_ns=MAY))
    assert after.total_nano_usd == 2_000_000 + 800_000
    assert before.total_nano_usd == start_only.total_nano_usd == 10_000_000 + 4_000_000


def test_naive_datetime_is_utc(book: PriceBook) -> None:
    # DeepSeek's peak window is 00:30-16:30 UTC
    naive = book.price(
        "deepseek", "deepseek-chat", input_tokens=1_000_000, output_tokens=0, at=datetime(2025, 9, 1, 2)
    )
    aware = book.price(
        "deepseek",
        "deepseek-chat",
        input_tokens=1_000_000,
        output_tokens=0,
        at=datetime(2025, 9, 1, 2, tzinfo=timezone.utc),
    )
    assert naive == aware
    assert naive.total_nano_usd == 270_000_000


def test_reasoning_price_and_request_fee(book: PriceBook) -> None:
    # genai-prices 0.2.3: sonar-deep-research $2 in / $8 out / $3 reasoning per MTok;
    # sonar $1 / $1 per MTok plus $12 per 1000 requests, booked with input.
    deep = book.price(
        "perplexity", "sonar-deep-research", input_tokens=0, output_tokens=1000, reasoning_tokens=600
    )
    assert (deep.output_nano_usd, deep.reasoning_nano_usd) == (3_200_000, 1_800_000)
    sonar = book.price("perplexity", "sonar", input_tokens=1000, output_tokens=100)
    assert (sonar.input_nano_usd, sonar.output_nano_usd) == (1_000_000 + 12_000_000, 100_000)


# --- cost policy -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("policy", "source", "model", "expected"),
    [
        # PREFER_PROVIDER: the provider's bill wins; another tool's estimate only fills gaps
        (CostPolicy.PREFER_PROVIDER, "provider", "gpt-4o", ("reported", 1_234_568)),
        (CostPolicy.PREFER_PROVIDER, "local", "gpt-4o", ("priced", GPT_4O_COST_NANO)),
        (CostPolicy.PREFER_PROVIDER, "local", "gpt-unknown", ("reported", 1_234_568)),
        (CostPolicy.PREFER_PROVIDER, None, "gpt-unknown", ("reported", 1_234_568)),
        # ALWAYS_COMPUTE: ours or nothing
        (CostPolicy.ALWAYS_COMPUTE, "provider", "gpt-4o", ("priced", GPT_4O_COST_NANO)),
        (CostPolicy.ALWAYS_COMPUTE, "local", "gpt-unknown", ("unknown_model", None)),
        # TRUST_REPORTED: any reported cost wins
        (CostPolicy.TRUST_REPORTED, "local", "gpt-4o", ("reported", 1_234_568)),
        (CostPolicy.TRUST_REPORTED, "provider", "gpt-4o", ("reported", 1_234_568)),
    ],
)
def test_cost_policy(
    book: PriceBook, policy: CostPolicy, source: str | None, model: str, expected: tuple[str, int | None]
) -> None:
    record = gpt_4o(
        request_model=model, reported_cost_usd=Decimal("0.0012345675"), reported_cost_source=source
    )
    result = book.price_record(record, policy)
    assert (result.status.value, result.total_nano_usd) == expected
    if result.status is PricingStatus.REPORTED:
        assert result.source == "reported"
        assert result.input_nano_usd is None  # a reported cost has a total, no parts


def test_reported_cost_rounds_half_even(book: PriceBook) -> None:
    def reported(usd: str) -> int | None:
        record = gpt_4o(reported_cost_usd=Decimal(usd), reported_cost_source="provider")
        return book.price_record(record).total_nano_usd

    assert reported("0.0000000125") == 12
    assert reported("0.0000000135") == 14
    assert reported("3") == 3_000_000_000


@pytest.mark.parametrize("bad", [Decimal("-0.01"), Decimal("NaN"), Decimal("Infinity")])
def test_unusable_reported_cost_is_ignored(book: PriceBook, bad: Decimal) -> None:
    record = gpt_4o(reported_cost_usd=bad, reported_cost_source="provider")
    assert book.price_record(record, CostPolicy.TRUST_REPORTED).total_nano_usd == GPT_4O_COST_NANO


@pytest.mark.parametrize("policy", list(CostPolicy))
@pytest.mark.parametrize("source", ["local", "provider", None])
def test_reported_zero_with_tokens_is_no_price(
    book: PriceBook, policy: CostPolicy, source: str | None
) -> None:
    # OpenLIT writes gen_ai.usage.cost = 0 for every model it cannot price
    unknown = gpt_4o(
        request_model="gpt-nobody-knows", reported_cost_usd=Decimal(0), reported_cost_source=source
    )
    assert book.price_record(unknown, policy) == PriceResult(PricingStatus.UNKNOWN_MODEL)
    assert book.price_record_fields(unknown, policy)[6] == "unknown_model"
    known = gpt_4o(reported_cost_usd=Decimal(0), reported_cost_source=source)
    assert book.price_record(known, policy).total_nano_usd == GPT_4O_COST_NANO
    # without tokens a reported 0 is a true $0 (a call that failed before the model ran)
    empty = gpt_4o(
        request_model="gpt-nobody-knows",
        input_tokens=0,
        output_tokens=0,
        reported_cost_usd=Decimal(0),
        reported_cost_source=source,
    )
    if policy is not CostPolicy.ALWAYS_COMPUTE:
        assert book.price_record(empty, policy) == PriceResult(PricingStatus.REPORTED, 0, source="reported")


def test_not_billable_ignores_reported_cost(book: PriceBook) -> None:
    record = gpt_4o(billable=False, reported_cost_usd=Decimal("1"), reported_cost_source="provider")
    for policy in CostPolicy:
        assert book.price_record(record, policy) == PriceResult(PricingStatus.NOT_BILLABLE)


# --- stats, bounds, threads --------------------------------------------------------------


def test_stats_count_statuses_and_unknown_names() -> None:
    book = PriceBook(max_unknown_names=2)
    book.price_record(gpt_4o())
    book.price_record(gpt_4o(billable=False))
    for name in ("x-1", "x-1", "x-2", "x-3", "x-3"):
        book.price_record(gpt_4o(request_model=name))
    stats = book.stats()
    assert stats.counts["priced"] == 1
    assert stats.counts["not_billable"] == 1
    assert stats.counts["unknown_model"] == 5
    assert stats.total == 7
    assert stats.unknown_models == {("openai", "x-1"): 2, ("openai", "x-2"): 1}
    assert stats.unknown_models_dropped == 2


def test_bounded_cache_stays_correct() -> None:
    book = PriceBook(max_cache_entries=2)
    for _ in range(3):
        for model, cost in (("gpt-4o", GPT_4O_COST_NANO), ("gpt-4o-mini", 150_000 + 60_000), ("nope", None)):
            assert book.price_record(gpt_4o(request_model=model)).total_nano_usd == cost


def test_threads_share_a_book() -> None:
    book = PriceBook()
    records = [
        gpt_4o(),
        gpt_4o(request_model="claude-3-5-sonnet", provider="anthropic"),
        gpt_4o(request_model="?"),
    ]
    expected = [book.price_record(r) for r in records]
    errors: list[BaseException] = []
    per_thread = 3000

    def work() -> None:
        try:
            for i in range(per_thread):
                assert book.price_record(records[i % 3]) == expected[i % 3]
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    stats = book.stats()
    assert stats.total == 3 + 8 * per_thread  # counts of finished threads are kept
    assert stats.counts["unknown_model"] == 1 + 8 * per_thread // 3
    assert stats.unknown_models == {("openai", "?"): 1 + 8 * per_thread // 3}
