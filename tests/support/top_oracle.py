"""An oracle for the store's rankings: ``top`` recomputed row by row, without the rollups.

The rollup, tier and compaction tests write random rows, then compare every answer the store
gives with sums taken straight from the rows it was given; the sums here follow the store's
rules (billable rows only, the first attempt of an external id is the logical request,
buckets counted when they start inside the window) but none of its code.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Mapping, Sequence

from spanmeter.store import HOUR, MINUTE, TOP_DIMENSIONS, SpanRow, SpanStore, TopResult
from support.store_rows import DAY_NS, NS, T0

__all__ = ["check", "expected_top", "ranking_queries"]

HOUR_S = 3600


def expected_top(
    stored: Sequence[SpanRow],
    by: str,
    start_ns: int,
    end_ns: int,
    where: Mapping[str, str],
    environment: str | None,
    data_mode: str | None,
) -> dict[str | None, tuple[int, int, int, int, int, int]]:
    """(cost, logical, attempts, input, output, unpriced) per group, straight from the rows."""
    spec = HOUR if by == "user_id" or "user_id" in where else MINUTE
    width = spec.bucket_seconds * NS
    filters = dict(where)
    if environment is not None:
        filters["environment"] = environment
    if data_mode is not None:
        filters["data_mode"] = data_mode
    seen: set[str] = set()
    sums: dict[str | None, list[int]] = defaultdict(lambda: [0] * 6)
    for row in stored:
        if not row.billable:
            continue
        first = row.external_request_id is None or row.external_request_id not in seen
        if row.external_request_id is not None:
            seen.add(row.external_request_id)
        if not start_ns <= row.event_time_ns // width * width < end_ns:
            continue
        if any((getattr(row, column) or "") != value for column, value in filters.items()):
            continue
        group = sums[getattr(row, by) or None]
        cost = row.cost_nano_usd
        group[0] += cost or 0
        group[1] += first
        group[2] += 1
        group[3] += row.input_tokens or 0
        group[4] += row.output_tokens or 0
        group[5] += cost is None
    return {key: (v[0], v[1], v[2], v[3], v[4], v[5]) for key, v in sums.items()}


def check(store: SpanStore, stored: Sequence[SpanRow], queries: Sequence[tuple[object, ...]]) -> int:
    """Run each ``(by, start_ns, end_ns, where, environment, data_mode)`` query against the
    store and assert its ranking equals :func:`expected_top` over ``stored``; returns how many
    queries the store answered (a refused hourly query must be one the hourly rollup cannot hold)."""
    checked = 0
    for by, start_ns, end_ns, where, environment, data_mode in queries:
        assert isinstance(by, str) and isinstance(start_ns, int) and isinstance(end_ns, int)
        assert isinstance(where, dict)
        try:
            result: TopResult = store.top(
                by,  # type: ignore[arg-type]
                start_ns,
                end_ns,
                where=where,
                environment=environment,  # type: ignore[arg-type]
                data_mode=data_mode,  # type: ignore[arg-type]
                limit=1000,
            )
        except ValueError:
            hourly = by == "user_id" or "user_id" in where
            assert hourly and not {by, *where} <= set(HOUR.dimensions), (by, where)
            continue
        want = expected_top(stored, by, start_ns, end_ns, where, environment, data_mode)  # type: ignore[arg-type]
        got = {
            g.key: (
                g.cost_nano_usd,
                g.logical_requests,
                g.attempts,
                g.input_tokens,
                g.output_tokens,
                g.unpriced,
            )
            for g in result.groups
        }
        context = (by, start_ns, end_ns, where, environment, data_mode)
        assert got == want, context
        assert [g.key for g in result.groups] == sorted(want, key=lambda k: (-want[k][0], k or "")), context
        totals = [sum(column) for column in zip(*want.values(), strict=True)] or [0] * 6
        assert [
            result.cost_nano_usd,
            result.logical_requests,
            result.attempts,
            result.input_tokens,
            result.output_tokens,
            result.unpriced,
        ] == totals, context
        assert result.group_count == len(want)
        assert all(g.share == (g.cost_nano_usd / totals[0] if totals[0] else 0.0) for g in result.groups)
        checked += 1
    return checked


def ranking_queries(rng: random.Random) -> list[tuple[object, ...]]:
    """(by, start, end, where, environment, data_mode) for every ranked dimension over
    aligned, whole-day and random windows, under filters of every kind."""
    windows = [
        (T0 - DAY_NS, T0 + 5 * DAY_NS),  # everything: whole days from the day tier
        (T0 + 7 * HOUR_S * NS, T0 + 2 * DAY_NS + 5 * HOUR_S * NS),  # hour-aligned: hour and day tiers
        (T0 + DAY_NS, T0 + 2 * DAY_NS),  # exactly one day
    ]
    for _ in range(4):  # unaligned: every tier plus minute (or hour) edges
        start = T0 + rng.randrange(3 * DAY_NS)
        windows.append((start, start + rng.randrange(1, 3 * DAY_NS)))
    filters: list[tuple[dict[str, str], str | None, str | None]] = [
        ({}, None, "real"),
        ({}, "prod", None),
        ({}, "", "test"),
        ({"tenant_id": "t1"}, None, "real"),
        ({"endpoint_tag": ""}, "staging", None),
        ({"user_id": "u2"}, None, None),
        ({"outcome": "error", "model": "claude"}, None, "real"),
    ]
    return [
        (by, start, end, where, environment, data_mode)
        for by in sorted(TOP_DIMENSIONS)
        for start, end in windows
        for where, environment, data_mode in filters
    ]
