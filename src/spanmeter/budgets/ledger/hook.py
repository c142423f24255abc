"""The budgets' :class:`~spanmeter.store.ledger.LedgerHook`: what the store runs per transaction.

It holds one immutable snapshot (config, compiled index, judge) and swaps it whole on
reload, so a transaction is judged by exactly one version of the budgets file: the plan
captures the snapshot it started with.

When the ledger counts in another process (``spanmeter serve``'s store process), the
receiver's hook is the one people see (the API) and the store process's is the one that
counts. So that the API never shows budgets the ledger does not count yet, the receiver's
hook has that process reload first (:attr:`BudgetLedgerHook.peers`, which answer with their
fingerprint), and only then puts the new budgets in force itself.
:attr:`BudgetLedgerHook.ledger_fingerprint` says which version of the file is counting (the
SHA-256 of its content), next to :attr:`Snapshot.fingerprint` of the version shown.

Example::

    hook = BudgetLedgerHook(config, clock=time.time_ns)
    store.attach_ledger(hook)          # from now on every committed batch counts
    hook.update(load_config(path))     # on reload
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ...store import LedgerDecision, SpanRow, SpendIncrement, SpendTotal
from ..config.watch import ConfigWatcher
from ..definitions.matcher import BudgetIndex
from ..definitions.model import BudgetsConfig
from .judge import BudgetJudge

__all__ = ["BudgetLedgerHook", "Snapshot"]

_logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Snapshot:
    """One version of the budgets: the config, its compiled index and its judge."""

    config: BudgetsConfig
    index: BudgetIndex
    judge: BudgetJudge
    fingerprint: str | None = None
    """SHA-256 of the budgets file this was loaded from (None: not from a file)."""

    @classmethod
    def of(cls, config: BudgetsConfig, fingerprint: str | None = None) -> Snapshot:
        """Compile ``config``."""
        index = BudgetIndex(config.budgets)
        return cls(config, index, BudgetJudge(config, index), fingerprint)


class _Plan:
    """One transaction's increments, bound to the snapshot and clock reading they used."""

    __slots__ = ("_judge", "_now_ns", "_on_alerts", "increments")

    def __init__(
        self,
        increments: list[SpendIncrement],
        judge: BudgetJudge,
        now_ns: int,
        on_alerts: Callable[[], None] | None,
    ) -> None:
        self.increments = increments
        self._judge = judge
        self._now_ns = now_ns
        self._on_alerts = on_alerts

    def decide(self, totals: Sequence[SpendTotal]) -> LedgerDecision:
        decision = self._judge.decide(totals, self._now_ns)
        if decision.alerts and self._on_alerts is not None:
            self._on_alerts()  # e.g. wake the outbox; it polls again if this runs before the commit
        return decision


class BudgetLedgerHook:
    """Implements :class:`~spanmeter.store.ledger.LedgerHook` for a budgets config.

    Args:
        config: The budgets to count (default: loaded from ``path``).
        clock: Unix time in ns (tests inject one): forecasts, rolling windows, alert times.
        path: The budgets file, reloaded by :meth:`poll_config` (and by :meth:`watch`'s thread).

    Raises:
        BudgetConfigError: ``path`` is missing or invalid (when ``config`` is not given).
        ValueError: neither ``config`` nor ``path``.
    """

    def __init__(
        self,
        config: BudgetsConfig | None = None,
        *,
        clock: Callable[[], int] = time.time_ns,
        path: str | Path | None = None,
    ) -> None:
        self.watcher = ConfigWatcher(path) if path is not None else None
        if config is None:
            if self.watcher is None:
                raise ValueError("BudgetLedgerHook needs a config or a path")
            config = self.watcher.load()
        self._snapshot = Snapshot.of(config, self.watcher.digest if self.watcher is not None else None)
        self._clock = clock
        self._reload_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.on_alerts: Callable[[], None] | None = None
        """Called (inside the transaction, so it must be quick) when a batch raises alerts."""
        self.on_reload: list[Callable[[Snapshot, Snapshot], object]] = []
        """Called with (old, new) snapshots after a reload put new budgets in force."""
        self.peers: list[Callable[[], str | None]] = []
        """The ledgers that count for this hook elsewhere (a store process): each reloads
        the file when asked and returns its fingerprint; asked before a reload here."""
        self._peer_fingerprint: str | None = None

    @property
    def ledger_fingerprint(self) -> str | None:
        """Fingerprint of the budgets the ledger counts with: this hook's, or with
        :attr:`peers`, what they answered last (None before they answered)."""
        return self._peer_fingerprint if self.peers else self._snapshot.fingerprint

    def sync_peers(self) -> str | None:
        """Ask the peers to reload now; their fingerprint (errors logged, never raised)."""
        for peer in list(self.peers):
            try:
                self._peer_fingerprint = peer()
            except Exception as error:
                _logger.warning("spanmeter: the ledger elsewhere did not reload the budgets: %r", error)
        return self.ledger_fingerprint

    def sync(self) -> str | None:
        """Reload the budgets file now if it changed; the fingerprint counted with (what a
        store process runs when the receiver asks, see :attr:`peers`)."""
        self.poll_config()
        return self._snapshot.fingerprint

    @property
    def snapshot(self) -> Snapshot:
        """The budgets in force."""
        return self._snapshot

    def update(self, config: BudgetsConfig, fingerprint: str | None = None) -> Snapshot:
        """Put ``config`` in force for the next transactions; returns the new snapshot."""
        old = self._snapshot
        snapshot = Snapshot.of(config, fingerprint)
        self._snapshot = snapshot
        for listener in list(self.on_reload):
            try:
                listener(old, snapshot)
            except Exception:  # a listener must not undo a reload
                _logger.exception("spanmeter: budgets reload listener failed")
        return snapshot

    def poll_config(self) -> bool:
        """Reload the budgets file if it changed and validates; True if new budgets are in force."""
        if self.watcher is None:
            return False
        with self._reload_lock:
            config = self.watcher.poll()
            if config is None:
                return False
            self.sync_peers()  # the ledger elsewhere first: never show what is not counted
            self.update(config, self.watcher.digest)
            return True

    def watch(self, every_s: float = 2.0) -> BudgetLedgerHook:
        """Poll the budgets file on a daemon thread (where no scheduler does it)."""
        if self.watcher is not None and self._thread is None:
            self._thread = threading.Thread(
                target=self._watch, args=(every_s,), name="spanmeter-budgets-watch", daemon=True
            )
            self._thread.start()
        return self

    def close(self) -> None:
        """Stop the watch thread, if any."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5.0)

    def _watch(self, every_s: float) -> None:
        while not self._stop.wait(every_s):
            try:
                self.poll_config()
            except Exception:
                _logger.exception("spanmeter: budgets reload failed")

    def plan(self, rows: Sequence[SpanRow]) -> _Plan | None:
        """The increments of ``rows`` (called by the store inside the transaction)."""
        snapshot = self._snapshot
        if not len(snapshot.index):
            return None
        now_ns = self._clock()
        increments = snapshot.index.increments(rows, now_ns)
        if not increments:
            return None
        return _Plan(increments, snapshot.judge, now_ns, self.on_alerts)
