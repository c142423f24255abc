"""The store process: batches committed in a child process, answered per batch after the
commit, bounded, closed cleanly, failures surfacing as retryable errors, and idle-time
compaction run one step at a time so a batch never waits for a whole round of it."""

from __future__ import annotations

import os
import signal
import sqlite3
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from spanmeter.service.store_process import StoreError, StoreProcessClient, StoreProcessSettings
from spanmeter.store import SpanRow, SQLiteStore, StoreBusy, WriterClosed, WriteResult
from spanmeter.store.rows import RowValues, row_values

TESTS_DIR = Path(__file__).resolve().parents[1]
NOW = time.time_ns()


def values(n: int, *, first: int = 1) -> list[RowValues]:
    """``n`` priced rows with distinct ids, as ingest ships them."""
    rows = [
        SpanRow(
            trace_id=i.to_bytes(16, "big"),
            span_id=i.to_bytes(8, "big"),
            start_time_ns=NOW - i * 1_000,
            received_at_ns=NOW,
            provider="openai",
            model="gpt-4o",
            input_tokens=100,
            output_tokens=10,
            endpoint_tag="search",
            cost_nano_usd=350_000,
            pricing_status="priced",
        )
        for i in range(first, first + n)
    ]
    return [row_values(row) for row in rows]


@pytest.fixture
def child_imports_tests(monkeypatch: pytest.MonkeyPatch) -> None:
    """Let the store process import ``support.slow_store``."""
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join(filter(None, [str(TESTS_DIR), os.environ.get("PYTHONPATH")]))
    )


@pytest.fixture
def clients() -> Iterator[list[StoreProcessClient]]:
    started: list[StoreProcessClient] = []
    yield started
    for client in started:
        client.close(timeout=10)


def start(clients: list[StoreProcessClient], factory: Any, **kwargs: Any) -> StoreProcessClient:
    on_exit = kwargs.pop("on_exit", None)
    client = StoreProcessClient(StoreProcessSettings(factory, **kwargs), on_exit=on_exit, start_timeout_s=30)
    clients.append(client)
    return client.start()


def test_batches_are_committed_then_answered_with_dedupe(
    tmp_path: Path, clients: list[StoreProcessClient]
) -> None:
    db = tmp_path / "spans.db"
    client = start(clients, partial(SQLiteStore, str(db)))
    futures = [client.submit(values(50, first=1 + 50 * i)) for i in range(4)]
    assert [f.result(timeout=30) for f in futures] == [WriteResult(inserted=50)] * 4
    # answered only after the commit: another connection sees the rows already
    with sqlite3.connect(db) as conn:
        assert conn.execute("select count(*) from requests").fetchone() == (200,)
    again = client.submit(values(60, first=171)).result(timeout=30)  # 30 stored already
    assert again == WriteResult(inserted=30, duplicates=30)
    assert client.pending_rows == 0
    assert client.close() == 0
    with SQLiteStore(db) as store:
        assert store.count_requests() == 230


def test_rows_over_the_bound_are_refused_retryably(
    child_imports_tests: None, clients: list[StoreProcessClient]
) -> None:
    from support.slow_store import SlowStore

    client = start(clients, partial(SlowStore, 0.5), max_pending_rows=100)
    first = client.submit(values(80))  # accepted: nothing pending
    with pytest.raises(StoreBusy) as busy:
        client.submit(values(30, first=81))  # 80 + 30 > 100 while the first is committing
    assert busy.value.retry_after_s == 1.0
    assert client.pending_rows == 80
    big = values(150, first=200)
    assert first.result(timeout=30).inserted == 80
    assert client.submit(big).result(timeout=30).inserted == 150  # alone, over the bound: accepted


def test_a_failed_commit_fails_its_batches_and_the_process_lives_on(
    child_imports_tests: None, clients: list[StoreProcessClient]
) -> None:
    from support.slow_store import SlowStore

    client = start(clients, partial(SlowStore, 0.0, "disk full"))
    with pytest.raises(StoreError, match="OSError: disk full"):
        client.submit(values(5)).result(timeout=30)
    assert client.alive
    assert client.close() == 0


def test_a_batch_is_committed_between_two_compaction_steps(
    tmp_path: Path, clients: list[StoreProcessClient], child_imports_tests: None
) -> None:
    from support.slow_compaction_store import SlowCompactionStore

    db = tmp_path / "spans.db"
    # 20 steps of 1 s each: a whole round of 16 steps would keep a batch waiting 16 s
    client = start(clients, partial(SlowCompactionStore, str(db), 20, 1.0))
    time.sleep(2.5)  # idle for a second: compaction has started
    started = time.monotonic()
    assert client.submit(values(50)).result(timeout=60) == WriteResult(inserted=50)
    assert time.monotonic() - started < 8.0  # one step (1 s) and the commit, not a round
    with sqlite3.connect(db) as conn:
        assert conn.execute("select count(*) from requests").fetchone() == (50,)


def test_compaction_takes_at_most_a_fifth_of_a_busy_store_process_and_still_runs(
    tmp_path: Path, clients: list[StoreProcessClient], child_imports_tests: None
) -> None:
    from support.slow_compaction_store import SlowCompactionStore

    db, log = tmp_path / "spans.db", tmp_path / "steps.log"
    # endless steps of 0.2 s: one between every two batches would cut ingest to a trickle
    client = start(clients, partial(SlowCompactionStore, str(db), 10_000, 0.2, str(log)))
    time.sleep(2.0)  # idle for a second: steps run back to back
    idle_steps = len(log.read_text().splitlines())
    assert idle_steps >= 3
    started, batches, waits = time.monotonic(), 0, []
    while time.monotonic() - started < 6.0:  # an exporter with one request in flight
        sent = time.monotonic()
        client.submit(values(10, first=1 + 10 * batches)).result(timeout=60)
        waits.append(time.monotonic() - sent)
        batches += 1
    ended = time.monotonic()
    steps = [tuple(map(float, line.split())) for line in log.read_text().splitlines()]
    busy = [(a, b) for a, b in steps if a >= started and b <= ended]
    stepping = sum(b - a for a, b in busy)
    assert len(busy) >= 2 and stepping <= 0.2 * (ended - started) + 0.25, (len(busy), stepping)
    assert batches > 6 * len(busy), (batches, len(busy))  # one step per batch would be 1:1
    assert max(waits) < 2.0  # a batch waits for one step at most, never a round
    with sqlite3.connect(db) as conn:
        assert conn.execute("select count(*) from requests").fetchone() == (10 * batches,)


def test_close_commits_everything_sent(tmp_path: Path, clients: list[StoreProcessClient]) -> None:
    client = start(clients, partial(SQLiteStore, str(tmp_path / "spans.db")))
    futures = [client.submit(values(100, first=1 + 100 * i)) for i in range(10)]
    assert client.close() == 0
    assert sum(f.result(timeout=0).inserted for f in futures) == 1000
    with pytest.raises(WriterClosed):
        client.submit(values(1))


def test_a_dead_store_process_fails_waiting_batches_and_is_reported(
    child_imports_tests: None, clients: list[StoreProcessClient]
) -> None:
    from support.slow_store import SlowStore

    exits: list[int | None] = []
    client = start(clients, partial(SlowStore, 60.0), on_exit=exits.append)
    waiting = client.submit(values(10))
    time.sleep(0.2)  # the batch is being committed
    assert client.pid is not None
    os.kill(client.pid, signal.SIGKILL)
    with pytest.raises(WriterClosed):
        waiting.result(timeout=30)
    deadline = time.monotonic() + 10
    while not exits and time.monotonic() < deadline:
        time.sleep(0.01)
    assert exits == [-signal.SIGKILL] or exits == [None]
    assert not client.alive
    with pytest.raises(WriterClosed):
        client.submit(values(1))


def test_a_store_that_cannot_open_fails_the_start(clients: list[StoreProcessClient]) -> None:
    with pytest.raises(RuntimeError, match="store process failed to start: ValueError"):
        start(clients, partial(SQLiteStore, ":memory:"))


def test_a_batch_no_store_takes_is_refused_alone_in_its_group_commit(
    tmp_path: Path, child_imports_tests: None, clients: list[StoreProcessClient]
) -> None:
    from spanmeter.store.batches import RefusedBatch
    from support.gated_store import GatedSQLiteStore

    db, gate = tmp_path / "spans.db", tmp_path / "gate"
    gate.touch()
    client = start(clients, partial(GatedSQLiteStore, str(db), str(gate)))
    held = client.submit(values(3, first=1))  # its commit waits at the gate
    time.sleep(0.5)  # the child is in that commit: the next batches share one transaction
    good = client.submit(values(4, first=10))
    bad_rows = values(2, first=20)
    bad_rows[1] = (*bad_rows[1][:2], 2**64 - 1, *bad_rows[1][3:])  # start_time_ns past int64
    bad = client.submit(bad_rows)
    other = client.submit(values(5, first=30))
    gate.unlink()
    assert held.result(timeout=30).inserted == 3
    with pytest.raises(RefusedBatch, match="start_time_ns does not fit a signed 64-bit integer"):
        bad.result(timeout=30)
    assert good.result(timeout=30).inserted == 4
    assert other.result(timeout=30).inserted == 5
    assert client.alive
    with sqlite3.connect(db) as conn:
        assert conn.execute("select count(*) from requests").fetchone() == (12,)
