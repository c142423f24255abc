"""Store write throughput and top-N latency, against a plain-insert ceiling in the same run.

Run: ``python bench/store.py`` (``--help`` for sizes). Machines are noisy (±25%), so compare
figures within one run. Three parts:

1. ``write_batch`` with 512-row batches of realistic rows (20 models over 3 providers, 50
   endpoint tags, 1,000 Zipf-distributed tenants, 10,000 users, 30% of rows sharing an
   external request id with another attempt), timestamps advancing at 60k spans/s, so
   every rollup bucket is as crowded as at the target ingest rate. Then the same rows in
   larger transactions (what group commit produces under load), then through a
   ``GroupCommitWriter`` fed by several threads.
2. The ceiling: the same rows, ``executemany`` into a table of the same columns with no
   index at all, 512 rows per transaction, same pragmas.
3. ``top`` over a store holding ``--spans`` spans (default 10 million) spread over 30 days.
   Inserting that many raw rows would take minutes and is not what ``top`` reads, so the
   rollup rows are generated directly, compacted (one row per group and bucket), with the
   store's own aggregation code, and written straight into the rollup tables.
"""

from __future__ import annotations

import argparse
import bisect
import itertools
import random
import sqlite3
import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Final

from spanmeter.store import ROLLUPS, GroupCommitWriter, SpanRow, SQLiteStore
from spanmeter.store.rollups import MEASURES, aggregate
from spanmeter.store.rows import FIELD_NAMES, row_values

BATCH: Final = 512
RATE_PER_S: Final = 60_000
DAY_NS: Final = 86_400 * 1_000_000_000
PROVIDERS: Final = ("openai", "anthropic", "gcp.vertex_ai")


class RealisticRows:
    """Deterministic, realistic span rows: correlated dimensions, Zipf tenants, retries."""

    def __init__(self, seed: int = 7) -> None:
        rng = self._rng = random.Random(seed)
        self.models = [(PROVIDERS[i % 3], f"model-{i:02d}") for i in range(20)]
        self.endpoints = [f"endpoint-{i:02d}" for i in range(50)]
        # an endpoint mostly calls one model, sometimes a second (a migration, a fallback)
        self.endpoint_models = {e: rng.sample(range(20), 2) for e in self.endpoints}
        self.endpoint_versions = {e: [f"v{j}" for j in range(1, rng.randint(2, 4))] for e in self.endpoints}
        self.tenants = [f"tenant-{i:04d}" for i in range(1000)]
        self.tenant_endpoints = {t: rng.sample(self.endpoints, rng.randint(3, 10)) for t in self.tenants}
        weights = [1 / (i + 1) ** 1.1 for i in range(1000)]
        total = sum(weights)
        self.tenant_cdf = list(itertools.accumulate(w / total for w in weights))
        self.users = [f"{rng.getrandbits(64):016x}" for _ in range(10_000)]
        self._open_ids: list[str] = []

    def rows(self, count: int, start_ns: int, rate_per_s: float = RATE_PER_S) -> list[SpanRow]:
        """``count`` rows starting at ``start_ns``, arriving at ``rate_per_s``."""
        rng = self._rng
        step = 1e9 / rate_per_s
        out: list[SpanRow] = []
        for i in range(count):
            start = start_ns + int(i * step)
            tenant_index = min(bisect.bisect_left(self.tenant_cdf, rng.random()), 999)
            tenant = self.tenants[tenant_index]
            endpoint = rng.choice(self.tenant_endpoints[tenant])
            provider, model = self.models[self.endpoint_models[endpoint][0 if rng.random() < 0.85 else 1]]
            user = self.users[(tenant_index * 37 + rng.randrange(40)) % 10_000]  # a tenant's own users
            roll = rng.random()
            if roll < 0.7:
                external_id = None
            elif roll < 0.85 and self._open_ids:
                external_id = rng.choice(self._open_ids)  # a retry of a recent request
            else:
                external_id = f"{rng.getrandbits(128):032x}"
                self._open_ids.append(external_id)
                if len(self._open_ids) > 256:
                    self._open_ids.pop(0)
            error = rng.random() < 0.04
            input_tokens = rng.randrange(200, 8000)
            output_tokens = rng.randrange(20, 1200)
            cached = input_tokens // 2 if rng.random() < 0.3 else 0
            priced = rng.random() < 0.98
            cost = input_tokens * 2500 + output_tokens * 10_000 if priced else None
            out.append(
                SpanRow(
                    trace_id=rng.randbytes(16),
                    span_id=rng.randbytes(8),
                    start_time_ns=start,
                    end_time_ns=start + 1_500_000_000,
                    received_at_ns=start + 3_000_000_000,
                    service_name="checkout",
                    provider=provider,
                    request_model=model,
                    response_model=model,
                    model=model,
                    operation="chat",
                    input_tokens=input_tokens,
                    output_tokens=output_tokens,
                    cache_read_tokens=cached,
                    cache_write_tokens=0,
                    reasoning_tokens=0,
                    endpoint_tag=endpoint,
                    prompt_name=endpoint,
                    prompt_version=rng.choice(self.endpoint_versions[endpoint]),
                    tenant_id=tenant,
                    user_id=user,
                    external_request_id=external_id,
                    data_mode="real" if rng.random() < 0.95 else "test",
                    environment="prod" if rng.random() < 0.9 else "staging",
                    session_id=None,
                    outcome="error" if error else "success",
                    error_type="RateLimitError" if error else None,
                    latency_ms=1500.0,
                    cost_nano_usd=cost,
                    input_cost_nano_usd=None if cost is None else input_tokens * 2500,
                    output_cost_nano_usd=None if cost is None else output_tokens * 10_000,
                    cache_read_cost_nano_usd=None if cost is None else 0,
                    cache_write_cost_nano_usd=None if cost is None else 0,
                    reasoning_cost_nano_usd=None if cost is None else 0,
                    pricing_status="priced" if priced else "unknown_model",
                    pricing_source="genai-prices" if priced else None,
                    pricing_source_version="0.0.40" if priced else None,
                    pricing_provider=provider if priced else None,
                    pricing_model=model if priced else None,
                    pricing_effective_date="2025-01-01" if priced else None,
                    billable=True,
                    issues=None,
                )
            )
        return out


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def batches(rows: list[SpanRow], size: int) -> Iterator[list[SpanRow]]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


def bench_store(path: Path, rows: list[SpanRow], transaction_rows: int) -> float:
    """rows/s through ``write_batches``, ``transaction_rows`` per transaction in 512-row batches."""
    with SQLiteStore(path) as store:
        per_txn = max(1, transaction_rows // BATCH)
        groups = list(batches(rows, BATCH))

        def run() -> None:
            for start in range(0, len(groups), per_txn):
                store.write_batches(groups[start : start + per_txn])

        return len(rows) / timed(run)


def bench_group_commit(path: Path, rows: list[SpanRow], threads: int) -> tuple[float, int, int]:
    """rows/s with ``threads`` submitters waiting on their futures, like receiver workers."""
    with SQLiteStore(path) as store:
        writer = GroupCommitWriter(store, max_pending_rows=1_000_000)
        chunks = list(batches(rows, BATCH))

        def submitter(index: int) -> None:
            for chunk in chunks[index::threads]:
                writer.submit(chunk).result()

        workers = [threading.Thread(target=submitter, args=(i,)) for i in range(threads)]

        def run() -> None:
            for worker in workers:
                worker.start()
            for worker in workers:
                worker.join()

        elapsed = timed(run)
        writer.close()
        return len(rows) / elapsed, len(chunks), writer.transactions


def bench_rollup_writes(path: Path, rows: list[SpanRow], upsert: bool) -> float:
    """rows/s for raw rows + rollups only, rollups appended (the store's way) or upserted.

    The brief alternative to appending partial rows: one row per group kept current with
    ``INSERT ... ON CONFLICT DO UPDATE``. Same aggregation, same raw insert, no dedupe.
    """
    conn = sqlite3.connect(str(path), isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA wal_autocheckpoint = 10000")
    conn.execute(f"CREATE TABLE requests ({', '.join(FIELD_NAMES)})")
    inserts = {}
    for spec in ROLLUPS:
        key = (spec.bucket_column, *spec.dimensions) if upsert else (spec.bucket_column, "seq")
        columns = (spec.bucket_column, *spec.dimensions, *MEASURES, *(() if upsert else ("seq",)))
        conn.execute(
            f"CREATE TABLE {spec.table} ({', '.join(columns)}, PRIMARY KEY ({', '.join(key)})) WITHOUT ROWID"
        )
        sql = f"INSERT INTO {spec.table} ({', '.join(columns)}) VALUES ({','.join('?' * len(columns))})"
        if upsert:
            sql += " ON CONFLICT DO UPDATE SET " + ", ".join(f"{m} = {m} + excluded.{m}" for m in MEASURES)
        inserts[spec.table] = sql
    insert_row = f"INSERT INTO requests VALUES ({','.join('?' * len(FIELD_NAMES))})"
    seq = itertools.count(1)

    def run() -> None:
        for batch in batches(rows, BATCH):
            conn.execute("BEGIN")
            conn.executemany(insert_row, map(row_values, batch))
            for spec, groups in zip(ROLLUPS, aggregate(batch, [True] * len(batch)), strict=True):
                if upsert:
                    params = [(*key, *sums) for key, sums in groups.items()]
                else:
                    params = [(*key, *sums, next(seq)) for key, sums in groups.items()]
                conn.executemany(inserts[spec.table], params)
            conn.execute("COMMIT")

    rate = len(rows) / timed(run)
    conn.close()
    return rate


def bench_ceiling(path: Path, rows: list[SpanRow]) -> float:
    """rows/s of a plain ``executemany`` into an index-free table of the same columns."""
    conn = sqlite3.connect(str(path), isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute(f"CREATE TABLE requests ({', '.join(FIELD_NAMES)})")
    sql = f"INSERT INTO requests VALUES ({','.join('?' * len(FIELD_NAMES))})"
    values = [row_values(row) for row in rows]

    def run() -> None:
        for start in range(0, len(values), BATCH):
            conn.execute("BEGIN")
            conn.executemany(sql, values[start : start + BATCH])
            conn.execute("COMMIT")

    rate = len(rows) / timed(run)
    conn.close()
    return rate


def fill_rollups(path: Path, generator: RealisticRows, spans: int, days: int, end_ns: int) -> None:
    """Write the compacted rollups of ``spans`` spans over ``days`` days, bypassing raw rows."""
    per_hour = spans / (days * 24)
    start_ns = end_ns - days * DAY_NS
    with SQLiteStore(path) as store:
        conn = sqlite3.connect(str(path), isolation_level=None)
        seq = itertools.count(1)
        inserts = {}
        for spec in ROLLUPS:
            columns = (spec.bucket_column, *spec.dimensions, *MEASURES, "seq")
            placeholders = ",".join("?" * len(columns))
            inserts[spec.table] = f"INSERT INTO {spec.table} ({', '.join(columns)}) VALUES ({placeholders})"
        carry = 0.0
        for hour in range(days * 24):
            carry += per_hour
            count, carry = int(carry), carry - int(carry)
            rows = generator.rows(count, start_ns + hour * 3_600 * 10**9, rate_per_s=count / 3600)
            conn.execute("BEGIN")
            for spec, groups in zip(ROLLUPS, aggregate(rows, [True] * len(rows)), strict=True):
                # partial rows as the write path appends them; compaction below folds them into the tiers
                params = [(*key, *sums, next(seq)) for key, sums in groups.items()]
                conn.executemany(inserts[spec.table], params)
                dirty = {(spec.table, key[0]) for key in groups}
                conn.executemany("INSERT OR IGNORE INTO rollup_dirty VALUES (?, ?)", dirty)
            conn.execute("COMMIT")
        conn.close()
        began = time.perf_counter()
        buckets = 0
        while done := store.compact_rollups(end_ns + DAY_NS, max_buckets=1000):
            buckets += done
        elapsed = time.perf_counter() - began
        each_ms = elapsed / max(buckets, 1) * 1000
        print(f"  compaction: {buckets:,} buckets in {elapsed:.0f} s ({each_ms:.1f} ms each)")
        print(f"  rows: {store.stats().rollup_rows}")


def bench_top(path: Path, end_ns: int, repeats: int) -> None:
    queries: list[tuple[str, str, dict[str, str], int]] = [
        ("endpoint_tag", "", {}, 30),
        ("tenant_id", "", {}, 30),
        ("model", "", {}, 30),
        ("prompt_version", "endpoint_tag=endpoint-07", {"endpoint_tag": "endpoint-07"}, 30),
        ("endpoint_tag", "tenant_id=tenant-0003", {"tenant_id": "tenant-0003"}, 30),
        ("user_id", "", {}, 30),
        ("endpoint_tag", "", {}, 1),
        ("tenant_id", "", {}, 1),
        ("user_id", "", {}, 1),
    ]
    with SQLiteStore(path) as store:
        print(f"  {'by':<16} {'where':<26} {'window':>7} {'median ms':>10} {'groups':>7}")
        for by, label, where, days in queries:
            start_ns = end_ns - days * DAY_NS
            times: list[float] = []
            result = None
            for _ in range(repeats):
                began = time.perf_counter()
                result = store.top(by, start_ns, end_ns, where=where)  # type: ignore[arg-type]
                times.append(time.perf_counter() - began)
            assert result is not None
            print(
                f"  {by:<16} {label:<26} {days:>6}d {statistics.median(times) * 1000:>10.1f}"
                f" {result.group_count:>7}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description="Store write throughput and top-N latency.")
    parser.add_argument("--rows", type=int, default=300_000, help="rows for the write benchmarks")
    parser.add_argument("--spans", type=int, default=10_000_000, help="spans behind the top benchmark")
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--skip-top", action="store_true")
    args = parser.parse_args()

    generator = RealisticRows()
    now_ns = time.time_ns() // 3_600_000_000_000 * 3_600_000_000_000
    rows = generator.rows(args.rows, now_ns)
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        print(f"write path, {len(rows):,} realistic rows arriving at {RATE_PER_S:,}/s")
        ceiling = bench_ceiling(directory / "ceiling.db", rows)
        print(f"  ceiling: executemany, no index, {BATCH}/txn      {ceiling:>10,.0f} rows/s")
        for txn_rows in (BATCH, 4 * BATCH, 16 * BATCH):
            rate = bench_store(directory / f"store-{txn_rows}.db", rows, txn_rows)
            label = f"store.write_batches, {txn_rows:>5} rows/txn"
            print(f"  {label:<47} {rate:>10,.0f} rows/s ({rate / ceiling:.0%})")
        rate, submits, transactions = bench_group_commit(directory / "group.db", rows, threads=8)
        print(
            f"  GroupCommitWriter, 8 threads x {BATCH}-row submits {rate:>10,.0f} rows/s"
            f" ({submits} submits in {transactions} transactions)"
        )
        print(f"rollup writes alone (raw rows + rollups, {BATCH}/txn, no dedupe or logical ids)")
        for upsert in (False, True):
            rate = bench_rollup_writes(directory / f"rollups-{upsert}.db", rows, upsert)
            label = (
                "ON CONFLICT DO UPDATE, one row per group" if upsert else "appended partial rows (the store)"
            )
            print(f"  {label:<47} {rate:>10,.0f} rows/s")
        if not args.skip_top:
            print(f"\ntop over {args.spans:,} spans in {args.days} days (rollups generated directly)")
            top_path = directory / "top.db"
            began = time.perf_counter()
            fill_rollups(top_path, RealisticRows(seed=11), args.spans, args.days, now_ns)
            print(f"  generated in {time.perf_counter() - began:.0f} s")
            bench_top(top_path, now_ns, args.repeats)


if __name__ == "__main__":
    main()
