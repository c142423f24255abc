"""A store for store-process tests: stores nothing, answers after a delay, or fails on demand.

It runs in the store process, which imports it by module path: tests that use it put the
``tests`` directory on the child's ``PYTHONPATH``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from spanmeter.store import RetentionResult, SpanRow, WriteResult
from spanmeter.store.rows import RowValues

__all__ = ["SlowStore"]


class SlowStore:
    """``write_batches`` sleeps ``delay_s`` and then stores every row (or raises ``fail``)."""

    def __init__(self, delay_s: float = 0.0, fail: str | None = None) -> None:
        self.delay_s = delay_s
        self.fail = fail
        self.seen: set[tuple[bytes, bytes]] = set()

    def write_batches(
        self, batches: Sequence[Sequence[SpanRow]], received: Sequence[Sequence[RowValues]] | None = None
    ) -> list[WriteResult]:
        time.sleep(self.delay_s)
        if self.fail:
            raise OSError(self.fail)
        results = []
        for batch in batches:
            fresh = {(row.trace_id, row.span_id) for row in batch} - self.seen
            self.seen |= fresh
            results.append(WriteResult(inserted=len(fresh), duplicates=len(batch) - len(fresh)))
        return results

    def compact_rollups(self, now_ns: int | None = None, *, max_buckets: int = 16) -> int:
        return 0

    def apply_retention(self, now_ns: int, *, raw_days: int, rollup_days: int) -> RetentionResult:
        return RetentionResult()

    def close(self) -> None:
        pass
