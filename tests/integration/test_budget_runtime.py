"""The budgets runtime on an injected clock: scheduled rules, resets at rollover, rolling
episodes closing, pruning, reloads from the file, and adopting a store's own hook."""

from __future__ import annotations

import os
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest

from spanmeter.budgets import BudgetLedgerHook, BudgetsRuntime, budgets_store_factory
from spanmeter.store import SQLiteStore
from support.budget_helpers import NS, Clock, at, config, row
from support.stores import BACKENDS, BudgetHost, opened_budget_store

CONFIG = """
evaluate_every: 60s
budgets:
  - {name: daily, window: day, limit_usd: 1, warn_at: [], forecast: false}
  - {name: burst, window: {rolling: 1h}, limit_usd: 1, warn_at: []}
rules:
  - {kind: unknown_model_ratio, window: 1h, threshold: 5%, min_requests: 5}
delivery: {log: false}
"""


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BudgetHost]:
    with opened_budget_store(str(request.param), tmp_path, request) as opened:
        yield opened


def test_scheduled_work_runs_when_due_on_the_injected_clock(store: BudgetHost) -> None:
    clock = Clock("2026-03-10T23:30")
    runtime = BudgetsRuntime(store, config=config(CONFIG), clock=clock)
    store.write_batch([row("2026-03-10T23:30", 1.2)] + [row("2026-03-10T23:30", None) for _ in range(5)])
    assert sorted(a.source for a in store.budget_store.list_alerts()) == ["burst", "daily"]
    runtime.tick()  # rules run at once the first time
    assert [a.kind for a in store.budget_store.list_alerts(kind="rule.*")] == ["rule.unknown_model_ratio"]
    clock.advance(30)
    store.write_batch([row("2026-03-10T23:30:30", None)])
    runtime.tick()  # 30 s later: not due again; nothing new either way
    assert len(store.budget_store.list_alerts()) == 3
    clock.set("2026-03-11T00:45")  # the day rolled over; the hour bucket of 23:00 aged out
    runtime.tick()
    states = {a.source: a.state for a in store.budget_store.list_alerts(kind="budget.*")}
    assert states == {"daily": "resolved", "burst": "resolved"}  # a new day; the episode ended
    (burst,) = store.budget_store.list_alerts(source="burst")
    assert burst.history[-1].note == "rolling spend $0.00 is back under the first threshold"
    store.write_batch([row("2026-03-11T00:45", 1.5)])
    assert [a.source for a in store.budget_store.list_alerts(kind="budget.*")][:1] == ["burst"]
    assert len(store.budget_store.list_alerts(source="burst")) == 2  # a new episode alerted again
    assert runtime.prune(at("2027-06-01")) > 0
    runtime.stop()
    assert store.ledger is None


def test_a_changed_file_is_reloaded_and_judged_again(store: BudgetHost, tmp_path: Path) -> None:
    path = tmp_path / "budgets.yaml"
    path.write_text("budgets: [{name: daily, window: day, limit_usd: 10, forecast: false}]")
    clock = Clock("2026-03-10T12:00")
    runtime = BudgetsRuntime(store, path=path, clock=clock)
    store.write_batch([row("2026-03-10T12:00", 3)])
    assert store.budget_store.list_alerts() == []
    path.write_text("budgets: [{name: daily, window: day, limit_usd: 2, forecast: false}]")
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + NS))
    runtime.tick()
    (alert,) = store.budget_store.list_alerts()
    assert (alert.kind, alert.details["limit_usd"]) == ("budget.exceeded", "2.000000000")
    runtime.stop()


def test_the_runtime_adopts_the_hook_a_store_was_opened_with(tmp_path: Path) -> None:
    path = tmp_path / "budgets.yaml"
    path.write_text("budgets: [{name: daily, window: day, limit_usd: 10}]")

    class ServeConfig:
        budgets_file = str(path)

    factory = budgets_store_factory(partial(SQLiteStore, tmp_path / "db.sqlite"), ServeConfig())
    store = factory()  # what the store process does too
    try:
        hook = store.ledger
        assert isinstance(hook, BudgetLedgerHook) and hook.snapshot.config.budgets[0].name == "daily"
        runtime = BudgetsRuntime(store)
        assert runtime.hook is hook and runtime.config.budgets[0].name == "daily"
        runtime.stop()
    finally:
        store.close()

    class NoBudgets:
        budgets_file = None

    assert budgets_store_factory(factory, NoBudgets()) is factory  # no budgets file: unchanged
