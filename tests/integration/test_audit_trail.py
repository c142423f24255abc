"""The audit trail end to end: a real receiver with API keys, alerts acknowledged and resolved
over HTTP with an admin key, keys made and revoked, a re-pricing applied and budgets edited on
the command line, then ``spanmeter audit list`` and ``GET /api/v1/audit`` say who did what,
to what, and when; never a secret."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from spanmeter.auth.keys import parse_key
from spanmeter.cli import main
from spanmeter.cli.common import cli_actor
from spanmeter.service import ReceiverService, ServeConfig
from spanmeter.store import NewAlert, SQLiteStore
from support.api_keys import create_key
from support.store_rows import NS, T0, make_row

_WINDOW = "2026-01-01T00:00..2026-01-02T00:00"
_OVERRIDES = """
version: 1
models:
  - provider: vllm
    model: acme-llm-2
    prices:
      - effective_from: 2025-01-01
        input_mtok: "0.40"
        output_mtok: "1.20"
"""


def _cli(*args: str, env: dict[str, str] | None = None) -> str:
    result = CliRunner().invoke(main, list(args), env=env)
    assert result.exit_code == 0, result.output
    return result.output


def _call(port: int, path: str, key: str | None, body: dict[str, Any] | None = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}", data=data, method="GET" if body is None else "POST"
    )
    if key is not None:
        request.add_header("Authorization", f"Bearer {key}")
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def _events(db: Path, *args: str) -> list[dict[str, Any]]:
    return json.loads(_cli("audit", "list", "--format", "json", "--store", str(db), *args))["events"]


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[tuple[ReceiverService, Path, dict[str, str]]]:
    db = tmp_path / "audit.db"
    keys = {"ops": create_key(db, "ops", "admin"), "grafana": create_key(db, "grafana", "read")}
    config = ServeConfig(db=str(db), grpc_port=0, http_port=0, store_process=False)
    with ReceiverService(config) as service:
        yield service, db, keys


def test_alert_changes_over_http_are_recorded_with_the_key(
    receiver: tuple[ReceiverService, Path, dict[str, str]],
) -> None:
    service, db, keys = receiver
    port = service.http_port
    assert port is not None
    assert isinstance(service.store, SQLiteStore)
    (alert_id,) = service.store.budget_store.insert_alerts(
        [NewAlert("spike", "rule.spike", "warning", "spike", "", "cost spike", time.time_ns())],
        now_ns=time.time_ns(),
    )
    before = time.time_ns()
    status, alert = _call(
        port, f"/api/v1/alerts/{alert_id}/ack", keys["ops"], {"by": "ann", "note": "paging"}
    )
    assert status == 200 and alert["state"] == "acknowledged" and alert["history"][-1]["actor"] == "ann"
    assert _call(port, f"/api/v1/alerts/{alert_id}/resolve", keys["grafana"], {})[0] == 403  # not done
    assert _call(port, f"/api/v1/alerts/{alert_id}/resolve", keys["ops"], {"note": "fixed"})[0] == 200
    after = time.time_ns()
    events = _events(db)
    resolved, acked = events[0], events[1]
    assert (acked["actor"], acked["action"], acked["target"], acked["detail"]) == (
        "key:ops",
        "alert.ack",
        f"alert {alert_id}",
        "by ann: paging",
    )
    assert (resolved["actor"], resolved["action"], resolved["target"], resolved["detail"]) == (
        "key:ops",
        "alert.resolve",
        f"alert {alert_id}",
        "by api: fixed",
    )
    assert before <= acked["at_ns"] <= resolved["at_ns"] <= after
    assert acked["at"].startswith(time.strftime("%Y-%m-%d", time.gmtime(acked["at_ns"] / 1e9)))
    made = [event for event in events if event["action"] == "key.create"]
    assert {(e["actor"], e["target"]) for e in made} == {(cli_actor(), "ops"), (cli_actor(), "grafana")}
    everything = json.dumps(events)
    assert not any(key in everything or key.split("_")[1] in everything for key in keys.values())
    # the same document over HTTP, for admin keys only
    assert _call(port, "/api/v1/audit", None)[0] == 401
    assert _call(port, "/api/v1/audit", keys["grafana"])[0] == 403
    status, answer = _call(port, "/api/v1/audit?action=alert.*&since=1h", keys["ops"])
    assert status == 200 and answer["events"] == events[:2]
    assert _call(port, "/api/v1/audit?limit=0", keys["ops"])[0] == 400
    base = f"http://127.0.0.1:{port}"
    over_http = json.loads(
        _cli(
            "audit",
            "list",
            "--url",
            base,
            "--format",
            "json",
            "--action",
            "alert.ack",
            env={"SPANMETER_API_KEY": keys["ops"]},
        )
    )
    assert over_http["events"] == [acked]
    denied = CliRunner().invoke(
        main, ["audit", "list", "--url", base], env={"SPANMETER_API_KEY": keys["grafana"]}
    )
    assert denied.exit_code == 1 and "HTTP 403" in denied.output


def test_keys_reprice_and_budget_edits_on_the_command_line_are_recorded(tmp_path: Path) -> None:
    db = tmp_path / "cli.db"
    secret = create_key(db, "ops", "admin")
    _cli("keys", "revoke", "ops", "--store", str(db))
    with SQLiteStore(db) as store:
        store.write_batch(
            [
                make_row(
                    provider="vllm",
                    model="acme-llm-2",
                    input_tokens=1_000_000,
                    output_tokens=1_000_000,
                    cost_nano_usd=None,
                    pricing_status="unknown_model",
                )
            ]
        )
    pricing = tmp_path / "prices.yaml"
    pricing.write_text(_OVERRIDES)
    _cli(
        "reprice",
        "--store",
        str(db),
        "--window",
        _WINDOW,
        "--pricing-file",
        str(pricing),
        "--reason",
        "vllm prices",
        "--yes",
    )
    budgets = tmp_path / "budgets.yaml"
    _cli(
        "budgets",
        "add",
        "daily",
        "--window",
        "day",
        "--limit",
        "25",
        "--file",
        str(budgets),
        "--store",
        str(db),
    )
    _cli(
        "budgets", "add", "weekly", "--window", "week", "--limit", "90", "--file", str(budgets)
    )  # no store: not recorded
    _cli("budgets", "remove", "daily", "--file", str(budgets), env={"SPANMETER_STORE": str(db)})
    with SQLiteStore(db) as store:
        (alert_id,) = store.budget_store.insert_alerts(
            [NewAlert("k", "rule.x", "warning", "r", "", "t", T0)], now_ns=T0
        )
    _cli("alerts", "ack", str(alert_id), "--by", "ann", "--note", "seen", "--store", str(db))
    events = _events(db)
    assert [(e["action"], e["target"]) for e in events] == [
        ("alert.ack", f"alert {alert_id}"),
        ("budget.remove", "daily"),
        ("budget.add", "daily"),
        ("reprice.apply", "reprice 1"),
        ("key.revoke", "ops"),
        ("key.create", "ops"),
    ]
    assert {e["actor"] for e in events} == {cli_actor()} and cli_actor().startswith("cli:")
    assert events[0]["detail"] == "by ann: seen"
    events = events[1:]
    assert events[1]["detail"] == f"{budgets}: all, day (UTC), limit $25"
    assert events[2]["detail"].startswith(
        "vllm prices; 1 rows, 2026-01-01T00:00:00+00:00 .. 2026-01-02T00:00:00+00:00,"
    )
    assert events[2]["detail"].endswith("cost 0 -> 1600000000 nano-USD")  # 0.40 + 1.20 USD
    parsed = parse_key(secret)
    assert parsed is not None and parsed[1] not in json.dumps(events)  # the secret may hold "_"
    assert [e["action"] for e in _events(db, "--action", "key.*")] == ["key.revoke", "key.create"]
    assert _events(db, "--since", "1h")[1:] == events
    table = _cli("audit", "list", "--store", str(db))
    assert "reprice.apply" in table.splitlines()[4] and cli_actor() in table
    bad = CliRunner().invoke(main, ["audit", "list", "--store", str(db), "--since", "soon"])
    assert bad.exit_code == 2 and "--since" in bad.output
    # the trail stays with its store: `store copy` does not move it (docs/postgresql.md)
    copied = tmp_path / "copy.db"
    _cli("store", "copy", "--from", str(db), "--to", str(copied))
    assert _events(copied) == []


def test_an_api_call_without_keys_is_recorded_as_anonymous(tmp_path: Path) -> None:
    db = tmp_path / "open.db"
    config = ServeConfig(db=str(db), grpc_port=None, http_port=0, store_process=False)
    with ReceiverService(config) as service:
        assert service.http_port is not None and isinstance(service.store, SQLiteStore)
        (alert_id,) = service.store.budget_store.insert_alerts(
            [NewAlert("k", "rule.x", "warning", "r", "", "t", T0)], now_ns=T0
        )
        assert _call(service.http_port, f"/api/v1/alerts/{alert_id}/ack", None, {"by": "ann"})[0] == 200
        status, answer = _call(service.http_port, "/api/v1/audit", None)
    assert status == 200
    assert [(e["actor"], e["action"], e["detail"]) for e in answer["events"]] == [
        ("anonymous", "alert.ack", "by ann")
    ]


def test_audit_entries_keep_their_time_order(tmp_path: Path) -> None:
    """Entries recorded out of order (a slow clock on one replica) are listed by their time."""
    from spanmeter.store.audit_log import audit_event

    with SQLiteStore(tmp_path / "order.db") as store:
        late = store.record_audit_event(audit_event(T0 + 2 * NS, "cli:a", "key.create", "k1"))
        early = store.record_audit_event(audit_event(T0 + NS, "cli:a", "key.revoke", "k1"))
        assert store.audit_events() == [late, early]
