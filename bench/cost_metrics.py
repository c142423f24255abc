"""What the Prometheus cost counters add to ingest: ``CostMetrics.count_committed`` per batch.

Baseline in the same run: pickling the same batch, which the store-process path already
pays once per batch (the rows cross to the store process as pickled tuples). Batches of 512
realistic rows over 1,000 tenants (20 labelled), 3 endpoints, 3 models, 3 prompt versions,
half of them with an external request id. Also measured: one scrape of the exposition.

Second part, a hostile client: the same batches with a unique prompt version on every span,
with the default label-set cap (2,000) and, for comparison, with no effective cap. Every row
is then a new label set, so this is the worst case of the cap's fold path.

Usage: ``python bench/cost_metrics.py [--batches 200] [--repeats 7]``
"""

from __future__ import annotations

import argparse
import pickle
import random
import statistics
import time

from prometheus_client import CollectorRegistry, generate_latest

from spanmeter.prometheus import DEFAULT_MAX_LABEL_SETS, CostMetrics
from spanmeter.store import SpanRow, WriteResult
from spanmeter.store.rows import RowValues, row_values

BATCH = 512


def make_batches(count: int, seed: int = 7, *, unique_prompt_versions: bool = False) -> list[list[RowValues]]:
    rng = random.Random(seed)
    batches = []
    n = 0
    for _ in range(count):
        rows = []
        for _ in range(BATCH):
            n += 1
            rows.append(
                row_values(
                    SpanRow(
                        trace_id=n.to_bytes(16, "big"),
                        span_id=n.to_bytes(8, "big"),
                        start_time_ns=1_700_000_000_000_000_000 + n,
                        received_at_ns=1_700_000_000_000_000_000 + n,
                        provider="openai",
                        model=rng.choice(("gpt-4o", "gpt-4o-mini", "o3")),
                        endpoint_tag=rng.choice(("search", "support.reply", "checkout")),
                        prompt_version=f"pv-{n}"
                        if unique_prompt_versions
                        else rng.choice(("v1", "v2", "v3")),
                        tenant_id=f"tenant-{rng.randrange(1000)}",
                        user_id=f"user-{rng.randrange(10_000)}",
                        environment="prod",
                        external_request_id=f"req-{n // 2}" if n % 2 else None,
                        input_tokens=rng.randrange(100, 5000),
                        output_tokens=rng.randrange(10, 500),
                        cache_read_tokens=rng.randrange(0, 100),
                        reasoning_tokens=rng.randrange(0, 50),
                        cost_nano_usd=rng.randrange(10_000, 5_000_000),
                        outcome="success",
                        pricing_status="priced",
                    )
                )
            )
        batches.append(rows)
    return batches


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    batches = make_batches(args.batches)
    rows = args.batches * BATCH
    count_us: list[float] = []
    pickle_us: list[float] = []
    scrape_ms: list[float] = []
    for _ in range(args.repeats):
        metrics = CostMetrics(top_tenants=20, promotion_delay_s=0)
        registry = CollectorRegistry()
        registry.register(metrics)
        generate_latest(registry)
        metrics.count_committed(batches[0], WriteResult(inserted=BATCH))
        generate_latest(registry)  # fills the 20 tenant slots
        started = time.perf_counter()
        for batch in batches:
            pickle.dumps(batch, pickle.HIGHEST_PROTOCOL)
        pickle_us.append((time.perf_counter() - started) / rows * 1e6)
        started = time.perf_counter()
        for batch in batches:
            metrics.count_committed(batch, WriteResult(inserted=BATCH))
        count_us.append((time.perf_counter() - started) / rows * 1e6)
        started = time.perf_counter()
        text = generate_latest(registry)
        scrape_ms.append((time.perf_counter() - started) * 1e3)
    count, base = statistics.median(count_us), statistics.median(pickle_us)
    print(f"rows per repeat: {rows} in batches of {BATCH}; median of {args.repeats}")
    print(f"pickle a batch (baseline, already paid): {base:.3f} us/row")
    print(f"count_committed:                          {count:.3f} us/row  (x{count / base:.2f} the baseline)")
    lines = text.count(b"\n")
    print(f"one scrape: {statistics.median(scrape_ms):.1f} ms, {len(text) / 1024:.0f} KiB, {lines} lines")
    hostile(make_batches(args.batches, unique_prompt_versions=True), args.repeats, base)


def hostile(batches: list[list[RowValues]], repeats: int, base: float) -> None:
    """A unique prompt version per span, capped (default) and uncapped."""
    rows = len(batches) * BATCH
    print(f"hostile client: a unique prompt version on each of {rows} rows")
    for name, cap in (("cap 2,000 (default)", DEFAULT_MAX_LABEL_SETS), ("no cap", 10**9)):
        count_us: list[float] = []
        scrape_ms: list[float] = []
        text = b""
        for _ in range(repeats):
            metrics = CostMetrics(top_tenants=20, promotion_delay_s=0, max_label_sets=cap)
            registry = CollectorRegistry()
            registry.register(metrics)
            metrics.count_committed(batches[0], WriteResult(inserted=BATCH))
            generate_latest(registry)
            started = time.perf_counter()
            for batch in batches[1:]:
                metrics.count_committed(batch, WriteResult(inserted=BATCH))
            count_us.append((time.perf_counter() - started) / (rows - BATCH) * 1e6)
            started = time.perf_counter()
            text = generate_latest(registry)
            scrape_ms.append((time.perf_counter() - started) * 1e3)
        count = statistics.median(count_us)
        print(
            f"  {name:20} count_committed {count:.3f} us/row (x{count / base:.2f} the baseline); "
            f"scrape {statistics.median(scrape_ms):.0f} ms, {len(text) / 1024:.0f} KiB, "
            f"{text.count(b'spanmeter_attempts_total{')} label sets"
        )


if __name__ == "__main__":
    main()
