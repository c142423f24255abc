"""The cost counters summed in the store process: exact for what each commit stored (mixed
batches, re-deliveries, logical requests by the store's own dedupe, across a restart),
merged before the batch's future resolves, and tenant promotions reach the child."""

from __future__ import annotations

import math
import subprocess
import sys
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from spanmeter.prometheus import OTHER_TENANT, CostMetrics, CostSummer, TenantView
from spanmeter.service.store_process import StoreProcessClient, StoreProcessSettings
from spanmeter.store import SpanRow, SQLiteStore, WriteResult
from spanmeter.store.rows import FIELD_NAMES, RowValues, row_values
from support.prometheus_samples import Samples, scrape

NANO = 1_000_000_000
NOW = time.time_ns()
_ids = iter(range(1, 10**9))


def span(tenant: str, cost: int | None, *, external_id: str | None = None, **fields: Any) -> RowValues:
    n = next(_ids)
    return row_values(
        SpanRow(
            trace_id=n.to_bytes(16, "big"),
            span_id=n.to_bytes(8, "big"),
            start_time_ns=NOW - 60 * NANO + n,
            received_at_ns=fields.pop("received_at", NOW),
            provider="openai",
            model="gpt-4o",
            endpoint_tag="search",
            tenant_id=tenant,
            external_request_id=external_id,
            cost_nano_usd=cost,
            input_tokens=100,
            output_tokens=10,
            pricing_status="priced" if cost is not None else "unknown_model",
            **fields,
        )
    )


def by_tenant(samples: Samples) -> dict[str, float]:
    totals: dict[str, float] = {}
    for labels, value in samples.items():
        tenant = dict(labels).get("tenant", "")
        totals[tenant] = totals.get(tenant, 0.0) + value
    return totals


def stored(store: SQLiteStore) -> tuple[int, int, int]:
    """The store's own truth: cost, attempts, logical requests."""
    rows = list(
        store.scan_requests(0, 2**62, columns=("cost_nano_usd", "external_request_id"), data_mode=None)
    )
    ids = [i for _, i in rows]
    cost = sum(c for c, _ in rows if c is not None)
    return cost, len(rows), ids.count(None) + len({i for i in ids if i is not None})


class Receiver:
    """The receiver's side of the cost counters, wired as ``ReceiverService`` wires them."""

    def __init__(self, path: Path, top_tenants: int) -> None:
        self.reader = SQLiteStore(str(path))
        self.metrics = CostMetrics(top_tenants=top_tenants, store=self.reader, promotion_delay_s=0)
        self.registry = CollectorRegistry()
        self.registry.register(self.metrics)
        self.client = StoreProcessClient(
            StoreProcessSettings(
                partial(SQLiteStore, str(path)), commit_observer=self.metrics.summer_factory()
            ),
            on_observed=self.metrics.merge,
        )
        self.metrics.watch_tenants(self.client.configure_observer)
        self.client.start()

    def send(self, rows: list[RowValues]) -> WriteResult:
        return self.client.submit(rows).result(timeout=30)

    def close(self) -> None:
        self.client.close(timeout=30)
        self.reader.close()


@pytest.fixture
def receivers() -> Iterator[list[Receiver]]:
    started: list[Receiver] = []
    yield started
    for receiver in started:
        receiver.close()


def test_the_store_process_counts_exactly_what_it_stored(tmp_path: Path, receivers: list[Receiver]) -> None:
    path = tmp_path / "cost.db"
    receiver = Receiver(path, top_tenants=2)
    receivers.append(receiver)
    first = [span(f"t{i % 3}", 1_000 + i, external_id=f"req-{i // 2}") for i in range(12)]
    assert receiver.send(first).inserted == 12
    # Acknowledged means counted: the very next scrape sees the batch, nothing waits.
    found = scrape(receiver.registry)
    cost, attempts, requests = stored(receiver.reader)
    assert round(math.fsum(found["spanmeter_cost_usd_total"].values()) * NANO) == cost
    assert sum(found["spanmeter_attempts_total"].values()) == attempts == 12
    assert sum(found["spanmeter_requests_total"].values()) == requests == 6

    # That scrape promoted the two biggest spenders; the child learns it before the next batch.
    labelled = receiver.metrics.labelled_tenants
    assert labelled == {"t1", "t2"}
    assert receiver.send(first).duplicates == 12  # an OTLP retry: nothing new
    # A re-batched retry: half already stored, new spans (one twice), and new attempts of
    # known logical requests (retries: attempts, no new requests).
    fresh = [span("t1", 7_000_000 + i, external_id="req-0" if i == 0 else None) for i in range(4)]
    result = receiver.send(first[:6] + fresh + fresh[:1])
    assert (result.inserted, result.duplicates) == (4, 7)
    found = scrape(receiver.registry)
    cost, attempts, requests = stored(receiver.reader)
    assert round(math.fsum(found["spanmeter_cost_usd_total"].values()) * NANO) == cost
    assert sum(found["spanmeter_attempts_total"].values()) == attempts == 16
    assert sum(found["spanmeter_requests_total"].values()) == requests == 9
    tenants = by_tenant(found["spanmeter_cost_usd_total"])
    assert set(tenants) == {"t1", OTHER_TENANT}  # t2 is labelled but spent nothing since
    # t1's spend from before its promotion stayed in "other"; the new spans have its label.
    assert round(tenants["t1"] * NANO) == sum(7_000_000 + i for i in range(4))
    receiver.close()
    receivers.remove(receiver)

    # A restart: the store still knows req-0..req-5, so retries of them are no new requests.
    again = Receiver(path, top_tenants=2)
    receivers.append(again)
    assert again.metrics.labelled_tenants == {"t1", "t2"}  # seeded from the store
    assert (
        again.send([span("t0", 5, external_id="req-3"), span("t0", 6, external_id="req-new")]).inserted == 2
    )
    found = scrape(again.registry)
    assert sum(found["spanmeter_attempts_total"].values()) == 2
    assert sum(found["spanmeter_requests_total"].values()) == 1  # req-new only
    assert by_tenant(found["spanmeter_cost_usd_total"]) == {OTHER_TENANT: 11 / NANO}


def test_the_summer_caps_tenants_by_its_view_and_ranks_only_while_a_slot_is_free() -> None:
    rows = [
        SpanRow(
            trace_id=n.to_bytes(16, "big"),
            span_id=n.to_bytes(8, "big"),
            start_time_ns=NOW + n,
            received_at_ns=NOW,
            tenant_id=tenant,
            cost_nano_usd=cost,
            prompt_version="v" * 300,  # label values are truncated, as before
            pricing_status="priced",
        )
        for n, (tenant, cost) in enumerate([("a", 5), ("b", 7), ("c", 11), (None, 13)], start=1)
    ]
    summer = CostSummer(TenantView(frozenset({"a"}), rank_unlabelled=True))
    series, spend = summer.sum_rows(rows, [True] * 4)
    assert {labels[-1]: measures[0] for labels, measures in series.items()} == {
        "a": 5,
        OTHER_TENANT: 18,
        "": 13,
    }
    assert all(len(labels[1]) == 128 for labels in series)
    assert spend == {"b": 7, "c": 11}
    summer.configure(TenantView(frozenset({"a", "b"}), rank_unlabelled=False))
    series, spend = summer.sum_rows(rows, [True] * 4)
    assert {labels[-1]: measures[0] for labels, measures in series.items()} == {
        "a": 5,
        "b": 7,
        OTHER_TENANT: 11,
        "": 13,
    }
    assert spend == {}  # every slot used: nothing to rank, nothing sent
    assert summer.observe([WriteResult(duplicates=4)]) is None  # a re-delivery: nothing to say


def test_the_field_names_cover_what_the_summer_reads() -> None:
    for name in ("tenant_id", "cost_nano_usd", "external_request_id", "billable", "outcome"):
        assert name in FIELD_NAMES


def test_the_store_process_sums_without_loading_the_transport() -> None:
    code = (
        "import sys, pickle\n"
        "import spanmeter.service.store_worker\n"
        "from spanmeter.prometheus.cost_sums import CostSummer\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('grpc', 'waitress', 'prometheus_client')"
        " or m.startswith(('spanmeter.receiver', 'spanmeter.ingest')))\n"
        "print(heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
