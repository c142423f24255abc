"""The coarse tiers on PostgreSQL, against a real server: compaction fills them, ``top``
reads them, a store migrated from before them answers exactly at once, and read
connections group without spilling.

The rankings' exactness at every stage of compaction is the contract suite's
(``test_store_contract.py``); these are the PostgreSQL-only parts.
"""

from __future__ import annotations

import random
import threading
from typing import Any

import psycopg
import pytest

from spanmeter.store.postgres import PostgresStore
from spanmeter.store.postgres import schema as pg_schema
from spanmeter.store.tiers import FILTER_TIERS, TIERS
from support.store_rows import DAY_NS, T0, random_rows
from support.top_oracle import check, ranking_queries

FAR_FUTURE = T0 + 30 * DAY_NS


def _compact(store: PostgresStore) -> None:
    while store.compact_rollups(FAR_FUTURE, max_buckets=500):
        pass


def _count(url: str, statement: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(statement.encode()).fetchone()
    assert row is not None
    return int(row[0])


def test_compaction_fills_every_tier_and_leaves_no_unfolded_row(postgres_server: Any) -> None:
    url = postgres_server.new_database()
    with PostgresStore(url) as store:
        store.write_batch(random_rows(random.Random(3), 200))
        assert _count(url, "SELECT count(*) FROM rollup_dim_day") == 0
        _compact(store)
    for tier in (*TIERS, *FILTER_TIERS):
        assert _count(url, f"SELECT count(*) FROM {tier.table}") > 0, tier.table
    for table in ("rollup_minute", "rollup_hour"):
        assert _count(url, f"SELECT count(*) FROM {table} WHERE NOT folded") == 0
    # every folded span is in the day tier once, per dimension
    assert _count(url, "SELECT sum(attempts) FROM rollup_dim_day WHERE dimension = 'model'") == _count(
        url, "SELECT sum(attempts) FROM rollup_minute"
    )
    assert _count(url, "SELECT sum(attempts) FROM rollup_dim_day WHERE dimension = 'user_id'") == _count(
        url, "SELECT sum(attempts) FROM rollup_hour"
    )


def test_top_reads_the_tiers_once_compacted(postgres_server: Any) -> None:
    """A tier row changed behind the store's back shows in the ranking: it is read, not the
    rollup's rows it replaces (which are still there, folded)."""
    url = postgres_server.new_database()
    with PostgresStore(url) as store:
        store.write_batch(random_rows(random.Random(4), 200))
        _compact(store)
        before = store.top("model", T0 - DAY_NS, T0 + 5 * DAY_NS, data_mode=None)
        with psycopg.connect(url) as conn:
            changed = conn.execute(
                "UPDATE rollup_dim_day SET cost_nano_usd = cost_nano_usd + 1 WHERE dimension = 'model'"
            ).rowcount
        after = store.top("model", T0 - DAY_NS, T0 + 5 * DAY_NS, data_mode=None)
    assert changed > 0
    assert after.cost_nano_usd == before.cost_nano_usd + changed


def test_a_store_from_before_the_tiers_answers_exactly_then_folds_its_history(
    postgres_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = postgres_server.new_database()
    rng = random.Random(8)
    stored = random_rows(rng, 200)
    with monkeypatch.context() as patch:
        before = tuple(step for step in pg_schema.MIGRATIONS if step[0] < "m009_tiers")
        assert len(before) == len(pg_schema.MIGRATIONS) - 2  # the tiers, then the indexes of folded rows
        patch.setattr(pg_schema, "MIGRATIONS", before)
        with PostgresStore(url) as old:
            old.write_batch(stored)
    queries = ranking_queries(rng)[::5]
    with PostgresStore(url) as store:  # the tiers migration now
        assert _count(url, "SELECT count(*) FROM rollup_minute WHERE NOT folded") > 0
        check(store, stored, queries)
        _compact(store)
        assert _count(url, "SELECT count(*) FROM rollup_minute WHERE NOT folded") == 0
        check(store, stored, queries)


def test_read_connections_group_in_memory_without_workers(postgres_server: Any) -> None:
    with PostgresStore(postgres_server.new_database()) as store, store._reading() as conn:  # pyright: ignore[reportPrivateUsage]
        settings = [
            conn.execute(f"SHOW {name}".encode()).fetchone()
            for name in ("work_mem", "max_parallel_workers_per_gather")
        ]
    assert settings == [("64MB",), ("0",)]


def test_a_ranking_reads_the_tiers_by_index_only(postgres_server: Any) -> None:
    url = postgres_server.new_database()
    with PostgresStore(url) as store:
        store.write_batch(random_rows(random.Random(5), 200))
        _compact(store)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE rollup_pair_day")
        conn.execute("SET enable_seqscan = off")
        conn.execute("SET enable_bitmapscan = off")
        plan = "\n".join(
            str(row[0])
            for row in conn.execute(
                "EXPLAIN SELECT value, sum(cost_nano_usd), sum(attempts) FROM rollup_pair_day"
                " WHERE filter_dimension = 'model' AND filter_value = 'claude' AND dimension = 'tenant_id'"
                " AND day >= 0 AND day < 2000000000 GROUP BY value"
            )
        )
    assert "Index Only Scan" in plan, plan


def test_compaction_on_one_replica_while_another_writes_loses_and_doubles_nothing(
    postgres_server: Any,
) -> None:
    """One store compacts in a loop while another appends to the same buckets: rows committed
    after a fold's snapshot stay unfolded for the next round, none is folded twice."""
    url = postgres_server.new_database()
    rng = random.Random(13)
    stored = random_rows(rng, 600)
    with PostgresStore(url) as writer, PostgresStore(url) as compactor:
        stop = threading.Event()
        rounds: list[int] = []

        def compact() -> None:
            while not stop.is_set():
                rounds.append(compactor.compact_rollups(FAR_FUTURE, max_buckets=20))

        thread = threading.Thread(target=compact)
        thread.start()
        try:
            for position in range(0, len(stored), 20):
                writer.write_batch(stored[position : position + 20])
        finally:
            stop.set()
            thread.join()
        assert sum(rounds) > 0
        check(writer, stored, ranking_queries(rng)[::6])
        _compact(compactor)
        check(writer, stored, ranking_queries(rng)[::6])
    assert _count(url, "SELECT sum(attempts) FROM rollup_dim_day WHERE dimension = 'tenant_id'") == _count(
        url, "SELECT sum(attempts) FROM rollup_minute"
    )
