"""Budgets and alerts with several replicas on one PostgreSQL database: exact together.

Each "replica" is a :class:`PostgresStore` of its own (its own write connection, pool and
leadership connection) on one real database, driven from its own thread: spend is the exact
sum of every replica's writes, a level crossed by two replicas at the same instant alerts
once, each delivery is made once by one replica's worker, a dead replica's claims are
retried once they expire, and one replica at a time leads the scheduled rules.
"""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner

from spanmeter.budgets import BudgetsRuntime
from spanmeter.budgets.ledger.hook import BudgetLedgerHook
from spanmeter.budgets.ledger.status import budget_states
from spanmeter.budgets.runtime import SCHEDULER_JOB
from spanmeter.cli import main
from spanmeter.store import NewAlert, SpanRow, delivery_update
from spanmeter.store.postgres import PostgresStore
from spanmeter.store.postgres.alerts import lock_key
from spanmeter.store.postgres.schema import LEADER_LOCKS
from support.budget_helpers import DAY_NS, NS, USD, Clock, WebhookSink, at, config, row

BUDGETS = """
budgets:
  - {name: daily, window: day, limit_usd: 1, warn_at: [50%], forecast: false}
  - {name: tenants, window: day, limit_usd: 1000000, scope: {tenant_id: "*"}, forecast: false}
  - {name: burst, window: {rolling: 3h}, limit_usd: 1, warn_at: [], forecast: false}
"""


@pytest.fixture
def url(postgres_server: Any) -> str:
    return str(postgres_server.new_database())


@pytest.fixture
def replicas(url: str) -> Iterator[tuple[PostgresStore, PostgresStore]]:
    first, second = PostgresStore(url), PostgresStore(url)
    try:
        yield first, second
    finally:
        first.close()
        second.close()


def concurrently(*jobs: Callable[[], object]) -> None:
    """Run ``jobs`` on threads released together; re-raise the first failure."""
    barrier = threading.Barrier(len(jobs))
    errors: list[BaseException] = []

    def run(job: Callable[[], object]) -> None:
        barrier.wait()
        try:
            job()
        except BaseException as error:  # reported to the test below
            errors.append(error)

    threads = [threading.Thread(target=run, args=(job,)) for job in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors


def hooked(store: PostgresStore, clock: Clock) -> BudgetLedgerHook:
    hook = BudgetLedgerHook(config(BUDGETS), clock=clock)
    store.attach_ledger(hook)
    return hook


def test_spend_is_the_exact_sum_of_every_replica_and_each_level_alerts_once(
    replicas: tuple[PostgresStore, PostgresStore],
) -> None:
    clock = Clock("2026-03-10T12:00")
    hook = hooked(replicas[0], clock)
    hooked(replicas[1], clock)
    rng = random.Random(7)
    work: list[list[list[SpanRow]]] = [[], []]
    expected: dict[str, int] = {}
    for batches in work:
        for _ in range(40):
            batch: list[SpanRow] = []
            for _ in range(rng.randrange(1, 20)):
                tenant = rng.choice(["a", "b", "c"])
                start = at("2026-03-10T11:00") + rng.randrange(NS * 3600)
                batch.append(row(start, rng.randrange(USD) / USD / 50, tenant_id=tenant))
                cost = batch[-1].cost_nano_usd or 0
                expected["daily"] = expected.get("daily", 0) + cost
                expected[f"tenantstenant_id={tenant}"] = expected.get(f"tenantstenant_id={tenant}", 0) + cost
            batches.append(batch)

    def writer(store: PostgresStore, batches: list[list[SpanRow]]) -> Callable[[], None]:
        def run() -> None:
            for batch in batches:
                store.write_batch(batch)

        return run

    concurrently(writer(replicas[0], work[0]), writer(replicas[1], work[1]))
    states = {
        s.budget.name + s.scope_key: s.spend_nano_usd
        for s in budget_states(replicas[1].budget_store, hook.snapshot.index, clock())
    }
    assert {k: v for k, v in states.items() if k != "burst"} == expected
    assert states["burst"] == expected["daily"]  # every write lies in the rolling window too
    alerts = replicas[0].budget_store.list_alerts(limit=1000)
    assert sorted((a.source, a.kind) for a in alerts) == [
        ("burst", "budget.exceeded"),
        ("daily", "budget.exceeded"),
        ("daily", "budget.warning"),
    ]


def test_a_level_crossed_by_two_replicas_in_the_same_instant_alerts_once(
    replicas: tuple[PostgresStore, PostgresStore],
) -> None:
    clock = Clock("2026-03-10T12:00")
    for store in replicas:
        hooked(store, clock)
    days = 12
    for day in range(days):  # a fresh calendar window each round, both replicas released together
        start = at("2026-03-01T10:00") + day * DAY_NS
        clock.set(start)
        batches = [[row(start, 0.6)], [row(start, 0.6)]]
        concurrently(
            *(partial(store.write_batch, batch) for store, batch in zip(replicas, batches, strict=True))
        )
    alerts = replicas[1].budget_store.list_alerts(source="daily", limit=1000)
    per_window: dict[int | None, list[str]] = {}
    for alert in alerts:
        per_window.setdefault(alert.window_start_ns, []).append(alert.kind)
    # the first commit sees 0.6 (the 50% warning), the second 1.2 (exceeded): never both the same
    assert len(per_window) == days
    assert all(sorted(kinds) == ["budget.exceeded", "budget.warning"] for kinds in per_window.values())


@pytest.fixture
def sink() -> Iterator[WebhookSink]:
    server = WebhookSink()
    yield server
    server.close()


def test_two_outbox_workers_deliver_each_alert_once(
    replicas: tuple[PostgresStore, PostgresStore], sink: WebhookSink
) -> None:
    clock = Clock("2026-03-10T12:00")
    cfg = config(f"delivery: {{webhooks: [{{name: ops, url: '{sink.url}', secret: k}}], log: false}}")
    runtimes = [BudgetsRuntime(store, config=cfg, clock=clock) for store in replicas]
    alerts = [
        NewAlert(f"k{i}", "rule.x", "warning", "r", f"s{i}", "t", clock(), channels=("ops",))
        for i in range(250)
    ]
    ids = replicas[0].budget_store.insert_alerts(alerts, now_ns=clock())

    def drain(runtime: BudgetsRuntime) -> Callable[[], None]:
        def run() -> None:
            for _ in range(20):
                runtime.outbox.run_once()

        return run

    concurrently(drain(runtimes[0]), drain(runtimes[1]))
    delivered = [json.loads(r["body"])["id"] for r in sink.requests]
    assert len(ids) == len(delivered) == len(set(delivered)) == 250  # every alert, none twice
    assert runtimes[0].outbox.delivered > 0 and runtimes[1].outbox.delivered > 0  # both took a share
    for runtime in runtimes:
        runtime.stop()
    assert all(
        d.state == "delivered" for a in replicas[1].budget_store.list_alerts(limit=1000) for d in a.deliveries
    )


def test_a_dead_replicas_claim_is_retried_after_it_expires(url: str) -> None:
    now = at("2026-03-10T12:00")
    with PostgresStore(url, claim_s=30) as dead, PostgresStore(url, claim_s=30) as alive:
        dead.budget_store.insert_alerts(
            [NewAlert("k", "rule.x", "warning", "r", "s", "t", now, channels=("ops",))], now_ns=now
        )
        (claimed,) = dead.budget_store.due_deliveries(now)  # then it dies without recording
        assert alive.budget_store.due_deliveries(now) == []
        assert alive.budget_store.due_deliveries(now + 29 * NS) == []  # still claimed
        (retried,) = alive.budget_store.due_deliveries(now + 31 * NS)
        assert (retried.event_id, retried.channel, retried.attempts) == (claimed.event_id, "ops", 0)
        delivered = delivery_update("delivered", now_ns=now + 32 * NS)
        alive.budget_store.record_delivery(retried.event_id, "ops", delivered)
        assert dead.budget_store.due_deliveries(now + 3600 * NS) == []  # delivered: no one claims it again
        (alert,) = alive.budget_store.list_alerts()
        assert [(d.state, d.attempts) for d in alert.deliveries] == [("delivered", 1)]


def _kill_leader(url: str, job: str = SCHEDULER_JOB) -> int:
    """Terminate the session holding ``job``'s leadership lock (as a crash would)."""
    with psycopg.connect(url, autocommit=True) as conn:
        killed = conn.execute(
            "SELECT count(pg_terminate_backend(pid, 5000)) FROM pg_locks WHERE locktype = 'advisory'"
            " AND classid = %s AND objid = (%s::bigint & 4294967295) AND objsubid = 2 AND granted",
            (LEADER_LOCKS, lock_key(job)),
        ).fetchone()
    return int(killed[0]) if killed else 0


def test_one_replica_leads_and_another_takes_over_when_its_connection_dies(
    url: str, replicas: tuple[PostgresStore, PostgresStore]
) -> None:
    first, second = (store.budget_store for store in replicas)
    assert first.lead(SCHEDULER_JOB) is True
    assert first.lead(SCHEDULER_JOB) is True  # still its session, still its lock
    assert second.lead(SCHEDULER_JOB) is False
    assert second.lead("another-job") is True  # one lock per job
    assert _kill_leader(url) == 1
    assert second.lead("another-job") is True  # its own session lives on
    assert second.lead(SCHEDULER_JOB) is True  # released with the dead session
    assert first.lead(SCHEDULER_JOB) is False  # reconnected: a follower now


def test_only_the_leader_evaluates_rules_and_a_follower_takes_over_within_a_tick(
    url: str, replicas: tuple[PostgresStore, PostgresStore]
) -> None:
    clock = Clock("2026-03-10T12:00")
    cfg = config(
        "rules: [{kind: unknown_model_ratio, window: 1h, threshold: 5%, min_requests: 5}]\ndelivery: {log: false}"
    )
    runtimes = [BudgetsRuntime(store, config=cfg, clock=clock) for store in replicas]
    evaluated: list[int] = []
    for index, runtime in enumerate(runtimes):
        runtime.evaluator.evaluate_all = lambda _cfg, index=index: evaluated.append(index) or []  # type: ignore[method-assign]
    runtimes[0].tick()
    runtimes[1].tick()
    assert evaluated == [0]
    _kill_leader(url)
    clock.advance(1)  # the next tick
    runtimes[1].tick()
    assert evaluated == [0, 1]
    for runtime in runtimes:
        runtime.stop()


def test_the_alerts_command_reads_the_shared_database(
    url: str, replicas: tuple[PostgresStore, PostgresStore]
) -> None:
    replicas[0].budget_store.insert_alerts(
        [
            NewAlert(
                "cli", "budget.exceeded", "critical", "daily", "all", "daily over", at("2026-03-10T12:00")
            )
        ],
        now_ns=at("2026-03-10T12:00"),
    )
    answer = CliRunner().invoke(main, ["alerts", "list", "--store", url, "--format", "json"])
    assert answer.exit_code == 0, answer.output
    assert "daily over" in answer.output
