"""``spanmeter.BudgetGuard``: answers from memory (no I/O on the caller's thread, under a
microsecond), follows a real receiver's budget status, goes ``unknown`` when it is stale."""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

import spanmeter
from spanmeter.service import ReceiverService, ServeConfig
from support.budget_helpers import genai_attributes


def state(
    budget: str, scope: dict[str, str], name: str, ratio: float, forecast: bool = False
) -> dict[str, Any]:
    return {"budget": budget, "scope": {"data_mode": "real", **scope}, "state": name, "ratio": ratio,
            "forecast_exceeds": forecast}  # fmt: skip


STATES = [
    state("global", {}, "ok", 0.2),
    state("per-tenant", {"tenant_id": "acme"}, "exceeded", 1.3),
    state("per-tenant", {"tenant_id": "beta"}, "warning", 0.85),
    state("search", {"endpoint_tag": "search"}, "warning", 0.6, forecast=True),
    state("acme-search", {"tenant_id": "acme", "endpoint_tag": "search"}, "ok", 0.1),
    state("test-only", {"tenant_id": "gamma", "data_mode": "test"}, "exceeded", 2.0),
]


class StatusServer:
    """Serves a fixed budget status; counts requests; can be switched off."""

    def __init__(self, states: list[dict[str, Any]]) -> None:
        self.states = states
        self.requests = 0
        self.up = True
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.requests += 1
                if not server.up:
                    self.send_response(503)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                body = json.dumps({"states": server.states}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.http.server_address[1]}"
        threading.Thread(target=self.http.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.http.shutdown()
        self.http.server_close()


@pytest.fixture
def status_server() -> Iterator[StatusServer]:
    server = StatusServer(STATES)
    yield server
    server.close()


def wait_fresh(guard: spanmeter.BudgetGuard) -> None:
    deadline = time.monotonic() + 10
    while not guard.fresh:
        assert time.monotonic() < deadline, guard.last_error
        time.sleep(0.01)


def test_the_worst_applicable_budget_wins(status_server: StatusServer) -> None:
    with spanmeter.BudgetGuard(status_server.url, refresh_s=0.05) as guard:
        wait_fresh(guard)
        acme = guard.check(tenant_id="acme", endpoint_tag="search")
        assert (acme.state, acme.budget, acme.allowed, acme.exceeded) == (
            "exceeded",
            "per-tenant",
            False,
            True,
        )
        assert acme.forecast_exceeds  # the endpoint budget is on course to exceed
        beta = guard.check(tenant_id="beta")
        assert (beta.state, beta.budget, beta.allowed, beta.warning) == ("warning", "per-tenant", True, True)
        assert guard.check(tenant_id="zeta").state == "ok"  # only the global budget applies
        assert guard.check(tenant_id="zeta", endpoint_tag="search").budget == "search"
        assert guard.check(tenant_id="gamma").state == "ok"  # test traffic's budget: not ours
        assert guard.check().budget == "global"


def test_check_does_no_io_on_the_callers_thread_and_takes_under_a_microsecond(
    status_server: StatusServer,
) -> None:
    with spanmeter.BudgetGuard(status_server.url, refresh_s=0.001) as guard:
        wait_fresh(guard)
        caller = threading.get_ident()
        seen: list[str] = []
        recording = threading.Event()

        def audit(event: str, args: tuple[Any, ...]) -> None:
            io = event.startswith(("socket.", "urllib.", "http.")) or event in ("open", "os.open")
            if io and recording.is_set() and threading.get_ident() == caller:
                seen.append(event)

        sys.addaudithook(audit)  # cannot be removed: it records only while `recording` is set
        before = status_server.requests
        recording.set()
        deadline = time.monotonic() + 10
        tenants = [f"t{n}" for n in range(500)]
        try:  # check until the background thread has polled (and swapped snapshots) a few times
            while status_server.requests < before + 3 and time.monotonic() < deadline:
                for tenant in tenants:
                    guard.check(tenant_id=tenant, endpoint_tag="search")
        finally:
            recording.clear()
        assert seen == []
        assert status_server.requests >= before + 3
        timings = []
        for _ in range(5):
            started = time.perf_counter()
            for _ in range(100_000):
                guard.check(tenant_id="acme", endpoint_tag="search")
            timings.append((time.perf_counter() - started) / 100_000)
        assert min(timings) < 1e-6, f"{min(timings) * 1e9:.0f} ns per check"


def test_a_stale_status_answers_unknown_and_fails_open_or_closed(status_server: StatusServer) -> None:
    open_guard = spanmeter.BudgetGuard(status_server.url, refresh_s=0.02, stale_after_s=0.2)
    closed_guard = spanmeter.BudgetGuard(
        status_server.url, refresh_s=0.02, stale_after_s=0.2, fail_closed=True
    )
    try:
        wait_fresh(open_guard)
        wait_fresh(closed_guard)
        status_server.up = False
        time.sleep(0.6)
        decision = open_guard.check(tenant_id="acme")
        assert (decision.state, decision.allowed) == ("unknown", True)
        assert closed_guard.check(tenant_id="acme").allowed is False
        assert "HTTP Error 503" in (open_guard.last_error or "")
        status_server.up = True
        wait_fresh(open_guard)
        assert open_guard.check(tenant_id="acme").state == "exceeded"
    finally:
        open_guard.close()
        closed_guard.close()


def test_check_never_raises_and_never_waits_for_a_first_poll() -> None:
    with spanmeter.BudgetGuard("http://127.0.0.1:9", refresh_s=60, timeout_s=0.2) as guard:
        started = time.perf_counter()
        decision = guard.check(tenant_id="acme")
        assert time.perf_counter() - started < 0.01
        assert (decision.state, decision.allowed) == ("unknown", True)
        assert guard.check(tenant_id=["not", "hashable"]).state == "unknown"  # type: ignore[arg-type]


def test_a_url_is_required(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SPANMETER_URL", raising=False)
    monkeypatch.setenv("SPANMETER_ENDPOINT", "http://collector:4317")  # gRPC: no API there
    with pytest.raises(ValueError, match="SPANMETER_URL"):
        spanmeter.BudgetGuard(start=False)
    monkeypatch.setenv("SPANMETER_ENDPOINT", "http://spanmeter:4318/v1/traces")
    guard = spanmeter.BudgetGuard(start=False, filters={"endpoint_tag": "search"})
    assert guard.url == "http://spanmeter:4318/api/v1/budgets/status?endpoint_tag=search"


def test_the_guard_follows_a_real_receiver(tmp_path: Path) -> None:
    budgets = tmp_path / "budgets.yaml"
    budgets.write_text(
        """
budgets:
  - {name: per-tenant, scope: {tenant_id: "*"}, window: {rolling: 24h}, limit_usd: "0.01", warn_at: [50%]}
"""
    )
    config = ServeConfig(db=str(tmp_path / "cost.db"), grpc_port=0, http_port=0, budgets_file=str(budgets))
    with ReceiverService(config) as service:
        base = f"http://127.0.0.1:{service.http_port}"
        with spanmeter.BudgetGuard(base, refresh_s=0.05) as guard:
            wait_fresh(guard)
            assert guard.check(tenant_id="acme").state == "ok"  # no spend yet
            provider = TracerProvider(resource=Resource.create({"service.name": "guarded"}))
            provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"{base}/v1/traces")))
            tracer = provider.get_tracer("guarded")
            for _ in range(4):  # 4 x 3.5 milli-USD: over the 10 milli-USD limit
                with tracer.start_as_current_span(
                    "chat", attributes=genai_attributes("gpt-4o", 1000, 100, tenant_id="acme")
                ):
                    pass
            provider.shutdown()
            deadline = time.monotonic() + 10
            while guard.check(tenant_id="acme").state != "exceeded":
                assert time.monotonic() < deadline
                time.sleep(0.02)
            decision = guard.check(tenant_id="acme")
            assert (decision.budget, decision.scope["tenant_id"], decision.ratio) == (
                "per-tenant",
                "acme",
                1.4,
            )
            assert guard.check(tenant_id="beta").state == "ok"
