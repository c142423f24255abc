"""``spanmeter store copy``: a real SQLite file copied into a real PostgreSQL database and
back, raw rows, keys, rollups, budget counters and alerts as stored, resumable and idempotent.

Each copy is checked three ways: the totals per day and dimension, the budget counters and
the alert counts agree (:func:`compare_stores`, what the command runs at the end); the
exported state (raw rows, logical keys, merged rollup groups, audits, revenue, counter
rows, alerts with their history and deliveries, rule episodes) is the same on both sides;
and the target then behaves as the source would: a re-delivered span is a duplicate, a
retry of a copied logical request is one more attempt of it, a level already alerted does
not alert again, and new alerts are numbered after the copied ones."""

from __future__ import annotations

import json
import random
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from click.testing import CliRunner

from spanmeter.auth.keys import issue_key
from spanmeter.budgets.ledger.hook import BudgetLedgerHook
from spanmeter.cli.main import main
from spanmeter.demo import DemoSession, DemoSettings
from spanmeter.environment_variables import SPANMETER_USER_ID_HASH_KEY
from spanmeter.store import RepricedRow, RepricingRun, RevenueRow, SpanRow, WriteResult, delivery_update
from spanmeter.store.api_keys import ApiKey, KeyStore
from spanmeter.store.copy import PARTS, CopyRefused, compare_stores, copy_store
from spanmeter.store.inbox import RuleOutcome, SupportsBudgets
from spanmeter.store.ledger import NewAlert
from spanmeter.store.transfer import STATE_TABLES, TransferStore
from spanmeter.timeunits import TimeWindow
from support.budget_helpers import Clock, config
from support.store_rows import DAY_NS, NS, T0, make_row, random_rows
from support.stores import backend_target, opened_store

DIRECTIONS = (("sqlite", "postgresql"), ("postgresql", "sqlite"))
END = T0 + 4 * DAY_NS


@pytest.fixture(params=DIRECTIONS, ids=lambda pair: "-to-".join(pair))
def direction(request: pytest.FixtureRequest) -> tuple[str, str]:
    return request.param


def _open(target: str) -> Iterator[TransferStore]:
    with opened_store(target) as store:
        assert isinstance(store, TransferStore)
        yield store


@pytest.fixture
def source(
    direction: tuple[str, str], tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[TransferStore]:
    yield from _open(backend_target(direction[0], tmp_path, request, "source"))


@pytest.fixture
def target(
    direction: tuple[str, str], tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[TransferStore]:
    yield from _open(backend_target(direction[1], tmp_path, request, "target"))


BUDGETS = """
budgets:
  - {name: tenant-daily, scope: {tenant_id: "*"}, window: day, limit_usd: 0.1, warn_at: ["50%"]}
  - {name: burst, window: {rolling: 24h}, limit_usd: 0.1, warn_at: []}
"""


def budgets(store: TransferStore) -> SupportsBudgets:
    assert isinstance(store, SupportsBudgets)
    return store


def ledger_hook(clock: Clock) -> BudgetLedgerHook:
    return BudgetLedgerHook(config(BUDGETS), clock=clock)


def rule_alert(subject: str) -> NewAlert:
    return NewAlert(
        f"rule.spike:{subject}", "rule.spend_spike", "warning", "spike", subject, "spend spike", END - DAY_NS
    )


def fill(store: TransferStore, seed: int = 7, count: int = 1200) -> list[SpanRow]:
    """Random rows over three days (retries, unpriced, outer spans, rows without a start
    time) counted by a per-tenant daily budget and a rolling one, so that levels are alerted
    on both; one alert acknowledged, one delivered, one with a context; one open rule
    episode; one re-pricing, two revenue rows."""
    rows = random_rows(random.Random(seed), count)
    host = budgets(store)
    host.attach_ledger(ledger_hook(Clock(T0 + 3 * DAY_NS - NS)))
    for start in range(0, len(rows), 300):
        store.write_batch(rows[start : start + 300])
    host.attach_ledger(None)
    inbox = host.budget_store
    alerts = inbox.list_alerts(limit=1000)
    assert {a.source for a in alerts} == {"tenant-daily", "burst"}
    inbox.acknowledge(alerts[-1].id, actor="alice", note="looking", now_ns=END)
    inbox.record_delivery(alerts[-1].id, "log", delivery_update("delivered", now_ns=END))
    retry = delivery_update("pending", now_ns=END, next_attempt_ns=END + NS, error="x")
    inbox.record_delivery(alerts[0].id, "log", retry)
    inbox.set_alert_context(alerts[1].id, {"drivers": ["tenant_id=t1"]}, now_ns=END)
    inbox.apply_rule_outcomes(
        "spike", [RuleOutcome("tenant_id=t1", True, rule_alert("tenant_id=t1"))], now_ns=END
    )
    assert isinstance(store, KeyStore)
    for name, scope in (("ci", "ingest"), ("dash", "read")):
        issued = issue_key()
        store.add_api_key(ApiKey(name, issued.key_id, issued.hash, scope, ("t1",) * (scope == "read"), END))
    store.revoke_api_key("dash", END + NS)
    priced = [row for row in rows if row.billable and row.cost_nano_usd and row.start_time_ns][:5]
    changes = [RepricedRow(row, replace(row, cost_nano_usd=row.cost_nano_usd * 2)) for row in priced]  # type: ignore[operator]
    store.apply_repricing(
        changes,
        RepricingRun(
            reason="price fix", window_start_ns=T0, window_end_ns=END, price_source="test", details="{}"
        ),
    )
    store.put_revenue(
        [
            RevenueRow("t1", "2026-01", T0, T0 + 31 * DAY_NS, 5_000_000_000),
            RevenueRow("t2", "2026-01", T0, T0 + 31 * DAY_NS, 7),
        ]
    )
    return rows


def state(store: TransferStore) -> dict[str, Any]:
    """Everything a copy moves, as comparable values."""
    return {
        "requests": store.export_requests(None, 1_000_000),
        "logical": store.export_logical_requests(None, 1_000_000),
        "calls": store.export_provider_calls(None, 1_000_000),
        "minute": sorted(
            tuple(g.values()) for g in store.iter_rollup_groups("minute", T0 - DAY_NS, END, data_mode=None)
        ),
        "hour": sorted(
            tuple(g.values()) for g in store.iter_rollup_groups("hour", T0 - DAY_NS, END, data_mode=None)
        ),
        "audits": [(a.audit, [tuple(r) for r in a.rows]) for a in store.export_reprice_audits(None, 1000)],
        "revenue": store.export_revenue(),
        **{name: store.export_state_rows(table, None, 1_000_000) for name, table in STATE_TABLES.items()},
        "alerts": store.export_alerts(None, 1_000_000),
    }


def test_copy_moves_rows_keys_rollups_audits_and_revenue(
    source: TransferStore, target: TransferStore
) -> None:
    rows = fill(source)
    results = copy_store(source, target, chunk_rows=250)
    assert [r.name for r in results] == [part.name for part in PARTS]
    assert all(r.done for r in results)
    assert compare_stores(source, target) == []
    copied = state(target)
    assert copied == state(source)
    assert len(copied["requests"]) == len(rows) and copied["logical"] and len(copied["audits"]) == 1
    assert all(copied[name] for name in STATE_TABLES)
    assert copied["alerts"] and all(a.history for a in copied["alerts"])
    assert sum(len(a.deliveries) for a in copied["alerts"]) == len(copied["alerts"]) - 1  # the rule's: none
    ours, theirs = budgets(source).budget_store, budgets(target).budget_store
    assert theirs.list_alerts(limit=1000) == ours.list_alerts(limit=1000)
    assert theirs.alert_counts() == ours.alert_counts()
    assert theirs.open_rule_subjects("spike") == ours.open_rule_subjects("spike")
    assert theirs.due_deliveries(END + NS) == ours.due_deliveries(END + NS)
    assert target.top("tenant_id", T0, END, data_mode=None) == source.top(
        "tenant_id", T0, END, data_mode=None
    )
    assert target.top("user_id", T0, END, data_mode=None) == source.top("user_id", T0, END, data_mode=None)


def test_the_target_goes_on_where_the_source_stopped(source: TransferStore, target: TransferStore) -> None:
    rows = fill(source)
    copy_store(source, target)
    before = target.top("endpoint_tag", T0, END, data_mode=None)
    stored = next(row for row in rows if row.billable and row.start_time_ns)
    assert target.write_batch([stored]) == WriteResult(0, 1)  # a re-delivery of a copied span
    key, _first = target.export_logical_requests(None, 1)[0]
    retry = make_row(
        start_time_ns=T0 + 2 * DAY_NS, external_request_id=key, cost_nano_usd=10, data_mode="real"
    )
    assert target.write_batch([retry]) == WriteResult(1, 0)
    after = target.top("endpoint_tag", T0, END, data_mode=None)
    assert (after.attempts, after.logical_requests) == (before.attempts + 1, before.logical_requests)
    assert after.cost_nano_usd == before.cost_nano_usd + 10
    changed = replace(retry, cost_nano_usd=20)
    audit = target.apply_repricing(
        [RepricedRow(retry, changed)],
        RepricingRun(reason="r", window_start_ns=T0, window_end_ns=END, price_source="t", details="{}"),
    )
    assert audit.id == 2  # numbering goes on after the copied audit
    inbox = budgets(target).budget_store
    copied = inbox.list_alerts(limit=1000)
    hook = ledger_hook(Clock(T0 + 3 * DAY_NS - NS))
    budgets(target).attach_ledger(hook)
    daily = hook.snapshot.index.by_name["tenant-daily"].counter
    window = (T0 + 2 * DAY_NS, T0 + 3 * DAY_NS)
    spent = {s.scope_key: s for s in inbox.budget_spend(daily, *window)}
    late = [make_row(start_time_ns=window[0] + n * NS, tenant_id="t1", data_mode="real") for n in range(3)]
    assert target.write_batch(late) == WriteResult(3, 0)
    now = {s.scope_key: s for s in inbox.budget_spend(daily, *window)}
    (key,) = [k for k in now if now[k] != spent.get(k)]
    assert now[key].cost_nano_usd == spent[key].cost_nano_usd + 3 * 1_000  # on top of the copied spend
    assert now[key].alerted_level == spent[key].alerted_level > 0
    assert inbox.list_alerts(limit=1000) == copied  # every level was already alerted
    (new_id,) = inbox.insert_alerts([rule_alert("tenant_id=t9")], now_ns=END)
    assert new_id == max(a.id for a in copied) + 1


def test_rollups_older_than_the_raw_rows_are_copied(source: TransferStore, target: TransferStore) -> None:
    fill(source)
    source.apply_retention(T0 + 3 * DAY_NS + 3600 * NS, raw_days=1, rollup_days=400)
    assert source.count_requests(T0, T0 + DAY_NS) == 0
    old = source.aggregate([], T0, T0 + DAY_NS, data_mode=None).total
    assert old.attempts > 0
    copy_store(source, target)
    assert target.count_requests(T0, T0 + DAY_NS) == 0
    assert target.aggregate([], T0, T0 + DAY_NS, data_mode=None).total == old
    assert compare_stores(source, target) == []
    assert state(target) == state(source)


def test_compaction_of_the_target_keeps_the_totals(source: TransferStore, target: TransferStore) -> None:
    fill(source)
    copy_store(source, target)
    while target.compact_rollups(END + DAY_NS, max_buckets=256):
        pass
    assert compare_stores(source, target) == []


@pytest.mark.parametrize(
    "failing",
    ["import_requests", "import_rollups", "import_logical_requests", "import_alerts", "import_state_rows"],
)
def test_an_interrupted_copy_resumes_to_the_same_result(
    source: TransferStore,
    target: TransferStore,
    failing: str,
    direction: tuple[str, str],
    tmp_path: Path,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fill(source)
    real = getattr(target, failing)
    calls = 0

    def crash_on_third_chunk(*args: Any, **kwargs: Any) -> int:
        nonlocal calls
        calls += 1
        if calls == 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(target, failing, crash_on_third_chunk)
    with pytest.raises(KeyboardInterrupt):
        copy_store(source, target, chunk_rows=100)
    assert calls == 3
    monkeypatch.undo()
    resumed = copy_store(source, target, chunk_rows=100)
    assert any(r.copied for r in resumed)
    assert compare_stores(source, target) == []
    with opened_store(backend_target(direction[1], tmp_path, request, "reference")) as reference:
        assert isinstance(reference, TransferStore)
        copy_store(source, reference, chunk_rows=100)
        assert state(target) == state(reference) == state(source)


def test_running_the_copy_twice_copies_nothing_twice(source: TransferStore, target: TransferStore) -> None:
    fill(source)
    copy_store(source, target, chunk_rows=300)
    first = state(target)
    again = copy_store(source, target, chunk_rows=300)
    assert [(r.copied, r.inserted) for r in again] == [(0, 0)] * len(PARTS)
    assert all(r.done and r.total for r in again if r.name != "provider_calls")
    assert state(target) == first


def test_a_target_holding_other_data_is_refused(source: TransferStore, target: TransferStore) -> None:
    fill(source, count=300)
    budgets(target).budget_store.insert_alerts([rule_alert("tenant_id=t1")], now_ns=END)
    with pytest.raises(CopyRefused, match="already holds data"):  # its ids could clash
        copy_store(source, target)
    target.write_batch([make_row()])
    with pytest.raises(CopyRefused, match="already holds data"):
        copy_store(source, target)
    with pytest.raises(CopyRefused, match="same store"):
        copy_store(source, source)


def test_the_command_copies_shows_progress_and_compares(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    path = tmp_path / "spanmeter.db"
    url = backend_target("postgresql", tmp_path, request)
    with opened_store(str(path)) as store:
        assert isinstance(store, TransferStore)
        fill(store, count=400)
    result = CliRunner().invoke(
        main, ["store", "copy", "--from", str(path), "--to", url, "--chunk-rows", "100"]
    )
    assert result.exit_code == 0, result.output
    assert (
        "OK: the totals per day and dimension, the budget counters and the alerts are equal" in result.stdout
    )
    assert "requests: 400 copied (done)" in result.stderr
    assert "rollup_hour:" in result.stderr and "secret" not in result.output
    again = CliRunner().invoke(main, ["store", "copy", "--from", str(path), "--to", url, "--no-verify"])
    assert again.exit_code == 0, again.output
    assert "requests: 0 copied now, 400 in all" in again.stdout
    assert "OK" not in again.stdout and "comparing" not in again.stderr
    with opened_store(url) as target:  # the target changes after the copy: the check says so
        target.write_batch([make_row(tenant_id="late", cost_nano_usd=5)])
    differs = CliRunner().invoke(main, ["store", "copy", "--from", str(path), "--to", url])
    assert differs.exit_code == 1
    assert "DIFFERENT 2026-01-01 tenant_id=late cost_nano_usd: source 0, target 5" in differs.stdout


def test_the_command_copies_postgresql_back_to_a_new_file(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    url = backend_target("postgresql", tmp_path, request)
    with opened_store(url) as store:
        assert isinstance(store, TransferStore)
        fill(store, count=300)
    result = CliRunner().invoke(main, ["store", "copy", "--from", url, "--to", str(tmp_path / "back.db")])
    assert result.exit_code == 0, result.output
    assert "OK" in result.stdout
    missing = CliRunner().invoke(main, ["store", "copy", "--from", str(tmp_path / "none.db"), "--to", url])
    assert missing.exit_code == 1 and "no store at" in missing.output


def _answer(*args: str) -> Any:
    """A command's JSON answer, run as a user runs it."""
    result = CliRunner().invoke(main, list(args))
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_the_demo_store_answers_the_same_after_a_copy_to_postgresql(
    tmp_path: Path, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The store `spanmeter demo` leaves behind (two days of traffic through a receiver with
    budgets, the alert rule fired, the webhook delivered), copied with the command: `top`,
    `budgets status`, `investigate` and the alerts inbox answer the same from both."""
    monkeypatch.setenv(SPANMETER_USER_ID_HASH_KEY, "copy-test-key")
    settings = DemoSettings(db=tmp_path / "demo.db")
    with DemoSession(settings) as session:
        session.drive()
        session.settle()
        scenario = session.scenario
    db, url = str(settings.db), backend_target("postgresql", tmp_path, request)
    copied = CliRunner().invoke(main, ["store", "copy", "--from", db, "--to", url])
    assert copied.exit_code == 0, copied.output
    assert "alerts: " in copied.stdout and "budget_rolling: " in copied.stdout
    assert (
        "OK: the totals per day and dimension, the budget counters and the alerts are equal" in copied.stdout
    )

    incident, whole = scenario.incident_window, TimeWindow(scenario.start_ns, scenario.end_ns)
    for window in (incident, whole):
        span = f"{window.start_ns // NS}..{window.end_ns // NS}"
        for by in ("endpoint_tag", "tenant_id", "user_id", "prompt_version", "model"):
            view = ("top", "--by", by, "--window", span, "--limit", "1000", "--format", "json")
            ours, theirs = _answer(*view, "--store", db), _answer(*view, "--store", url)
            assert ours == theirs and ours["groups"], by
    view = (
        "investigate",
        "--window",
        f"{incident.start_ns // NS}..{incident.end_ns // NS}",
        "--format",
        "json",
    )
    ours, theirs = _answer(*view, "--store", db), _answer(*view, "--store", url)
    assert ours == theirs and ours["dimensions"] and ours["classification"]

    now = time.time_ns()  # both answers at one instant: spend, state and forecast are the store's
    monkeypatch.setattr("spanmeter.cli.budgets.time", SimpleNamespace(time_ns=lambda: now))
    view = ("budgets", "status", "--file", str(settings.budgets_file), "--format", "json")
    ours, theirs = _answer(*view, "--store", db), _answer(*view, "--store", url)
    assert ours == theirs
    assert ours["counts"]["exceeded"] >= 1  # the incident's endpoint budget
    view = ("alerts", "list", "--limit", "1000", "--format", "json")
    ours, theirs = _answer(*view, "--store", db), _answer(*view, "--store", url)
    assert ours == theirs
    kinds = {alert["kind"] for alert in ours["alerts"]}
    assert {"budget.exceeded", "rule.prompt_version_regression"} <= kinds
    assert all(alert["history"] and alert["deliveries"] for alert in ours["alerts"])
