"""PostgreSQL store write throughput against the SQLite store, in the same run.

Run: ``python bench/postgres_store.py [--rows N]`` (needs the PostgreSQL server binaries,
``initdb``/``postgres``, as the tests do; the server is started for the run on a free port,
with fsync and synchronous commits on as in production, and removed after). Machines are noisy (±25%), so compare figures within one run.

Rows are ``bench/store.py``'s realistic rows (1,000 Zipf tenants, 10,000 users, 30% shared
external request ids), written in 512-row batches, 8 batches a transaction (what group commit
produces under load):

1. SQLite, one writer (the embedded store's ceiling: one writer at a time by design);
2. PostgreSQL, one writer (one replica);
3. PostgreSQL, three writers on one database (three replicas, each its own connection and
   rows of its own), aggregate rows/s: what the shared store takes when replicas scale out;
4. PostgreSQL, three writers sending the *same* rows (every span re-delivered to every
   replica): the dedupe path under contention, rows stored once.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from pg import PostgresServer
from spanmeter.store import SpanRow, open_store
from store import BATCH, RealisticRows

DAY_NS = 86_400 * 1_000_000_000
PER_TRANSACTION = 8


def _write(target: str, rows: Sequence[SpanRow]) -> None:
    store = open_store(target)
    try:
        groups = [list(rows[i : i + BATCH]) for i in range(0, len(rows), BATCH)]
        for start in range(0, len(groups), PER_TRANSACTION):
            store.write_batches(groups[start : start + PER_TRANSACTION])
    finally:
        store.close()


def _timed_threads(work: Sequence[Callable[[], None]]) -> float:
    threads = [threading.Thread(target=job) for job in work]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=60_000, help="rows per writer (default 60,000)")
    args = parser.parse_args()
    maker = RealisticRows()
    now = time.time_ns() - DAY_NS // 2
    rows = [maker.rows(args.rows, now + i * DAY_NS // 8) for i in range(3)]
    with tempfile.TemporaryDirectory() as folder, PostgresServer(durable=True) as server:
        results: list[tuple[str, float]] = []
        sqlite_path = str(Path(folder, "bench.db"))
        open_store(sqlite_path).close()  # created and migrated outside the timing
        seconds = _timed_threads([lambda: _write(sqlite_path, rows[0])])
        results.append(("SQLite, 1 writer", args.rows / seconds))
        one = server.new_database("one")
        open_store(one).close()
        seconds = _timed_threads([lambda: _write(one, rows[0])])
        results.append(("PostgreSQL, 1 writer", args.rows / seconds))
        three = server.new_database("three")
        open_store(three).close()
        seconds = _timed_threads([lambda part=part: _write(three, part) for part in rows])
        results.append(("PostgreSQL, 3 writers, own rows (sum)", 3 * args.rows / seconds))
        same = server.new_database("same")
        open_store(same).close()
        seconds = _timed_threads([lambda: _write(same, rows[1]) for _ in range(3)])
        check = open_store(same)
        try:
            stored = check.count_requests()
        finally:
            check.close()
        assert stored == args.rows, f"{stored} rows stored of {args.rows} sent three times"
        results.append(("PostgreSQL, 3 writers, same rows (stored once)", args.rows / seconds))
    base = results[0][1]
    for label, rate in results:
        print(f"{label:<50} {rate:>10,.0f} rows/s   {rate / base:>5.2f}x SQLite")


if __name__ == "__main__":
    main()
