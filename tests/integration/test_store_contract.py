"""The store contract: every backend (SQLite, PostgreSQL) gives the same answers to the same
writes: dedupe, attempts vs logical requests, rollups, rankings, raw rows, retention.

Each test runs once per backend, against a real SQLite file and a real PostgreSQL server
(started for the session by ``tests/conftest.py``)."""

from __future__ import annotations

import random
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from spanmeter.store import (
    RepricedRow,
    RepricingRun,
    RevenueRow,
    SpanRow,
    SpanStore,
    StaleRepricing,
    WriteResult,
    open_store,
)
from support.store_rows import DAY_NS, NS, T0, make_row, random_rows
from support.stores import BACKENDS, backend_target, opened_store
from support.top_oracle import check, ranking_queries


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def target(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    return backend_target(backend, tmp_path, request)


@pytest.fixture
def store(target: str) -> Iterator[SpanStore]:
    with opened_store(target) as opened:
        yield opened


def test_the_store_implements_the_protocol(store: SpanStore) -> None:
    assert isinstance(store, SpanStore)


def test_same_batch_three_times_counts_once(store: SpanStore) -> None:
    rows = [make_row(endpoint_tag=f"e{i % 3}", cost_nano_usd=100 + i) for i in range(30)]
    results = [store.write_batch(rows) for _ in range(3)]
    assert results == [WriteResult(30, 0), WriteResult(0, 30), WriteResult(0, 30)]
    assert store.count_requests() == 30
    top = store.top("endpoint_tag", T0, T0 + DAY_NS)
    assert (top.attempts, top.cost_nano_usd) == (30, sum(100 + i for i in range(30)))


def test_duplicates_inside_one_batch_and_across_batches_of_one_transaction(store: SpanStore) -> None:
    a, b = make_row(), make_row()
    assert store.write_batches([[a, b, a, a], [b, make_row()]]) == [WriteResult(2, 2), WriteResult(1, 1)]
    assert store.top("tenant_id", T0, T0 + DAY_NS).attempts == 3


def test_batches_no_column_takes_are_refused_before_anything_is_written(store: SpanStore) -> None:
    from spanmeter.store.batches import RefusedBatch, RefusedBatches, write_screened

    batches = [
        [make_row()],
        [make_row(), make_row(cost_nano_usd=2**63)],
        [make_row(trace_id=b"\x01")],
        [make_row(end_time_ns=2**64 - 1)],
        [make_row()],
    ]
    with pytest.raises(RefusedBatches) as refused:
        store.write_batches(batches)
    assert set(refused.value.reasons) <= {1, 2, 3}
    assert store.count_requests() == 0  # nothing of the write, the good batches included
    # what a group commit does with it: the other batches are written, each refused one named
    answers = write_screened(lambda positions: store.write_batches([batches[i] for i in positions]), 5)
    assert [type(answer).__name__ for answer in answers] == [
        "WriteResult",
        "RefusedBatch",
        "RefusedBatch",
        "RefusedBatch",
        "WriteResult",
    ]
    assert isinstance(answers[1], RefusedBatch)
    assert "cost_nano_usd does not fit a signed 64-bit integer" in str(answers[1])
    assert "end_time_ns does not fit" in str(answers[3])
    assert store.count_requests() == 2


def test_same_ids_at_another_start_time_are_another_span(store: SpanStore) -> None:
    row = make_row()
    moved = make_row(trace_id=row.trace_id, span_id=row.span_id, start_time_ns=row.start_time_ns + 1)
    same_start_other_span = make_row(start_time_ns=row.start_time_ns)
    assert store.write_batch([row, moved, same_start_other_span]) == WriteResult(3, 0)


def test_attempts_and_logical_requests(store: SpanStore) -> None:
    retries = [make_row(external_request_id="req-1", outcome=o) for o in ("error", "error", "success")]
    single = make_row(external_request_id="req-2")
    no_id = [make_row(), make_row()]
    store.write_batch([*retries[:2], single])
    store.write_batch([retries[2], *no_id])
    top = store.top("endpoint_tag", T0, T0 + DAY_NS)
    assert (top.attempts, top.logical_requests) == (6, 4)
    assert top.groups[0].cost_per_logical_request_nano_usd == 6 * 1_000 // 4


def test_logical_request_counts_in_the_dimensions_of_its_first_attempt(store: SpanStore) -> None:
    store.write_batch(
        [make_row(external_request_id="r", model="big"), make_row(external_request_id="r", model="small")]
    )
    groups = {g.key: g for g in store.top("model", T0, T0 + DAY_NS).groups}
    assert (groups["big"].attempts, groups["big"].logical_requests) == (1, 1)
    assert (groups["small"].attempts, groups["small"].logical_requests) == (1, 0)


def test_non_billable_rows_are_stored_but_not_summed(store: SpanStore) -> None:
    store.write_batch([make_row(billable=False, external_request_id="r"), make_row(external_request_id="r")])
    assert store.count_requests() == 2
    top = store.top("endpoint_tag", T0, T0 + DAY_NS)
    assert (top.attempts, top.logical_requests, top.cost_nano_usd) == (1, 1, 1_000)


def test_default_data_mode_real_excludes_test_and_demo(store: SpanStore) -> None:
    store.write_batch(
        [make_row(data_mode=m, cost_nano_usd=c) for m, c in (("real", 1), ("test", 10), ("demo", 100))]
    )
    assert store.top("tenant_id", T0, T0 + DAY_NS).cost_nano_usd == 1
    assert store.top("tenant_id", T0, T0 + DAY_NS, data_mode="test").cost_nano_usd == 10
    assert store.top("tenant_id", T0, T0 + DAY_NS, data_mode=None).cost_nano_usd == 111
    assert store.count_requests(data_mode="demo") == 1


def test_unpriced_attempts_are_counted_never_costed_as_zero(store: SpanStore) -> None:
    store.write_batch(
        [make_row(cost_nano_usd=None, pricing_status="unknown_model"), make_row(cost_nano_usd=5)]
    )
    top = store.top("model", T0, T0 + DAY_NS)
    assert (top.cost_nano_usd, top.unpriced, top.attempts) == (5, 1, 2)


def test_iter_requests_round_trips_rows(store: SpanStore) -> None:
    rows = [
        make_row(start_time_ns=T0 + i * NS, pricing_effective_date="2025-01-01", issues="x") for i in range(3)
    ]
    store.write_batch(list(reversed(rows)))
    assert list(store.iter_requests()) == rows
    assert list(store.iter_requests(T0 + NS, T0 + 2 * NS)) == rows[1:2]
    assert store.count_requests(T0 + NS) == 2


def test_malformed_ids_are_refused_before_anything_is_written(store: SpanStore) -> None:
    with pytest.raises(ValueError, match="16 bytes"):
        store.write_batch([make_row(), make_row(trace_id=b"short")])
    assert store.count_requests() == 0


def test_top_validates_its_arguments(store: SpanStore) -> None:
    with pytest.raises(ValueError, match="cannot rank by"):
        store.top("session_id", T0, T0 + DAY_NS)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="cannot filter on 'model'"):
        store.top("user_id", T0, T0 + DAY_NS, where={"model": "gpt-4o"})
    with pytest.raises(ValueError, match="own parameters"):
        store.top("model", T0, T0 + DAY_NS, where={"environment": "prod"})
    with pytest.raises(ValueError, match="limit"):
        store.top("model", T0, T0 + DAY_NS, limit=0)


def test_rankings_equal_recomputed_sums_before_and_after_compaction(store: SpanStore) -> None:
    """Random rows with re-deliveries, answered exactly before, during and after compaction,
    and with late arrivals into compacted buckets."""
    rng = random.Random(20260101)
    rows = random_rows(rng, 500)
    stored: list[SpanRow] = []
    queries = ranking_queries(rng)[::3]
    far_future = T0 + 30 * DAY_NS
    position = 0
    while position < len(rows):
        batch = rows[position : position + rng.randrange(1, 120)]
        resend = rng.sample(stored, min(len(stored), rng.randrange(0, 5)))  # re-deliveries
        result = store.write_batch([*batch, *resend, *batch[:2]])
        assert (result.inserted, result.duplicates) == (len(batch), len(resend) + min(2, len(batch)))
        stored.extend(batch)
        position += len(batch)
    assert check(store, stored, queries) > 60
    assert store.compact_rollups(far_future, max_buckets=40) == 40
    check(store, stored, queries)
    while store.compact_rollups(far_future, max_buckets=500):
        pass
    check(store, stored, queries)
    late = random_rows(rng, 100)
    for position in range(0, len(late), 10):
        store.write_batch(late[position : position + 10])
    stored.extend(late)
    check(store, stored, queries)


def test_rankings_stay_exact_at_every_step_of_compaction(store: SpanStore) -> None:
    """Compaction stopped after every few buckets: some minute buckets folded into the tiers
    and some not, the minute rollup done and the hourly one (users) not yet, all done; then
    late spans into days already folded, read from the rollup until the next round folds
    them once."""
    rng = random.Random(5150)
    stored = random_rows(rng, 300)
    for position in range(0, len(stored), 50):
        store.write_batch(stored[position : position + 50])
    queries = ranking_queries(rng)[::7]
    far_future = T0 + 30 * DAY_NS
    steps = 0
    while compacted := store.compact_rollups(far_future, max_buckets=37):
        steps += 1
        assert compacted <= 37
        check(store, stored, queries)
    assert steps >= 8  # 300 spans over 3 days: hundreds of minute buckets, then the hours
    late = random_rows(rng, 60)
    store.write_batch(late)
    stored.extend(late)
    check(store, stored, queries)  # folded days plus unfolded late rows
    while store.compact_rollups(far_future, max_buckets=25):
        check(store, stored, queries[::3])
    check(store, stored, queries)


def test_aggregate_equals_top_for_one_dimension(store: SpanStore) -> None:
    rng = random.Random(7)
    store.write_batch(random_rows(rng, 300))
    for by in ("model", "tenant_id", "user_id"):
        top = store.top(by, T0, T0 + 4 * DAY_NS, data_mode=None, limit=100)  # type: ignore[arg-type]
        groups = store.aggregate((by,), T0, T0 + 4 * DAY_NS, data_mode=None)
        assert [(g.key, g.cost_nano_usd, g.attempts) for g in top.groups] == [
            (g.key[0], g.measures.cost_nano_usd, g.measures.attempts) for g in groups.groups
        ]
        assert groups.total.cost_nano_usd == top.cost_nano_usd


def test_reopen_keeps_rows_dedupe_and_logical_keys(target: str) -> None:
    rows = [make_row(external_request_id="req-1"), make_row()]
    with opened_store(target) as first:
        assert first.write_batch(rows) == WriteResult(2, 0)
    with opened_store(target) as second:
        assert second.write_batch(rows) == WriteResult(0, 2)
        second.write_batch([make_row(external_request_id="req-1")])  # a retry after the restart
        top = second.top("endpoint_tag", T0, T0 + DAY_NS)
        assert (top.attempts, top.logical_requests) == (3, 2)
        assert [r.external_request_id for r in second.iter_requests()] == ["req-1", None, "req-1"]


def test_retention_deletes_only_old_data(store: SpanStore) -> None:
    now = T0 + 19 * DAY_NS  # now - 5 days starts a 4-week bucket (epoch-aligned, as T0 + 14 days)
    ages = [9.5, 6, 4, 1, 0.5]  # days before now
    rows = [
        make_row(start_time_ns=now - int(age * DAY_NS), external_request_id=f"r{age}", cost_nano_usd=10**i)
        for i, age in enumerate(ages)
    ]
    store.write_batch(rows)
    result = store.apply_retention(now, raw_days=3, rollup_days=5)
    assert (result.requests, result.logical_requests) == (3, 3)
    assert [r.cost_nano_usd for r in store.iter_requests()] == [1_000, 10_000]
    top = store.top("endpoint_tag", now - 30 * DAY_NS, now, data_mode=None)
    assert top.cost_nano_usd == 100 + 1_000 + 10_000
    assert store.top("user_id", now - 30 * DAY_NS, now).cost_nano_usd == 100 + 1_000 + 10_000
    assert store.apply_retention(now, raw_days=3, rollup_days=3).rollup_rows == 0
    store.write_batch([make_row(start_time_ns=now, external_request_id="r6", cost_nano_usd=0)])
    assert store.top("endpoint_tag", now, now + DAY_NS).logical_requests == 1
    with pytest.raises(ValueError, match="at least 1"):
        store.apply_retention(now, raw_days=0, rollup_days=5)


def test_scan_and_rollup_groups_read_the_same_rows(store: SpanStore) -> None:
    rng = random.Random(11)
    rows = random_rows(rng, 200)
    store.write_batch(rows)
    scanned = list(
        store.scan_requests(T0, T0 + 4 * DAY_NS, columns=("trace_id", "cost_nano_usd"), data_mode=None)
    )
    expected = {
        (row.trace_id, row.cost_nano_usd)
        for row in rows
        if row.billable and T0 <= row.event_time_ns < T0 + 4 * DAY_NS
    }
    assert set(scanned) == expected and len(scanned) == len(expected)
    groups = list(store.iter_rollup_groups("hour", T0, T0 + 4 * DAY_NS))
    assert sum(int(g["attempts"]) for g in groups) == sum(1 for row in rows if row.billable)
    with pytest.raises(ValueError, match="granularity must be minute or hour"):
        store.iter_rollup_groups("day", T0, T0 + DAY_NS)  # type: ignore[arg-type]  # refused before any read
    with pytest.raises(ValueError, match="unknown or no columns"):
        next(store.scan_requests(T0, T0 + DAY_NS, columns=("no_such_column",)))


def test_a_filter_with_several_values_reads_any_of_them(store: SpanStore) -> None:
    """``where={"tenant_id": (a, b)}`` (SQL ``IN``, what a key limited to tenants reads with)
    answers the sums of those tenants' rows, on every read, before and after compaction."""
    rng = random.Random(19)
    rows = random_rows(rng, 300)
    store.write_batch(rows)
    tenants = sorted({row.tenant_id for row in rows if row.tenant_id})[:2]
    assert len(tenants) == 2
    window = (T0, T0 + 4 * DAY_NS)
    chosen = [
        r for r in rows if r.billable and r.tenant_id in tenants and window[0] <= r.event_time_ns < window[1]
    ]
    cost = sum(r.cost_nano_usd or 0 for r in chosen)
    where = {"tenant_id": tuple(tenants)}

    def check_reads() -> None:
        for by in ("model", "tenant_id", "user_id", "endpoint_tag"):
            top = store.top(by, *window, where=where, data_mode=None, limit=1000)  # type: ignore[arg-type]
            assert (top.cost_nano_usd, top.attempts) == (cost, len(chosen)), by
        by_tenant = store.aggregate(("tenant_id",), *window, where=where, data_mode=None)
        assert {g.key[0]: g.measures.cost_nano_usd for g in by_tenant.groups} == {
            t: sum(r.cost_nano_usd or 0 for r in chosen if r.tenant_id == t) for t in tenants
        }
        assert store.aggregate((), *window, where=where, data_mode=None).total.cost_nano_usd == cost
        scanned = list(
            store.scan_requests(*window, columns=("tenant_id", "cost_nano_usd"), where=where, data_mode=None)
        )
        assert {t for t, _ in scanned} == set(tenants) and sum(c or 0 for _, c in scanned) == cost
        groups = list(store.iter_rollup_groups("hour", *window, where=where))
        assert {g["tenant_id"] for g in groups} == set(tenants)
        assert sum(int(g["cost_nano_usd"]) for g in groups) == cost
        assert store.top("model", *window, where={"tenant_id": ()}, data_mode=None).attempts == 0

    check_reads()
    while store.compact_rollups(T0 + 30 * DAY_NS, max_buckets=500):
        pass
    check_reads()
    with pytest.raises(ValueError, match="cannot filter hour rollups"):
        store.iter_rollup_groups("hour", *window, where={"model": "x"})


def test_repricing_corrects_rows_and_rollups_and_is_audited(store: SpanStore) -> None:
    priced = [make_row(model="m", cost_nano_usd=1_000) for _ in range(3)]
    unpriced = make_row(model="m", cost_nano_usd=None, pricing_status="unknown_model")
    store.write_batch([*priced, unpriced])
    stored = {row.span_id: row for row in store.iter_requests()}
    changes = [
        RepricedRow(stored[priced[0].span_id], replace(stored[priced[0].span_id], cost_nano_usd=4_000)),
        RepricedRow(
            stored[unpriced.span_id],
            replace(stored[unpriced.span_id], cost_nano_usd=500, pricing_status="priced"),
        ),
    ]
    before = store.top("model", T0, T0 + DAY_NS)
    assert (before.cost_nano_usd, before.unpriced) == (3_000, 1)
    audit = store.apply_repricing(
        changes,
        RepricingRun(
            reason="test", window_start_ns=T0, window_end_ns=T0 + DAY_NS, price_source="t", details="d"
        ),
    )
    after = store.top("model", T0, T0 + DAY_NS)
    assert (after.cost_nano_usd, after.unpriced, after.attempts) == (3_000 + 3_000 + 500, 0, 4)
    assert (audit.rows_changed, audit.cost_before_nano_usd, audit.cost_after_nano_usd) == (2, 1_000, 4_500)
    assert store.reprice_audits() == [audit] and audit.id > 0
    costs = sorted(row.cost_nano_usd or 0 for row in store.iter_requests())
    assert costs == [500, 1_000, 1_000, 4_000]
    with pytest.raises(StaleRepricing):  # the rows no longer hold the old pricing
        store.apply_repricing(
            changes,
            RepricingRun(
                reason="again", window_start_ns=T0, window_end_ns=T0 + DAY_NS, price_source="t", details=""
            ),
        )
    assert store.top("model", T0, T0 + DAY_NS) == after and len(store.reprice_audits()) == 1
    with pytest.raises(ValueError, match="only change pricing"):
        store.apply_repricing(
            [RepricedRow(stored[priced[1].span_id], replace(stored[priced[1].span_id], model="other"))],
            RepricingRun(
                reason="bad", window_start_ns=T0, window_end_ns=T0 + DAY_NS, price_source="t", details=""
            ),
        )


def test_revenue_is_replaced_per_tenant_and_period(store: SpanStore) -> None:
    first = RevenueRow("t1", "2026-01", T0, T0 + 31 * DAY_NS, 5 * 10**9)
    assert store.put_revenue([first, RevenueRow("t2", "2026-01", T0, T0 + 31 * DAY_NS, 10**9)]) == 2
    store.put_revenue([replace(first, revenue_nano_usd=7 * 10**9)])
    assert [(r.tenant_id, r.revenue_nano_usd) for r in store.revenue()] == [("t1", 7 * 10**9), ("t2", 10**9)]
    assert store.revenue(T0 + 40 * DAY_NS, T0 + 50 * DAY_NS) == []


def test_importing_the_store_loads_no_backend_driver() -> None:
    """``import spanmeter.store`` stays light: the backends' drivers load when a store of
    theirs is opened, so a PostgreSQL deployment never loads sqlite-utils and vice versa."""
    code = "import sys, spanmeter.store; print(sorted(m for m in ('sqlite_utils', 'psycopg') if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_replicas_starting_together_migrate_once(postgres_server: Any) -> None:
    """Replicas started at the same moment on a new database: one migrates, the others wait
    for it (an advisory lock), then find nothing to do; all of them work."""
    url = postgres_server.new_database("migrate")
    stores: list[SpanStore] = []
    errors: list[BaseException] = []

    def start() -> None:
        try:
            stores.append(open_store(url))
        except BaseException as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    try:
        assert errors == [] and len(stores) == 4
        assert stores[0].write_batch([make_row()]).inserted == 1
        assert all(store.count_requests() == 1 for store in stores)
        import psycopg

        with psycopg.connect(url) as conn:
            names = [name for (name,) in conn.execute("SELECT name FROM spanmeter_migrations ORDER BY name")]
        assert len(names) == len(set(names)) > 1
    finally:
        for store in stores:
            store.close()
