"""What rollup compaction costs per span when it keeps up with ingest, against the write itself.

Run: ``python bench/compaction.py [--profile standard|high-cardinality|both] [--requests N]``.

The spans are ``bench/ingest.py``'s requests (either traffic profile), turned into rows by
the receiver's own pipeline (normalise, hash, price) and written to a SQLite store the way
the store process writes them (512-row batches, 16 a transaction). After each transaction,
compaction runs until nothing closed is left (``compact_rollups(max_buckets=1)`` step after
step, as the store process runs it when idle), timed apart from the write; at the end,
what is left is compacted once with every bucket closed (the standard profile's spans all
start within the last half minute, so its buckets are only closed then). Printed per
profile: the write's and compaction's CPU per span, the steps, the rollup rows compaction
read back per new row (a bucket that late spans dirty again is merged again whole), and each
tier's rows per span afterwards: the write amplification that makes a ranking read tens of
thousands of rows instead of millions.

Why it exists: on the high-cardinality profile (start times over the last hour, so nearly
every closed minute bucket is dirtied again by every transaction, and nearly every span is
a rollup group of its own) compaction costs several times the write; the pacer
(``spanmeter.store.maintenance_pacer``) keeps it to a fifth of a busy writer's time, so this
says how far behind it falls under sustained load of that shape. CPU time of this one
process, so the machine's other load moves it less than a rate.
"""

from __future__ import annotations

import argparse
import sqlite3
import tempfile
import time
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from ingest import PROFILES, SPANS_PER_REQUEST, build_requests
from spanmeter.ingest import IngestMetrics, IngestPipeline
from spanmeter.pricing import PriceBook
from spanmeter.receiver.decode import decode_protobuf_detailed
from spanmeter.store import ROLLUPS, WriteResult
from spanmeter.store.rows import SpanRow, row_from_values
from spanmeter.store.sqlite.store import SQLiteStore
from spanmeter.store.tiers import FILTER_TIERS, TIERS

_BATCH = 512
_BATCHES_A_TRANSACTION = 16
_DAY_NS = 86_400 * 10**9


class _Collect:
    """A row sink that keeps what the pipeline hands it."""

    pending_rows = 0

    def __init__(self) -> None:
        self.rows: list[Any] = []

    def submit(self, rows: Any) -> Future[WriteResult]:
        self.rows.extend(rows)
        done: Future[WriteResult] = Future()
        done.set_result(WriteResult(inserted=len(rows)))
        return done

    def close(self) -> None:
        pass


def received_rows(profile: str, requests: int) -> list[SpanRow]:
    """The rows the receiver makes of ``requests`` requests of ``profile``."""
    sink = _Collect()
    pipeline = IngestPipeline(sink, PriceBook.from_env(), metrics=IngestMetrics())
    for body in build_requests(requests, profile=profile):
        pipeline(decode_protobuf_detailed(body).request)
    return [row_from_values(values) for values in sink.rows]


def _counts(path: Path) -> dict[str, int]:
    tables = [spec.table for spec in ROLLUPS] + [tier.table for tier in (*TIERS, *FILTER_TIERS)]
    with sqlite3.connect(path) as conn:
        return {table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0] for table in tables}


def measure(profile: str, requests: int, folder: Path, *, keep_up: bool = True) -> None:
    """Write, then compact after each transaction (``keep_up``) and at the end; print the figures."""
    rows = received_rows(profile, requests)
    path = folder / f"{profile}.db"
    store = SQLiteStore(str(path))
    write_s = compact_s = 0.0
    steps = 0
    size = _BATCH * _BATCHES_A_TRANSACTION
    try:
        for start in range(0, len(rows), size):
            chunk = rows[start : start + size]
            began = time.process_time()
            store.write_batches([chunk[i : i + _BATCH] for i in range(0, len(chunk), _BATCH)])
            write_s += time.process_time() - began
            began = time.process_time()
            while keep_up and store.compact_rollups(max_buckets=1):
                steps += 1
            compact_s += time.process_time() - began
        began = time.process_time()
        later = time.time_ns() + _DAY_NS  # every bucket closed: what is left, compacted once
        while store.compact_rollups(later, max_buckets=16):
            pass
        rest_s = time.process_time() - began
    finally:
        store.close()
    spans = len(rows)
    print(f"profile {profile}: {spans:,} spans ({requests} requests x {SPANS_PER_REQUEST})")
    print(f"  write:      {write_s / spans * 1e6:7.1f} us a span")
    if keep_up:
        print(f"  compaction: {compact_s / spans * 1e6:7.1f} us a span, kept up ({steps:,} steps)")
    print(f"  the rest, once every bucket is closed: {rest_s / spans * 1e6:7.1f} us a span")
    print(f"  compaction / write: {(compact_s + rest_s) / write_s:.2f}x")
    print("  rows a span afterwards: " + ", ".join(f"{t} {n / spans:.2f}" for t, n in _counts(path).items()))


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--profile", choices=(*PROFILES, "both"), default="both")
    parser.add_argument("--requests", type=int, default=160, help="512-span requests a profile")
    parser.add_argument(
        "--at-end-only", action="store_true", help="compact only once every bucket is closed (no keeping up)"
    )
    args = parser.parse_args()
    profiles = PROFILES if args.profile == "both" else (args.profile,)
    with tempfile.TemporaryDirectory() as tmp:
        for profile in profiles:
            measure(profile, args.requests, Path(tmp), keep_up=not args.at_end_only)


if __name__ == "__main__":
    main()
