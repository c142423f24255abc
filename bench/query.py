"""``top`` latency over 30 days holding 10 million spans, by every dimension and window.

Run: ``python bench/query.py`` (``--help`` for sizes; ``--db`` keeps and reuses the filled
store between runs: filling it takes minutes). The store holds ``--spans`` spans over
``--days`` days as compacted rollups written directly (raw rows are not what ``top``
reads; :func:`store.fill_rollups` explains the shortcut), with the realistic cardinality of
``bench/store.py``: 50 endpoint tags, 20 models over 3 providers, 1,000 Zipf tenants,
10,000 users.

Timed, median of ``--repeats`` runs each: ``top`` by each of the six dimensions over the
last 30 days, 7 days and 24 hours, unfiltered and with one ``where`` filter on each
dimension a ``where`` may name (an endpoint tag, a tenant, a model, a provider, a prompt
version, an outcome, a user: with a user, only tenants and endpoint tags can be ranked).
Baselines from the same run, so the figures can be read against this machine's speed at
the time:

* ``count(*)`` over the minute rollup rows of the window (what a filtered ``top`` had to
  scan before the filter tiers): the price of touching every rollup row once;
* ``count(*)`` over the day tier's rows of one dimension in the window: the floor of a
  tiered read.

``--verify`` also checks every answer against the same ranking summed straight from the
rollup (a plain ``GROUP BY``, no tier: up to seconds a question): the groups, their order
and the totals must be equal.
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Final

sys.path.insert(0, str(Path(__file__).parent))
from spanmeter.store import SQLiteStore, TopResult
from spanmeter.store.rollups import TopDimension, aligned_window, rollup_for
from store import DAY_NS, RealisticRows, fill_rollups

END_NS: Final = 1_772_668_800 * 10**9 + 13 * 3_600 * 10**9
"""2026-03-05T13:00Z: on an hour boundary but not a day boundary, so every window has
partial days at its edges, as a window ending "now" has."""
ENDS: Final = (("now", END_NS), ("past", END_NS - 2 * 86_400 * 10**9 - 5 * 3_600 * 10**9))
"""Where windows end: at the last span ("now": nothing after the window, as when ranking up
to now) and 2 days 5 hours before it ("past": spans on both sides of the window, as with
``--from``/``--to``), since a signed cover's choices depend on where the data lies."""
DIMENSIONS: Final[tuple[TopDimension, ...]] = (
    "endpoint_tag",
    "prompt_version",
    "tenant_id",
    "user_id",
    "model",
    "provider",
)
WINDOWS: Final = (("30d", 30 * DAY_NS), ("7d", 7 * DAY_NS), ("24h", DAY_NS))
USER: Final = RealisticRows(seed=11).users[3]
"""One of the top tenant's users in the store (its builder's seed)."""
FILTERS: Final[tuple[tuple[str, dict[str, str]], ...]] = (
    ("", {}),
    ("endpoint_tag=endpoint-07", {"endpoint_tag": "endpoint-07"}),
    ("tenant_id=tenant-0003", {"tenant_id": "tenant-0003"}),
    ("model=model-03", {"model": "model-03"}),
    ("provider=anthropic", {"provider": "anthropic"}),
    ("prompt_version=v2", {"prompt_version": "v2"}),
    ("outcome=error", {"outcome": "error"}),
    ("user_id=<a user>", {"user_id": USER}),
)


def median_ms(run: Callable[[], object], repeats: int) -> tuple[float, object]:
    """Median wall time of ``repeats`` calls, in ms, and the last result."""
    times: list[float] = []
    result: object = None
    for _ in range(repeats):
        began = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - began)
    return statistics.median(times) * 1000, result


def baselines(path: Path, repeats: int) -> None:
    """The same-run floors: one pass over the window's minute rows, and over a tier's rows."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    conn.execute("PRAGMA mmap_size = 268435456")
    for label, span_ns in WINDOWS:
        lo = (END_NS - span_ns) // 10**9
        hi = END_NS // 10**9
        ms, (count,) = median_ms(  # type: ignore[misc]
            lambda lo=lo, hi=hi: conn.execute(
                "SELECT count(*) FROM rollup_minute WHERE minute >= ? AND minute < ?", (lo, hi)
            ).fetchone(),
            repeats,
        )
        print(f"  baseline: count(*) of the minute rollup, {label:>4}: {ms:8.1f} ms ({count:,} rows)")
        ms, (count,) = median_ms(  # type: ignore[misc]
            lambda lo=lo, hi=hi: conn.execute(
                "SELECT count(*) FROM rollup_dim_day WHERE dimension = 'user_id' AND day >= ? AND day < ?",
                (lo, hi),
            ).fetchone(),
            repeats,
        )
        print(f"  baseline: count(*) of the day tier by user,   {label:>4}: {ms:8.1f} ms ({count:,} rows)")
    conn.close()


def plain_top(
    path: Path, by: str, start_ns: int, end_ns: int, where: dict[str, str], limit: int
) -> tuple[list[tuple[object, ...]], tuple[int, ...]]:
    """The ranking summed straight from the rollup, without tiers: (top groups, totals)."""
    spec = rollup_for(by, where)
    lo, hi = aligned_window(start_ns, end_ns, spec.bucket_seconds)
    conditions = "".join(f" AND {name} = ?" for name in where)
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        rows = conn.execute(
            f"SELECT {by}, sum(cost_nano_usd), sum(logical_requests), sum(attempts) FROM {spec.table}"
            f" WHERE {spec.bucket_column} >= ? AND {spec.bucket_column} < ? AND data_mode = 'real'"
            f"{conditions} GROUP BY {by} ORDER BY 2 DESC, 1",
            (lo, hi, *where.values()),
        ).fetchall()
    finally:
        conn.close()
    totals = (sum(r[1] for r in rows), sum(r[2] for r in rows), sum(r[3] for r in rows), len(rows))
    return [(key or None, cost, logical, attempts) for key, cost, logical, attempts in rows[:limit]], totals


def verify(path: Path, by: str, start_ns: int, end_ns: int, where: dict[str, str], result: object) -> None:
    """Raise if ``result`` (a TopResult) differs from the plain ranking."""
    assert isinstance(result, TopResult)
    groups, totals = plain_top(path, by, start_ns, end_ns, where, len(result.groups))
    got = [(g.key, g.cost_nano_usd, g.logical_requests, g.attempts) for g in result.groups]
    got_totals = (result.cost_nano_usd, result.logical_requests, result.attempts, result.group_count)
    if got != groups or got_totals != totals:
        raise SystemExit(
            f"top by {by} where {where} over [{start_ns}, {end_ns}) differs from the plain ranking"
        )


def bench_top(store: SQLiteStore, repeats: int, check: bool = False) -> list[float]:
    """Print one line per question; returns every median, in ms."""
    medians: list[float] = []
    print(f"  {'by':<15} {'where':<26} {'window':>6} {'ends':>5} {'median ms':>10} {'groups':>7}")
    verified = 0
    for label, where in FILTERS:
        for by in DIMENSIONS:
            with_user = {"user_id", "tenant_id", "endpoint_tag"}
            if by in where or ("user_id" in {by, *where} and not {by, *where} <= with_user):
                continue  # users are in the hourly rollup, which has no other dimension
            for window, span_ns in WINDOWS:
                for ends, end_ns in ENDS:
                    ms, result = median_ms(
                        lambda by=by, where=where, span_ns=span_ns, end_ns=end_ns: store.top(
                            by, end_ns - span_ns, end_ns, where=where
                        ),
                        repeats,
                    )
                    medians.append(ms)
                    if check:
                        verify(store.path, by, end_ns - span_ns, end_ns, where, result)
                        verified += 1
                    groups = getattr(result, "group_count", 0)
                    flag = "" if ms < 100 else "  > 100 ms"
                    print(f"  {by:<15} {label:<26} {window:>6} {ends:>5} {ms:>10.1f} {groups:>7}{flag}")
    if check:
        print(f"  {verified} answers equal the plain rankings from the rollups")
    return medians


def main() -> None:
    parser = argparse.ArgumentParser(description="top latency over 30 days holding 10 million spans")
    parser.add_argument("--spans", type=int, default=10_000_000, help="spans in the store")
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--db", type=Path, help="store to fill (or reuse when it exists)")
    parser.add_argument("--verify", action="store_true", help="check unfiltered answers against the rollup")
    args = parser.parse_args()
    path: Path = args.db or Path(tempfile.mkdtemp()) / "query.db"
    if not path.exists():
        began = time.perf_counter()
        fill_rollups(path, RealisticRows(seed=11), args.spans, args.days, END_NS)
        print(f"filled {args.spans:,} spans over {args.days} days in {time.perf_counter() - began:.0f} s")
    with SQLiteStore(path) as store:  # opening applies pending migrations (and their backfills)
        total = store.top("provider", END_NS - args.days * DAY_NS, END_NS, data_mode=None)
        print(f"store: {total.attempts:,} spans in {args.days} days")
        print(f"  rollup and tier rows: {store.stats().rollup_rows}")
        baselines(path, args.repeats)
        medians = bench_top(store, args.repeats, args.verify)
    over = sum(ms >= 100 for ms in medians)
    print(f"{len(medians)} questions: median {statistics.median(medians):.1f} ms, max {max(medians):.1f} ms,")
    print(f"  {over} at or over 100 ms")


if __name__ == "__main__":
    main()
