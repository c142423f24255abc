"""Warm ``PriceBook.price_record`` against ``genai_prices.calc_price`` in the same run.

Run: ``python bench/pricing.py``. Machines are noisy, so compare numbers within one run;
each figure is the best of several repeats (the least disturbed one).
"""

from __future__ import annotations

import time
import timeit
from collections.abc import Callable
from datetime import datetime, timezone
from functools import partial
from typing import Final

import genai_prices

from spanmeter.normalise.record import GenAIRecord
from spanmeter.pricing import PriceBook

REPEATS: Final = 7
END_NS: Final = time.time_ns()
WHEN: Final = datetime.fromtimestamp(END_NS / 1e9, tz=timezone.utc)

# (OTel provider, genai-prices provider id, model,
#  input incl. cache, output incl. reasoning, cache read, reasoning)
CALLS: Final = [
    ("openai", "openai", "gpt-4o", 1200, 300, 200, 0),
    ("anthropic", "anthropic", "claude-3-5-sonnet-20241022", 28_000, 700, 20_000, 0),
    ("gcp.gemini", "google", "gemini-1.5-flash", 1200, 300, 333, 0),  # fractional rates: rounding path
    ("aws.bedrock", "aws", "us.anthropic.claude-3-5-sonnet-20240620-v1:0", 5000, 500, 0, 0),
    ("openai", "openai", "o4-mini", 10_000, 3000, 2048, 2500),
]


def best_us(fn: Callable[[], object], number: int) -> float:
    return min(timeit.repeat(fn, number=number, repeat=REPEATS)) / number * 1e6


def main() -> None:
    book = PriceBook()
    print(f"genai-prices {genai_prices.__version__}; best of {REPEATS} repeats\n")
    print(f"{'model':<48} {'price_record':>13} {'calc_price':>11} {'ratio':>7}")
    ours_total = theirs_total = 0.0
    for provider, pid, model, inp, out, cache_read, reasoning in CALLS:
        record = GenAIRecord(
            provider=provider,
            request_model=model,
            input_tokens=inp,
            output_tokens=out,
            cache_read_tokens=cache_read,
            reasoning_tokens=reasoning,
            end_time_ns=END_NS,
        )
        usage = genai_prices.Usage(
            input_tokens=inp,
            output_tokens=out,
            cache_read_tokens=cache_read,
            output_reasoning_tokens=reasoning,
        )
        book.price_record(record)  # warm the cache
        genai_prices.calc_price(usage, model, provider_id=pid, genai_request_timestamp=WHEN)  # and theirs

        ours = best_us(partial(book.price_record, record), 50_000)
        theirs = best_us(
            partial(genai_prices.calc_price, usage, model, provider_id=pid, genai_request_timestamp=WHEN),
            1_000,
        )
        ours_total += ours
        theirs_total += theirs
        print(f"{model:<48} {ours:>10.2f} µs {theirs:>8.1f} µs {theirs / ours:>6.0f}x")
    n = len(CALLS)
    print(
        f"\n{'mean':<48} {ours_total / n:>10.2f} µs {theirs_total / n:>8.1f} µs "
        f"{theirs_total / ours_total:>6.0f}x"
    )
    print("(calc_price is given a ready Usage; building one costs a few µs more)")


if __name__ == "__main__":
    main()
