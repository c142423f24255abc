"""Counters behind :meth:`PriceBook.stats`: how many spans got each status, which models were unknown.

Pricing runs on several threads (the app's request threads, the exporter's batch thread,
the receiver's workers) and a priced span should cost microseconds, so the per-status count
takes no lock: each thread increments its own cells, and readers add the cells up. Unknown
model names are rarer and need a bounded, shared table, so they take a lock.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from .result import PricingStatus

__all__ = ["PricingStats"]

_STATUSES: Final = tuple(PricingStatus)


@dataclass(frozen=True, slots=True)
class PricingStats:
    """A snapshot of what a :class:`~spanmeter.pricing.PriceBook` has priced so far."""

    counts: Mapping[str, int]
    """Results by :class:`PricingStatus` value, every status present (zero when unseen)."""
    unknown_models: Mapping[tuple[str | None, str], int]
    """``(provider, model)`` as found on spans that no price matched, with how often. Counted
    on every lookup that found no price, also when a reported cost then stood in."""
    unknown_models_dropped: int
    """Unknown lookups not itemised because the table of names was full (bounded so that
    junk model names cannot grow memory)."""

    @property
    def total(self) -> int:
        """All results counted."""
        return sum(self.counts.values())


class _Cells:
    """One thread's counts; only that thread writes them."""

    __slots__ = ("counts", "thread")

    def __init__(self, thread: threading.Thread) -> None:
        self.counts: dict[PricingStatus, int] = dict.fromkeys(_STATUSES, 0)
        self.thread: weakref.ref[threading.Thread] = weakref.ref(thread)

    def alive(self) -> bool:
        thread = self.thread()
        return thread is not None and thread.is_alive()


class StatusCounter:
    """Lock-free (on the counting side) per-status counts plus a bounded unknown-name table."""

    def __init__(self, max_unknown_names: int) -> None:
        """Create empty counters.

        Args:
            max_unknown_names: Distinct ``(provider, model)`` names itemised at most.
        """
        self._local = threading.local()
        self._lock = threading.Lock()
        self._live: list[_Cells] = []
        # counts of threads that have ended, folded in so ``_live`` stays as long as the
        # number of live threads even when a server churns through threads
        self._retired: dict[PricingStatus, int] = dict.fromkeys(_STATUSES, 0)
        self._unknown: dict[tuple[str | None, str], int] = {}
        self._unknown_dropped = 0
        self._max_unknown = max_unknown_names

    def cells(self) -> dict[PricingStatus, int]:
        """The calling thread's count cells (``cells()[status] += 1`` to count)."""
        try:
            return self._local.cells.counts
        except AttributeError:
            return self._register()

    def _register(self) -> dict[PricingStatus, int]:
        cells = _Cells(threading.current_thread())
        with self._lock:
            still_live: list[_Cells] = []
            for other in self._live:
                if other.alive():
                    still_live.append(other)
                else:
                    for status, n in other.counts.items():
                        self._retired[status] += n
            still_live.append(cells)
            self._live = still_live
        self._local.cells = cells
        return cells.counts

    def unknown(self, provider: str | None, model: str) -> None:
        """Count one lookup of a model no price matched."""
        key = (provider, model)
        with self._lock:
            n = self._unknown.get(key)
            if n is not None:
                self._unknown[key] = n + 1
            elif len(self._unknown) < self._max_unknown:
                self._unknown[key] = 1
            else:
                self._unknown_dropped += 1

    def snapshot(self) -> PricingStats:
        """Current totals. Counts from other threads may lag by the spans in flight."""
        with self._lock:
            totals = dict(self._retired)
            for cells in self._live:
                for status, n in list(cells.counts.items()):
                    totals[status] += n
            unknown = dict(self._unknown)
            dropped = self._unknown_dropped
        return PricingStats(
            counts={status.value: n for status, n in totals.items()},
            unknown_models=unknown,
            unknown_models_dropped=dropped,
        )
