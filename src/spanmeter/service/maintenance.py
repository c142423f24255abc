"""Process upkeep for the receiver: retention on a timer, and garbage-collector settings.

Retention deletes in short transactions of its own, so it must run where the store is
written: next to the group-commit writer in this process, or inside the store process
(:mod:`spanmeter.service.store_process`) when that one owns the writes.

The collector: ingest allocates a dozen container objects per span (attribute dicts,
records, row tuples), so with the default thresholds CPython runs a generation-0 collection
every ~700 allocations and regularly a full one, which walks every object the process holds
(the price tables, protobuf descriptors, gRPC...). Measured under load: ~1.9 us a span in
the receiver process and ~2.3 us a row in the store process, some 8% of the whole. A server
process therefore freezes what startup built (it lives as long as the process anyway) and
collects the young generation every 20,000 net allocations instead: ingest's objects die by
reference counting long before, so collections become rare and short.

Example::

    retention = RetentionLoop(store, raw_days=30, rollup_days=400).start()
    ...
    retention.stop()
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from typing import Final

from ..store import SpanStore

__all__ = ["GC_GEN0_THRESHOLD", "RETENTION_EVERY_S", "RetentionLoop", "tune_gc"]

_logger = logging.getLogger(__name__)

RETENTION_EVERY_S: Final = 3600.0
"""Pause between two retention passes: expiry is by the day, an hour late is harmless."""
GC_GEN0_THRESHOLD: Final = 20_000
"""Net allocations between two young-generation collections in a server process."""


def tune_gc(gen0_threshold: int = GC_GEN0_THRESHOLD) -> None:
    """Freeze every object alive now and collect the young generation less often.

    For a process's entry point only (``spanmeter serve``, the store process), once startup
    is done: it changes the whole process's collector, so libraries and tests never call it.
    """
    gc.collect()
    gc.freeze()
    _, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(gen0_threshold, gen1, gen2)


class RetentionLoop:
    """A daemon thread applying the store's retention every ``every_s`` seconds.

    Args:
        store: The store to trim; its ``apply_retention`` works in short transactions.
        raw_days: Days raw rows are kept.
        rollup_days: Days rollups are kept.
        every_s: Pause between passes (the first pass comes after one pause, so that a
            restart loop never turns into a retention loop).
    """

    def __init__(
        self, store: SpanStore, *, raw_days: int, rollup_days: int, every_s: float = RETENTION_EVERY_S
    ) -> None:
        self._store = store
        self._raw_days = raw_days
        self._rollup_days = rollup_days
        self._every_s = every_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="spanmeter-retention", daemon=True)

    def start(self) -> RetentionLoop:
        """Start the timer thread; returns self."""
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the timer; waits for a pass in progress (bounded by ``timeout``). Idempotent."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.wait(self._every_s):
            try:
                self._store.apply_retention(
                    time.time_ns(), raw_days=self._raw_days, rollup_days=self._rollup_days
                )
            except Exception:
                _logger.exception("retention failed; will retry in %.0f s", self._every_s)
