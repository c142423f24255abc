"""The store counts one provider call once across requests, transactions and re-deliveries.

Two spans of one call (same provider and response id) can reach the store in different
OTLP requests (another replica's, or across an export batch boundary): the later one is
demoted to not billable, naming the span that carries the call, before rollups, budgets or
anything else count it. A re-delivered span is not a second span of its call.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from spanmeter.store import SQLiteStore
from support.rows import span_row

NS = 1_000_000_000
T0 = 1_780_000_000 * NS


def call(start: int, response_id: str | None, provider: str = "anthropic", **changes: object):
    return span_row(
        start,
        provider=provider,
        response_id=response_id,
        pricing_status="priced",
        cost_nano_usd=1_000,
        **changes,
    )


def billable(path: Path) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(
            "SELECT response_id, billable, pricing_status, cost_nano_usd, duplicate_of, not_billable_reason"
            " FROM requests ORDER BY start_time_ns"
        ).fetchall()
    finally:
        conn.close()


def test_a_second_span_of_a_call_in_a_later_request_is_demoted(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "s.db")
    first = call(T0, "msg_1")
    store.write_batch([first])
    # the SDK's own span of the same call, a few ms later, in another request and trace
    second = call(T0 + 5_000_000, "msg_1")
    result = store.write_batch([second, call(T0 + 6_000_000, "msg_2")])
    assert result.inserted == 2
    top = store.top("provider", T0 - 3600 * NS, T0 + 3600 * NS)
    assert (top.attempts, top.cost_nano_usd) == (2, 2_000)
    store.close()
    rows = billable(tmp_path / "s.db")
    assert rows[1] == ("msg_1", 0, "not_billable", None, first.span_id.hex(), "same_response_id")
    assert rows[0][1] == 1 and rows[2][1] == 1


def test_across_a_minute_boundary_and_within_one_transaction(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "s.db")
    edge = (T0 // (60 * NS) + 1) * 60 * NS  # the two spans straddle a minute
    store.write_batches([[call(edge - NS // 10, "msg_3")], [call(edge + NS // 10, "msg_3")]])
    top = store.top("provider", T0 - 3600 * NS, T0 + 3600 * NS)
    assert (top.attempts, top.cost_nano_usd) == (1, 1_000)
    store.close()


def test_a_redelivery_is_not_a_second_span(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "s.db")
    row = call(T0, "msg_4")
    store.write_batch([row])
    again = store.write_batch([row])
    assert (again.inserted, again.duplicates) == (0, 1)
    store.close()
    assert billable(tmp_path / "s.db") == [("msg_4", 1, "priced", 1_000, None, None)]


def test_other_providers_and_rows_without_response_id_are_left_alone(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "s.db")
    store.write_batch(
        [call(T0, "x"), call(T0 + 1, "x", provider="openai"), call(T0 + 2, None), call(T0 + 3, None)]
    )
    top = store.top("provider", T0 - 3600 * NS, T0 + 3600 * NS)
    assert top.attempts == 4
    store.close()


def test_retention_forgets_old_calls(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "s.db")
    store.write_batch([call(T0, "msg_5")])
    store.apply_retention(T0 + 40 * 86_400 * NS, raw_days=30, rollup_days=400)
    store.close()
    conn = sqlite3.connect(tmp_path / "s.db")
    assert conn.execute("SELECT count(*) FROM provider_calls").fetchone() == (0,)
    conn.close()
