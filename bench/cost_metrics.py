"""What the Prometheus cost counters add to ingest, on each side of the store process.

* in the store process (or the writer thread): ``CostSummer.observe``, the per-row work,
  once per transaction of 8,192 rows (16 batches of 512) and, for the one-process mode,
  once per 512-row batch;
* on the receiver: pickling and unpickling the sums it sends back, and
  ``CostMetrics.merge`` of them, per transaction: what the bounding process pays now;
* for reference, the receiver-side cost before this split: summing a 512-row batch there.

Baseline in the same run: pickling the same batch, which the store-process path already
pays once per batch (the rows cross to the store process as pickled tuples). Batches of 512
realistic rows over 1,000 tenants (20 labelled), 3 endpoints, 3 models, 3 prompt versions,
half of them with an external request id. Also measured: one scrape of the exposition.

Second part, a hostile client: the same batches with a unique prompt version on every span,
with the default label-set cap (2,000) and, for comparison, with no effective cap. Every row
is then a new label set, so this is the worst case of the cap's fold path.

Usage: ``python bench/cost_metrics.py [--batches 208] [--repeats 7]``
"""

from __future__ import annotations

import argparse
import pickle
import random
import statistics
import time

from prometheus_client import CollectorRegistry, generate_latest

from spanmeter.prometheus import DEFAULT_MAX_LABEL_SETS, CostMetrics, CostSummer
from spanmeter.store import SpanRow, WriteResult
from spanmeter.store.rows import RowValues, row_from_values, row_values

BATCH = 512
TRANSACTION = 16
"""Batches per transaction in the store process under load (8,192 rows, its maximum)."""


def stored(batches: list[list[RowValues]]) -> list[WriteResult]:
    """What the store answers for each batch stored whole (the rows rebuilt, as in the child)."""
    results = []
    for batch in batches:
        rows = [row_from_values(values) for values in batch]
        firsts = [row.external_request_id is None or row.external_request_id.endswith("0") for row in rows]
        results.append(WriteResult(inserted=len(rows), new_rows=rows, first_attempts=firsts))
    return results


def per_row_us(started: float, rows: int) -> float:
    return (time.perf_counter() - started) / rows * 1e6


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
    parser.add_argument("--batches", type=int, default=208)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    batches = make_batches(args.batches)
    results = stored(batches)
    transactions = [results[i : i + TRANSACTION] for i in range(0, len(results), TRANSACTION)]
    rows = args.batches * BATCH
    figures: dict[str, list[float]] = {}
    scrape_ms: list[float] = []
    text = b""

    def note(name: str, value: float) -> None:
        figures.setdefault(name, []).append(value)

    for _ in range(args.repeats):
        metrics = CostMetrics(top_tenants=20, promotion_delay_s=0)
        registry = CollectorRegistry()
        registry.register(metrics)
        metrics.count(results[:1])
        generate_latest(registry)  # fills the 20 tenant slots
        summer = CostSummer(metrics.tenant_view)
        started = time.perf_counter()
        for batch in batches:
            pickle.dumps(batch, pickle.HIGHEST_PROTOCOL)
        note("pickle", per_row_us(started, rows))
        started = time.perf_counter()
        sums = [summer.observe(transaction) for transaction in transactions]
        note("observe_tx", per_row_us(started, rows))
        started = time.perf_counter()
        for result in results:
            summer.observe((result,))
        note("observe_batch", per_row_us(started, rows))
        started = time.perf_counter()
        sent = [pickle.dumps(item, pickle.HIGHEST_PROTOCOL) for item in sums]
        note("pickle_sums", per_row_us(started, rows))
        started = time.perf_counter()
        for data in sent:
            metrics.merge(pickle.loads(data))
        note("receiver", per_row_us(started, rows))
        started = time.perf_counter()
        for result in results:
            metrics.count((result,))
        note("one_process", per_row_us(started, rows))
        started = time.perf_counter()
        text = generate_latest(registry)
        scrape_ms.append((time.perf_counter() - started) * 1e3)
    median = {name: statistics.median(values) for name, values in figures.items()}
    base = median["pickle"]

    def show(label: str, name: str) -> None:
        print(f"{label:58} {median[name]:.3f} us/row  (x{median[name] / base:.2f} the baseline)")

    print(
        f"rows per repeat: {rows} in batches of {BATCH}, {TRANSACTION} batches a transaction; median of {args.repeats}"
    )
    print(f"{'pickle a batch (baseline, already paid)':58} {base:.3f} us/row")
    show("store process: CostSummer.observe per transaction", "observe_tx")
    show("store process: pickle the sums", "pickle_sums")
    show("receiver: unpickle + CostMetrics.merge per transaction", "receiver")
    show("one process: observe + merge per 512-row batch", "one_process")
    show("store process: CostSummer.observe per 512-row batch", "observe_batch")
    lines = text.count(b"\n")
    print(f"one scrape: {statistics.median(scrape_ms):.1f} ms, {len(text) / 1024:.0f} KiB, {lines} lines")
    hostile(make_batches(args.batches, unique_prompt_versions=True), args.repeats, base)


def hostile(batches: list[list[RowValues]], repeats: int, base: float) -> None:
    """A unique prompt version per span, capped (default) and uncapped: summed per
    transaction, then merged (the merge admits every new label set through the cap)."""
    results = stored(batches)
    transactions = [results[i : i + TRANSACTION] for i in range(0, len(results), TRANSACTION)]
    rows = len(batches) * BATCH
    print(f"hostile client: a unique prompt version on each of {rows} rows")
    for name, cap in (("cap 2,000 (default)", DEFAULT_MAX_LABEL_SETS), ("no cap", 10**9)):
        observe_us: list[float] = []
        merge_us: list[float] = []
        scrape_ms: list[float] = []
        text = b""
        for _ in range(repeats):
            metrics = CostMetrics(top_tenants=20, promotion_delay_s=0, max_label_sets=cap)
            registry = CollectorRegistry()
            registry.register(metrics)
            summer = CostSummer(metrics.tenant_view)
            started = time.perf_counter()
            sums = [summer.observe(transaction) for transaction in transactions]
            observe_us.append(per_row_us(started, rows))
            started = time.perf_counter()
            for item in sums:
                metrics.merge(pickle.loads(pickle.dumps(item, pickle.HIGHEST_PROTOCOL)))
            merge_us.append(per_row_us(started, rows))
            started = time.perf_counter()
            text = generate_latest(registry)
            scrape_ms.append((time.perf_counter() - started) * 1e3)
        observe, merge = statistics.median(observe_us), statistics.median(merge_us)
        print(
            f"  {name:20} store process {observe:.3f} us/row (x{observe / base:.2f}); "
            f"receiver (pickle round trip + merge) {merge:.3f} us/row (x{merge / base:.2f}); "
            f"scrape {statistics.median(scrape_ms):.0f} ms, {len(text) / 1024:.0f} KiB, "
            f"{text.count(b'spanmeter_attempts_total{')} label sets"
        )


if __name__ == "__main__":
    main()
