"""One builder of stored rows for every test: fresh ids, a plain priced OpenAI attempt."""

from __future__ import annotations

import itertools
from typing import Any

from spanmeter.store import SpanRow

NS = 1_000_000_000

_ids = itertools.count(1)


def span_row(start_ns: int, **overrides: Any) -> SpanRow:
    """A billable attempt starting at ``start_ns`` with ids no other row of the session has;
    any field can be overridden (cost and pricing status have no default here: callers say)."""
    n = next(_ids)
    fields: dict[str, Any] = {
        "trace_id": n.to_bytes(16, "big"),
        "span_id": (n * 7919).to_bytes(8, "big"),
        "start_time_ns": start_ns,
        "end_time_ns": start_ns + NS,
        "received_at_ns": start_ns + 2 * NS,
        "provider": "openai",
        "model": "gpt-4o",
        "input_tokens": 100,
        "output_tokens": 10,
        "endpoint_tag": "search",
        "tenant_id": "t1",
        "user_id": "u1",
        "environment": "prod",
        "outcome": "success",
    }
    fields.update(overrides)
    return SpanRow(**fields)
