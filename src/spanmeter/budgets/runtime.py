"""Budgets and alerts inside a running receiver: :func:`attach_budgets` and :class:`BudgetsRuntime`.

One object owns the moving parts (the ledger hook registered with the store, the rule
evaluator, the scheduler and the outbox worker), so the receiver service wires budgets in
with three lines (the API's budgets and alerts routes, :mod:`spanmeter.api`, read it)::

    self.budgets = attach_budgets(self, config)           # before the server is built
    make_api(store, budgets=self.budgets, ...)
    self.budgets.start() / self.budgets.stop()            # after start / before the store closes

Without a budgets file (``--budgets`` / ``SPANMETER_BUDGETS_FILE``) no hook is registered,
so ingest runs exactly as without this package; the alerts API still answers.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Final, Protocol

from ..store import LedgerDecision, SpanStore, SpendTotal, SupportsBudgets, WindowRecheck
from ..timeunits import NS_PER_DAY, NS_PER_HOUR
from .definitions.model import Budget, BudgetsConfig
from .delivery.outbox import OutboxWorker
from .ledger.hook import BudgetLedgerHook, Snapshot
from .rules.evaluator import RuleEvaluator
from .scheduler import BudgetScheduler
from .store_factory import BudgetsFileSetting, budgets_path

__all__ = ["SCHEDULER_JOB", "BudgetsRuntime", "HostService", "ServeSettings", "attach_budgets"]

_logger = logging.getLogger(__name__)

_RETENTION_NS: Final = 400 * NS_PER_DAY
"""Calendar counters are kept this long after their window ends (like the rollups)."""
_ROLLING_MARGIN_NS: Final = 2 * NS_PER_HOUR
SCHEDULER_JOB: Final = "budgets-scheduler"
"""The name the scheduler's cluster-wide jobs are led under (:meth:`BudgetStore.lead
<spanmeter.store.BudgetStore.lead>`)."""


class BudgetsRuntime:
    """Budgets, alert rules, inbox and delivery for one store.

    Args:
        store: A store that supports budgets (:class:`~spanmeter.store.SupportsBudgets`).
        config: The budgets to count.
        path: The budgets file to count and watch (instead of ``config``).
        clock: Unix time in ns, used everywhere below (tests inject one).
        api_base: Returns the API's base URL for alert links (``config.public_url`` wins).

    With ``config`` or ``path`` the runtime registers its own ledger hook with the store.
    Without either it adopts the hook already registered (see
    :func:`~spanmeter.budgets.store_factory.open_with_budgets`, which registers it wherever
    the store is opened, including a separate store process), or, with none, counts nothing
    and serves the inbox only.

    Raises:
        TypeError: the store cannot host budgets.
        BudgetConfigError: ``path`` is missing or invalid.
    """

    def __init__(
        self,
        store: SpanStore,
        *,
        config: BudgetsConfig | None = None,
        path: str | Path | None = None,
        clock: Callable[[], int] = time.time_ns,
        api_base: Callable[[], str | None] = lambda: None,
    ) -> None:
        if not isinstance(store, SupportsBudgets):
            raise TypeError(f"{type(store).__name__} cannot host budgets (no budget_store / attach_ledger)")
        self.store = store
        self.budget_store = store.budget_store
        self.clock = clock
        self._api_base = api_base
        existing = store.ledger
        self._owns_hook = config is not None or path is not None or not isinstance(existing, BudgetLedgerHook)
        if config is not None or path is not None:
            self.hook = BudgetLedgerHook(config, clock=clock, path=path)
            store.attach_ledger(self.hook)
        elif isinstance(existing, BudgetLedgerHook):
            self.hook = existing
        else:
            self.hook = BudgetLedgerHook(BudgetsConfig(), clock=clock)  # not registered: counts nothing
        self.watcher = self.hook.watcher
        self.evaluator = RuleEvaluator(self.budget_store, clock)
        self.outbox = OutboxWorker(
            store, self.budget_store, lambda: self.config, clock=clock, api_base=self.api_base
        )
        self.scheduler = BudgetScheduler(self, clock=clock)
        self.hook.on_alerts = self.outbox.wake
        self.hook.on_reload.append(self._reloaded)

    @property
    def config(self) -> BudgetsConfig:
        """The budgets in force."""
        return self.hook.snapshot.config

    @property
    def snapshot(self) -> Snapshot:
        """The budgets in force, compiled."""
        return self.hook.snapshot

    def count_elsewhere(self, sync: Callable[[], str | None]) -> None:
        """The ledger counts in another process (a store process); ``sync`` makes it reload
        the budgets file now and returns its fingerprint. Reloads here call it first."""
        self.hook.peers.append(sync)

    @property
    def ledger_fingerprint(self) -> str | None:
        """Fingerprint (SHA-256 of the file) of the budgets the ledger counts with."""
        return self.hook.ledger_fingerprint

    def api_base(self) -> str | None:
        """Base URL for links in alerts."""
        return self.config.public_url or self._api_base()

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> BudgetsRuntime:
        """Start the scheduler and the outbox worker (after the store, and its process, started)."""
        if self.hook.peers:
            self.hook.sync_peers()  # what the ledger elsewhere loaded at its start
        self.scheduler.start()
        self.outbox.start()
        return self

    def stop(self) -> None:
        """Stop the threads (the delivery in flight finishes) and release the hook."""
        self.scheduler.stop()
        self.outbox.stop()
        self.hook.on_reload.remove(self._reloaded)
        self.hook.on_alerts = None
        self.hook.close()
        if self._owns_hook and self.store.ledger is self.hook:
            self.store.attach_ledger(None)

    # -- scheduled work (see BudgetScheduler) ---------------------------------------------

    def lead(self) -> bool:
        """Whether this process runs the cluster-wide jobs (rules, resets, pruning) now: the
        store decides (one leader among replicas sharing a database)."""
        return self.budget_store.lead(SCHEDULER_JOB)

    def reload_if_changed(self) -> bool:
        """Re-read the budgets file if it changed; True if new budgets are in force."""
        return self.hook.poll_config()

    def apply(self, config: BudgetsConfig) -> Snapshot:
        """Put ``config`` in force now (as a reload of the file would)."""
        return self.hook.update(config)

    def _reloaded(self, old: Snapshot, new: Snapshot) -> None:
        """Budgets whose limit or thresholds changed are judged again against their current
        window's spend: a lowered limit alerts now, a raised one can alert again when crossed."""
        now = self.clock()
        for counter, budget in new.index.budgets.items():
            before = old.index.budgets.get(counter)
            if before is None or before.thresholds_nano_usd == budget.thresholds_nano_usd:
                continue
            self.budget_store.reevaluate_window(_recheck(new, budget, now))
        self.outbox.wake()

    def evaluate_rules(self, now_ns: int, *, fresh: bool = False) -> list[int]:
        """Evaluate every alert rule; ids of the alerts inserted. ``fresh``: re-read every
        baseline (after a back-fill), not the hour's cached answer."""
        if fresh:
            self.evaluator.forget_baselines()
        inserted = self.evaluator.evaluate_all(self.config)
        if inserted:
            self.outbox.wake()
        return inserted

    def maintain(self, now_ns: int) -> None:
        """Resolve events of ended windows; close rolling episodes whose spend aged out."""
        self.budget_store.resolve_ended_windows(now_ns)
        snapshot = self.snapshot
        for budget in snapshot.index.by_name.values():
            if budget.window.is_rolling:
                self.budget_store.reevaluate_window(_recheck(snapshot, budget, now_ns))

    def prune(self, now_ns: int) -> int:
        """Delete old counters."""
        longest = max((b.window.hours for b in self.snapshot.index.by_name.values()), default=0)
        rolling_cutoff = now_ns - longest * NS_PER_HOUR - _ROLLING_MARGIN_NS
        return self.budget_store.prune_budget_spend(now_ns - _RETENTION_NS, rolling_cutoff)

    def tick(self, now_ns: int | None = None) -> None:
        """Run the due scheduled work and one outbox pass now (tests and one-shot tools)."""
        self.scheduler.run_once(now_ns)
        self.outbox.run_once()


class ServeSettings(BudgetsFileSetting, Protocol):
    """What :func:`attach_budgets` reads of a serve config: the budgets file and the address
    the service binds (for links in alerts)."""

    @property
    def host(self) -> str: ...


class HostService(Protocol):
    """What :func:`attach_budgets` reads of the receiver service hosting the budgets."""

    @property
    def store(self) -> SpanStore:
        """The store the service writes to."""
        ...

    @property
    def http_port(self) -> int | None:
        """The bound HTTP port; None when not listening."""
        ...


def attach_budgets(service: HostService, config: ServeSettings) -> BudgetsRuntime:
    """Build the budgets runtime of a receiver service.

    The ledger hook normally comes with the store (the service opens it through
    :func:`~spanmeter.budgets.store_factory.budgets_store_factory`, so the hook also runs in
    a separate store process); a store handed in directly gets the budgets file
    (``config.budgets_file``, else ``SPANMETER_BUDGETS_FILE``) here. Links in alerts point
    at the service's HTTP port unless the file sets ``public_url``.

    Raises:
        BudgetConfigError: the file is missing or invalid (a ``ValueError``).
    """
    path = budgets_path(config)
    host = config.host

    def api_base() -> str | None:
        try:
            port = service.http_port
        except RuntimeError:
            return None
        return None if port is None else f"http://{host}:{port}"

    store = service.store
    adopt = isinstance(getattr(store, "ledger", None), BudgetLedgerHook)
    runtime = BudgetsRuntime(store, path=None if adopt else path, api_base=api_base)
    if path:
        _logger.info(
            "spanmeter: budgets from %s: %d budgets, %d rules, channels %s",
            path,
            len(runtime.config.budgets),
            len(runtime.config.rules),
            ", ".join(c.name for c in runtime.config.channels),
        )
    return runtime


def _recheck(snapshot: Snapshot, budget: Budget, now_ns: int) -> WindowRecheck:
    """``budget``'s current window judged again by ``snapshot``'s judge, which may also lower
    the alerted level (a raised limit, spend aged out of a rolling window)."""
    window = budget.window.current(now_ns)
    since = window[0] if budget.window.is_rolling else None

    def decide(totals: Sequence[SpendTotal]) -> LedgerDecision:
        return snapshot.judge.decide(totals, now_ns, lower=True)

    return WindowRecheck(budget.counter, window, since, decide, now_ns)
