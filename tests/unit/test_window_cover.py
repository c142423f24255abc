"""Signed covers: whole buckets added and subtracted count every bucket of the window once."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from spanmeter.store import HOUR, MINUTE, SpanRow, SQLiteStore
from spanmeter.store.tiers import (
    DIM_4W,
    DIM_6H,
    DIM_DAY,
    DIM_HOUR,
    DIM_WEEK,
    PAIR_DAY,
    Segment,
    split_window,
    tiers_for,
)
from spanmeter.store.window_cover import Extent, estimated_rows, segment_statement, signed_cover, tiered_range
from support.store_rows import DAY_NS, NS, T0, make_row, random_rows
from support.top_oracle import check

HOUR_S = 3600
DAY_S = 86_400
WEEK_S = 7 * DAY_S
T0_S = T0 // NS  # a Thursday, 00:00 UTC: epoch weeks start there


def coverage(segments: list, step: int) -> dict[int, int]:
    """Net count of each base bucket (``step`` seconds) over the signed segments."""
    counts: dict[int, int] = {}
    for segment in segments:
        for bucket in range(segment.lo, segment.hi, step):
            counts[bucket] = counts.get(bucket, 0) + segment.sign
    return {bucket: count for bucket, count in counts.items() if count}


@pytest.mark.parametrize(
    ("by", "spec"), [("user_id", HOUR), ("tenant_id", MINUTE), ("model", MINUTE), ("user_id", MINUTE)]
)
def test_every_bucket_of_the_window_counts_once_and_none_outside(by: str, spec: object) -> None:
    tiers = tiers_for(by, spec)  # type: ignore[arg-type]
    step = spec.bucket_seconds  # type: ignore[attr-defined]
    rng = random.Random(by + str(step))
    for _ in range(400):
        lo = T0_S + rng.randrange(-20 * DAY_S // step, 20 * DAY_S // step) * step
        hi = lo + rng.randrange(0, 40 * DAY_S // step) * step
        extent = None
        if rng.random() < 0.7:
            start = T0_S + rng.randrange(-30 * DAY_S, 30 * DAY_S)
            extent = Extent(start, start + rng.randrange(1, 40 * DAY_S))
        segments = signed_cover(lo, hi, tiers, extent)
        assert coverage(segments, step) == {bucket: 1 for bucket in range(lo, hi, step)}, (lo, hi, extent)
        for segment in segments:
            assert segment.lo < segment.hi and segment.sign in (1, -1)
            if segment.tier is None:  # the base rollup: added inside the window, subtracted beyond it
                inside = lo <= segment.lo < segment.hi <= hi
                assert inside if segment.sign > 0 else segment.hi <= lo or segment.lo >= hi
            else:
                width = segment.tier.bucket_seconds
                assert segment.lo % width == 0 and segment.hi % width == 0
        # the tiers add up to one range, counted once: where rows not compacted yet are read
        tiered = tiered_range(lo, hi, segments)
        tier_count = coverage([s for s in segments if s.tier is not None], step)
        if tiered is None:
            assert not tier_count
        else:
            assert tier_count == {bucket: 1 for bucket in range(tiered[0], tiered[1], step)}


def test_a_window_ending_now_reads_whole_buckets_and_subtracts_the_empty_future() -> None:
    tiers = tiers_for("user_id", HOUR)
    assert tiers == [DIM_4W, DIM_WEEK, DIM_DAY, DIM_6H, DIM_HOUR]
    now = T0_S + 3 * WEEK_S + 2 * DAY_S + 13 * HOUR_S
    extent = Extent(T0_S, now)  # nothing after now, nothing before T0
    cover = signed_cover(now - 30 * DAY_S, now, tiers, extent)
    # 4-week buckets around the whole window; what they hold beyond it is subtracted, from
    # empty ranges
    assert [(s.tier, s.sign) for s in cover if s.sign > 0] == [(DIM_4W, 1)]
    assert all(s.lo >= now or s.hi <= now - 30 * DAY_S for s in cover if s.sign < 0)
    before = split_window(now - 30 * DAY_S, now, [DIM_DAY, DIM_HOUR])  # days, hours, all added

    def cost(segments: list) -> float:
        return sum(estimated_rows(s.tier, s.lo, s.hi, extent) for s in segments if s.tier is not None)

    assert cost(cover) < cost(before) / 3


def test_the_cheapest_of_inward_and_outward_is_taken_at_each_edge() -> None:
    tiers = [DIM_DAY, DIM_HOUR]
    # 22 hours of a day in the window: the day minus the 2 hours outside
    cover = signed_cover(T0_S + 2 * HOUR_S, T0_S + 3 * DAY_S + 22 * HOUR_S, tiers)
    assert [(s.tier, s.lo - T0_S, s.hi - T0_S, s.sign) for s in cover] == [
        (DIM_DAY, 0, 4 * DAY_S, 1),
        (DIM_HOUR, 0, 2 * HOUR_S, -1),
        (DIM_HOUR, 3 * DAY_S + 22 * HOUR_S, 4 * DAY_S, -1),
    ]
    # 2 hours of a day in the window: those hours
    cover = signed_cover(T0_S + 22 * HOUR_S, T0_S + DAY_S + 2 * HOUR_S, tiers)
    assert [(s.tier, s.lo - T0_S, s.hi - T0_S, s.sign) for s in cover] == [
        (DIM_HOUR, 22 * HOUR_S, DAY_S + 2 * HOUR_S, 1)
    ]
    # the filter tier (days over minutes): 90 s into a day, the day minus those 90 s from the
    # minute rollup; 10 minutes into the last day, those minutes
    cover = signed_cover(T0_S + 90, T0_S + 3 * DAY_S + 600, [PAIR_DAY])
    assert [(s.tier, s.lo - T0_S, s.hi - T0_S, s.sign) for s in cover] == [
        (PAIR_DAY, 0, 3 * DAY_S, 1),
        (None, 0, 90, -1),
        (None, 3 * DAY_S, 3 * DAY_S + 600, 1),
    ]
    lo, hi = T0_S + 90, T0_S + 3 * DAY_S + 600
    assert signed_cover(lo, lo, tiers) == [] and signed_cover(lo, hi, []) == split_window(lo, hi, [])


def user_rows(rng: random.Random, count: int, start_ns: int, span_ns: int, users: list[str]) -> list[SpanRow]:
    return [
        make_row(
            start_time_ns=start_ns + rng.randrange(span_ns),
            user_id=rng.choice(users),
            tenant_id=rng.choice(["t1", "t2"]),
            environment=rng.choice(["prod", "staging"]),
            data_mode=rng.choice(["real", "real", "test"]),
            external_request_id=rng.choice([None, f"req-{rng.randrange(count)}"]),
            cost_nano_usd=rng.choice([None, rng.randrange(1, 5_000_000)]),
            input_tokens=rng.randrange(5000),
            output_tokens=rng.randrange(500),
        )
        for _ in range(count)
    ]


def test_user_rankings_over_weeks_equal_recomputed_sums_at_every_compaction_stage(tmp_path: Path) -> None:
    rng = random.Random(20261206)
    # three weeks of users, plus users seen only before and only after the windows below:
    # their rows lie in buckets the covers add and subtract, and must not show up as groups
    rows = user_rows(rng, 900, T0 + DAY_NS, 20 * DAY_NS, ["u1", "u2", "u3", "u4", "u5"])
    rows += user_rows(rng, 40, T0 + 2 * DAY_NS, 5 * 3600 * NS, ["early"])
    rows += user_rows(rng, 40, T0 + 19 * DAY_NS + 20 * 3600 * NS, 4 * 3600 * NS, ["late"])
    rows += random_rows(rng, 200, start_ns=T0, span_ns=21 * DAY_NS)
    rng.shuffle(rows)
    windows = [
        (T0 + 2 * DAY_NS + 6 * 3600 * NS, T0 + 19 * DAY_NS + 19 * 3600 * NS),  # mid-day to mid-day
        (T0 + 2 * DAY_NS + 13 * 3600 * NS, T0 + 9 * DAY_NS + 13 * 3600 * NS),  # 7 days, across a week
        (T0 + 5 * DAY_NS + 3 * 3600 * NS, T0 + 6 * DAY_NS + 3 * 3600 * NS),  # 24 hours
        (T0 + 30 * 60 * NS, T0 + 21 * DAY_NS - 7 * 60 * NS),  # unaligned: hour edges
    ]
    extent = Extent(T0 // NS, (T0 + 21 * DAY_NS) // NS)
    subtracting = [
        window
        for window in windows
        if any(
            s.sign < 0
            for s in signed_cover(window[0] // NS, window[1] // NS, tiers_for("user_id", HOUR), extent)
        )
    ]
    assert len(subtracting) >= 3  # the covers this test is about
    queries: list[tuple[object, ...]] = [
        (by, start, end, where, environment, data_mode)
        for by in ("user_id", "tenant_id", "endpoint_tag")
        for start, end in windows
        for where, environment, data_mode in (({}, None, "real"), ({}, "prod", None), ({}, None, None))
    ]
    queries += [("tenant_id", start, end, {"user_id": "u2"}, None, "real") for start, end in windows]
    stored: list[SpanRow] = []
    with SQLiteStore(tmp_path / "spanmeter.db") as store:
        for position in range(0, len(rows), 97):
            store.write_batch(rows[position : position + 97])
            stored.extend(rows[position : position + 97])
        assert check(store, stored, queries) == len(queries)  # nothing compacted: rollups only
        far_future = T0 + 60 * DAY_NS
        store.compact_rollups(far_future, max_buckets=300)
        assert check(store, stored, queries) == len(queries)  # partly folded into the tiers
        while store.compact_rollups(far_future, max_buckets=1000):
            pass
        counts = store.stats().rollup_rows
        assert min(counts[t] for t in ("rollup_dim_6h", "rollup_dim_week", "rollup_dim_4w")) > 0
        assert check(store, stored, queries) == len(queries)  # fully folded
        late = user_rows(rng, 60, T0 + DAY_NS, 20 * DAY_NS, ["u1", "late", "early"])
        store.write_batch(late)
        stored.extend(late)
        assert check(store, stored, queries) == len(queries)  # late rows into compacted buckets
        top = store.top("user_id", *windows[0], data_mode=None, limit=100)
        assert {group.key for group in top.groups} >= {"u1", "u2", "u3", "u4", "u5"}


def test_a_user_seen_only_outside_the_window_is_not_a_group(tmp_path: Path) -> None:
    lo, hi = T0 + 3600 * NS, T0 + 7 * DAY_NS - 3600 * NS  # a week but its first and last hour
    rows = [
        make_row(start_time_ns=T0 + 30 * 60 * NS, user_id="before", cost_nano_usd=5),
        make_row(start_time_ns=T0 + 3 * DAY_NS, user_id="inside", cost_nano_usd=7),
        make_row(start_time_ns=hi + 30 * 60 * NS, user_id="after", cost_nano_usd=11),
    ]
    # the week is read, and its first and last hours, where the other users are, subtracted
    cover = signed_cover(lo // NS, hi // NS, tiers_for("user_id", HOUR), Extent(T0 // NS, hi // NS + 3600))
    assert [(s.tier, s.sign) for s in cover] == [(DIM_WEEK, 1), (DIM_HOUR, -1), (DIM_HOUR, -1)]
    with SQLiteStore(tmp_path / "spanmeter.db") as store:
        store.write_batch(rows)
        while store.compact_rollups(T0 + 30 * DAY_NS, max_buckets=100):
            pass
        result = store.top("user_id", lo, hi)
        assert [(g.key, g.cost_nano_usd) for g in result.groups] == [("inside", 7)]
        assert (result.group_count, result.cost_nano_usd, result.attempts) == (1, 7, 1)
        assert store.top("user_id", T0, T0 + 7 * DAY_NS).group_count == 3


def test_a_filtered_ranking_subtracts_rollup_minutes_beyond_the_window(tmp_path: Path) -> None:
    day = T0 + 3 * DAY_NS
    lo, hi = day + 5 * 60 * NS, day + DAY_NS - 10 * 60 * NS  # the day but its first 5 and last 10 minutes
    cover = signed_cover(lo // NS, hi // NS, [PAIR_DAY], Extent(day // NS, (day + DAY_NS) // NS))
    assert [(s.tier, s.sign) for s in cover] == [(PAIR_DAY, 1), (None, -1), (None, -1)]
    with SQLiteStore(tmp_path / "spanmeter.db") as store:
        store.write_batch(
            [
                make_row(start_time_ns=day + 60 * NS, tenant_id="t1", model="m1", cost_nano_usd=3),  # before
                make_row(start_time_ns=day + 10 * 3600 * NS, tenant_id="t1", model="m1", cost_nano_usd=5),
                make_row(start_time_ns=day + 10 * 3600 * NS, tenant_id="t1", model="m2", cost_nano_usd=7),
            ]
        )
        while store.compact_rollups(day + 30 * DAY_NS, max_buckets=100):
            pass
        # after compaction: rows not folded into the filter tier yet, inside and beyond the window
        store.write_batch(
            [
                make_row(start_time_ns=day + 12 * 3600 * NS, tenant_id="t1", model="m1", cost_nano_usd=11),
                make_row(
                    start_time_ns=hi + 5 * 60 * NS, tenant_id="t1", model="m1", cost_nano_usd=13
                ),  # after
                make_row(
                    start_time_ns=day + 2 * 60 * NS, tenant_id="t2", model="m1", cost_nano_usd=17
                ),  # before
            ]
        )
        result = store.top("tenant_id", lo, hi, where={"model": "m1"})
        assert [(g.key, g.cost_nano_usd, g.attempts) for g in result.groups] == [("t1", 16, 2)]
        assert result.group_count == 1  # t2, only before the window, cancels out
        whole = store.top("tenant_id", day, day + DAY_NS, where={"model": "m1"})
        assert [(g.key, g.cost_nano_usd) for g in whole.groups] == [("t1", 32), ("t2", 17)]


@pytest.mark.parametrize("mark", ["?", "%s"])
def test_a_tier_segment_statement_binds_one_parameter_per_marker(mark: str) -> None:
    own = {"environment": "prod", "data_mode": "real"}
    plain = segment_statement(Segment(DIM_DAY, 0, 86_400), "model", "cost", {}, own, mark=mark)
    filtered = segment_statement(
        Segment(PAIR_DAY, 0, 86_400), "model", "cost", {"tenant_id": "t1"}, own, mark=mark
    )
    for sql, params in (plain, filtered):
        assert sql.count(mark) == len(params)
        assert sql.startswith("SELECT value AS model, cost FROM ")
    assert plain[1] == ["model", 0, 86_400, "prod", "real"]
    assert filtered[1] == ["tenant_id", "t1", "model", 0, 86_400, "prod", "real"]
    assert "rollup_pair_day" in filtered[0] and "rollup_dim_day" in plain[0]
    with pytest.raises(ValueError, match="no tier"):
        segment_statement(Segment(None, 0, 60), "model", "cost", {}, own, mark=mark)
