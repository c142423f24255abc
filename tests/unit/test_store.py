"""SQLite store: rows, dedupe, attempts vs logical requests, persistence, retention, schema."""

from __future__ import annotations

import random
import sqlite3
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from spanmeter.normalise.record import GenAIRecord
from spanmeter.pricing.result import PriceResult, PricingStatus
from spanmeter.store import MEASURES, ROLLUPS, SpanRow, SpanStore, SQLiteStore, WriteResult
from spanmeter.store.rows import FIELD_NAMES, row_values
from spanmeter.store.tiers import TIERS
from support.store_rows import DAY_NS, NS, T0, make_row, random_rows


@pytest.fixture
def store(tmp_path: Path) -> Any:
    with SQLiteStore(tmp_path / "spanmeter.db") as opened:
        yield opened


def test_sqlite_store_implements_the_protocol(store: SQLiteStore) -> None:
    assert isinstance(store, SpanStore)


def test_from_record_copies_record_and_price() -> None:
    record = GenAIRecord(
        provider="openai",
        request_model="gpt-4o",
        response_model="gpt-4o-2024-08-06",
        operation="chat",
        input_tokens=1200,
        output_tokens=300,
        cache_read_tokens=200,
        endpoint_tag="search",
        prompt_version="v3",
        tenant_id="t1",
        user_id="hashed-user",
        external_request_id="req-1",
        outcome="error",
        error_type="RateLimitError",
        latency_ms=812.5,
        start_time_ns=T0,
        end_time_ns=T0 + NS,
        billable=True,
        issues=["negative cache_write_tokens dropped"],
    )
    price = PriceResult(
        status=PricingStatus.PRICED,
        total_nano_usd=6_500,
        input_nano_usd=2_500,
        output_nano_usd=3_000,
        cache_read_nano_usd=1_000,
        cache_write_nano_usd=0,
        reasoning_nano_usd=0,
        source="genai-prices",
        source_version="0.0.40",
        matched_provider="openai",
        matched_model="gpt-4o",
        effective_date=date(2024, 8, 6),
    )
    row = SpanRow.from_record(
        record, price, trace_id=b"t" * 16, span_id=b"s" * 8, received_at_ns=T0 + 2 * NS, service_name="api"
    )
    assert row.model == "gpt-4o-2024-08-06"
    assert row.data_mode == "real"  # not said on the span: production traffic
    assert (row.cost_nano_usd, row.cache_read_cost_nano_usd, row.pricing_status) == (6_500, 1_000, "priced")
    assert row.pricing_effective_date == "2024-08-06"
    assert row.issues == "negative cache_write_tokens dropped"
    assert (row.outcome, row.error_type, row.service_name) == ("error", "RateLimitError", "api")
    assert row.event_time_ns == T0


def test_from_record_rejects_malformed_ids() -> None:
    with pytest.raises(ValueError, match="16 bytes"):
        SpanRow.from_record(
            GenAIRecord(),
            PriceResult(status=PricingStatus.NO_USAGE),
            trace_id=b"x",
            span_id=b"y" * 8,
            received_at_ns=0,
        )


def test_reopen_keeps_rows_dedupe_and_logical_keys(tmp_path: Path) -> None:
    path = tmp_path / "spanmeter.db"
    rows = [make_row(external_request_id="req-1"), make_row()]
    with SQLiteStore(path) as first:
        assert first.write_batch(rows) == WriteResult(2, 0)
    with SQLiteStore(path) as second:
        assert second.write_batch(rows) == WriteResult(0, 2)
        second.write_batch([make_row(external_request_id="req-1")])  # a retry after the restart
        top = second.top("endpoint_tag", T0, T0 + DAY_NS)
        assert (top.attempts, top.logical_requests) == (3, 2)
        assert [r.external_request_id for r in second.iter_requests()] == ["req-1", None, "req-1"]


def test_retention_deletes_only_old_data(tmp_path: Path) -> None:
    now = T0 + 19 * DAY_NS  # now - 5 days starts a 4-week bucket (epoch-aligned, as T0 + 14 days)
    with SQLiteStore(tmp_path / "spanmeter.db") as store:
        ages = [9.5, 6, 4, 1, 0.5]  # days before now
        rows = [
            make_row(
                start_time_ns=now - int(age * DAY_NS), external_request_id=f"r{age}", cost_nano_usd=10**i
            )
            for i, age in enumerate(ages)
        ]
        store.write_batch(rows)
        result = store.apply_retention(now, raw_days=3, rollup_days=5, chunk_rows=1)
        assert result.requests == 3
        assert result.logical_requests == 3
        assert [r.cost_nano_usd for r in store.iter_requests()] == [1_000, 10_000]
        # rollups: the 9.5- and 6-day-old buckets are gone, the 4-day-old one is kept
        top = store.top("endpoint_tag", now - 30 * DAY_NS, now, data_mode=None)
        assert top.cost_nano_usd == 100 + 1_000 + 10_000
        assert store.top("user_id", now - 30 * DAY_NS, now).cost_nano_usd == 100 + 1_000 + 10_000
        # the rollup cutoff rounds down to 4 weeks, so that every tier keeps the same spans:
        # 3 days before now rounds to T0 + 14 days, and the 4-day-old bucket stays
        assert store.apply_retention(now, raw_days=3, rollup_days=3).rollup_rows == 0
        assert store.top("user_id", now - 30 * DAY_NS, now).cost_nano_usd == 100 + 1_000 + 10_000
        # a logical key older than raw retention is forgotten: a late retry counts again
        store.write_batch([make_row(start_time_ns=now, external_request_id="r6", cost_nano_usd=0)])
        assert store.top("endpoint_tag", now, now + DAY_NS).logical_requests == 1
        with pytest.raises(ValueError, match="at least 1"):
            store.apply_retention(now, raw_days=0, rollup_days=5)


def test_stats_counts_rows_and_bytes(store: SQLiteStore) -> None:
    store.write_batch([make_row(external_request_id="r"), make_row()])
    stats = store.stats()
    assert (stats.requests, stats.logical_requests) == (2, 1)
    assert stats.rollup_rows["rollup_minute"] == 1
    assert stats.size_bytes > 0


def test_schema_matches_the_row_and_rollup_definitions(store: SQLiteStore) -> None:
    conn = sqlite3.connect(str(store.path))
    try:

        def columns(table: str) -> tuple[str, ...]:
            return tuple(row[1] for row in conn.execute(f"PRAGMA table_info({table})"))

        assert columns("requests") == ("id", *FIELD_NAMES)
        for spec in ROLLUPS:
            assert columns(spec.table) == (spec.bucket_column, "seq", *spec.dimensions, *MEASURES)
        for tier in TIERS:
            assert columns(tier.table) == (
                "dimension",
                tier.bucket_column,
                "value",
                "environment",
                "data_mode",
                *MEASURES,
            )
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        conn.close()


def test_closed_store_refuses_calls(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "spanmeter.db")
    store.close()
    store.close()
    with pytest.raises(RuntimeError, match="closed"):
        store.write_batch([make_row()])
    with pytest.raises(RuntimeError, match="closed"):
        store.count_requests()
    with pytest.raises(ValueError, match="file"):
        SQLiteStore(":memory:")


def test_received_value_tuples_store_exactly_what_the_rows_store(tmp_path: Path) -> None:
    """The store process hands over the tuples its rows were built from; binding those must
    store the same rows, rollups, logical requests and results as reading the rows back,
    on the common path and on the re-delivery path alike."""
    rng = random.Random(5)
    rows = random_rows(rng, 900)
    transactions = [
        [rows[0:300], rows[300:600]],
        [rows[600:900], rows[250:350]],  # re-deliveries: the careful path
    ]
    dumps: list[tuple[Any, ...]] = []
    for use_received in (False, True):
        with SQLiteStore(tmp_path / f"received-{use_received}.db") as store:
            results = [
                store.write_received_batches(
                    batches, [[row_values(row) for row in batch] for batch in batches]
                )
                if use_received
                else store.write_batches(batches)
                for batches in transactions
            ]
            conn = sqlite3.connect(tmp_path / f"received-{use_received}.db")
            try:
                tables = tuple(
                    sorted(conn.execute(f"SELECT * FROM {table}").fetchall(), key=repr)
                    for table in ("requests", "logical_requests", *(spec.table for spec in ROLLUPS))
                )
            finally:
                conn.close()
            dumps.append((results, list(store.iter_requests()), tables))
    assert dumps[0] == dumps[1]
    assert [result.inserted for result in dumps[1][0][1]] == [300, 0]
    assert len(dumps[1][1]) == 900
