"""Budgets in a real receiver: many exporters in parallel push one budget across its limit;
the recorded spend is the exact sum of what was sent and each level alerts exactly once.

Runs the receiver as ``spanmeter serve`` does (a separate store process, where the ledger
runs inside the write transactions) and in one process (a writer thread).
"""

from __future__ import annotations

import json
import random
import threading
import time
import urllib.request
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from spanmeter.service import ReceiverService, ServeConfig
from support.budget_helpers import expected_cost, genai_attributes

EXPORTERS = 12
CALLS_PER_EXPORTER = 25


def midday_zone() -> str:
    """A fixed-offset zone where it is now about noon: the day window is hours from its edges."""
    offset = datetime.now(timezone.utc).hour - 12  # Etc/GMT+N is UTC-N
    return f"Etc/GMT+{offset}" if offset >= 0 else f"Etc/GMT-{-offset}"


def get(base: str, path: str) -> Any:
    with urllib.request.urlopen(base + path, timeout=10) as response:
        return json.loads(response.read())


def export_calls(endpoint: str, grpc: bool, calls: list[tuple[str, int, int, str]]) -> None:
    exporter = GrpcExporter(endpoint=endpoint, insecure=True) if grpc else HttpExporter(endpoint=endpoint)
    provider = TracerProvider(resource=Resource.create({"service.name": "budget-load"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))  # one export (one commit) per call
    tracer = provider.get_tracer("budget-load")
    for model, tokens_in, tokens_out, tenant in calls:
        attributes = genai_attributes(model, tokens_in, tokens_out, tenant_id=tenant, endpoint_tag="search")
        with tracer.start_as_current_span(f"chat {model}", attributes=attributes):
            pass
    provider.shutdown()


@pytest.mark.parametrize("store_process", [True, False], ids=["store-process", "writer-thread"])
def test_parallel_exporters_cross_one_budget_exactly_once(tmp_path: Path, store_process: bool) -> None:
    rng = random.Random(11)
    plan = [
        [
            (
                rng.choice(["gpt-4o", "gpt-4o-mini"]),
                rng.randint(100, 5000),
                rng.randint(10, 800),
                rng.choice("ab"),
            )
            for _ in range(CALLS_PER_EXPORTER)
        ]
        for _ in range(EXPORTERS)
    ]
    total = sum(expected_cost(m, i, o) for calls in plan for m, i, o, _ in calls)
    per_tenant = {
        t: sum(expected_cost(m, i, o) for calls in plan for m, i, o, x in calls if x == t) for t in "ab"
    }
    limit_usd = f"{total * 0.6 / 1e9:.9f}"  # crossed about 60% of the way through
    budgets = tmp_path / "budgets.yaml"
    budgets.write_text(
        f"""
budgets:
  - name: shared
    window: day
    timezone: {midday_zone()}
    limit_usd: "{limit_usd}"
    warn_at: [50%, 80%]
    forecast: false
  - name: per-tenant
    scope: {{tenant_id: "*"}}
    window: {{rolling: 24h}}
    limit_usd: 1000
"""
    )
    config = ServeConfig(
        db=str(tmp_path / "cost.db"),
        grpc_port=0,
        http_port=0,
        budgets_file=str(budgets),
        store_process=store_process,
    )
    with ReceiverService(config) as service:
        base = f"http://127.0.0.1:{service.http_port}"
        threads = [
            threading.Thread(
                target=export_calls,
                args=(
                    f"127.0.0.1:{service.grpc_port}" if n % 2 else f"{base}/v1/traces",
                    bool(n % 2),
                    plan[n],
                ),
            )
            for n in range(EXPORTERS)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        status = get(base, "/api/v1/budgets/status")
        shared = next(s for s in status["states"] if s["budget"] == "shared")
        assert shared["spend_nano_usd"] == total  # every span acknowledged is counted, once
        assert shared["attempts"] == EXPORTERS * CALLS_PER_EXPORTER
        assert shared["state"] == "exceeded"
        tenants = {
            s["scope"]["tenant_id"]: s["spend_nano_usd"]
            for s in status["states"]
            if s["budget"] == "per-tenant"
        }
        assert tenants == per_tenant
        alerts = get(base, "/api/v1/alerts?source=shared&limit=100")["alerts"]
        assert sorted(a["details"]["threshold"] for a in alerts) == ["100%", "50%", "80%"]
        (exceeded,) = [a for a in alerts if a["kind"] == "budget.exceeded"]
        assert exceeded["details"]["limit_usd"] == f"{float(limit_usd):.9f}"
        assert int(exceeded["details"]["spend_nano_usd"]) >= int(float(limit_usd) * 1e9)
        # the store agrees with the raw rows too
        rows = list(service.store.iter_requests())
        assert sum(r.cost_nano_usd or 0 for r in rows) == total
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # the log channel delivers each alert once
            alerts = get(base, "/api/v1/alerts?source=shared&limit=100")["alerts"]
            if all(d["state"] == "delivered" for a in alerts for d in a["deliveries"]):
                break
            time.sleep(0.1)
        assert [[d["state"] for d in a["deliveries"]] for a in alerts] == [["delivered"]] * 3
