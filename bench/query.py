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

On PostgreSQL: ``python bench/query.py --store postgresql [--postgres-url URL]
[--copy-from STORE.db]`` asks the same questions of the PostgreSQL store (a server started
for the run with fsync on, as ``bench/postgres_store.py`` does, or the database at
``--postgres-url``, filled when it holds no rollup rows yet and reused otherwise). It holds
the same spans as the SQLite store of the same ``--spans`` and ``--days``: the same builder
and seed, its rollup rows streamed in with ``COPY`` (one hour of spans at a time), or,
with ``--copy-from``, copied from a SQLite store this bench filled before, with ``spanmeter
store copy``; then the store's own compaction folds them into its tiers, as a replica's
would. Baselines there: ``count(*)`` over the window's rows of the minute and hourly
rollups, which is what a ``top`` without tiers would sum.
"""

from __future__ import annotations

import argparse
import contextlib
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Generator, Sequence
from pathlib import Path
from typing import Any, Final

sys.path.insert(0, str(Path(__file__).parent))
from spanmeter.store import ROLLUPS, SQLiteStore, TopResult, open_store
from spanmeter.store.rollups import MEASURES, TopDimension, aggregate, aligned_window, rollup_for
from spanmeter.store.tiers import FILTER_TIERS, TIERS
from store import DAY_NS, RealisticRows, fill_rollups

Fetch = Callable[[str, Sequence[object]], list[tuple[Any, ...]]]
"""Runs one statement (``?`` placeholders) on the store's database; returns its rows."""

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


def postgres_baselines(fetch: Fetch, repeats: int) -> None:
    """PostgreSQL's floors: one pass over the window's rows of each rollup (what a ``top``
    without tiers would sum)."""
    for label, span_ns in WINDOWS:
        lo = (END_NS - span_ns) // 10**9
        hi = END_NS // 10**9
        for table, column in (("rollup_minute", "minute"), ("rollup_hour", "hour")):
            ms, rows = median_ms(
                lambda table=table, column=column, lo=lo, hi=hi: fetch(
                    f"SELECT count(*) FROM {table} WHERE {column} >= ? AND {column} < ?", (lo, hi)
                ),
                repeats,
            )
            count = rows[0][0]  # type: ignore[index]
            print(f"  baseline: count(*) of {table + ',':14} {label:>4}: {ms:8.1f} ms ({count:,} rows)")


@contextlib.contextmanager
def sqlite_fetch(path: Path) -> Generator[Fetch, None, None]:
    """A read-only :data:`Fetch` on the SQLite file at ``path``."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        yield lambda statement, params: conn.execute(statement, tuple(params)).fetchall()
    finally:
        conn.close()


@contextlib.contextmanager
def postgres_fetch(url: str) -> Generator[Fetch, None, None]:
    """A :data:`Fetch` on the PostgreSQL database at ``url`` (``?`` marks become ``%s``)."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        yield lambda statement, params: conn.execute(statement.replace("?", "%s").encode(), params).fetchall()


def plain_top(
    fetch: Fetch, by: str, start_ns: int, end_ns: int, where: dict[str, str], limit: int
) -> tuple[list[tuple[Any, int, int, int]], tuple[int, int, int, int]]:
    """The ranking summed straight from the rollup, without tiers: (top groups, totals),
    ordered as ``top`` orders them (by cost, then by key)."""
    spec = rollup_for(by, where)
    lo, hi = aligned_window(start_ns, end_ns, spec.bucket_seconds)
    conditions = "".join(f" AND {name} = ?" for name in where)
    rows = fetch(
        f"SELECT {by}, sum(cost_nano_usd), sum(logical_requests), sum(attempts) FROM {spec.table}"
        f" WHERE {spec.bucket_column} >= ? AND {spec.bucket_column} < ? AND data_mode = 'real'"
        f"{conditions} GROUP BY {by}",
        (lo, hi, *where.values()),
    )
    # PostgreSQL sums bigints as numeric: back to int, as the store does
    ranked = sorted(
        ((key or None, int(cost), int(logical), int(attempts)) for key, cost, logical, attempts in rows),
        key=lambda group: (-group[1], group[0] or ""),
    )
    totals = (sum(r[1] for r in ranked), sum(r[2] for r in ranked), sum(r[3] for r in ranked), len(ranked))
    return ranked[:limit], totals


def verify(fetch: Fetch, by: str, start_ns: int, end_ns: int, where: dict[str, str], result: object) -> None:
    """Raise if ``result`` (a TopResult) differs from the plain ranking."""
    assert isinstance(result, TopResult)
    groups, totals = plain_top(fetch, by, start_ns, end_ns, where, len(result.groups))
    got = [(g.key, g.cost_nano_usd, g.logical_requests, g.attempts) for g in result.groups]
    got_totals = (result.cost_nano_usd, result.logical_requests, result.attempts, result.group_count)
    if got != groups or got_totals != totals:
        raise SystemExit(
            f"top by {by} where {where} over [{start_ns}, {end_ns}) differs from the plain ranking"
        )


def bench_top(
    store: Any,
    repeats: int,
    fetch: Fetch | None = None,
    windows: Sequence[str] = tuple(name for name, _ in WINDOWS),
    target_ms: float = 100,
) -> list[float]:
    """Print one line per question; returns every median, in ms. ``fetch``: verify every
    answer against :func:`plain_top` on the store's database."""
    medians: list[float] = []
    print(f"  {'by':<15} {'where':<26} {'window':>6} {'ends':>5} {'median ms':>10} {'groups':>7}")
    verified = 0
    for label, where in FILTERS:
        for by in DIMENSIONS:
            with_user = {"user_id", "tenant_id", "endpoint_tag"}
            if by in where or ("user_id" in {by, *where} and not {by, *where} <= with_user):
                continue  # users are in the hourly rollup, which has no other dimension
            for window, span_ns in WINDOWS:
                if window not in windows:
                    continue
                for ends, end_ns in ENDS:
                    ms, result = median_ms(
                        lambda by=by, where=where, span_ns=span_ns, end_ns=end_ns: store.top(
                            by, end_ns - span_ns, end_ns, where=where
                        ),
                        repeats,
                    )
                    medians.append(ms)
                    if fetch is not None:
                        verify(fetch, by, end_ns - span_ns, end_ns, where, result)
                        verified += 1
                    groups = getattr(result, "group_count", 0)
                    flag = "" if ms < target_ms else f"  >= {target_ms:.0f} ms"
                    print(f"  {by:<15} {label:<26} {window:>6} {ends:>5} {ms:>10.1f} {groups:>7}{flag}")
    if fetch is not None:
        print(f"  {verified} answers equal the plain rankings from the rollups")
    return medians


def fill_postgres(url: str, generator: RealisticRows, spans: int, days: int, end_ns: int) -> None:
    """Write the rollups of ``spans`` spans over ``days`` days into the PostgreSQL store at
    ``url`` with ``COPY``, bypassing raw rows.

    The spans are :func:`store.fill_rollups`'s (same builder, same hours, same counts), so
    both stores hold the same rollups. One hour of spans is aggregated at a time, which
    leaves one row per group and bucket: compacted already, as PostgreSQL's compaction would
    leave them. A ``VACUUM ANALYZE`` at the end gives the planner its statistics (and the
    visibility map), as autovacuum would on a store that has been running.
    """
    import psycopg

    open_store(url).close()  # created and migrated
    per_hour = spans / (days * 24)
    start_ns = end_ns - days * DAY_NS
    statements = {
        spec.table: f"COPY {spec.table} ({', '.join((spec.bucket_column, *spec.dimensions, *MEASURES))})"
        " FROM STDIN"
        for spec in ROLLUPS
    }
    written = dict.fromkeys(statements, 0)
    carry = 0.0
    with psycopg.connect(url) as conn:
        for hour in range(days * 24):
            carry += per_hour
            count, carry = int(carry), carry - int(carry)
            if not count:
                continue
            rows = generator.rows(count, start_ns + hour * 3_600 * 10**9, rate_per_s=count / 3600)
            with conn.cursor() as cursor:
                for spec, groups in zip(ROLLUPS, aggregate(rows, [True] * len(rows)), strict=True):
                    with cursor.copy(statements[spec.table].encode()) as copy:
                        for key, sums in groups.items():
                            copy.write_row((*key, *sums))
                    written[spec.table] += len(groups)
            if hour % 24 == 23:
                conn.commit()
        conn.commit()
    vacuum(url)
    print(f"  rollup rows copied in: {written}")


def vacuum(url: str) -> None:
    """``VACUUM ANALYZE`` the rollups and tiers: statistics for the planner and the
    visibility map, as autovacuum leaves them on a store that has been running."""
    import psycopg

    tables = [spec.table for spec in ROLLUPS] + [tier.table for tier in (*TIERS, *FILTER_TIERS)]
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"VACUUM ANALYZE {', '.join(tables)}".encode())


def compact_postgres(url: str) -> None:
    """Run the store's compaction until nothing is left, as of :data:`END_NS` (so the last
    two buckets stay unfolded, as on a running store): it merges the rollup rows and folds
    them into the tiers, as a replica's maintenance does in the background. Nothing to do
    on a store compacted before."""
    began = time.perf_counter()
    buckets = 0
    with open_store(url) as store:
        while done := store.compact_rollups(END_NS, max_buckets=500):
            buckets += done
    if buckets:
        print(f"  compacted {buckets:,} buckets into the tiers in {time.perf_counter() - began:.0f} s")
        vacuum(url)


def postgres_main(args: argparse.Namespace, windows: Sequence[str], target_ms: float) -> list[float]:
    """The questions on PostgreSQL (a server started for the run unless ``--postgres-url``)."""
    from pg import PostgresServer

    with contextlib.ExitStack() as stack:
        url: str | None = args.postgres_url
        if url is None:
            server = stack.enter_context(PostgresServer(durable=True))
            url = server.new_database("query")
            print("PostgreSQL: started for the run (fsync on, shared_buffers 64MB)")
        open_store(url).close()  # created and migrated
        fetch = stack.enter_context(postgres_fetch(url))
        if not fetch("SELECT EXISTS (SELECT 1 FROM rollup_minute)", ())[0][0]:
            began = time.perf_counter()
            if args.copy_from is not None:
                command = [sys.executable, "-m", "spanmeter", "store", "copy"]
                subprocess.run([*command, "--from", str(args.copy_from), "--to", url], check=True)
                vacuum(url)
                how = f"copied from {args.copy_from} with spanmeter store copy"
            else:
                fill_postgres(url, RealisticRows(seed=11), args.spans, args.days, END_NS)
                how = f"filled with {args.spans:,} spans over {args.days} days by COPY"
            print(f"{how} in {time.perf_counter() - began:.0f} s")
        compact_postgres(url)
        store = stack.enter_context(open_store(url))
        total = store.top("provider", END_NS - args.days * DAY_NS, END_NS, data_mode=None)
        print(f"store: {total.attempts:,} spans in {args.days} days")
        stats = store.stats()
        print(f"  rollup rows: {stats.rollup_rows}, database {stats.size_bytes / 2**20:,.0f} MiB")
        postgres_baselines(fetch, args.repeats)
        return bench_top(store, args.repeats, fetch if args.verify else None, windows, target_ms)


def main() -> None:
    parser = argparse.ArgumentParser(description="top latency over 30 days holding 10 million spans")
    parser.add_argument("--spans", type=int, default=10_000_000, help="spans in the store")
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--db", type=Path, help="SQLite store to fill (or reuse when it exists)")
    parser.add_argument(
        "--verify", action="store_true", help="check every answer against the rollup's plain sums"
    )
    parser.add_argument("--store", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument(
        "--postgres-url",
        help="with --store postgresql: the database to fill (or reuse when it holds rollups),"
        " instead of a server started for the run",
    )
    parser.add_argument(
        "--copy-from",
        type=Path,
        help="with --store postgresql: fill by `spanmeter store copy` from this SQLite store"
        " (one made by this bench with --db) instead of COPY of generated rollups",
    )
    parser.add_argument("--windows", default="30d,7d,24h", help="windows to ask about (default 30d,7d,24h)")
    parser.add_argument(
        "--target-ms", type=float, help="flag answers at or over this (default 100; 150 on PostgreSQL)"
    )
    args = parser.parse_args()
    windows = args.windows.split(",")
    target_ms: float = args.target_ms or (150 if args.store == "postgresql" else 100)
    if args.store == "postgresql":
        medians = postgres_main(args, windows, target_ms)
    else:
        medians = sqlite_main(args, windows, target_ms)
    over = sum(ms >= target_ms for ms in medians)
    print(f"{len(medians)} questions: median {statistics.median(medians):.1f} ms, max {max(medians):.1f} ms,")
    print(f"  {over} at or over {target_ms:.0f} ms")


def sqlite_main(args: argparse.Namespace, windows: Sequence[str], target_ms: float) -> list[float]:
    """The questions on the SQLite store at ``--db`` (filled first when missing)."""
    path: Path = args.db or Path(tempfile.mkdtemp()) / "query.db"
    if not path.exists():
        began = time.perf_counter()
        fill_rollups(path, RealisticRows(seed=11), args.spans, args.days, END_NS)
        print(f"filled {args.spans:,} spans over {args.days} days in {time.perf_counter() - began:.0f} s")
    with SQLiteStore(path) as store, sqlite_fetch(path) as fetch:  # opening migrates (and backfills)
        total = store.top("provider", END_NS - args.days * DAY_NS, END_NS, data_mode=None)
        print(f"store: {total.attempts:,} spans in {args.days} days")
        print(f"  rollup and tier rows: {store.stats().rollup_rows}")
        baselines(path, args.repeats)
        return bench_top(store, args.repeats, fetch if args.verify else None, windows, target_ms)


if __name__ == "__main__":
    main()
