"""What the store's cross-request same-call claims cost on the write path, A/B in one run.

Run: ``python bench/same_call.py`` (``--help`` for sizes). The realistic rows of
``bench/store.py`` (a third of them from ``anthropic``, the provider whose SDK traces
itself), each with a response id, are written in 512-row batches through
``SQLiteStore.write_batches``, into fresh stores, alternately with the claims
(:mod:`spanmeter.store.sqlite.provider_calls`) and with them switched off, in interleaved
pairs; the median of each is printed with their difference per row.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from spanmeter.store import SQLiteStore
from spanmeter.store.sqlite import writer
from store import BATCH, RealisticRows, batches


def _write(path: Path, groups: list, claims: bool) -> float:
    original = writer.claim_provider_calls
    if not claims:
        writer.claim_provider_calls = lambda conn, rows: 0  # type: ignore[assignment]
    try:
        with SQLiteStore(path) as store:
            start = time.perf_counter()
            for group in groups:
                store.write_batches([group])
            return time.perf_counter() - start
    finally:
        writer.claim_provider_calls = original


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--pairs", type=int, default=5)
    args = parser.parse_args()
    rows = RealisticRows().rows(args.rows, start_ns=1_760_000_000 * 1_000_000_000)
    for index, row in enumerate(rows):
        row.response_id = f"msg_{index:024x}"
    anthropic = sum(row.provider == "anthropic" for row in rows)
    groups = list(batches(rows, BATCH))
    timings: dict[bool, list[float]] = {True: [], False: []}
    with tempfile.TemporaryDirectory() as tmp:
        for pair in range(args.pairs):
            for claims in (pair % 2 == 0, pair % 2 != 0):
                path = Path(tmp, f"{pair}-{claims}.db")
                timings[claims].append(_write(path, groups, claims))
                for suffix in ("", "-wal", "-shm"):
                    Path(f"{path}{suffix}").unlink(missing_ok=True)
    off, on = statistics.median(timings[False]), statistics.median(timings[True])
    print(f"{args.rows:,} rows ({anthropic:,} anthropic with a response id), {args.pairs} interleaved pairs")
    print(f"  without claims  {args.rows / off:>9,.0f} rows/s  {off / args.rows * 1e6:6.2f} us/row")
    print(f"  with claims     {args.rows / on:>9,.0f} rows/s  {on / args.rows * 1e6:6.2f} us/row")
    print(
        f"  claims cost     {(on - off) / args.rows * 1e6:+6.2f} us/row"
        f" ({(on - off) / anthropic * 1e6:+.2f} us per anthropic row), x{on / off:.3f}"
    )


if __name__ == "__main__":
    main()
