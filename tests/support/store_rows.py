"""Stored rows for the store's tests: one priced attempt at a day-aligned instant, and random
row sets wide enough to exercise every rollup, tier and filter.

Built on :func:`support.rows.span_row` (fresh ids), with timing and cost defaults the store
tests share: ``make_row`` is an attempt at ``T0``, ``random_rows`` spreads rows over days
with missing dimensions, re-used external ids and unpriced costs, so sums recomputed from
the rows can be compared with what the store answers.
"""

from __future__ import annotations

import random
from typing import Any

from spanmeter.store import SpanRow
from support.rows import span_row

__all__ = ["DAY_NS", "NS", "T0", "make_row", "random_rows"]

NS: int = 1_000_000_000
DAY_NS: int = 86_400 * NS
T0: int = 1_767_225_600 * NS
"""2026-01-01T00:00:00Z: on a day boundary, so windows from it align with every bucket."""


def make_row(**overrides: Any) -> SpanRow:
    """A priced, billable attempt at ``T0`` with fresh ids; any field can be overridden."""
    fields: dict[str, Any] = {
        "end_time_ns": T0 + 1002 * NS,
        "received_at_ns": T0 + 1005 * NS,
        "latency_ms": 2000.0,
        "cost_nano_usd": 1_000,
        "pricing_status": "priced",
    }
    return span_row(T0 + 1000 * NS, **{**fields, **overrides})


def random_rows(
    rng: random.Random, count: int, *, start_ns: int = T0, span_ns: int = 3 * DAY_NS
) -> list[SpanRow]:
    """Rows with random dimensions (some missing), outcomes, costs and shared external ids."""
    external_ids = [f"req-{i}" for i in range(count // 4)]
    rows: list[SpanRow] = []
    for _ in range(count):
        cost = None if rng.random() < 0.1 else rng.randrange(0, 5_000_000)
        start = start_ns + rng.randrange(span_ns)
        rows.append(
            make_row(
                start_time_ns=0 if rng.random() < 0.03 else start,
                received_at_ns=start + rng.randrange(5 * NS),
                provider=rng.choice(["openai", "anthropic", None]),
                model=rng.choice(["gpt-4o", "gpt-4o-mini", "claude", None]),
                endpoint_tag=rng.choice(["search", "chat", "summary", None]),
                prompt_version=rng.choice(["v1", "v2", None]),
                tenant_id=rng.choice(["t1", "t2", "t3", "t4", None]),
                user_id=rng.choice(["u1", "u2", "u3", "u4", "u5", None]),
                environment=rng.choice(["prod", "staging", None]),
                data_mode=rng.choice(["real", "real", "real", "test", "demo"]),
                outcome=rng.choice(["success", "success", "error", "unknown"]),
                external_request_id=rng.choice(external_ids) if rng.random() < 0.5 else None,
                input_tokens=rng.choice([None, rng.randrange(10_000)]),
                output_tokens=rng.randrange(1000),
                cost_nano_usd=cost,
                billable=rng.random() < 0.95,
            )
        )
    return rows
