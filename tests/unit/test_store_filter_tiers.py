"""Filter tiers: filtered rankings and aggregations read them, stay exact at every stage, survive an upgrade."""

from __future__ import annotations

import random
import sqlite3
from pathlib import Path

from spanmeter.store import MEASURES, TOP_DIMENSIONS, AggregateResult, Measures, SpanRow, SQLiteStore
from spanmeter.store.tiers import FILTER_TIERS
from support.analysis_oracle import Acc, group
from support.store_rows import DAY_NS, NS, T0, random_rows
from support.top_oracle import check

HOUR_NS = 3600 * NS
FAR_FUTURE = T0 + 30 * DAY_NS


ONE_FILTER: list[tuple[dict[str, str], str | None, str | None]] = [
    ({"endpoint_tag": "search"}, None, "real"),
    ({"endpoint_tag": ""}, "prod", None),
    ({"tenant_id": "t2"}, None, None),
    ({"tenant_id": ""}, "staging", "real"),
    ({"prompt_version": "v1"}, None, "real"),
    ({"model": "gpt-4o"}, "prod", None),
    ({"provider": ""}, None, None),
    ({"outcome": "error"}, None, "real"),
    ({"user_id": "u2"}, None, "real"),
    ({"user_id": ""}, "staging", None),
]
"""One filter on each dimension a ``where`` may name (a value, or '' for none), with scopes."""


def filtered_queries(rng: random.Random) -> list[tuple[object, ...]]:
    """Every dimension, filtered by one value (or '' for none) of each dimension a ``where``
    may name: rankings the rollups cannot answer (a model under a user filter) are skipped
    by ``check``, which expects their error."""
    windows = [
        (T0 - DAY_NS, T0 + 5 * DAY_NS),
        (T0 + 7 * HOUR_NS, T0 + 2 * DAY_NS + 5 * HOUR_NS),
    ]
    for _ in range(3):
        start = T0 + rng.randrange(3 * DAY_NS)
        windows.append((start, start + rng.randrange(1, 3 * DAY_NS)))
    return [
        (by, start, end, where, environment, data_mode)
        for by in sorted(TOP_DIMENSIONS)
        for start, end in windows
        for where, environment, data_mode in ONE_FILTER
        if by not in where
    ]


def fill(store: SQLiteStore, rng: random.Random, count: int) -> list[SpanRow]:
    rows = random_rows(rng, count)
    for position in range(0, len(rows), 50):
        store.write_batch(rows[position : position + 50])
    return rows


def compact_all(store: SQLiteStore) -> None:
    while store.compact_rollups(FAR_FUTURE, max_buckets=500):
        pass


def test_filtered_rankings_stay_exact_and_read_the_filter_tiers(tmp_path: Path) -> None:
    rng = random.Random(7)
    queries = filtered_queries(rng)
    with SQLiteStore(tmp_path / "spanmeter.db") as store:
        stored = fill(store, rng, 600)
        assert check(store, stored, queries) > 50  # nothing compacted: the rollups answer
        assert store.compact_rollups(FAR_FUTURE, max_buckets=30) == 30
        check(store, stored, queries)  # partly folded
        compact_all(store)
        rows = store.stats().rollup_rows
        assert rows["rollup_pair_day"] > 0
        check(store, stored, queries)
        late = random_rows(rng, 100)  # into compacted buckets: read from the rollup until folded
        store.write_batch(late)
        stored += late
        check(store, stored, queries)
        compact_all(store)
        check(store, stored, queries)

        # the whole-day part of a filtered ranking comes from the filter tier: change it
        # behind the store's back and the answer follows
        window = (T0 - DAY_NS, T0 + 5 * DAY_NS)
        before = store.top("model", *window, where={"endpoint_tag": "search"}, data_mode=None)
        conn = sqlite3.connect(tmp_path / "spanmeter.db")
        with conn:
            changed = conn.execute(
                "UPDATE rollup_pair_day SET cost_nano_usd = cost_nano_usd + 1 WHERE filter_dimension ="
                " 'endpoint_tag' AND filter_value = 'search' AND dimension = 'model'"
            ).rowcount
        conn.close()
        assert changed > 0
        after = store.top("model", *window, where={"endpoint_tag": "search"}, data_mode=None)
        assert after.cost_nano_usd == before.cost_nano_usd + changed
        # so does a ranking under each of the other filters, users' from the hourly rollup
        for by, where in (
            ("tenant_id", {"model": "gpt-4o"}),
            ("endpoint_tag", {"prompt_version": "v2"}),
            ("model", {"provider": "openai"}),
            ("tenant_id", {"outcome": "error"}),
            ("endpoint_tag", {"user_id": "u3"}),
            ("tenant_id", {"user_id": "u3"}),
        ):
            ((name, value),) = where.items()
            before = store.top(by, *window, where=where, data_mode=None)  # type: ignore[arg-type]
            conn = sqlite3.connect(tmp_path / "spanmeter.db")
            with conn:
                changed = conn.execute(
                    "UPDATE rollup_pair_day SET cost_nano_usd = cost_nano_usd + 1"
                    " WHERE filter_dimension = ? AND filter_value = ? AND dimension = ?",
                    (name, value, by),
                ).rowcount
            conn.close()
            assert changed > 0, (by, where)
            after = store.top(by, *window, where=where, data_mode=None)  # type: ignore[arg-type]
            assert after.cost_nano_usd == before.cost_nano_usd + changed, (by, where)


AGGREGATED = ("endpoint_tag", "tenant_id", "user_id", "prompt_version", "model", "provider")
"""The dimensions ``investigate`` groups by, one at a time under one filter."""


def _figures(measures: Measures) -> tuple[int, ...]:
    m = measures
    return (
        m.cost_nano_usd,
        m.logical_requests,
        m.attempts,
        m.input_tokens,
        m.output_tokens,
        m.unpriced,
        m.errors,
    )


def _acc_figures(acc: Acc) -> tuple[int, ...]:
    return (acc.cost, acc.logical, acc.attempts, acc.input, acc.output, acc.unpriced, acc.errors)


def _scan(
    store: SQLiteStore, by: str, start: int, end: int, **scope: object
) -> dict[str | None, tuple[int, ...]]:
    """The rollup-scan answer: a grouping by two dimensions never reads a tier; summed per ``by``."""
    other = "endpoint_tag" if by != "endpoint_tag" else "tenant_id"
    result: AggregateResult = store.aggregate((by, other), start, end, **scope)  # type: ignore[arg-type]
    out: dict[str | None, Measures] = {}
    for entry in result.groups:
        key = entry.key[0]
        out[key] = entry.measures if key not in out else out[key] + entry.measures
    return {key: _figures(measures) for key, measures in out.items()}


def check_aggregations(store: SQLiteStore, stored: list[SpanRow], queries: list[tuple[object, ...]]) -> int:
    """Each filtered aggregation equals the oracle over raw rows and the rollup scan's answer."""
    checked = 0
    for by, start, end, where, environment, data_mode in queries:
        assert (
            isinstance(by, str)
            and isinstance(start, int)
            and isinstance(end, int)
            and isinstance(where, dict)
        )
        scope = {"where": where, "environment": environment, "data_mode": data_mode}
        result = store.aggregate((by,), start, end, **scope)  # type: ignore[arg-type]
        got = {entry.key[0]: _figures(entry.measures) for entry in result.groups}
        oracle = group(stored, start, end, [by], where, data_mode, environment)  # type: ignore[arg-type]
        want = {key[0]: _acc_figures(acc) for key, acc in oracle.items()}
        context = (by, start, end, where, environment, data_mode)
        assert got == want, context
        assert got == _scan(store, by, start, end, **scope), context
        alone = store.aggregate((), start, end, **scope)  # type: ignore[arg-type]
        assert _figures(alone.total) == _figures(result.total), context
        summed = [sum(column) for column in zip(*want.values(), strict=True)] or [0] * 7
        assert list(_figures(alone.total)) == summed, context
        checked += bool(want)
    return checked


def aggregation_queries(rng: random.Random) -> list[tuple[object, ...]]:
    """Every investigated dimension under one filter on each dimension a ``where`` may name,
    over hour-aligned windows (a user combines only with a tenant and an endpoint tag)."""
    windows = [(T0 - DAY_NS, T0 + 5 * DAY_NS), (T0 + 7 * HOUR_NS, T0 + 2 * DAY_NS + 5 * HOUR_NS)]
    for _ in range(2):
        start = T0 + rng.randrange(72) * HOUR_NS
        windows.append((start, start + rng.randrange(1, 72) * HOUR_NS))
    with_users = {"user_id", "tenant_id", "endpoint_tag"}
    return [
        (by, start, end, where, environment, data_mode)
        for by in AGGREGATED
        for start, end in windows
        for where, environment, data_mode in ONE_FILTER
        if by not in where and ("user_id" not in {by, *where} or {by, *where} <= with_users)
    ]


def test_filtered_aggregations_stay_exact_and_read_the_filter_tier(tmp_path: Path) -> None:
    """What a filtered ``investigate`` reads, at every compaction stage: oracle = scan = tier."""
    rng = random.Random(5)
    queries = aggregation_queries(rng)
    with SQLiteStore(tmp_path / "spanmeter.db") as store:
        stored = fill(store, rng, 500)
        assert check_aggregations(store, stored, queries) > 50  # nothing compacted
        assert store.compact_rollups(FAR_FUTURE, max_buckets=30) == 30
        check_aggregations(store, stored, queries)  # partly folded
        compact_all(store)
        assert store.stats().rollup_rows["rollup_pair_day"] > 0
        check_aggregations(store, stored, queries)  # fully folded
        late = random_rows(rng, 80)  # into compacted buckets: read from the rollup until folded
        store.write_batch(late)
        stored += late
        check_aggregations(store, stored, queries)

        # whole days come from the filter tier (the grouping and the filtered total): change
        # it behind the store's back and both answers follow
        window = (T0 - DAY_NS, T0 + 5 * DAY_NS)
        scope = {"where": {"tenant_id": "t2"}, "data_mode": None}
        before = store.aggregate(("user_id",), *window, **scope).total  # type: ignore[arg-type]
        before_models = store.aggregate((), *window, **scope).total  # type: ignore[arg-type]
        conn = sqlite3.connect(tmp_path / "spanmeter.db")
        with conn:
            users = conn.execute(
                "UPDATE rollup_pair_day SET attempts = attempts + 1 WHERE filter_dimension = 'tenant_id'"
                " AND filter_value = 't2' AND dimension = 'user_id'"
            ).rowcount
            providers = conn.execute(
                "UPDATE rollup_pair_day SET attempts = attempts + 1 WHERE filter_dimension = 'tenant_id'"
                " AND filter_value = 't2' AND dimension = 'provider'"
            ).rowcount
        conn.close()
        assert users > 0 and providers > 0
        assert store.aggregate(("user_id",), *window, **scope).total.attempts == before.attempts + users  # type: ignore[arg-type]
        assert store.aggregate((), *window, **scope).total.attempts == before_models.attempts + providers  # type: ignore[arg-type]


def test_an_upgraded_store_backfills_the_new_tiers(tmp_path: Path) -> None:
    path = tmp_path / "spanmeter.db"
    rng = random.Random(11)
    queries = filtered_queries(rng)
    user_queries = [
        ("user_id", T0 + start_h * HOUR_NS, T0 + end_h * HOUR_NS, {}, environment, "real")
        for start_h, end_h in ((0, 24), (5, 29), (3, 75), (-24, 96), (1, 167), (13, 61))
        for environment in (None, "prod")
    ]
    with SQLiteStore(path) as store:
        stored = fill(store, rng, 500)
        compact_all(store)
        stored += fill(store, rng, 100)  # not compacted yet: left to compaction after the upgrade
    # the store as it was before the filter tiers, the hour tier's users and the 6-hour and
    # week tiers existed
    conn = sqlite3.connect(path)
    with conn:
        for table in ("rollup_minute", "rollup_hour"):
            folded, unfolded = conn.execute(f"SELECT sum(seq < 0), sum(seq > 0) FROM {table}").fetchone()
            assert folded > 0 and unfolded > 0
        for table in ("rollup_pair_day", "rollup_dim_6h", "rollup_dim_week", "rollup_dim_4w"):
            conn.execute(f"DROP TABLE {table}")
        conn.execute("DELETE FROM rollup_dim_hour WHERE dimension = 'user_id'")
        conn.execute(
            "DELETE FROM _sqlite_migrations WHERE name IN"
            " ('m003_filter_tiers', 'm004_hourly_user_tier', 'm005_user_rank_tiers', 'm006_every_filter')"
        )
    conn.close()
    with SQLiteStore(path) as store:  # the migrations fold in what compaction had folded
        rollup_rows = store.stats().rollup_rows
        assert (
            min(
                rollup_rows[t]
                for t in ("rollup_pair_day", "rollup_dim_6h", "rollup_dim_week", "rollup_dim_4w")
            )
            > 0
        )
        check(store, stored, queries)
        check(store, stored, user_queries)
        compact_all(store)  # the rest is folded by compaction, once
        check(store, stored, queries)
        check(store, stored, user_queries)


def test_retention_deletes_old_filter_tier_rows(tmp_path: Path) -> None:
    now = T0 + 19 * DAY_NS  # the rollup cutoff, 5 days before, starts a 4-week bucket
    with SQLiteStore(tmp_path / "spanmeter.db") as store:
        rows = random_rows(random.Random(3), 300)  # spread over T0 .. T0 + 3 days
        store.write_batch(rows)
        while store.compact_rollups(now, max_buckets=500):
            pass
        count = store.stats().rollup_rows["rollup_pair_day"]
        assert count > 0
        result = store.apply_retention(now, raw_days=30, rollup_days=5)
        assert result.rollup_rows >= count
        assert store.stats().rollup_rows["rollup_pair_day"] == 0
        assert store.top("model", T0 - DAY_NS, now, where={"tenant_id": "t1"}).attempts == 0


def test_filter_tier_schema(tmp_path: Path) -> None:
    with SQLiteStore(tmp_path / "spanmeter.db") as store:
        conn = sqlite3.connect(store.path)
        try:
            for tier in FILTER_TIERS:
                columns = tuple(row[1] for row in conn.execute(f"PRAGMA table_info({tier.table})"))
                assert columns == (
                    "filter_dimension",
                    "filter_value",
                    "dimension",
                    tier.bucket_column,
                    "value",
                    "environment",
                    "data_mode",
                    *MEASURES,
                )
                key = [row[1] for row in conn.execute(f"PRAGMA table_info({tier.table})") if row[5]]
                assert key == list(columns[:7])  # the filter leads: one filter value is one range
        finally:
            conn.close()
