"""``PriceBook.price_record_fields`` (ingest's path) against ``price_record``: the same
cost columns and the same counts, on the fast path and on every way around it."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timezone
from decimal import Decimal

import pytest

from spanmeter.normalise.record import GenAIRecord
from spanmeter.pricing import CostPolicy, PriceBook
from spanmeter.pricing.result import cost_fields
from spanmeter.store.rows import FIELD_NAMES, priced_values, record_values

JULY = int(datetime(2025, 7, 1, 12, tzinfo=timezone.utc).timestamp()) * 1_000_000_000


def record(**changes: object) -> GenAIRecord:
    base = GenAIRecord(
        provider="openai",
        request_model="gpt-4o",
        input_tokens=1000,
        output_tokens=100,
        cache_read_tokens=300,
        end_time_ns=JULY,
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


CASES = [
    {},
    {"response_model": "gpt-4o-mini"},
    {"provider": "anthropic", "request_model": "claude-sonnet-4-0", "cache_write_tokens": 200},
    {"provider": "perplexity", "request_model": "sonar"},  # a per-request fee
    {"provider": "perplexity", "request_model": "sonar-deep-research", "reasoning_tokens": 60},
    {"provider": "anthropic", "request_model": "claude-sonnet-4-0", "input_tokens": 250_000},  # a tier
    {"request_model": "gpt-unknown-model"},
    {"request_model": None},
    {"input_tokens": None, "output_tokens": None},
    {"output_tokens": None},
    {"usage_invalid": True},
    {"cache_read_tokens": 5000},  # more cache than input: invalid usage
    {"input_tokens": True},  # a bool is not a count
    {"billable": False},
    {"end_time_ns": None, "start_time_ns": JULY},
    {"reported_cost_usd": Decimal("0.0012345675"), "reported_cost_source": "provider"},
    {"reported_cost_usd": Decimal("0.0012345675"), "reported_cost_source": "local"},
    {"reported_cost_usd": Decimal("-1"), "reported_cost_source": "provider"},
    {"request_model": "gpt-unknown-model", "reported_cost_usd": Decimal("0.5")},
]


@pytest.mark.parametrize("policy", list(CostPolicy))
@pytest.mark.parametrize("changes", CASES)
def test_fields_are_price_record_as_columns(changes: dict[str, object], policy: CostPolicy) -> None:
    span = record(**changes)
    reference, fast = PriceBook(), PriceBook()
    for _ in range(3):  # cold, then with every cache warm
        assert fast.price_record_fields(span, policy) == cost_fields(reference.price_record(span, policy))
    assert fast.stats() == reference.stats()


def test_priced_values_is_record_values() -> None:
    book = PriceBook()
    for changes in CASES:
        span = record(**changes)
        ids = (bytes(range(1, 17)), bytes(range(1, 9)), JULY + 5, "svc")
        row = priced_values(span, book.price_record_fields(span), *ids)
        assert row == record_values(span, book.price_record(span), *ids)
        assert len(row) == len(FIELD_NAMES)


def test_fields_keep_the_effective_date_as_text() -> None:
    fields = PriceBook().price_record_fields(record())
    assert fields[6] == "priced"
    effective = fields[11]
    assert effective is None or datetime.strptime(effective, "%Y-%m-%d").date().isoformat() == effective
