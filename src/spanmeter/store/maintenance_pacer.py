"""When a store's writer may run a step of maintenance (rollup compaction) beside ingest.

One thread both commits exports and compacts (the SQLite store process, the
:class:`~spanmeter.store.group_commit.GroupCommitWriter`): while a compaction step runs, the
batches that arrive wait. Steps are short transactions, yet reading queries slow them
down several times over, and a writer that ran step after step whenever it found a free
moment gave ingest what the steps left: measured, an exporter fell to a fifth of its rate
behind the steps while the API's queries read the same file
(``bench/ingest_under_api_load.py``). Compaction only keeps queries fast and the rollups
small (queries are exact at every stage), so it can wait; but not forever, or the rollups
of a receiver that is never idle grow without end.

The rule: while the writer is idle, steps run back to back; once a batch has arrived
since the last step, the next one waits until the steps have taken at most ``share`` of
the writer's time (a step of 50 ms, then 200 ms of ingest at a share of 0.2). With nothing
left to do, the writer looks again after ``recheck_s``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Final

__all__ = ["DEFAULT_MAINTENANCE_SHARE", "MaintenancePacer"]

DEFAULT_MAINTENANCE_SHARE: Final = 0.2
"""Most of a busy writer's time that maintenance steps take: ingest keeps >= 80%."""


class MaintenancePacer:
    """Tells a writer loop how long it may wait before its next maintenance step.

    Not thread-safe: one writer thread calls every method.

    Args:
        share: The most of a busy writer's time the steps may take, in (0, 1].
        recheck_s: How long after a step that found nothing to do the next one runs.
        clock: Monotonic seconds (a parameter for the tests).

    Raises:
        ValueError: A share outside (0, 1] or a non-positive ``recheck_s``.
    """

    def __init__(
        self,
        *,
        share: float = DEFAULT_MAINTENANCE_SHARE,
        recheck_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not 0 < share <= 1:
            raise ValueError(f"share must be in (0, 1], got {share!r}")
        if not recheck_s > 0:
            raise ValueError(f"recheck_s must be positive, got {recheck_s!r}")
        self._rest_per_step_second = (1 - share) / share
        self._recheck_s = recheck_s
        self._clock = clock
        self._more = False  # the last step said there may be more to do
        self._busy = False  # a batch arrived since the last step
        self._next_step = clock() + recheck_s  # while busy or with nothing to do

    def batch_arrived(self) -> None:
        """A batch arrived: from now on the next step waits for its turn."""
        self._busy = True

    def delay(self) -> float:
        """Seconds until the next step may run (0: now)."""
        if self._more and not self._busy:
            return 0.0  # idle with work left: back to back
        return max(0.0, self._next_step - self._clock())

    def run_step(self, step: Callable[[], bool]) -> None:
        """Run one maintenance step now and time it; ``step`` returns True when it did work
        (there may be more to do)."""
        started = self._clock()
        more = step()
        ended = self._clock()
        self._more, self._busy = more, False
        rest = (ended - started) * self._rest_per_step_second if more else self._recheck_s
        self._next_step = ended + rest
