"""The scheduler thread of budgets and alerts: reloads, rules, resets, rolling decay, pruning.

Work is due by the injected clock, and the thread only paces itself in real time, so a test
can call :meth:`BudgetScheduler.run_once` with a clock it controls and get exactly the
production behaviour.

Per tick (every second):

* the budgets file is re-read if it changed (:class:`~spanmeter.budgets.config.watch.ConfigWatcher`);
* every ``evaluate_every`` (60 s): the alert rules;
* every 30 s: budget events of ended windows are resolved (the budget reset), and the open
  episodes of rolling budgets whose spend aged out are closed;
* every hour: counters of windows ended more than ``retention`` ago are deleted.

Rules, resets and pruning are cluster-wide: with several replicas on one shared store they
must run once per tick for all of them, not once per replica (a rule alerting per
evaluation would alert once per replica). So they run only while the store says this
process leads them (:meth:`~spanmeter.store.BudgetStore.lead`: always on SQLite; on
PostgreSQL the replica holding an advisory lock). A follower asks again every tick without
counting the job as done, so when the leader dies another replica takes over at its next
tick. The reload is per process (each replica counts with its own copy of the file).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Final, Protocol

from ..outage import OutageLog
from ..store import StoreBusy
from ..timeunits import NS_PER_SECOND
from .definitions.model import BudgetsConfig

__all__ = ["BudgetScheduler", "ScheduledWork"]

_logger = logging.getLogger(__name__)

_MAINTENANCE_NS: Final = 30 * NS_PER_SECOND
_PRUNE_NS: Final = 3600 * NS_PER_SECOND
_RELOAD_NS: Final = 2 * NS_PER_SECOND


class ScheduledWork(Protocol):
    """The work a scheduler paces (:class:`~spanmeter.budgets.BudgetsRuntime` does it)."""

    @property
    def config(self) -> BudgetsConfig:
        """The budgets in force (``evaluate_every_s`` paces the rules)."""
        ...

    def reload_if_changed(self) -> bool: ...
    def lead(self) -> bool:
        """Whether this process runs the cluster-wide jobs now."""
        ...

    def evaluate_rules(self, now_ns: int, *, fresh: bool = False) -> list[int]: ...
    def maintain(self, now_ns: int) -> None: ...
    def prune(self, now_ns: int) -> int: ...


class BudgetScheduler:
    """Runs the periodic budget and alert work on a thread.

    Args:
        runtime: Whose work this schedules (the budgets runtime).
        clock: Unix time in ns (when work is due).
        tick_s: Real-time pause between ticks.
    """

    def __init__(self, runtime: ScheduledWork, *, clock: Callable[[], int], tick_s: float = 1.0) -> None:
        self._runtime = runtime
        self._clock = clock
        self._tick_s = tick_s
        self._outage = OutageLog(_logger, "scheduled budget work")
        self._next: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> BudgetScheduler:
        """Start the thread."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="spanmeter-budgets", daemon=True)
            self._thread.start()
        return self

    def stop(self, timeout: float | None = 30.0) -> None:
        """Stop after the current tick."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _leads(self) -> bool:
        try:
            return self._runtime.lead()
        except StoreBusy as unavailable:  # the store unreachable: follow; one warning per outage
            self._outage.failed(unavailable)
            return False
        except Exception:  # cannot tell: follow this tick, ask again at the next
            _logger.exception("spanmeter: budgets could not tell whether this replica leads")
            return False

    def run_once(self, now_ns: int | None = None) -> None:
        """Do whatever work is due at ``now_ns`` (default: the clock)."""
        now = self._clock() if now_ns is None else now_ns
        runtime = self._runtime
        jobs: list[tuple[str, int, bool, Callable[[int], object]]] = [
            ("reload", _RELOAD_NS, False, lambda _: runtime.reload_if_changed()),
            ("rules", int(runtime.config.evaluate_every_s * NS_PER_SECOND), True, runtime.evaluate_rules),
            ("maintenance", _MAINTENANCE_NS, True, runtime.maintain),
            ("prune", _PRUNE_NS, True, runtime.prune),
        ]
        leads: bool | None = None  # asked once per tick, when a cluster-wide job is due
        for name, every, cluster_wide, job in jobs:
            if self._stop.is_set() or now < self._next.get(name, 0):
                continue
            if cluster_wide:
                if leads is None:
                    leads = self._leads()
                if not leads:
                    continue  # not done: due again at the next tick, should this replica lead then
            self._next[name] = now + every
            try:
                job(now)
                self._outage.succeeded()
            except StoreBusy as unavailable:  # the store unreachable: one warning per outage
                self._outage.failed(unavailable)
            except Exception:  # one failing job must not stop the others, or the next tick
                _logger.exception("spanmeter: budgets %s failed; will retry", name)

    def _run(self) -> None:
        while not self._stop.wait(self._tick_s):
            self.run_once()
