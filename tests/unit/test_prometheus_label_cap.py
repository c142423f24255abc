"""The cost counters' label sets stay bounded whatever clients send, and folding the overflow
into ``other`` loses no attempt and no nano-USD."""

from __future__ import annotations

import itertools
import math
import random
import time
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from spanmeter.prometheus import COST_LABELS, CostMetrics, LabelSetCap
from spanmeter.prometheus.label_sets import CLIENT_DIMENSIONS, OTHER_VALUE
from spanmeter.store import SpanRow, WriteResult
from spanmeter.store.rows import FIELD_NAMES, RowValues, row_from_values, row_values
from support.prometheus_samples import Samples, scrape

NANO = 1_000_000_000
_ids = itertools.count(1)


def committed(rows: list[RowValues]) -> WriteResult:
    """What a store answers for a batch it stored whole, each row its own logical request."""
    new = [row_from_values(values) for values in rows]
    return WriteResult(inserted=len(new), new_rows=new, first_attempts=[True] * len(new))


def row(cost_nano: int, **fields: str) -> RowValues:
    n = next(_ids)
    values: dict[str, Any] = {
        "provider": "openai",
        "model": "gpt-4o",
        "endpoint_tag": "search",
        "environment": "prod",
        "prompt_version": "v1",
        **fields,
    }
    return row_values(
        SpanRow(
            trace_id=n.to_bytes(16, "big"),
            span_id=n.to_bytes(8, "big"),
            start_time_ns=time.time_ns(),
            received_at_ns=1,
            tenant_id="acme",
            cost_nano_usd=cost_nano,
            input_tokens=10,
            output_tokens=1,
            pricing_status="priced",
            **values,
        )
    )


def exact_nano(values: Samples) -> int:
    return round(math.fsum(values.values()) * NANO)


def test_the_client_dimensions_lead_the_cost_labels() -> None:
    assert COST_LABELS[: len(CLIENT_DIMENSIONS)] == CLIENT_DIMENSIONS


def test_ten_thousand_prompt_versions_stay_bounded_exact_and_counted() -> None:
    cap = 200
    metrics = CostMetrics(top_tenants=5, promotion_delay_s=0, max_label_sets=cap)
    registry = CollectorRegistry()
    registry.register(metrics)
    rng = random.Random(3)
    endpoints = ("search", "support.reply", "checkout")
    rows = [
        row(rng.randrange(1, 5_000_000), prompt_version=f"pv-{i}", endpoint_tag=endpoints[i % 3])
        for i in range(10_000)
    ]
    expected_nano = sum(values[FIELD_NAMES.index("cost_nano_usd")] for values in rows)
    for start in range(0, len(rows), 512):
        batch = rows[start : start + 512]
        metrics.count([committed(batch)])
    found = scrape(registry)

    cost = found["spanmeter_cost_usd_total"]
    # Every label set got no more than the cap, plus the fully folded ones (one per
    # data_mode and tenant label: here just one).
    assert len(cost) <= cap + 1
    assert len(cost) >= cap * 9 // 10  # the room was used before folding started
    assert found["spanmeter_metrics_label_sets"][(("sets", "used"),)] == len(cost)
    assert found["spanmeter_metrics_label_sets"][(("sets", "total"),)] == cap
    assert exact_nano(cost) == expected_nano
    assert sum(found["spanmeter_attempts_total"].values()) == 10_000

    versions = {dict(labels)["prompt_version"] for labels in cost}
    assert OTHER_VALUE in versions
    folded_attempts = sum(
        value
        for labels, value in found["spanmeter_attempts_total"].items()
        if dict(labels)["prompt_version"] == OTHER_VALUE
    )
    overflow = {
        dict(labels)["label"]: value
        for labels, value in found["spanmeter_metrics_label_overflow_total"].items()
    }
    # Exactly the attempts counted under prompt_version="other" overflowed on that label;
    # the endpoints are known values, so they kept their own label (partial fold).
    assert overflow["prompt_version"] == folded_attempts == 10_000 - (len(versions) - 1)
    assert overflow["endpoint_tag"] == overflow["model"] == overflow["provider"] == 0
    folded_endpoints = {
        dict(labels)["endpoint_tag"] for labels in cost if dict(labels)["prompt_version"] == OTHER_VALUE
    }
    assert folded_endpoints == set(endpoints)


def test_past_the_cap_every_client_dimension_folds_and_series_never_go_backwards() -> None:
    metrics = CostMetrics(top_tenants=0, promotion_delay_s=0, max_label_sets=10)
    registry = CollectorRegistry()
    registry.register(metrics)
    history: list[Samples] = []
    total = 0
    for step in range(6):
        # Each step brings new models and new endpoints: partial folds can't absorb them all.
        batch = [
            row(1_000 + step, model=f"m-{step}-{i}", endpoint_tag=f"e-{step}-{i}", prompt_version=f"p{i}")
            for i in range(8)
        ]
        total += sum(1_000 + step for _ in batch)
        metrics.count([committed(batch)])
        found = scrape(registry)
        history.append(found["spanmeter_cost_usd_total"])
        assert exact_nano(found["spanmeter_cost_usd_total"]) == total
    final = history[-1]
    # 10 series at most with client values, plus one fully folded series (one data_mode,
    # one tenant label).
    assert len(final) <= 11
    fully_folded = tuple(
        sorted(
            {**dict.fromkeys(CLIENT_DIMENSIONS, OTHER_VALUE), "data_mode": "real", "tenant": "other"}.items()
        )
    )
    assert fully_folded in final
    for before, after in itertools.pairwise(history):
        for labels, value in before.items():
            assert after[labels] >= value, labels


def test_below_the_cap_nothing_folds() -> None:
    metrics = CostMetrics(top_tenants=0, promotion_delay_s=0, max_label_sets=1_000)
    registry = CollectorRegistry()
    registry.register(metrics)
    batch = [row(10, prompt_version=f"v{i}") for i in range(50)]
    metrics.count([committed(batch)])
    found = scrape(registry)
    assert len(found["spanmeter_cost_usd_total"]) == 50
    assert set(found["spanmeter_metrics_label_overflow_total"].values()) == {0.0}


def test_a_zero_cap_folds_everything_and_negative_is_refused() -> None:
    cap = LabelSetCap(0)
    labels = ("search", "v1", "openai", "gpt-4o", "prod", "real", "")
    assert cap.admit(labels, 3, {}) == (*(OTHER_VALUE,) * 5, "real", "")
    assert cap.overflow == [3] * 5
    with pytest.raises(ValueError, match="max_label_sets"):
        LabelSetCap(-1)
    with pytest.raises(ValueError, match="max_label_sets"):
        CostMetrics(max_label_sets=-1)


def test_past_the_cap_an_existing_partial_fold_is_preferred() -> None:
    cap = LabelSetCap(10)  # 9 label sets as they come, 1 kept for a partial fold
    series: dict[tuple[str, ...], int] = {}

    def count(endpoint: str, version: str) -> tuple[str, ...]:
        key = cap.admit((endpoint, version, "openai", "gpt-4o", "prod", "real", ""), 1, series)
        series[key] = series.get(key, 0) + 1
        return key

    for i in range(9):
        assert count("search", f"v{i}") == ("search", f"v{i}", "openai", "gpt-4o", "prod", "real", "")
    partial = ("search", OTHER_VALUE, "openai", "gpt-4o", "prod", "real", "")
    assert count("search", "v9") == partial  # the reserve: only the unseen value folds
    assert len(series) == 10
    assert count("search", "v10") == partial  # at the cap, into the partial fold that exists
    full = (*(OTHER_VALUE,) * 5, "real", "")
    assert count("checkout", "v11") == full  # no partial fold to join: all five fold
    assert len(series) == 11
    assert cap.overflow == [1, 3, 1, 1, 1]  # per client dimension, in CLIENT_DIMENSIONS order
