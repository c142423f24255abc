"""The budgets and alerts API and CLI against a real receiver, and budgets file reloads."""

from __future__ import annotations

import hashlib
import json
import os
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from click.testing import CliRunner
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from spanmeter.cli import main
from spanmeter.identity import default_hasher
from spanmeter.service import ReceiverService, ServeConfig
from support.budget_helpers import genai_attributes

BUDGETS = """
budgets:
  - name: global
    window: {rolling: 24h}
    limit_usd: 1
  - name: per-tenant
    scope: {tenant_id: "*"}
    window: {rolling: 24h}
    limit_usd: "0.01"
    warn_at: [50%]
"""


def wait_for(condition: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def request(
    url: str, *, body: dict[str, Any] | None = None, headers: dict[str, str] | None = None
) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(
        url, data=data, headers=headers or {}, method="GET" if body is None else "POST"
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as response:
            raw = response.read()
            return response.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as error:
        raw = error.read()
        return error.code, json.loads(raw) if raw else None


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[tuple[ReceiverService, str, Path]]:
    budgets = tmp_path / "budgets.yaml"
    budgets.write_text(BUDGETS)
    config = ServeConfig(db=str(tmp_path / "cost.db"), grpc_port=0, http_port=0, budgets_file=str(budgets))
    with ReceiverService(config) as service:
        base = f"http://127.0.0.1:{service.http_port}"
        provider = TracerProvider(resource=Resource.create({"service.name": "api"}))
        provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"{base}/v1/traces")))
        tracer = provider.get_tracer("api")
        for tenant, calls in (("acme", 4), ("beta", 2), ("gamma", 1)):  # 3.5 milli-USD a call
            for _ in range(calls):
                attributes = genai_attributes("gpt-4o", 1000, 100, tenant_id=tenant, endpoint_tag="search")
                with tracer.start_as_current_span("chat", attributes=attributes):
                    pass
        provider.shutdown()
        wait_for(lambda: all(a["context"] for a in request(f"{base}/api/v1/alerts")[1]["alerts"]))
        yield service, base, budgets


def test_status_is_filterable_by_dimension_and_cacheable(receiver: tuple[ReceiverService, str, Path]) -> None:
    _, base, _ = receiver
    status, document = request(f"{base}/api/v1/budgets/status?tenant_id=acme")
    assert status == 200
    assert [(s["budget"], s["scope"].get("tenant_id"), s["state"]) for s in document["states"]] == [
        ("global", None, "ok"),  # applies to acme too
        ("per-tenant", "acme", "exceeded"),
    ]
    acme = document["states"][1]
    assert (acme["spend_nano_usd"], acme["limit_usd"], acme["ratio"]) == (14_000_000, "0.010000000", 1.4)
    _, exact = request(f"{base}/api/v1/budgets/status?tenant_id=acme&match=exact")
    assert [s["budget"] for s in exact["states"]] == ["per-tenant"]
    _, warning = request(f"{base}/api/v1/budgets/status?state=warning")
    assert [s["scope"]["tenant_id"] for s in warning["states"]] == ["beta"]
    assert document["counts"] == {"ok": 1, "warning": 0, "exceeded": 1}
    with urllib.request.urlopen(f"{base}/api/v1/budgets/status", timeout=10) as response:
        etag = response.headers["ETag"]
    status, _ = request(f"{base}/api/v1/budgets/status", headers={"If-None-Match": etag})
    assert status == 304
    assert request(f"{base}/api/v1/budgets/status?budget=nope")[0] == 400
    assert request(f"{base}/api/v1/budgets/status?colour=blue")[0] == 400
    _, definitions = request(f"{base}/api/v1/budgets")
    assert [b["name"] for b in definitions["budgets"]] == ["global", "per-tenant"]
    assert definitions["config_error"] is None


def test_alerts_are_listed_shown_and_acknowledged(receiver: tuple[ReceiverService, str, Path]) -> None:
    _, base, _ = receiver
    _, listing = request(f"{base}/api/v1/alerts?kind=budget.*")
    titles = sorted(a["title"].split(":")[0] for a in listing["alerts"])
    assert titles == [
        "Budget per-tenant (tenant_id=acme) exceeded its limit",
        "Budget per-tenant (tenant_id=acme) reached 50% of its limit",
        "Budget per-tenant (tenant_id=beta) reached 50% of its limit",
    ]
    exceeded = next(a for a in listing["alerts"] if a["kind"] == "budget.exceeded")
    status, alert = request(f"{base}/api/v1/alerts/{exceeded['id']}")
    assert status == 200
    context = alert["context"]
    assert context["drivers"]["endpoint_tag"]["value"] == "search"
    assert context["drivers"]["model"]["value"] == "gpt-4o"
    assert context["focus"]["api"].startswith(f"{base}/api/v1/top?by=endpoint_tag")
    assert "where=tenant_id%3Dacme" in context["focus"]["api"]
    status, view = request(context["focus"]["api"])  # the focused view opens, with the same filters
    assert (
        status == 200
        and view["filters"] == {"tenant_id": "acme"}
        and view["groups"][0]["endpoint_tag"] == "search"
    )
    status, acked = request(
        f"{base}/api/v1/alerts/{exceeded['id']}/ack", body={"by": "alice", "note": "capped acme"}
    )
    assert status == 200 and acked["state"] == "acknowledged"
    assert [(h["state"], h["actor"]) for h in acked["history"]] == [
        ("open", "spanmeter"),
        ("acknowledged", "alice"),
    ]
    _, open_alerts = request(f"{base}/api/v1/alerts?state=open")
    assert exceeded["id"] not in [a["id"] for a in open_alerts["alerts"]]
    assert request(f"{base}/api/v1/alerts/99999")[0] == 404
    assert request(f"{base}/api/v1/alerts/99999/ack", body={})[0] == 404
    assert request(f"{base}/api/v1/alerts/{exceeded['id']}/ack")[0] == 405


def test_cli_budgets_and_alerts(receiver: tuple[ReceiverService, str, Path]) -> None:
    service, base, budgets = receiver
    runner = CliRunner()
    db = service.config.db
    result = runner.invoke(main, ["budgets", "status", "--url", base, "--where", "tenant_id=acme"])
    assert result.exit_code == 0, result.output
    assert "per-tenant" in result.output and "exceeded" in result.output
    result = runner.invoke(
        main, ["budgets", "status", "--db", db, "--file", str(budgets), "--format", "json"]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["counts"] == {"ok": 2, "warning": 1, "exceeded": 1}
    result = runner.invoke(main, ["budgets", "list", "--file", str(budgets)])
    assert result.exit_code == 0 and "tenant_id=*" in result.output, result.output
    result = runner.invoke(main, ["alerts", "list", "--url", base, "--kind", "budget.exceeded"])
    assert result.exit_code == 0 and "budget.exceeded" in result.output, result.output
    alert_id = json.loads(runner.invoke(main, ["alerts", "list", "--db", db, "--format", "json"]).output)[
        "alerts"
    ][0]["id"]
    result = runner.invoke(main, ["alerts", "show", str(alert_id), "--db", db])
    assert result.exit_code == 0 and "focused view: spanmeter top" in result.output, result.output
    result = runner.invoke(main, ["alerts", "ack", str(alert_id), "--db", db, "--by", "bob", "--note", "ok"])
    assert result.exit_code == 0 and "acknowledged" in result.output, result.output
    result = runner.invoke(main, ["alerts", "ack", "99999", "--url", base])
    assert result.exit_code != 0 and "404" in result.output


def test_check_config_lists_every_problem(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(BUDGETS)
    result = CliRunner().invoke(main, ["budgets", "check-config", str(good)])
    assert result.exit_code == 0 and "OK: 2 budgets" in result.output, result.output
    bad = tmp_path / "bad.yaml"
    bad.write_text("budgets:\n  - {name: x, window: dai, limit_usd: -1}\n  - {name: x, window: day}\n")
    result = CliRunner().invoke(main, ["budgets", "check-config", str(bad)])
    assert result.exit_code == 1
    assert "bad.yaml: budgets[0] 'x': window: unknown window 'dai'" in result.output
    assert "budgets[0] 'x': limit_usd: must be a positive amount" in result.output
    assert "budgets[1] 'x': limit_usd: required" in result.output


def test_a_changed_budgets_file_is_reloaded_and_a_broken_one_ignored(
    receiver: tuple[ReceiverService, str, Path],
) -> None:
    service, base, budgets = receiver
    assert service.store_process_pid is not None  # the ledger runs in the store process
    new_budget = "\n  - {name: gamma-only, scope: {tenant_id: gamma}, window: {rolling: 24h}, limit_usd: 1}\n"
    budgets.write_text(BUDGETS.replace("limit_usd: 1\n", 'limit_usd: "0.02"\n') + new_budget)
    stat = budgets.stat()  # global: now 24.5 of 20 milli-USD
    os.utime(budgets, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    wait_for(lambda: any(a["source"] == "global" for a in request(f"{base}/api/v1/alerts")[1]["alerts"]))
    (alert,) = [a for a in request(f"{base}/api/v1/alerts")[1]["alerts"] if a["source"] == "global"]
    assert alert["kind"] == "budget.exceeded"  # judged again at once, without new spend
    # The API shows the new budgets only once the store process's ledger counts with them:
    # the receiver had it reload first, and both report the new file's fingerprint.
    _, definitions = request(f"{base}/api/v1/budgets")
    assert "gamma-only" in [b["name"] for b in definitions["budgets"]]
    new_fingerprint = hashlib.sha256(budgets.read_bytes()).hexdigest()
    assert definitions["fingerprint"] == definitions["ledger_fingerprint"] == new_fingerprint

    def gamma_spend() -> int:
        states = request(f"{base}/api/v1/budgets/status?budget=gamma-only")[1]["states"]
        return states[0]["spend_nano_usd"]

    assert gamma_spend() == 0  # a new budget counts from the moment it is loaded
    provider = TracerProvider(resource=Resource.create({"service.name": "api"}))
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"{base}/v1/traces")))
    with provider.get_tracer("api").start_as_current_span(
        "chat", attributes=genai_attributes("gpt-4o", 1000, 100, tenant_id="gamma")
    ):
        pass
    provider.shutdown()
    assert gamma_spend() == 3_500_000  # counted by the store process's reloaded ledger
    budgets.write_text("budgets: [{name: broken}]\n")
    os.utime(budgets, ns=(stat.st_atime_ns, stat.st_mtime_ns + 2_000_000_000))
    wait_for(lambda: request(f"{base}/api/v1/budgets")[1]["config_error"] is not None)
    _, definitions = request(f"{base}/api/v1/budgets")
    assert [b["name"] for b in definitions["budgets"]] == ["global", "per-tenant", "gamma-only"]  # in force
    assert "window: required" in definitions["config_error"]


def test_user_budgets_and_filters_take_the_raw_or_the_hashed_user_id(tmp_path: Path) -> None:
    budgets = tmp_path / "budgets.yaml"
    budgets.write_text(
        """
budgets:
  - {name: per-user, scope: {user_id: "*"}, window: {rolling: 24h}, limit_usd: "0.005"}
  - {name: alice-only, scope: {user_id: "alice@example.com"}, window: {rolling: 24h}, limit_usd: 1}
"""
    )
    db = str(tmp_path / "cost.db")
    config = ServeConfig(db=db, grpc_port=0, http_port=0, budgets_file=str(budgets))
    alice = default_hasher()("alice@example.com")
    with ReceiverService(config) as service:
        base = f"http://127.0.0.1:{service.http_port}"
        provider = TracerProvider(resource=Resource.create({"service.name": "api"}))
        provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"{base}/v1/traces")))
        for user in ("alice@example.com", "alice@example.com", "bob@example.com"):
            attributes = {**genai_attributes("gpt-4o", 1000, 100), "user.id": user}
            with provider.get_tracer("api").start_as_current_span("chat", attributes=attributes):
                pass
        provider.shutdown()
        for user in ("alice@example.com", alice):
            _, document = request(f"{base}/api/v1/budgets/status?{urlencode({'user_id': user})}&match=exact")
            assert [(s["budget"], s["scope"]["user_id"], s["state"]) for s in document["states"]] == [
                ("alice-only", alice, "ok"),
                ("per-user", alice, "exceeded"),
            ]
            assert document["states"][0]["spend_nano_usd"] == 7_000_000  # the raw id in the file counts
        assert "alice@example.com" not in json.dumps(request(f"{base}/api/v1/budgets")[1])
    runner = CliRunner()
    for user in ("alice@example.com", alice):
        result = runner.invoke(
            main,
            ["budgets", "status", "--db", db, "--file", str(budgets), "--where", f"user_id={user}",
             "--exact", "--format", "json"],
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        assert [s["budget"] for s in json.loads(result.output)["states"]] == ["alice-only", "per-user"]
