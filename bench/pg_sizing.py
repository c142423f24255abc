"""Bytes on disk per span and per rollup row, PostgreSQL and SQLite, same spans, same run.

Run: ``python bench/pg_sizing.py [--requests 391] [--profile standard|high-cardinality|both]
[--postgres-url URL]`` (391 requests of 512 spans: 200,192 spans a profile).

The spans are ``bench/ingest.py``'s (same builder, same seed, same profiles), pre-encoded as
OTLP requests and handed to the real ingest handler (:class:`spanmeter.ingest.IngestPipeline`:
decode, normalise, hash user ids, price) with eight requests in flight, which commits through
a :class:`spanmeter.store.GroupCommitWriter` into a fresh store opened by ``open_store``: a
SQLite file, then a database on a PostgreSQL server started for the run (``bench/pg.py``,
fsync on) or at ``--postgres-url``. Only the OTLP transport is left out. Then compaction runs
to completion (``compact_rollups`` with a clock two days ahead, so every bucket is closed and
folded into the tiers). On PostgreSQL the WAL written by the ingest and by the compaction is
counted too (``pg_current_wal_insert_lsn`` before and after each): what a streaming replica
receives, and what the server's disks write besides the tables. Then the size of every table
with its indexes and TOAST is read:

* PostgreSQL: ``pg_total_relation_size`` per table (a partitioned table: summed over its
  partitions), after a plain ``VACUUM`` (the dead rows compaction leaves are then free space
  inside the files, reused by later inserts: what a running store carries) and after
  ``VACUUM FULL`` (the packed floor);
* SQLite: the ``dbstat`` pages of every table and of its indexes, the same two ways (before
  and after ``VACUUM``), and the file's size.

Families: raw rows (``requests``, its partitions and indexes), logical requests
(``logical_requests``), provider calls (``provider_calls``), the two rollups
(``rollup_minute``, ``rollup_hour``), each coarse tier (``rollup_dim_*``, ``rollup_pair_day``:
their rows grow with the distinct dimension values of a bucket, not with the spans), and the
rest (budget ledger, alerts, keys, migrations: empty tables here, a fixed few hundred KB, and
SQLite's free pages). Bytes per span is a family's size over the spans stored; bytes per
rollup row is a rollup's or a tier's size over its row count.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ingest import PROFILES, SPANS_PER_REQUEST, build_requests, describe
from pg import databases

DAY_NS = 86_400 * 10**9
TIER_TABLES = (
    "rollup_dim_hour",
    "rollup_dim_6h",
    "rollup_dim_day",
    "rollup_dim_week",
    "rollup_dim_4w",
    "rollup_pair_day",
)
FAMILIES = (
    "raw rows",
    "logical requests",
    "provider calls",
    "rollup_minute",
    "rollup_hour",
    *TIER_TABLES,
    "other",
)
"""Every family; each tier table is one (their rows grow differently with traffic)."""


def family(table: str) -> str:
    """Which family a table (or partition) belongs to."""
    if table == "requests" or table.startswith("requests_"):
        return "raw rows"
    if table == "logical_requests":
        return "logical requests"
    if table == "provider_calls":
        return "provider calls"
    if table in ("rollup_minute", "rollup_hour", *TIER_TABLES):
        return table
    return "other"


@dataclass
class Sizes:
    """Bytes (of which indexes) and rows per family, as measured one way."""

    bytes: dict[str, int] = field(default_factory=lambda: dict.fromkeys(FAMILIES, 0))
    index_bytes: dict[str, int] = field(default_factory=lambda: dict.fromkeys(FAMILIES, 0))
    rows: dict[str, int] = field(default_factory=lambda: dict.fromkeys(FAMILIES, 0))
    buckets: dict[str, int] = field(default_factory=lambda: dict.fromkeys(FAMILIES, 0))
    """Distinct time buckets of each rollup and tier."""

    @property
    def total(self) -> int:
        return sum(self.bytes.values())


def _wal_position(target: str) -> int | None:
    """PostgreSQL's WAL insert position in bytes (None for SQLite), to count the WAL a step
    writes: what a streaming replica receives and what the server's disks write twice."""
    if not target.startswith("postgresql://"):
        return None
    import psycopg

    with psycopg.connect(target, autocommit=True) as conn:
        row = conn.execute("SELECT pg_current_wal_insert_lsn() - '0/0'::pg_lsn").fetchone()
        return int(row[0]) if row else None


@dataclass
class Ingested:
    """What one store's ingest and compaction took."""

    stored: int
    ingest_s: float
    compaction_s: float
    wal: tuple[int, int] | None = None
    """PostgreSQL: WAL bytes written by the ingest and by the compaction."""


def ingest(target: str, bodies: list[bytes]) -> Ingested:
    """Send ``bodies`` through the real ingest handler into the store at ``target``, then
    compact to completion."""
    from spanmeter.ingest import IngestMetrics, IngestPipeline
    from spanmeter.pricing import PriceBook
    from spanmeter.receiver import IngestResult
    from spanmeter.store import GroupCommitWriter, open_store

    store = open_store(target)
    try:
        writer = GroupCommitWriter(store)
        pipeline = IngestPipeline(writer, PriceBook.from_env(), metrics=IngestMetrics())
        parse = cast("Callable[[bytes], Any]", pipeline.request_type.FromString)

        def send(body: bytes) -> IngestResult:
            request: Any = parse(body)  # the map-typed request the receiver parses into
            return pipeline(request)

        wal = [_wal_position(target)]
        start = time.perf_counter()
        with ThreadPoolExecutor(8) as pool:  # eight in flight, as the bench's client sends
            results = list(pool.map(send, bodies))
        writer.close()
        ingested = time.perf_counter() - start
        refused = [result for result in results if result.rejected_spans]
        assert not refused, f"{len(refused)} requests had spans refused"
        wal.append(_wal_position(target))
        start = time.perf_counter()
        future = time.time_ns() + 2 * DAY_NS
        while store.compact_rollups(future, max_buckets=1_000):
            pass
        compacted = time.perf_counter() - start
        wal.append(_wal_position(target))
        stored = store.count_requests()
    finally:
        store.close()
    before, between, after = wal
    written = (
        None if before is None or between is None or after is None else (between - before, after - between)
    )
    return Ingested(stored, ingested, compacted, written)


def _bucketed() -> dict[str, str]:
    """Each rollup's and tier's table -> its bucket column."""
    from spanmeter.store.rollups import ROLLUPS
    from spanmeter.store.tiers import FILTER_TIERS, TIERS

    return {spec.table: spec.bucket_column for spec in (*ROLLUPS, *TIERS, *FILTER_TIERS)}


def postgres_sizes(url: str, *, full: bool) -> Sizes:
    """Per family: ``pg_total_relation_size`` (heap, indexes, TOAST), of which
    ``pg_indexes_size``, after ``VACUUM``, or after ``VACUUM FULL`` with ``full``."""
    import psycopg

    from spanmeter.store.postgres.sql_text import sql  # our own table names, no values

    sizes = Sizes()

    def count(conn: psycopg.Connection[tuple[Any, ...]], query: str) -> int:
        row = conn.execute(sql(query)).fetchone()
        return int(row[0]) if row else 0

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM FULL ANALYZE" if full else "VACUUM ANALYZE")
        tables = conn.execute(
            "SELECT c.relname, pg_total_relation_size(c.oid), pg_indexes_size(c.oid) FROM pg_class c"
            " JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = 'public' AND c.relkind = 'r'"
        ).fetchall()
        for name, size, indexes in tables:
            sizes.bytes[family(name)] += int(size)
            sizes.index_bytes[family(name)] += int(indexes)
        for name, _, _ in tables:  # partitions: counted through their parent below
            if family(name) != "raw rows":
                sizes.rows[family(name)] += count(conn, f'SELECT count(*) FROM "{name}"')
        sizes.rows["raw rows"] = count(conn, "SELECT count(*) FROM requests")
        for table, column in _bucketed().items():
            sizes.buckets[table] = count(conn, f'SELECT count(DISTINCT "{column}") FROM "{table}"')
    return sizes


def sqlite_sizes(path: str, *, vacuum: bool) -> tuple[Sizes, int]:
    """Per family: bytes of the pages (``dbstat``) of every table and its indexes (free
    pages counted as "other"); and the file's size. ``vacuum``: after ``VACUUM``."""
    sizes = Sizes()
    conn = sqlite3.connect(path)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        if vacuum:
            conn.execute("VACUUM")
        owner: dict[str, str] = dict(
            conn.execute("SELECT name, tbl_name FROM sqlite_schema WHERE type IN ('table', 'index')")
        )
        pages: list[tuple[str, int]] = conn.execute(
            "SELECT name, sum(pgsize) FROM dbstat GROUP BY name"
        ).fetchall()
        for name, size in pages:
            table = owner.get(name, name)
            sizes.bytes[family(table)] += int(size)
            if table != name:
                sizes.index_bytes[family(table)] += int(size)
        for name, tbl_name in owner.items():
            if name == tbl_name and not name.startswith("sqlite_"):
                (count,) = conn.execute(f'SELECT count(*) FROM "{name}"').fetchone()
                sizes.rows[family(name)] += int(count)
        for table, column in _bucketed().items():
            (count,) = conn.execute(f'SELECT count(DISTINCT "{column}") FROM "{table}"').fetchone()
            sizes.buckets[table] = int(count)
        page_size, page_count, free = (
            conn.execute(f"PRAGMA {pragma}").fetchone()[0]
            for pragma in ("page_size", "page_count", "freelist_count")
        )
    finally:
        conn.close()
    file_size = os.path.getsize(path)
    assert file_size == page_size * page_count, (file_size, page_size, page_count)
    sizes.bytes["other"] += free * page_size  # free pages: in the file, in no table
    return sizes, file_size


def report(label: str, spans: int, sizes: Sizes) -> Iterator[str]:
    """Lines: each family's size, bytes a span, rows, bytes a row and its indexes' share."""
    yield f"  {label}: {sizes.total / 1e6:,.1f} MB in all, {sizes.total / spans:,.0f} bytes a span"
    tiers = Sizes()
    for name in FAMILIES:
        size, rows, indexes = sizes.bytes[name], sizes.rows[name], sizes.index_bytes[name]
        yield _line(name, spans, size, rows, indexes, sizes.buckets[name])
        if name in TIER_TABLES:
            tiers.bytes["other"] += size
            tiers.rows["other"] += rows
            tiers.index_bytes["other"] += indexes
    yield _line(
        "tiers together", spans, tiers.bytes["other"], tiers.rows["other"], tiers.index_bytes["other"]
    )
    rollups = ("rollup_minute", "rollup_hour", *TIER_TABLES)
    rollup_bytes = sum(sizes.bytes[name] for name in rollups)
    rollup_rows = sum(sizes.rows[name] for name in rollups)
    yield f"    rollups and tiers: {rollup_bytes / max(rollup_rows, 1):,.0f} bytes a row on average"


def _line(name: str, spans: int, size: int, rows: int, indexes: int, buckets: int = 0) -> str:
    per_row = f"{size / rows:>6,.0f} bytes a row" if rows else " " * 17
    share = f"indexes {indexes / size:>4.0%}" if size else ""
    per_bucket = f"  {buckets} buckets, {rows / buckets:,.0f} rows a bucket" if buckets else ""
    return (
        f"    {name:<17} {size / 1e6:>8,.1f} MB {size / spans:>6,.0f} bytes a span"
        f"   {rows:>9,} rows  {per_row}  {share}{per_bucket}"
    )


def run(profile: str, requests: int, postgres_url: str | None) -> None:
    bodies = build_requests(requests, profile=profile)
    spans = requests * SPANS_PER_REQUEST
    print(f"{profile}: {spans:,} spans ({describe(bodies)})")
    with tempfile.TemporaryDirectory() as folder, databases(postgres_url) as dbs:
        path = str(Path(folder, "sizing.db"))
        done = ingest(path, bodies)
        assert done.stored == spans, f"SQLite stored {done.stored:,} of {spans:,} spans"
        print(f" SQLite: ingest {done.ingest_s:.1f} s, compaction {done.compaction_s:.1f} s")
        as_left, file_size = sqlite_sizes(path, vacuum=False)
        lines = list(
            report(f"SQLite, as compaction left it (file {file_size / 1e6:,.1f} MB)", spans, as_left)
        )
        packed, file_size = sqlite_sizes(path, vacuum=True)
        lines += report(f"SQLite, after VACUUM (file {file_size / 1e6:,.1f} MB)", spans, packed)
        print("\n".join(lines))
        url = dbs.new("sizing")
        done = ingest(url, bodies)
        assert done.stored == spans, f"PostgreSQL stored {done.stored:,} of {spans:,} spans"
        print(f" PostgreSQL: ingest {done.ingest_s:.1f} s, compaction {done.compaction_s:.1f} s")
        if done.wal is not None:
            ingest_wal, compaction_wal = done.wal
            print(
                f" PostgreSQL WAL: ingest {ingest_wal / 1e6:,.1f} MB ({ingest_wal / spans:,.0f} bytes a span),"
                f" compaction {compaction_wal / 1e6:,.1f} MB ({compaction_wal / spans:,.0f} bytes a span)"
            )
        print("\n".join(report("PostgreSQL, after VACUUM", spans, postgres_sizes(url, full=False))))
        print("\n".join(report("PostgreSQL, after VACUUM FULL", spans, postgres_sizes(url, full=True))))


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=391, help="512-span requests a profile (default 391)")
    parser.add_argument("--profile", choices=(*PROFILES, "both"), default="both")
    parser.add_argument("--postgres-url", help="a server to use instead of one started for the run")
    args = parser.parse_args()
    os.environ.setdefault("SPANMETER_USER_ID_HASH_KEY", "bench")
    for profile in PROFILES if args.profile == "both" else (args.profile,):
        run(profile, args.requests, args.postgres_url)


if __name__ == "__main__":
    main()
