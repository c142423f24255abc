"""The Prometheus cost counters: only committed new rows count, tenants stay capped, and no
series ever goes backwards (what ``rate()``/``increase()`` need)."""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from spanmeter.ingest import LocalRowSink
from spanmeter.prometheus import OTHER_TENANT, CostMetrics
from spanmeter.store import GroupCommitWriter, SpanRow, SQLiteStore, WriteResult
from spanmeter.store.rows import FIELD_NAMES, RowValues, row_from_values, row_values
from support.prometheus_samples import Samples, scrape

NANO = 1_000_000_000
_next_id = iter(range(1, 10**9))


def committed(rows: list[RowValues]) -> WriteResult:
    """What a store answers for a batch it stored whole, each row its own logical request."""
    new = [row_from_values(values) for values in rows]
    return WriteResult(inserted=len(new), new_rows=new, first_attempts=[True] * len(new))


def make_row(tenant: str | None, cost_nano: int | None, *, received_at: int, **fields: Any) -> RowValues:
    n = next(_next_id)
    row = SpanRow(
        trace_id=n.to_bytes(16, "big"),
        span_id=n.to_bytes(8, "big"),
        start_time_ns=time.time_ns() - 1_000_000 + n,
        received_at_ns=received_at,
        provider="openai",
        model="gpt-4o",
        endpoint_tag=fields.pop("endpoint_tag", "search"),
        tenant_id=tenant,
        cost_nano_usd=cost_nano,
        input_tokens=100,
        output_tokens=10,
        cache_read_tokens=40,
        reasoning_tokens=3,
        pricing_status="priced" if cost_nano is not None else "unknown_model",
        **fields,
    )
    return row_values(row)


def _with_received_at(values: RowValues, received_at: int) -> RowValues:
    position = FIELD_NAMES.index("received_at_ns")
    return (*values[:position], received_at, *values[position + 1 :])


def samples(registry: CollectorRegistry, name: str) -> Samples:
    return scrape(registry).get(name, {})


def tenant_totals(registry: CollectorRegistry) -> dict[str, float]:
    totals: dict[str, float] = {}
    for labels, value in samples(registry, "spanmeter_cost_usd_total").items():
        tenant = dict(labels).get("tenant", "")
        totals[tenant] = totals.get(tenant, 0.0) + value
    return totals


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLiteStore]:
    store = SQLiteStore(str(tmp_path / "cost.db"))
    yield store
    store.close()


def test_only_committed_new_rows_count_including_mixed_batches(store: SQLiteStore) -> None:
    metrics = CostMetrics(top_tenants=5, store=store, promotion_delay_s=0)
    registry = CollectorRegistry()
    registry.register(metrics)
    writer = GroupCommitWriter(store)
    sink = metrics.metered(LocalRowSink(writer))
    first = [make_row("acme", 1_000 + i, received_at=1) for i in range(10)]
    assert sink.submit(first).result().inserted == 10
    assert math.isclose(sum(tenant_totals(registry).values()), sum(1_000 + i for i in range(10)) / NANO)

    # An OTLP retry of the same request: all duplicates, nothing counted.
    assert sink.submit(first).result().duplicates == 10
    # A re-batched retry: half old, half new (arrival time of its own), and one new span twice.
    fresh = [make_row("acme", 7_000_000 + i, received_at=2) for i in range(5)]
    # Every row of a request carries that request's arrival time, the re-sent ones too.
    resent = [_with_received_at(values, 2) for values in first[:5]]
    mixed = resent + fresh + fresh[:1]
    result = sink.submit(mixed).result()
    assert (result.inserted, result.duplicates) == (5, 6)
    writer.close()

    expected_nano = sum(
        c for (c,) in store.scan_requests(0, 2**62, columns=("cost_nano_usd",), data_mode=None)
    )
    assert round(math.fsum(tenant_totals(registry).values()) * NANO) == expected_nano
    attempts = sum(samples(registry, "spanmeter_attempts_total").values())
    assert attempts == 15
    assert sum(samples(registry, "spanmeter_requests_total").values()) == 15  # no external ids
    tokens = samples(registry, "spanmeter_tokens_total")
    by_type: dict[str, float] = {}
    for labels, value in tokens.items():
        token_type = dict(labels)["type"]
        by_type[token_type] = by_type.get(token_type, 0) + value
    assert by_type == {
        "input": 1500,
        "cache_read_input": 600,
        "cache_write_input": 0,
        "output": 150,
        "reasoning_output": 45,
    }


def test_tenant_labels_are_capped_sticky_and_never_go_backwards() -> None:
    metrics = CostMetrics(top_tenants=2, promotion_delay_s=0)
    registry = CollectorRegistry()
    registry.register(metrics)

    def feed(spend: dict[str, int]) -> None:
        rows = [make_row(tenant, nano, received_at=1) for tenant, nano in spend.items()]
        metrics.count([committed(rows)])

    total = 0
    history: list[dict[tuple[tuple[str, str], ...], float]] = []
    plan = [
        {"a": 500, "b": 300, "c": 100, "d": 50},
        {"c": 10_000, "d": 20_000, "e": 1},  # c and d outgrow a and b: no slot is left for them
        {"a": 1, "b": 1, "c": 1, "d": 1, "e": 1},
    ]
    for spend in plan:
        feed(spend)
        total += sum(spend.values())
        history.append(samples(registry, "spanmeter_cost_usd_total"))
        tenants = tenant_totals(registry)
        assert set(tenants) <= {"a", "b", OTHER_TENANT}
        assert len(tenants) <= 3  # N + other
        assert round(math.fsum(tenants.values()) * NANO) == total
    assert metrics.labelled_tenants == {"a", "b"}
    # Monotonic per series: every series of a scrape is >= its value in the previous scrape.
    for before, after in itertools.pairwise(history):
        for labels, value in before.items():
            assert after[labels] >= value, labels


def test_promotion_waits_for_ranked_traffic_and_store_seeds_slots(store: SQLiteStore) -> None:
    store.write_batch([SpanRow(**_seed_fields("big", 9 * NANO)), SpanRow(**_seed_fields("small", NANO))])
    clock = [0.0]
    metrics = CostMetrics(top_tenants=3, store=store, promotion_delay_s=60, clock=lambda: clock[0])
    assert metrics.labelled_tenants == {"big", "small"}  # seeded from the store's last 7 days
    registry = CollectorRegistry()
    registry.register(metrics)
    rows = [make_row("newcomer", 5, received_at=1)]
    metrics.count([committed(rows)])
    generate_latest(registry)
    assert "newcomer" not in metrics.labelled_tenants  # not ranked long enough yet
    clock[0] = 61.0
    generate_latest(registry)
    assert "newcomer" in metrics.labelled_tenants


def _seed_fields(tenant: str, cost: int) -> dict[str, Any]:
    n = next(_next_id)
    now = time.time_ns()
    return {
        "trace_id": n.to_bytes(16, "big"),
        "span_id": n.to_bytes(8, "big"),
        "start_time_ns": now - 3600 * NANO,
        "received_at_ns": now,
        "tenant_id": tenant,
        "cost_nano_usd": cost,
        "pricing_status": "priced",
    }


def test_user_ids_never_become_labels() -> None:
    metrics = CostMetrics(top_tenants=5, promotion_delay_s=0)
    registry = CollectorRegistry()
    registry.register(metrics)
    rows = [make_row("acme", 10, received_at=1, user_id="u-hashed-0123456789abcdef")]
    metrics.count([committed(rows)])
    text = generate_latest(registry).decode()
    assert "u-hashed-0123456789abcdef" not in text
    assert "user" not in {
        label for fam in text_string_to_metric_families(text) for s in fam.samples for label in s.labels
    }


def test_invalid_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="top_tenants"):
        CostMetrics(top_tenants=-1)
    with pytest.raises(ValueError, match="promotion_delay_s"):
        CostMetrics(promotion_delay_s=-1)
