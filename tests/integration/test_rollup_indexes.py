"""Indexes of the compacted rollup rows by a filter dimension (``spanmeter.store.rollup_indexes``):
filtered reads of the hourly rollup seek them, ingest never writes to them, and rankings stay
exact whatever compaction has reached, on both backends.
"""

from __future__ import annotations

import random
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from spanmeter.store import HOUR, MINUTE, SpanStore
from spanmeter.store.postgres.window_parts import signed_parts
from spanmeter.store.query_model import RANKED_MEASURES
from spanmeter.store.rollup_indexes import INDEXED_FILTERS, index_name, indexed_filter
from spanmeter.store.sqlite.window_parts import window_parts
from support.store_rows import DAY_NS, NS, T0, random_rows
from support.stores import BACKENDS, backend_target, opened_store
from support.top_oracle import check

HOUR_NS = 3600 * NS
FAR_FUTURE = T0 + 30 * DAY_NS
WINDOW = ((T0 + 5 * HOUR_NS) // NS, (T0 + 2 * DAY_NS + 7 * HOUR_NS) // NS)
"""Partial days at both ends: the edges are read from the rollup."""


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SpanStore]:
    with opened_store(backend_target(str(request.param), tmp_path, request)) as opened:
        yield opened


def test_a_read_filtered_on_an_indexed_dimension_takes_the_index_when_one_is_named() -> None:
    assert indexed_filter(HOUR, {"tenant_id": "t1", "user_id": "u1"}) == "user_id"  # the most selective
    assert indexed_filter(HOUR, {"endpoint_tag": ("a", "b")}) == "endpoint_tag"
    assert indexed_filter(HOUR, {}) is None
    assert indexed_filter(MINUTE, {"tenant_id": "t1"}) is None  # no index on the minute rollup
    assert set(INDEXED_FILTERS[HOUR.table]) <= set(HOUR.dimensions)


def test_the_rollup_edges_of_a_filtered_ranking_are_split_into_compacted_and_fresh_rows() -> None:
    own = {"data_mode": "real"}
    pg_parts, pg_params = signed_parts(
        HOUR, "tenant_id", WINDOW, {"user_id": "u1"}, own, RANKED_MEASURES, None
    )
    rollup_parts = [part for part in pg_parts if "FROM rollup_hour" in part and "NOT folded" not in part]
    assert rollup_parts and all(" AND folded AND user_id = %s" in part for part in rollup_parts)
    assert len([part for part in pg_parts if " AND NOT folded" in part]) == len(rollup_parts) + 1  # + tiered
    assert pg_params.count("u1") == 2 * len(rollup_parts) + 2  # the tier part's filter value too
    sqlite_parts, _ = window_parts(
        HOUR, ("user_id",), *WINDOW, {"tenant_id": "t1"}, own, RANKED_MEASURES, subtract=True
    )
    indexed = [part for part in sqlite_parts if f"INDEXED BY {index_name(HOUR, 'tenant_id')}" in part]
    assert indexed and all("seq < 0" in part for part in indexed)
    unfiltered, _ = window_parts(HOUR, ("user_id",), *WINDOW, {}, own, RANKED_MEASURES, subtract=True)
    assert not any("INDEXED BY" in part for part in unfiltered)


def test_filtered_rankings_are_exact_at_every_stage_of_compaction_and_with_late_rows(
    store: SpanStore,
) -> None:
    """Users under one tenant or endpoint tag, and tenants and endpoint tags of one user, over
    windows with partial days at their edges: before compaction (every row fresh), while it
    runs (some hours compacted), after it, and with late rows into compacted hours."""
    rng = random.Random(1401)
    stored = random_rows(rng, 400)
    for position in range(0, len(stored), 40):
        store.write_batch(stored[position : position + 40])
    windows = [(lo * NS, hi * NS) for lo, hi in (WINDOW,)]
    for _ in range(4):
        start = T0 + rng.randrange(2 * DAY_NS)
        windows.append((start, start + rng.randrange(HOUR_NS, 2 * DAY_NS)))
    filters = [({"user_id": "u2"}, "tenant_id"), ({"user_id": ""}, "endpoint_tag")]
    filters += [({"tenant_id": "t1"}, "user_id"), ({"endpoint_tag": "chat"}, "user_id")]
    queries = [
        (by, start, end, where, None, data_mode)
        for where, by in filters
        for start, end in windows
        for data_mode in ("real", None)
    ]
    assert check(store, stored, queries) == len(queries)
    while store.compact_rollups(FAR_FUTURE, max_buckets=23):
        check(store, stored, queries[::5])
    check(store, stored, queries)
    late = random_rows(rng, 60)
    store.write_batch(late)
    stored.extend(late)
    check(store, stored, queries)


def test_sqlite_seeks_the_index_and_keeps_only_compacted_rows_in_it(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    with opened_store(str(path)) as store:
        store.write_batch(random_rows(random.Random(2), 200))
        with sqlite3.connect(path) as conn:
            definition = conn.execute(
                "SELECT sql FROM sqlite_master WHERE name = ?", (index_name(HOUR, "user_id"),)
            ).fetchone()
            assert definition is not None and definition[0].endswith("WHERE seq < 0")
            parts, params = window_parts(
                HOUR, ("tenant_id",), *WINDOW, {"user_id": "u1"}, {}, RANKED_MEASURES
            )
            plan = conn.execute(f"EXPLAIN QUERY PLAN {' UNION ALL '.join(parts)}", params).fetchall()
        assert any(f"USING INDEX {index_name(HOUR, 'user_id')}" in str(row) for row in plan), plan


def test_a_sqlite_store_from_before_the_indexes_gets_them_and_answers_exactly(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    rng = random.Random(6)
    stored = random_rows(rng, 300)
    with opened_store(str(path)) as store:
        store.write_batch(stored)
        while store.compact_rollups(FAR_FUTURE, max_buckets=500):
            pass
    names = [index_name(HOUR, dimension) for dimension in INDEXED_FILTERS[HOUR.table]]
    with sqlite3.connect(path) as conn:  # the store as it was before them
        for name in names:
            conn.execute(f"DROP INDEX {name}")
        conn.execute("DELETE FROM _sqlite_migrations WHERE name = 'm008_compacted_filter_indexes'")
    with opened_store(str(path)) as store:
        with sqlite3.connect(path) as conn:
            found = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
        assert set(names) <= found
        window = (T0 + 5 * HOUR_NS, T0 + 2 * DAY_NS + 7 * HOUR_NS)
        queries = [("tenant_id", *window, {"user_id": "u3"}, None, None)]
        queries += [("user_id", *window, {"endpoint_tag": "search"}, "prod", "real")]
        assert check(store, stored, queries) == 2


def _index_bytes(url: str, name: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT pg_relation_size(%s::regclass)", (name,)).fetchone()
    assert row is not None
    return int(row[0])


def test_postgres_ingest_never_writes_the_index_and_a_filtered_edge_seeks_it(postgres_server: Any) -> None:
    url = postgres_server.new_database()
    names = [index_name(HOUR, dimension) for dimension in INDEXED_FILTERS[HOUR.table]]
    with opened_store(url) as store:
        store.write_batch(random_rows(random.Random(3), 300))
        assert [_index_bytes(url, name) for name in names] == [8192] * len(names)  # the metapage only
        while store.compact_rollups(FAR_FUTURE, max_buckets=500):
            pass
    assert all(_index_bytes(url, name) > 8192 for name in names)
    parts, params = signed_parts(HOUR, "tenant_id", WINDOW, {"user_id": "u1"}, {}, RANKED_MEASURES, None)
    folded = next(i for i, part in enumerate(parts) if " AND folded AND" in part)
    offset = sum(part.count("%s") for part in parts[:folded])
    values = params[offset : offset + parts[folded].count("%s")]
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE rollup_hour")
        conn.execute("SET enable_seqscan = off")
        plan = "\n".join(str(row[0]) for row in conn.execute(f"EXPLAIN {parts[folded]}".encode(), values))
    assert index_name(HOUR, "user_id") in plan, plan
