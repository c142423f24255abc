"""``spanmeter.BudgetGuard``: answers from memory (no I/O on the caller's thread, under a
microsecond), follows a real receiver's budget status, and answers by its stale policy when
the status is stale, keeping the last good states for an unchanged status (a 304)."""

from __future__ import annotations

import hashlib
import json
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
from spanmeter.identity import default_hasher
from spanmeter.service import ReceiverService, ServeConfig
from support.audit import io_on_this_thread
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
    """Serves a budget status as the receiver does: an ETag that is a hash of the states
    (so the same after a restart) and 304 to a matching If-None-Match. Counts requests and
    304s; can be switched off (503)."""

    def __init__(self, states: list[dict[str, Any]]) -> None:
        self.states = states
        self.requests = 0
        self.not_modified = 0
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
                stable = json.dumps(server.states, sort_keys=True).encode()
                etag = '"' + hashlib.sha256(stable).hexdigest()[:32] + '"'
                if self.headers.get("If-None-Match") == etag:
                    server.not_modified += 1
                    self.send_response(304)
                    self.send_header("ETag", etag)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                body = json.dumps({"states": server.states}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("ETag", etag)
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


def test_check_does_no_io_on_the_callers_thread(status_server: StatusServer) -> None:
    """How fast a check is, is measured in bench/budget_guard.py; here: never any I/O."""
    with spanmeter.BudgetGuard(status_server.url, refresh_s=0.001) as guard:
        wait_fresh(guard)
        before = status_server.requests
        deadline = time.monotonic() + 10
        tenants = [f"t{n}" for n in range(500)]
        with io_on_this_thread() as seen:  # until the background thread has swapped snapshots
            rounds = 0
            while status_server.requests < before + 3 and time.monotonic() < deadline:
                rounds += 1  # a changed status each round: 200s and new snapshots, not 304s
                status_server.states = [*STATES, state("r", {"tenant_id": "r"}, "ok", rounds / 1e6)]
                for tenant in tenants:
                    guard.check(tenant_id=tenant, endpoint_tag="search", user_id=f"user-{tenant}")
        assert seen == []
        assert status_server.requests >= before + 3
        assert guard.check(tenant_id="acme", user_id="someone").exceeded


def stale(guard: spanmeter.BudgetGuard) -> None:
    """Make ``guard`` (``stale_after_s`` well under 0.1 s, its server down) go stale."""
    time.sleep(0.1)
    assert not guard.refresh()
    assert guard.stale and not guard.fresh


def test_an_unchanged_status_after_an_outage_is_fresh_again_and_not_ok(status_server: StatusServer) -> None:
    guard = spanmeter.BudgetGuard(status_server.url, stale_after_s=0.05, start=False)
    assert guard.refresh()
    assert guard.check(tenant_id="acme").state == "exceeded"
    status_server.up = False
    stale(guard)
    decision = guard.check(tenant_id="acme")  # the default policy: the last known state
    assert (decision.state, decision.allowed, decision.fresh, decision.budget) == (
        "exceeded",
        False,
        False,
        "per-tenant",
    )
    assert (guard.last_error or "").startswith("HTTP 503")
    status_server.up = True  # back (restarted, say) with the same status: its ETag matches
    assert guard.refresh()
    assert status_server.not_modified == 1  # the guard revalidated what it had, and got a 304
    decision = guard.check(tenant_id="acme")
    assert (decision.state, decision.allowed, decision.fresh) == ("exceeded", False, True)
    assert guard.check(tenant_id="beta").state == "warning"
    assert guard.check(tenant_id="zeta").budget == "global"
    status_server.states = [state("per-tenant", {"tenant_id": "acme"}, "ok", 0.1)]  # a new window
    assert guard.refresh()
    assert status_server.not_modified == 1
    assert guard.check(tenant_id="acme").state == "ok" and guard.check(tenant_id="beta").state == "ok"


def test_stale_states_of_ended_calendar_windows_are_dropped() -> None:
    ended = {
        **state("daily", {"tenant_id": "acme"}, "exceeded", 1.2),
        "window": {"kind": "day", "to": "2020-01-01T00:00:00+00:00"},
    }
    running = {
        **state("monthly", {"tenant_id": "beta"}, "exceeded", 1.1),
        "window": {"kind": "month", "to": "2999-01-01T00:00:00+00:00"},
    }
    rolling = {**state("hourly", {"tenant_id": "gamma"}, "exceeded", 1.5), "window": {"kind": "rolling", "to": "2020-01-01T00:00:00+00:00"}}  # fmt: skip
    server = StatusServer([ended, running, rolling])
    try:
        guard = spanmeter.BudgetGuard(server.url, stale_after_s=0.05, start=False)
        assert guard.refresh()
        assert guard.check(tenant_id="acme").state == "exceeded"  # fresh: the receiver's word
        server.up = False
        stale(guard)
        acme = guard.check(tenant_id="acme")  # its day ended meanwhile: a new window, nothing known
        assert (acme.state, acme.allowed, acme.fresh, acme.budget) == ("ok", True, False, None)
        assert guard.check(tenant_id="beta").exceeded  # its month still runs
        assert guard.check(tenant_id="gamma").exceeded  # rolling: the last known state
    finally:
        server.close()


def test_the_stale_policies_allow_or_block_unknown(status_server: StatusServer) -> None:
    allow = spanmeter.BudgetGuard(status_server.url, stale_after_s=0.05, on_stale="allow", start=False)
    block = spanmeter.BudgetGuard(status_server.url, stale_after_s=0.05, on_stale="block", start=False)
    closed = spanmeter.BudgetGuard(status_server.url, stale_after_s=0.05, fail_closed=True, start=False)
    for guard in (allow, block, closed):
        assert guard.refresh()
        assert guard.check(tenant_id="acme").exceeded and guard.check(tenant_id="zeta").allowed
    status_server.up = False
    for guard in (allow, block, closed):
        stale(guard)
    assert (allow.check(tenant_id="acme").state, allow.check(tenant_id="acme").allowed) == ("unknown", True)
    for guard in (block, closed):
        decision = guard.check(tenant_id="zeta")
        assert (decision.state, decision.allowed, decision.fresh) == ("unknown", False, False)
    status_server.up = True
    assert block.refresh()
    assert block.check(tenant_id="acme").exceeded and block.check(tenant_id="zeta").allowed
    with pytest.raises(ValueError, match="on_stale"):
        spanmeter.BudgetGuard(status_server.url, on_stale="maybe", start=False)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="on_stale"):
        spanmeter.BudgetGuard(status_server.url, on_stale="allow", fail_closed=True, start=False)


def test_the_background_thread_goes_stale_and_comes_back(status_server: StatusServer) -> None:
    with spanmeter.BudgetGuard(status_server.url, refresh_s=0.02, stale_after_s=0.2) as guard:
        wait_fresh(guard)
        status_server.up = False
        deadline = time.monotonic() + 10
        while not guard.stale:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        assert not guard.check(tenant_id="acme").fresh
        status_server.up = True
        wait_fresh(guard)
        decision = guard.check(tenant_id="acme")
        assert (decision.state, decision.fresh) == ("exceeded", True)


def test_check_never_raises_and_never_waits_for_a_first_poll() -> None:
    with spanmeter.BudgetGuard("http://127.0.0.1:9", refresh_s=60, timeout_s=0.2) as guard:
        with io_on_this_thread() as seen:
            decision = guard.check(tenant_id="acme")
            unhashable = guard.check(tenant_id=["not", "hashable"])  # type: ignore[arg-type]
        assert seen == []  # answered from memory, whatever the poll is doing
        assert (decision.state, decision.allowed, decision.fresh) == ("unknown", True, False)
        assert unhashable.state == "unknown"


def test_a_user_budget_applies_to_the_raw_or_the_hashed_id() -> None:
    alice = default_hasher()("alice@example.com")
    server = StatusServer([state("user-hourly", {"user_id": alice}, "exceeded", 1.1)])
    try:
        guard = spanmeter.BudgetGuard(server.url, start=False)
        assert guard.refresh()
        for _ in range(2):  # worked out, then memoised
            raw = guard.check(user_id="alice@example.com", endpoint_tag="search")
            assert (raw.state, raw.budget, raw.scope["user_id"]) == ("exceeded", "user-hourly", alice)
        assert guard.check(user_id=alice).exceeded  # already hashed: used as is
        assert guard.check(user_id="bob@example.com").ok
        assert guard.check().ok
    finally:
        server.close()


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
            # the guard refreshes on its own clock: it may first show the status after the third
            # span (1.05, already "exceeded"), so wait for all four
            while (decision := guard.check(tenant_id="acme")).ratio != 1.4:
                assert time.monotonic() < deadline
                time.sleep(0.02)
            assert (decision.state, decision.budget, decision.scope["tenant_id"]) == (
                "exceeded",
                "per-tenant",
                "acme",
            )
            assert guard.check(tenant_id="beta").state == "ok"
