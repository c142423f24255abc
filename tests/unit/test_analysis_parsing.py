"""Parsers and validators of the analysis commands: weeks, periods, ranges, PII shapes."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from spanmeter.analysis.common import nearest_rank, parse_range
from spanmeter.analysis.quality import looks_like_pii
from spanmeter.analysis.report_weekly import parse_week
from spanmeter.analysis.revenue import parse_period
from spanmeter.analysis.window import query_scope
from spanmeter.analysis.window_range import resolve_window
from spanmeter.money import usd
from spanmeter.synthetic import to_ns


def ns(*parts: int) -> int:
    return to_ns(datetime(*parts, tzinfo=timezone.utc))  # type: ignore[misc]


def test_weeks_run_monday_to_monday() -> None:
    assert parse_week("2026-W11") == parse_week("2026-03-15") == parse_range("2026-03-09..2026-03-16")
    last = parse_week(None, now_ns=ns(2026, 3, 18, 15))
    assert (last.start_ns, last.end_ns) == (ns(2026, 3, 9), ns(2026, 3, 16))
    with pytest.raises(ValueError):
        parse_week("March")


def test_revenue_periods() -> None:
    assert parse_period("2026-12") == (ns(2026, 12, 1), ns(2027, 1, 1))
    assert parse_period("2026-W01") == (ns(2025, 12, 29), ns(2026, 1, 5))
    assert parse_period("2026-03-02") == (ns(2026, 3, 2), ns(2026, 3, 3))
    assert parse_period("2026-03-02..2026-03-05T12:00") == (ns(2026, 3, 2), ns(2026, 3, 5, 12))
    for bad in ("2026-13", "Q1", "2026-03-05..2026-03-01"):
        with pytest.raises(ValueError):
            parse_period(bad)


def test_windows() -> None:
    assert resolve_window("2026-03-01..2026-03-02") == parse_range(
        "2026-03-01T00:00Z..2026-03-02T00:00+00:00"
    )
    assert resolve_window(None, "1h", now_ns=ns(2026, 3, 1, 5)).start_ns == ns(2026, 3, 1, 4)
    with pytest.raises(ValueError):
        resolve_window("2026-03-01..2026-03-02", "1h")
    with pytest.raises(ValueError):
        parse_range("2026-03-01")


def test_environment_and_data_mode_filters_override_the_parameters() -> None:
    where = {"tenant_id": "t1", "environment": "staging", "data_mode": "synthetic"}
    assert query_scope(where, "prod", "real") == {
        "where": {"tenant_id": "t1"},
        "environment": "staging",
        "data_mode": "synthetic",
    }
    assert where["environment"] == "staging"  # the caller's filters are left as they were
    assert query_scope({"model": "m"}, "prod", "real") == {
        "where": {"model": "m"},
        "environment": "prod",
        "data_mode": "real",
    }
    assert query_scope(None, None, None) == {"where": {}, "environment": None, "data_mode": None}


@pytest.mark.parametrize(
    ("value", "pii"),
    [
        ("jane.doe@example.com", True),
        ("+1-555-0123", True),
        ("(555) 010 2030", True),
        ("uh_5f0c1e2d3c4b5a6978695a4b", False),
        ("t_0012", False),
        ("tenant-2026", False),
        ("4815162342", False),
        ("", False),
        (None, False),
    ],
)
def test_pii_shapes(value: str | None, pii: bool) -> None:
    assert looks_like_pii(value) is pii


def test_money_and_percentiles() -> None:
    assert usd(0) == "0.000000000" and usd(-1) == "-0.000000001" and usd(1_500_000_000) == "1.500000000"
    assert (
        nearest_rank([1, 2, 3, 4], 50) == 2
        and nearest_rank([1, 2, 3, 4], 99) == 4
        and nearest_rank([], 50) is None
    )


def test_store_queries_reject_what_no_rollup_has(tmp_path: object) -> None:
    from pathlib import Path

    from spanmeter.store import SQLiteStore

    with SQLiteStore(Path(str(tmp_path)) / "v.db") as store:
        with pytest.raises(ValueError, match="cannot group"):
            store.aggregate(("user_id", "model"), 0, 10**18)
        with pytest.raises(ValueError, match="cannot group"):
            store.aggregate(("endpoint_tag",), 0, 10**18, where={"environment": "prod"})
        with pytest.raises(ValueError, match="unknown"):
            list(store.scan_requests(0, 10**18, columns=("secret",)))
        with pytest.raises(ValueError, match="cannot filter"):
            list(store.scan_requests(0, 10**18, columns=("cost_nano_usd",), where={"cost_nano_usd": "1"}))
        assert store.aggregate((), 0, 10**18).total.attempts == 0
