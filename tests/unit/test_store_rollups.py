"""Rollups and rankings equal sums recomputed from the stored rows, at every compaction stage."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from spanmeter.store import HOUR, MINUTE, SpanRow, SQLiteStore
from spanmeter.store.rollups import aligned_window
from spanmeter.store.sqlite import compaction
from spanmeter.store.tiers import (
    DIM_4W,
    DIM_6H,
    DIM_DAY,
    DIM_HOUR,
    DIM_WEEK,
    Segment,
    split_window,
    tiers_for,
)
from support.store_rows import DAY_NS, NS, T0, make_row, random_rows
from support.top_oracle import check, ranking_queries

HOUR_S = 3600
DAY_S = 86_400


def test_rankings_equal_recomputed_sums_at_every_compaction_stage(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = random.Random(20260101)
    rows = random_rows(rng, 800)
    stored: list[SpanRow] = []
    queries = ranking_queries(rng)
    far_future = T0 + 30 * DAY_NS
    with SQLiteStore(tmp_path / "spanmeter.db") as store:
        position = 0
        while position < len(rows):
            batch = rows[position : position + rng.randrange(1, 120)]
            resend = rng.sample(stored, min(len(stored), rng.randrange(0, 5)))  # re-deliveries
            result = store.write_batch([*batch, *resend, *batch[:2]])
            assert (result.inserted, result.duplicates) == (len(batch), len(resend) + min(2, len(batch)))
            stored.extend(batch)
            position += len(batch)
        assert check(store, stored, queries) > 250  # nothing compacted yet: rollups only

        assert store.compact_rollups(far_future, max_buckets=40) == 40
        check(store, stored, queries)  # partly folded into the tiers

        while store.compact_rollups(far_future, max_buckets=500):
            pass
        rollup_rows = store.stats().rollup_rows
        assert rollup_rows["rollup_dim_day"] > 0 and rollup_rows["rollup_dim_hour"] > 0
        check(store, stored, queries)  # fully folded

        late = random_rows(rng, 200)  # late arrivals into already compacted buckets
        for position in range(0, len(late), 10):
            store.write_batch(late[position : position + 10])
        stored.extend(late)
        check(store, stored, queries)
        monkeypatch.setattr(compaction, "_CHUNK_ROWS", 3)  # large buckets: compacted chunk by chunk
        assert store.compact_rollups(far_future, max_buckets=25) == 25
        check(store, stored, queries)
        while store.compact_rollups(far_future, max_buckets=7):
            pass
        check(store, stored, queries)


def test_compaction_merges_partial_rows_without_changing_answers(tmp_path: Path) -> None:
    with SQLiteStore(tmp_path / "spanmeter.db") as store:
        for i in range(20):  # 20 transactions, one group: 20 partial rows in one minute bucket
            store.write_batch([make_row(start_time_ns=T0 + i * NS, cost_nano_usd=i)])
        before = store.top("model", T0, T0 + DAY_NS)
        assert store.stats().rollup_rows["rollup_minute"] == 20
        assert store.compact_rollups(T0 + 60 * NS) == 0  # the bucket has not closed long enough ago
        assert store.compact_rollups(T0 + DAY_NS) == 2  # the minute and the hour bucket
        assert store.stats().rollup_rows["rollup_minute"] == 1
        assert store.top("model", T0, T0 + DAY_NS) == before
        assert store.compact_rollups(T0 + DAY_NS) == 0
        store.write_batch([make_row(start_time_ns=T0 + 30 * NS, cost_nano_usd=1000)])  # late
        assert store.top("model", T0, T0 + DAY_NS).cost_nano_usd == before.cost_nano_usd + 1000
        assert store.compact_rollups(T0 + DAY_NS) == 2


def test_a_few_late_rows_are_folded_without_merging_the_bucket_again(tmp_path: Path) -> None:
    with SQLiteStore(tmp_path / "spanmeter.db") as store:
        store.write_batch(
            [make_row(start_time_ns=T0 + i * NS, model=f"m{i}", cost_nano_usd=i) for i in range(20)]
        )
        assert store.compact_rollups(T0 + DAY_NS) == 2
        assert store.stats().rollup_rows["rollup_minute"] == 20  # one merged row per group
        expected = store.top("model", T0, T0 + DAY_NS).cost_nano_usd
        for cost in (100, 200):  # late: two groups already merged; fewer rows than the merged ones
            store.write_batch([make_row(start_time_ns=T0 + 30 * NS, model="m1", cost_nano_usd=cost)])
            expected += cost
            assert store.compact_rollups(T0 + DAY_NS) == 2
            assert store.top("model", T0, T0 + DAY_NS).cost_nano_usd == expected
        # folded beside the merged rows, not merged into them: the bucket was not rewritten
        assert store.stats().rollup_rows["rollup_minute"] == 22
        late = [make_row(start_time_ns=T0 + 40 * NS, model=f"m{i}", cost_nano_usd=1) for i in range(25)]
        store.write_batch(late)  # 25 new rows (groups), more than the 22 merged: merged whole again
        assert store.compact_rollups(T0 + DAY_NS) == 2
        assert store.stats().rollup_rows["rollup_minute"] == 25  # one row per group
        top = store.top("model", T0, T0 + DAY_NS)
        assert top.cost_nano_usd == expected + 25
        assert {g.key: g.cost_nano_usd for g in top.groups}["m1"] == 1 + 100 + 200 + 1


def test_a_large_bucket_is_compacted_in_bounded_chunks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(compaction, "_CHUNK_ROWS", 4)
    with SQLiteStore(tmp_path / "spanmeter.db") as store:
        for i in range(10):  # 10 partial rows of one group in one minute
            store.write_batch([make_row(start_time_ns=T0 + i * NS, cost_nano_usd=i)])
        before = store.top("model", T0, T0 + DAY_NS)
        steps = []
        while done := store.compact_rollups(T0 + DAY_NS, max_buckets=1):
            steps.append(done)
            assert store.top("model", T0, T0 + DAY_NS) == before
        # per bucket (minute, hour): two chunks of 4 rows, then the 4 rows left are merged whole
        assert len(steps) == 3 + 3
        assert store.stats().rollup_rows["rollup_minute"] == 1
        assert store.stats().rollup_rows["rollup_dim_day"] == 6  # one per ranked dimension
        assert store.top("model", T0, T0 + DAY_NS) == before


def test_windows_count_buckets_that_start_inside_them(tmp_path: Path) -> None:
    with SQLiteStore(tmp_path / "spanmeter.db") as store:
        store.write_batch([make_row(start_time_ns=T0 + 90 * NS, cost_nano_usd=7)])  # minute [60 s, 120 s)
        assert store.top("model", T0 + 60 * NS, T0 + 61 * NS).cost_nano_usd == 7
        assert store.top("model", T0 + 61 * NS, T0 + 119 * NS).cost_nano_usd == 0  # no bucket starts inside
        assert store.top("model", T0, T0 + 60 * NS).cost_nano_usd == 0
        result = store.top("user_id", T0 + 1, T0 + DAY_NS)  # hourly: the hour starting at T0 is excluded
        assert (result.cost_nano_usd, result.window_start_ns, result.bucket_seconds) == (
            0,
            T0 + 3600 * NS,
            3600,
        )


def test_aligned_window() -> None:
    assert aligned_window(0, 60 * NS, 60) == (0, 60)
    assert aligned_window(1, 60 * NS + 1, 60) == (60, 120)
    assert aligned_window(5 * NS, 5 * NS, 60) == (60, 60)
    assert aligned_window(10 * NS, 3 * NS, 60) == (60, 60)


@pytest.mark.parametrize(
    ("lo", "hi", "expected"),
    [
        (0, 3 * DAY_S, [(DIM_DAY, 0, 3 * DAY_S)]),
        (
            120,
            2 * DAY_S + HOUR_S + 60,
            [
                (None, 120, HOUR_S),
                (DIM_HOUR, HOUR_S, DAY_S),
                (DIM_DAY, DAY_S, 2 * DAY_S),
                (DIM_HOUR, 2 * DAY_S, 2 * DAY_S + HOUR_S),
                (None, 2 * DAY_S + HOUR_S, 2 * DAY_S + HOUR_S + 60),
            ],
        ),
        (60, 120, [(None, 60, 120)]),
        (60, 60, []),
    ],
)
def test_split_window(lo: int, hi: int, expected: list[tuple[object, int, int]]) -> None:
    tiers = tiers_for("tenant_id", MINUTE)
    assert tiers == [DIM_DAY, DIM_HOUR]
    assert split_window(lo, hi, tiers) == [Segment(t, a, b) for t, a, b in expected]  # type: ignore[arg-type]


def test_tiers_for_users_read_whole_hours_from_the_hour_tier() -> None:
    tiers = tiers_for("user_id", HOUR)
    assert tiers == [DIM_4W, DIM_WEEK, DIM_DAY, DIM_6H, DIM_HOUR]
    assert tiers_for("user_id", MINUTE) == []
    assert tiers_for("tenant_id", MINUTE) == [DIM_DAY, DIM_HOUR]  # 6-hour and week tiers: users only
    # the hourly rollup's buckets are hours, so the hour tier covers every edge
    assert split_window(0, DAY_S + 7 * HOUR_S, tiers) == [
        Segment(DIM_DAY, 0, DAY_S),
        Segment(DIM_6H, DAY_S, DAY_S + 6 * HOUR_S),
        Segment(DIM_HOUR, DAY_S + 6 * HOUR_S, DAY_S + 7 * HOUR_S),
    ]
