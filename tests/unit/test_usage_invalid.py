"""A span with an unusable token count is invalid_usage, never priced on what is left."""

from __future__ import annotations

import math
from typing import Any

import pytest

from spanmeter.normalise import normalize
from spanmeter.pricing import PriceBook, PricingStatus

BASE = {"gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o"}


@pytest.mark.parametrize(
    "usage",
    [
        {"gen_ai.usage.input_tokens": math.nan, "gen_ai.usage.output_tokens": 100},
        {"gen_ai.usage.input_tokens": -1, "gen_ai.usage.output_tokens": 100},
        {"gen_ai.usage.input_tokens": 1000, "gen_ai.usage.output_tokens": "many"},
        {"gen_ai.usage.input_tokens": 1000, "gen_ai.usage.output_tokens": 10**15},
        {
            "gen_ai.usage.input_tokens": 1000,
            "gen_ai.usage.output_tokens": 5,
            "gen_ai.usage.cache_read.input_tokens": -3,
        },
    ],
)
def test_unusable_counts_make_the_span_invalid_usage(usage: dict[str, Any]) -> None:
    record = normalize({**BASE, **usage})
    assert record is not None
    assert record.usage_invalid
    assert record.issues
    result = PriceBook().price_record(record)
    assert result.status is PricingStatus.INVALID_USAGE
    assert result.total_nano_usd is None


@pytest.mark.parametrize(
    "usage",
    [
        {"gen_ai.usage.input_tokens": 1000, "gen_ai.usage.output_tokens": 100},
        {"gen_ai.usage.input_tokens": 1000},  # output not reported at all: priced as 0
        {"gen_ai.usage.input_tokens": 1000.0, "gen_ai.usage.output_tokens": "100"},  # integral values
        {
            "gen_ai.usage.input_tokens": 1000,
            "gen_ai.usage.output_tokens": 0,
            "gen_ai.usage.cache_read.input_tokens": 0,
        },
    ],
)
def test_usable_counts_are_priced(usage: dict[str, Any]) -> None:
    record = normalize({**BASE, **usage})
    assert record is not None
    assert not record.usage_invalid
    assert PriceBook().price_record(record).status is PricingStatus.PRICED
