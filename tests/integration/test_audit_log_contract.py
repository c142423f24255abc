"""The audit trail's contract: every backend (SQLite, PostgreSQL) records who made and revoked
keys, acknowledged and resolved alerts and applied re-pricings, in the action's own
transaction, and lists the trail the same way.

Each test runs once per backend, against a real SQLite file and a real PostgreSQL server."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from spanmeter.auth import issue_key
from spanmeter.store import (
    ApiKey,
    AuditEvent,
    AuditLog,
    DuplicateKeyName,
    KeyStore,
    NewAlert,
    RepricedRow,
    RepricingRun,
    SpanStore,
    StaleRepricing,
    SupportsBudgets,
)
from spanmeter.store.audit_log import audit_event
from support.store_rows import DAY_NS, NS, T0, make_row
from support.stores import BACKENDS, backend_target, opened_store


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def store(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[SpanStore]:
    with opened_store(backend_target(backend, tmp_path, request)) as opened:
        yield opened


def _log(store: SpanStore) -> AuditLog:
    assert isinstance(store, AuditLog)
    return store


def _key(name: str, scope: str = "admin", *, at_ns: int = T0) -> ApiKey:
    issued = issue_key()
    return ApiKey(name, issued.key_id, issued.hash, scope, ("acme",), at_ns, at_ns + DAY_NS)


def test_entries_are_listed_newest_first_and_filtered(store: SpanStore) -> None:
    log = _log(store)
    assert log.audit_events() == []
    first = log.record_audit_event(audit_event(T0, "cli:ann", "key.create", "ops", "scope admin"))
    second = log.record_audit_event(audit_event(T0 + NS, "key:ops", "alert.ack", "alert 7", "on it"))
    third = log.record_audit_event(audit_event(T0 + 2 * NS, "cli:ann", "key.revoke", "ops"))
    assert first.id is not None and second.id is not None and third.id is not None
    assert first.id < second.id < third.id
    assert log.audit_events() == [third, second, first]
    assert log.audit_events(since_ns=T0 + NS) == [third, second]
    assert log.audit_events(action="key.*") == [third, first]
    assert log.audit_events(action="alert.ack") == [second]
    assert log.audit_events(action="alert") == []  # exact unless it ends in *
    assert log.audit_events(action="k%") == []  # LIKE's wildcards are not the filter's
    assert log.audit_events(limit=1) == [third]
    with pytest.raises(ValueError, match="limit"):
        log.audit_events(limit=0)
    with pytest.raises(ValueError, match="unknown audit action"):
        audit_event(T0, "cli:ann", "key.delete", "ops")
    with pytest.raises(ValueError, match="actor and a target"):
        audit_event(T0, " ", "key.revoke", "ops")
    long = audit_event(T0, "cli:ann", "alert.ack", "alert 1", "line one\nline two " + "x" * 1000)
    assert "\n" not in long.detail and len(long.detail) == 500 and long.detail.endswith("…")


def test_keys_made_and_revoked_are_recorded_with_the_change(store: SpanStore) -> None:
    assert isinstance(store, KeyStore)
    log = _log(store)
    key = _key("ops")
    store.add_api_key(key, actor="cli:ann")
    (made,) = log.audit_events()
    assert (made.actor, made.action, made.target, made.at_ns) == ("cli:ann", "key.create", "ops", T0)
    assert made.detail.startswith("scope admin; tenants acme; expires 2026-01-02")
    assert key.key_id not in made.detail and key.secret_hash.hex() not in made.detail
    with pytest.raises(DuplicateKeyName):  # refused: nothing done, nothing recorded
        store.add_api_key(_key("ops"), actor="cli:bob")
    assert not store.revoke_api_key("nobody", T0 + NS, actor="cli:ann")
    assert log.audit_events() == [made]
    assert store.revoke_api_key("ops", T0 + 2 * NS, actor="cli:bob")
    revoked = log.audit_events()[0]
    assert (revoked.actor, revoked.action, revoked.target, revoked.at_ns) == (
        "cli:bob",
        "key.revoke",
        "ops",
        T0 + 2 * NS,
    )
    store.add_api_key(_key("app", "ingest"))  # no actor named: the system's
    assert log.audit_events(action="key.create")[0].actor == "system"


def test_an_action_whose_record_fails_is_not_done(
    store: SpanStore, backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The record is written in the action's transaction: if it fails, so does the action."""
    assert isinstance(store, KeyStore) and isinstance(store, SupportsBudgets)
    store.add_api_key(_key("ops"), actor="cli:ann")
    (alert_id,) = store.budget_store.insert_alerts(
        [NewAlert("k", "rule.x", "warning", "r", "", "t", T0)], now_ns=T0
    )
    assert alert_id is not None

    def broken(conn: Any, *event: object) -> AuditEvent:
        raise RuntimeError("audit write failed")

    package = f"spanmeter.store.{'sqlite' if backend == 'sqlite' else 'postgres'}"
    for module in ("alerts", "analysis_writes" if backend == "sqlite" else "store"):
        monkeypatch.setattr(f"{package}.{module}.insert_audit_event", broken)
    monkeypatch.setattr("spanmeter.store.key_store.insert_audit_event", broken)  # both backends' keys
    with pytest.raises(RuntimeError, match="audit write failed"):
        store.add_api_key(_key("app"), actor="cli:ann")
    with pytest.raises(RuntimeError, match="audit write failed"):
        store.revoke_api_key("ops", T0 + NS, actor="cli:ann")
    with pytest.raises(RuntimeError, match="audit write failed"):
        store.budget_store.acknowledge(alert_id, actor="ann", now_ns=T0 + NS, audit_actor="key:ops")
    row = make_row(model="m", cost_nano_usd=1_000)
    store.write_batch([row])
    (stored,) = store.iter_requests()
    with pytest.raises(RuntimeError, match="audit write failed"):
        store.apply_repricing(
            [RepricedRow(stored, replace(stored, cost_nano_usd=2_000))],
            RepricingRun(
                reason="r", window_start_ns=T0, window_end_ns=T0 + DAY_NS, price_source="t", details=""
            ),
        )
    monkeypatch.undo()
    assert [key.name for key in store.api_keys()] == ["ops"] and store.has_api_keys()
    alert = store.budget_store.get_alert(alert_id)
    assert alert is not None and alert.state == "open"
    assert [row.cost_nano_usd for row in store.iter_requests()] == [1_000] and store.reprice_audits() == []
    assert [event.action for event in _log(store).audit_events()] == ["key.create"]


def test_alert_acks_and_resolves_name_the_key_and_the_person(store: SpanStore) -> None:
    assert isinstance(store, SupportsBudgets)
    budgets = store.budget_store
    (alert_id,) = budgets.insert_alerts([NewAlert("k", "rule.x", "warning", "r", "", "t", T0)], now_ns=T0)
    assert alert_id is not None
    acked = budgets.acknowledge(alert_id, actor="ann", note="looking", now_ns=T0 + NS, audit_actor="key:ops")
    assert acked.state == "acknowledged" and acked.history[-1].actor == "ann"
    budgets.resolve(alert_id, actor="cli:bob", note="", now_ns=T0 + 2 * NS)  # audited as its actor
    with pytest.raises(LookupError):
        budgets.resolve(alert_id + 1000, actor="ann", now_ns=T0 + 3 * NS)
    resolved, ack = _log(store).audit_events()
    assert (ack.actor, ack.action, ack.target, ack.detail, ack.at_ns) == (
        "key:ops",
        "alert.ack",
        f"alert {alert_id}",
        "by ann: looking",
        T0 + NS,
    )
    assert (resolved.actor, resolved.action, resolved.target, resolved.detail) == (
        "cli:bob",
        "alert.resolve",
        f"alert {alert_id}",
        "",
    )


def test_repricing_applied_is_recorded_with_its_audit_id(store: SpanStore) -> None:
    store.write_batch([make_row(model="m", cost_nano_usd=1_000), make_row(model="m", cost_nano_usd=3_000)])
    rows = list(store.iter_requests())
    changes = [RepricedRow(row, replace(row, cost_nano_usd=(row.cost_nano_usd or 0) * 2)) for row in rows]
    window: dict[str, Any] = {
        "window_start_ns": T0,
        "window_end_ns": T0 + DAY_NS,
        "price_source": "t",
        "details": "",
    }
    audit = store.apply_repricing(
        changes, RepricingRun(reason="new list price", applied_at_ns=T0 + 5 * NS, **window), actor="cli:ann"
    )
    with pytest.raises(StaleRepricing):  # not applied: not recorded
        store.apply_repricing(changes, RepricingRun(reason="again", **window), actor="cli:ann")
    (event,) = _log(store).audit_events()
    assert (event.actor, event.action, event.target, event.at_ns) == (
        "cli:ann",
        "reprice.apply",
        f"reprice {audit.id}",
        T0 + 5 * NS,
    )
    assert event.detail == (
        "new list price; 2 rows, 2026-01-01T00:00:00+00:00 .. 2026-01-02T00:00:00+00:00,"
        " cost 4000 -> 8000 nano-USD"
    )
