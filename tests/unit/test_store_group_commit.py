"""GroupCommitWriter: one writer thread, many submitters, durable before the future resolves."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import Future
from pathlib import Path

import pytest

from spanmeter.store import GroupCommitWriter, SpanRow, SQLiteStore, StoreBusy, WriterClosed, WriteResult
from spanmeter.store.sqlite.writer import RowWriter
from support.store_rows import DAY_NS, T0, make_row


class CountingStore:
    """A real store behind a gate: counts transactions, and can hold the first one back."""

    def __init__(self, store: SQLiteStore, *, gated: bool = False) -> None:
        self.store = store
        self.transactions = 0
        self.batches_per_transaction: list[int] = []
        self.gate = threading.Event()
        self.entered = threading.Event()
        if not gated:
            self.gate.set()

    def write_batches(self, batches: Sequence[Sequence[SpanRow]]) -> list[WriteResult]:
        self.entered.set()
        assert self.gate.wait(10)
        self.transactions += 1
        self.batches_per_transaction.append(len(batches))
        return self.store.write_batches(batches)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLiteStore]:
    with SQLiteStore(tmp_path / "spanmeter.db") as opened:
        yield opened


def test_concurrent_submitters_all_resolved_in_fewer_transactions(store: SQLiteStore) -> None:
    counting = CountingStore(store, gated=True)
    writer = GroupCommitWriter(counting, max_pending_rows=1_000_000)
    threads, submits_each, rows_each = 8, 25, 20
    futures: list[list[Future[WriteResult]]] = [[] for _ in range(threads)]
    start = threading.Barrier(threads)

    def submitter(index: int) -> None:
        start.wait()
        for _ in range(submits_each):
            futures[index].append(writer.submit([make_row() for _ in range(rows_each)]))

    workers = [threading.Thread(target=submitter, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    counting.gate.set()  # everything submitted while the first transaction was held back
    results = [future.result(timeout=10) for per_thread in futures for future in per_thread]
    writer.close()

    assert results == [WriteResult(inserted=rows_each)] * (threads * submits_each)
    assert store.count_requests() == threads * submits_each * rows_each
    assert store.top("endpoint_tag", T0, T0 + DAY_NS).attempts == threads * submits_each * rows_each
    assert counting.transactions == writer.transactions
    assert counting.transactions < threads * submits_each
    assert max(counting.batches_per_transaction) > 1
    assert writer.pending_rows == 0


def test_futures_resolve_only_after_commit(store: SQLiteStore) -> None:
    counting = CountingStore(store, gated=True)
    with GroupCommitWriter(counting) as writer:
        future = writer.submit([make_row()])
        assert counting.entered.wait(10)
        assert not future.done()
        assert store.count_requests() == 0
        counting.gate.set()
        assert future.result(timeout=10) == WriteResult(1, 0)
        assert store.count_requests() == 1


def test_store_busy_past_the_bound(store: SQLiteStore) -> None:
    counting = CountingStore(store, gated=True)
    writer = GroupCommitWriter(counting, max_pending_rows=10, retry_after_s=2.5)
    first = writer.submit([make_row() for _ in range(10)])
    assert counting.entered.wait(10)
    with pytest.raises(StoreBusy) as busy:
        writer.submit([make_row()])
    assert busy.value.retry_after_s == 2.5
    assert writer.pending_rows == 10  # rows being committed still count against the bound
    counting.gate.set()
    first.result(timeout=10)
    assert writer.submit([make_row()]).result(timeout=10) == WriteResult(1, 0)
    writer.close()


def test_a_batch_larger_than_the_bound_is_accepted_when_nothing_is_pending(store: SQLiteStore) -> None:
    with GroupCommitWriter(store, max_pending_rows=5) as writer:
        assert writer.submit([make_row() for _ in range(8)]).result(timeout=10) == WriteResult(8, 0)


def test_close_drains_everything_pending(store: SQLiteStore) -> None:
    counting = CountingStore(store, gated=True)
    writer = GroupCommitWriter(counting)
    futures = [writer.submit([make_row(), make_row()]) for _ in range(50)]
    assert counting.entered.wait(10)
    closer = threading.Thread(target=writer.close)
    closer.start()
    counting.gate.set()
    closer.join(10)
    assert not closer.is_alive()
    assert all(future.done() and future.result() == WriteResult(2, 0) for future in futures)
    assert store.count_requests() == 100
    with pytest.raises(WriterClosed):
        writer.submit([make_row()])
    writer.close()  # idempotent


def test_failing_commit_fails_the_futures_and_stores_nothing(
    store: SQLiteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_: object) -> None:
        raise OSError("disk full")

    counting = CountingStore(store, gated=True)
    writer = GroupCommitWriter(counting)
    futures = [writer.submit([make_row(external_request_id="r")]) for _ in range(5)]
    assert counting.entered.wait(10)
    monkeypatch.setattr(RowWriter, "_append_rollup", broken)  # fails after the rows were inserted
    counting.gate.set()
    for future in futures:
        with pytest.raises(OSError, match="disk full"):
            future.result(timeout=10)
    monkeypatch.undo()
    assert store.count_requests() == 0  # rolled back: rows, logical keys and rollups together
    assert store.stats().logical_requests == 0
    assert writer.pending_rows == 0
    # the writer survives a failed transaction
    assert writer.submit([make_row()]).result(timeout=10) == WriteResult(1, 0)
    writer.close()


def test_cancelled_future_is_not_written(store: SQLiteStore) -> None:
    counting = CountingStore(store, gated=True)
    writer = GroupCommitWriter(counting)
    first = writer.submit([make_row()])
    assert counting.entered.wait(10)
    cancelled = writer.submit([make_row()])
    assert cancelled.cancel()
    counting.gate.set()
    first.result(timeout=10)
    writer.close()
    assert store.count_requests() == 1


def test_empty_submit_resolves_at_once(store: SQLiteStore) -> None:
    with GroupCommitWriter(store) as writer:
        assert writer.submit([]).result(timeout=0) == WriteResult()
        assert writer.transactions == 0


def test_on_idle_runs_between_transactions_and_survives_errors(store: SQLiteStore) -> None:
    calls = threading.Semaphore(0)

    def maintenance() -> None:
        calls.release()
        raise RuntimeError("maintenance hiccup")

    with GroupCommitWriter(store, on_idle=maintenance, idle_interval_s=0.01) as writer:
        assert calls.acquire(timeout=10)
        assert calls.acquire(timeout=10)  # still called after raising
        assert writer.submit([make_row()]).result(timeout=10) == WriteResult(1, 0)


def test_maintenance_takes_at_most_a_fifth_of_a_busy_writer_and_still_runs(store: SQLiteStore) -> None:
    steps: list[tuple[float, float]] = []

    def maintenance() -> bool:  # endless work, 50 ms a step
        started = time.monotonic()
        time.sleep(0.05)
        steps.append((started, time.monotonic()))
        return True

    with GroupCommitWriter(store, on_idle=maintenance, idle_interval_s=0.05) as writer:
        time.sleep(0.5)
        assert len(steps) >= 4  # idle: back to back
        started, batches = time.monotonic(), 0
        while time.monotonic() - started < 3.0:
            writer.submit([make_row()]).result(timeout=10)
            batches += 1
        ended = time.monotonic()
    busy = [(a, b) for a, b in steps if a >= started and b <= ended]
    assert len(busy) >= 2 and sum(b - a for a, b in busy) <= 0.2 * (ended - started) + 0.1, busy
    assert batches > 4 * len(busy)


def test_invalid_arguments() -> None:
    with pytest.raises(ValueError, match="max_pending_rows"):
        GroupCommitWriter(CountingStore.__new__(CountingStore), max_pending_rows=0)
    with pytest.raises(ValueError, match="idle_interval_s"):
        GroupCommitWriter(CountingStore.__new__(CountingStore), idle_interval_s=0)


def test_a_batch_no_store_takes_fails_alone_in_its_transaction(store: SQLiteStore) -> None:
    from spanmeter.store.batches import RefusedBatch, RefusedBatches

    counting = CountingStore(store, gated=True)
    writer = GroupCommitWriter(counting)
    held = writer.submit([make_row()])
    assert counting.entered.wait(10)  # the writer holds the first transaction: the rest share one
    good = writer.submit([make_row() for _ in range(3)])
    wide = writer.submit([make_row(), make_row(input_tokens=2**63)])
    short_id = make_row()
    short_id.span_id = b"\x01"
    bad_id = writer.submit([short_id])
    counting.gate.set()
    assert held.result(timeout=10).inserted == 1
    assert good.result(timeout=10).inserted == 3
    with pytest.raises(RefusedBatch, match="input_tokens does not fit"):
        wide.result(timeout=10)
    with pytest.raises(RefusedBatch, match="span_id 8 bytes"):
        bad_id.result(timeout=10)
    writer.close()
    assert store.count_requests() == 4
    # the store itself refuses before writing anything, naming each batch
    with pytest.raises(RefusedBatches) as refused:
        store.write_batches([[make_row()], [make_row(end_time_ns=-(2**64))]])
    assert set(refused.value.reasons) == {1}
    assert store.count_requests() == 4
