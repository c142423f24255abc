"""Budget counters at ingest, driven by an injected clock: exact totals, each level once per
window, reset on rollover, forecast before the limit, one state per value of a ``*`` scope."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from spanmeter.budgets.ledger.hook import BudgetLedgerHook
from spanmeter.budgets.ledger.status import budget_states
from spanmeter.store import SpanRow, WindowRecheck
from support.budget_helpers import DAY_NS, HOUR_NS, USD, Clock, at, config, row
from support.stores import BACKENDS, BudgetHost, opened_budget_store

DAILY = """
budgets:
  - name: daily
    window: day
    limit_usd: 1
    warn_at: [50%, 80%]
    forecast: false
"""


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BudgetHost]:
    with opened_budget_store(str(request.param), tmp_path, request) as opened:
        yield opened


def attach(store: BudgetHost, text: str, clock: Clock) -> BudgetLedgerHook:
    hook = BudgetLedgerHook(config(text), clock=clock)
    store.attach_ledger(hook)
    return hook


def kinds(store: BudgetHost) -> list[str]:
    return [alert.kind for alert in reversed(store.budget_store.list_alerts(limit=1000))]


def test_each_level_fires_exactly_once_per_window(store: BudgetHost) -> None:
    clock = Clock("2026-03-10T12:00")
    attach(store, DAILY, clock)
    seen: list[list[str]] = []
    for _ in range(6):  # 0.3, 0.6, 0.9, 1.2, 1.5, 1.8 USD
        store.write_batch([row("2026-03-10T12:00", 0.3)])
        seen.append(kinds(store))
    assert seen == [
        [],
        ["budget.warning"],
        ["budget.warning", "budget.warning"],
        ["budget.warning", "budget.warning", "budget.exceeded"],
        ["budget.warning", "budget.warning", "budget.exceeded"],
        ["budget.warning", "budget.warning", "budget.exceeded"],
    ]
    alerts = store.budget_store.list_alerts()
    assert [a.details["threshold"] for a in reversed(alerts)] == ["50%", "80%", "100%"]
    exceeded = alerts[0]
    assert exceeded.severity == "critical"
    assert exceeded.details["spend_nano_usd"] == int(1.2 * USD)
    assert exceeded.window_start_ns == at("2026-03-10T00:00")
    assert exceeded.window_end_ns == at("2026-03-11T00:00")
    (state,) = budget_states(store.budget_store, hook_index(store), clock())
    assert (state.state, state.spend_nano_usd, state.attempts) == ("exceeded", int(1.8 * USD), 6)


def hook_index(store: BudgetHost):  # type: ignore[no-untyped-def]
    hook = store.ledger
    assert isinstance(hook, BudgetLedgerHook)
    return hook.snapshot.index


def test_a_jump_over_several_levels_alerts_the_highest_only(store: BudgetHost) -> None:
    attach(store, DAILY, Clock("2026-03-10T12:00"))
    store.write_batch([row("2026-03-10T12:00", 0.7), row("2026-03-10T12:01", 0.7)])
    assert kinds(store) == ["budget.exceeded"]
    store.write_batch([row("2026-03-10T12:02", 0.7)])
    assert kinds(store) == ["budget.exceeded"]


def test_rollover_resets_the_state_and_ended_windows_resolve(store: BudgetHost) -> None:
    clock = Clock("2026-03-10T23:00")
    attach(store, DAILY, clock)
    store.write_batch([row("2026-03-10T23:00", 1.5)])
    clock.set("2026-03-11T00:30")
    store.write_batch([row("2026-03-11T00:30", 0.2)])
    (state,) = budget_states(store.budget_store, hook_index(store), clock())
    assert (state.state, state.spend_nano_usd) == ("ok", int(0.2 * USD))  # a new window
    store.write_batch([row("2026-03-11T00:31", 0.9)])
    assert kinds(store) == ["budget.exceeded", "budget.exceeded"]
    first, second = reversed(store.budget_store.list_alerts())
    assert (first.window_start_ns, second.window_start_ns) == (at("2026-03-10"), at("2026-03-11"))
    assert store.budget_store.resolve_ended_windows(clock()) == 1
    resolved = store.budget_store.get_alert(first.id)
    assert resolved is not None and resolved.state == "resolved"
    assert [h.state for h in resolved.history] == ["open", "resolved"]
    assert store.budget_store.get_alert(second.id).state == "open"  # type: ignore[union-attr]


def test_forecast_warns_before_the_limit_once_and_not_too_early(store: BudgetHost) -> None:
    clock = Clock("2026-03-10T01:00")
    attach(
        store,
        """
        budgets:
          - name: daily
            window: day
            limit_usd: 10
        """,
        clock,
    )
    store.write_batch([row("2026-03-10T00:30", 3)])  # 1h in: 72 USD projected, but too early
    assert kinds(store) == []
    clock.set("2026-03-10T06:00")
    store.write_batch([row("2026-03-10T05:59", 0.01)])  # 3.01 at 25% of the day -> 12.04 projected
    assert kinds(store) == ["budget.forecast"]
    (forecast,) = store.budget_store.list_alerts()
    assert forecast.details["projected_usd"] == "12.040000000"
    assert forecast.details["spend_usd"] == "3.010000000"  # still under the limit
    clock.set("2026-03-10T07:00")
    store.write_batch([row("2026-03-10T06:59", 1)])
    assert kinds(store) == ["budget.forecast"]  # once per window
    (state,) = budget_states(store.budget_store, hook_index(store), clock())
    assert state.forecast_exceeds and state.state == "ok"


def test_a_wildcard_budget_keeps_one_state_per_value(store: BudgetHost) -> None:
    clock = Clock("2026-03-10T12:00")
    attach(
        store,
        """
        budgets:
          - name: per-tenant
            scope: {tenant_id: "*"}
            window: day
            limit_usd: 1
            warn_at: []
            forecast: false
        """,
        clock,
    )
    store.write_batch([row("2026-03-10T12:00", 0.4, tenant_id=t) for t in ("a", "b", "c", "a")])
    store.write_batch(
        [row("2026-03-10T12:00", 0.5, tenant_id="b"), row("2026-03-10T12:00", 0.7, tenant_id="a")]
    )
    store.write_batch([row("2026-03-10T12:00", 0.5, tenant_id=None)])  # no tenant: no state
    states = {s.scope["tenant_id"]: s for s in budget_states(store.budget_store, hook_index(store), clock())}
    assert {k: (v.spend_nano_usd, v.state) for k, v in states.items()} == {
        "a": (int(1.5 * USD), "exceeded"),
        "b": (int(0.9 * USD), "ok"),
        "c": (int(0.4 * USD), "ok"),
    }
    (alert,) = store.budget_store.list_alerts()
    assert (alert.kind, alert.subject, alert.details["scope"]) == (
        "budget.exceeded",
        "tenant_id=a",
        {"tenant_id": "a", "data_mode": "real"},
    )


def test_duplicates_test_traffic_and_outer_spans_never_count(store: BudgetHost) -> None:
    clock = Clock("2026-03-10T12:00")
    attach(store, DAILY, clock)
    batch = [row("2026-03-10T12:00", 0.2), row("2026-03-10T12:00", None)]
    store.write_batch(batch)
    assert store.write_batch(batch).duplicates == 2  # an OTLP retry
    store.write_batch(
        [row("2026-03-10T12:00", 5, data_mode="test"), row("2026-03-10T12:00", 5, billable=False)]
    )
    (state,) = budget_states(store.budget_store, hook_index(store), clock())
    assert (state.spend_nano_usd, state.attempts, state.unpriced) == (int(0.2 * USD), 2, 1)
    assert kinds(store) == []


def test_a_data_mode_wildcard_counts_each_mode_apart(store: BudgetHost) -> None:
    clock = Clock("2026-03-10T12:00")
    attach(store, DAILY.replace("window: day", "window: day\n    scope: {data_mode: '*'}"), clock)
    store.write_batch([row("2026-03-10T12:00", 0.3, data_mode=m) for m in ("real", "test", "test", "demo")])
    states = budget_states(store.budget_store, hook_index(store), clock())
    assert {s.scope["data_mode"]: s.spend_nano_usd for s in states} == {
        "demo": int(0.3 * USD),
        "real": int(0.3 * USD),
        "test": int(0.6 * USD),
    }


def test_scopes_combine_exact_values_and_wildcards(store: BudgetHost) -> None:
    clock = Clock("2026-03-10T12:00")
    attach(
        store,
        """
        budgets:
          - name: search-per-user
            scope: {endpoint_tag: search, environment: prod, user_id: "*"}
            window: week
            limit_usd: 100
        """,
        clock,
    )
    store.write_batch(
        [
            row("2026-03-10T12:00", 1, user_id="u1"),
            row("2026-03-09T00:10", 2, user_id="u2"),  # Monday: same ISO week
            row("2026-03-10T12:00", 4, user_id="u1", endpoint_tag="chat"),
            row("2026-03-10T12:00", 8, user_id="u1", environment="staging"),
            row("2026-03-08T23:59", 16, user_id="u1"),  # the Sunday before: previous week
        ]
    )
    states = budget_states(store.budget_store, hook_index(store), clock())
    assert {s.scope_key: s.spend_nano_usd for s in states} == {"user_id=u1": USD, "user_id=u2": 2 * USD}
    assert states[0].scope == {
        "endpoint_tag": "search",
        "environment": "prod",
        "user_id": "u1",
        "data_mode": "real",
    }


def test_recorded_spend_is_the_exact_sum(store: BudgetHost) -> None:
    rng = random.Random(4)
    clock = Clock("2026-03-10T12:00")
    attach(
        store,
        """
        budgets:
          - {name: all, window: month, limit_usd: 1000000}
          - {name: tenants, window: day, limit_usd: 1000000, scope: {tenant_id: "*"}}
        """,
        clock,
    )
    expected_all = 0
    expected_tenant: dict[str, int] = {}
    for _ in range(40):
        batch: list[SpanRow] = []
        for _ in range(rng.randrange(1, 60)):
            cost = rng.randrange(0, 5 * USD)
            tenant = rng.choice(["a", "b", "c"])
            batch.append(row(at("2026-03-10T00:00") + rng.randrange(DAY_NS), cost / USD, tenant_id=tenant))
            expected_all += batch[-1].cost_nano_usd or 0
            expected_tenant[tenant] = expected_tenant.get(tenant, 0) + (batch[-1].cost_nano_usd or 0)
        store.write_batches([batch[: len(batch) // 2], batch[len(batch) // 2 :], batch[:3]])  # with repeats
    states = budget_states(store.budget_store, hook_index(store), clock())
    assert {s.budget.name + s.scope_key: s.spend_nano_usd for s in states} == {
        "all": expected_all,
        **{f"tenantstenant_id={t}": v for t, v in expected_tenant.items()},
    }


def test_calendar_windows_follow_the_configured_time_zone(store: BudgetHost) -> None:
    clock = Clock("2026-03-10T18:00")
    attach(
        store,
        """
        timezone: Asia/Kolkata
        budgets:
          - {name: ist, window: day, limit_usd: 10}
          - {name: ny, window: day, limit_usd: 10, timezone: America/New_York}
        """,
        clock,
    )
    # Kolkata's day starts at 18:30 UTC; on 2026-03-08 New York springs forward (a 23h day).
    store.write_batch([row("2026-03-10T18:29", 1), row("2026-03-10T18:31", 2)])
    states = {s.budget.name: s for s in budget_states(store.budget_store, hook_index(store), clock())}
    assert states["ist"].window_start_ns == at("2026-03-09T18:30")
    assert states["ist"].spend_nano_usd == USD
    ny = hook_index(store).by_name["ny"].window
    start, end = ny.bounds(at("2026-03-08T12:00"))
    assert (start, end) == (at("2026-03-08T05:00"), at("2026-03-09T04:00"))
    assert end - start == 23 * HOUR_NS


def test_rolling_window_episodes_fire_once_and_end_when_spend_ages_out(store: BudgetHost) -> None:
    clock = Clock("2026-03-10T10:05")
    hook = attach(
        store,
        """
        budgets:
          - {name: burst, window: {rolling: 3h}, limit_usd: 1, warn_at: []}
        """,
        clock,
    )
    store.write_batch([row("2026-03-10T10:00", 0.6)])
    clock.set("2026-03-10T11:05")
    store.write_batch([row("2026-03-10T11:00", 0.6)])  # 1.2 over 10:00-13:00
    store.write_batch([row("2026-03-10T11:01", 0.6)])
    assert kinds(store) == ["budget.exceeded"]
    budget = hook.snapshot.index.by_name["burst"]
    judge = hook.snapshot.judge

    def age(now: str) -> None:
        clock.set(now)
        window = budget.window.current(clock())
        recheck = WindowRecheck(
            budget.counter, window, window[0], lambda t: judge.decide(t, clock(), lower=True), clock()
        )
        store.budget_store.reevaluate_window(recheck)

    age("2026-03-10T13:10")  # 10:00 aged out: 1.2 left, still over: the episode goes on
    store.write_batch([row("2026-03-10T13:10", 0.1)])
    assert kinds(store) == ["budget.exceeded"]
    age("2026-03-10T14:10")  # only 13:00's 0.1 left: the episode ends
    store.write_batch([row("2026-03-10T14:10", 1.0)])  # 1.1: a new episode
    assert kinds(store) == ["budget.exceeded", "budget.exceeded"]
    (state,) = budget_states(store.budget_store, hook.snapshot.index, clock())
    assert state.spend_nano_usd == int(1.1 * USD)
    assert (state.window_start_ns, state.window_end_ns) == (at("2026-03-10T12:00"), at("2026-03-10T15:00"))


def test_late_spend_counts_in_its_own_window(store: BudgetHost) -> None:
    clock = Clock("2026-03-11T00:10")
    attach(store, DAILY, clock)
    store.write_batch([row("2026-03-10T23:59", 1.2)])  # yesterday's spend, arriving today
    (state,) = budget_states(store.budget_store, hook_index(store), clock())
    assert state.spend_nano_usd == 0
    (alert,) = store.budget_store.list_alerts()
    assert alert.window_start_ns == at("2026-03-10")


def test_a_failing_hook_never_loses_spans(store: BudgetHost, caplog: pytest.LogCaptureFixture) -> None:
    class Broken:
        def plan(self, rows: object) -> None:
            raise RuntimeError("bug")

    store.attach_ledger(Broken())
    assert store.write_batch([row("2026-03-10T12:00", 1)]).inserted == 1
    assert store.count_requests() == 1
    assert store.budget_store.ledger_stats.failures == 1
    assert "budget ledger failed" in caplog.text


def test_raising_a_limit_lowers_the_alerted_level_so_the_new_limit_alerts(store: BudgetHost) -> None:
    clock = Clock("2026-03-10T12:00")
    hook = attach(store, DAILY, clock)
    store.write_batch([row("2026-03-10T12:00", 1.1)])
    snapshot = hook.update(config(DAILY.replace("limit_usd: 1", "limit_usd: 2")))
    budget = snapshot.index.by_name["daily"]
    store.budget_store.reevaluate_window(
        WindowRecheck(
            budget.counter,
            budget.window.current(clock()),
            None,
            lambda t: snapshot.judge.decide(t, clock(), lower=True),
            clock(),
        )
    )
    store.write_batch([row("2026-03-10T12:01", 1.0)])  # 2.1 of the new 2.0
    assert kinds(store) == ["budget.exceeded", "budget.exceeded"]
    assert store.budget_store.list_alerts()[0].details["limit_usd"] == "2.000000000"
