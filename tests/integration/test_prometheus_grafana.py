"""A real Prometheus scrapes a real ``spanmeter serve`` fed through the OTel SDK; every
PromQL expression and every JSON-API URL of the shipped Grafana dashboards returns data.

One receiver (store process, budgets file) and one Prometheus (1 s scrapes, tmp storage,
a free loopback port) serve the whole module, so the Prometheus waits are paid once. No
test adds traffic to them (the re-delivery test has a receiver of its own), so every
assertion holds whatever the test order.
"""

from __future__ import annotations

import json
import math
import re
import shutil
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from prometheus_client.parser import text_string_to_metric_families

from spanmeter.service import ReceiverService, ServeConfig

REPO = Path(__file__).resolve().parents[2]
DASHBOARDS = REPO / "deploy" / "grafana" / "dashboards"
NANO = 1_000_000_000
TOP_TENANTS = 10
TENANTS = 5_000
ENDPOINTS = ("checkout.summary", "support.reply", "search.rerank")
MODELS = (("openai", "gpt-4o"), ("openai", "gpt-4o-mini"), ("anthropic", "claude-sonnet-4-5"))

# Rolling windows: a calendar day could roll over at UTC midnight during the module and
# empty the states the assertions count.
BUDGETS = """
budgets:
  - {name: global-24h, scope: {}, window: {rolling: 24h}, limit_usd: 0.01}
  - {name: tenant-24h, scope: {tenant_id: "*"}, window: {rolling: 24h}, limit_usd: 1}
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def get(url: str, timeout: float = 10.0) -> tuple[int, bytes]:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.status, response.read()


def send_traffic(http_port: int, count: int, seed: int) -> None:
    """``count`` GenAI spans over 5,000 tenants through the OTel SDK's OTLP/HTTP exporter."""
    provider = TracerProvider(resource=Resource.create({"service.name": "prom-test"}))
    exporter = OTLPSpanExporter(endpoint=f"http://127.0.0.1:{http_port}/v1/traces")
    provider.add_span_processor(
        BatchSpanProcessor(
            exporter, max_queue_size=count, max_export_batch_size=512, schedule_delay_millis=50
        )
    )
    tracer = provider.get_tracer("prom-test")
    for i in range(count):
        n = seed + i
        provider_name, model = MODELS[n % len(MODELS)]
        attributes: dict[str, Any] = {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": provider_name,
            "gen_ai.request.model": model,
            "gen_ai.usage.input_tokens": 200 + n % 997,
            "gen_ai.usage.output_tokens": 20 + n % 101,
            "gen_ai.usage.cache_read.input_tokens": n % 50,
            "spanmeter.endpoint_tag": ENDPOINTS[n % len(ENDPOINTS)],
            "gen_ai.prompt.version": f"v{n % 3}",
            "spanmeter.tenant_id": f"tenant-{n % TENANTS:05d}",
            "user.id": f"user-{n % 700}",
            "deployment.environment.name": "prod" if n % 4 else "staging",
            "spanmeter.external_request_id": f"req-{n // 2}",  # two attempts per logical request
        }
        if n % 9 == 0:
            attributes["error.type"] = "timeout"
        with tracer.start_as_current_span(f"chat {model}", attributes=attributes):
            pass
    provider.shutdown()


def metric_samples(body: str, name: str) -> list[tuple[dict[str, str], float]]:
    return [
        (sample.labels, sample.value)
        for family in text_string_to_metric_families(body)
        for sample in family.samples
        if sample.name == name
    ]


def store_total_nano(service: ReceiverService) -> int:
    rows = service.store.scan_requests(0, 2**62, columns=("cost_nano_usd",), data_mode=None)
    return sum(cost for (cost,) in rows if cost is not None)


def store_attempts_and_requests(service: ReceiverService) -> tuple[int, int]:
    """Stored attempts, and logical requests (rows without an external id + distinct ids)."""
    ids = [
        i for (i,) in service.store.scan_requests(0, 2**62, columns=("external_request_id",), data_mode=None)
    ]
    return len(ids), ids.count(None) + len({i for i in ids if i is not None})


class Prometheus:
    def __init__(self, base: str) -> None:
        self.base = base

    def api(self, path: str, **params: str) -> Any:
        status, body = get(f"{self.base}{path}?{urllib.parse.urlencode(params)}")
        document = json.loads(body)
        assert status == 200 and document["status"] == "success", document
        return document["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        return self.api("/api/v1/query", query=expr, time=f"{time.time():.3f}")["result"]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ReceiverService, Prometheus]]:
    prometheus_bin = shutil.which("prometheus")
    assert prometheus_bin, "prometheus is not installed: run scripts/install-system-deps"
    tmp = tmp_path_factory.mktemp("prom")
    budgets = tmp / "budgets.yaml"
    budgets.write_text(BUDGETS)
    config = ServeConfig(
        db=str(tmp / "cost.db"),
        grpc_port=0,
        http_port=0,
        budgets_file=str(budgets),
        metrics_top_tenants=TOP_TENANTS,
        metrics_promotion_delay_s=0,
    )
    with ReceiverService(config) as service:
        send_traffic(service.http_port or 0, 6_000, seed=0)
        get(f"http://127.0.0.1:{service.http_port}/metrics")  # a first scrape fills the tenant slots
        port = free_port()
        (tmp / "prometheus.yml").write_text(
            "global: {scrape_interval: 1s, scrape_timeout: 900ms, evaluation_interval: 1s}\n"
            "scrape_configs:\n"
            "  - job_name: spanmeter\n"
            f"    static_configs: [{{targets: ['127.0.0.1:{service.http_port}']}}]\n"
        )
        log = (tmp / "prometheus.log").open("wb")
        process = subprocess.Popen(
            [
                prometheus_bin,
                f"--config.file={tmp / 'prometheus.yml'}",
                f"--storage.tsdb.path={tmp / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
        try:
            prometheus = Prometheus(f"http://127.0.0.1:{port}")
            wait_for(lambda: prometheus.query("spanmeter_cost_usd_total"), "the first scrape", 20)
            # Spend between scrapes (rates > 0), on labelled tenants too; requests 2,500-2,999 are
            # retried here (same external ids), so they add attempts but no logical requests.
            send_traffic(service.http_port or 0, 1_500, seed=5_000)
            deadline_total = store_total_nano(service) / NANO
            wait_for(
                lambda: _close(prometheus.query("sum(spanmeter_cost_usd_total)"), deadline_total),
                "a scrape after the second wave",
                20,
            )
            time.sleep(1.5)  # one more scrape, so every rate() window holds several samples
            yield service, prometheus
        finally:
            process.terminate()
            process.wait(10)
            log.close()


def _close(result: list[dict[str, Any]], expected: float) -> bool:
    return bool(result) and math.isclose(float(result[0]["value"][1]), expected, rel_tol=1e-12)


def wait_for(check: Any, what: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except OSError:
            pass  # Prometheus still starting
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


# -- what the dashboards query ------------------------------------------------------------------


def dashboards() -> dict[str, dict[str, Any]]:
    return {path.stem: json.loads(path.read_text()) for path in sorted(DASHBOARDS.glob("*.json"))}


def targets(kind: str) -> list[tuple[str, str, dict[str, Any]]]:
    found = []
    for name, dashboard in dashboards().items():
        for panel in dashboard["panels"]:
            for target in panel.get("targets", []):
                if target["datasource"]["type"] == kind:
                    found.append((name, panel["title"], target))
    return found


PROMQL_VARIABLES = {
    "$__rate_interval": "10s",
    "$__range": "5m",
    "$environment": ".*",
    "$data_mode": "real",
    "$endpoint_tag": ".*",
    "$tenant": ".*",
}


def substitute_promql(expr: str) -> str:
    for variable, value in PROMQL_VARIABLES.items():
        expr = expr.replace(variable, value)
    assert "$" not in expr, f"unsubstituted variable in {expr!r}"
    return expr


def substitute_url(url: str) -> str:
    now = time.time()
    values = {
        "__from:date:seconds": f"{now - 3600:.0f}",
        "__to:date:seconds": f"{now + 60:.0f}",
        "environment": ".*",
        "data_mode": "real",
        "endpoint_tag": ".*",
        "tenant": ".*",
    }
    url = re.sub(r"\$\{([^}]+)\}", lambda m: urllib.parse.quote(values[m.group(1)], safe=""), url)
    assert "$" not in url, url
    return url


def test_scrape_target_is_healthy(stack: tuple[ReceiverService, Prometheus]) -> None:
    _, prometheus = stack
    (target,) = prometheus.api("/api/v1/targets")["activeTargets"]
    assert target["health"] == "up" and target["lastError"] == ""
    assert prometheus.query('up{job="spanmeter"}')[0]["value"][1] == "1"


def test_exposition_passes_promtool(stack: tuple[ReceiverService, Prometheus]) -> None:
    service, _ = stack
    promtool = shutil.which("promtool")
    assert promtool, "promtool is not installed: run scripts/install-system-deps"
    _, body = get(f"http://127.0.0.1:{service.http_port}/metrics")
    checked = subprocess.run([promtool, "check", "metrics"], input=body, capture_output=True, timeout=30)
    assert checked.returncode == 0, checked.stdout.decode() + checked.stderr.decode()


@pytest.mark.parametrize(
    ("dashboard", "title", "target"),
    [pytest.param(*t, id=f"{t[0]}:{t[1]}:{t[2]['refId']}") for t in targets("prometheus")],
)
def test_every_dashboard_promql_returns_data(
    stack: tuple[ReceiverService, Prometheus], dashboard: str, title: str, target: dict[str, Any]
) -> None:
    _, prometheus = stack
    result = prometheus.query(substitute_promql(target["expr"]))
    assert result, f"{dashboard} / {title}: no data for {target['expr']}"


@pytest.mark.parametrize(
    ("dashboard", "title", "target"),
    [pytest.param(*t, id=f"{t[0]}:{t[1]}") for t in targets("yesoreyeram-infinity-datasource")],
)
def test_every_dashboard_api_url_returns_data(
    stack: tuple[ReceiverService, Prometheus], dashboard: str, title: str, target: dict[str, Any]
) -> None:
    service, _ = stack
    url = f"http://127.0.0.1:{service.http_port}{substitute_url(target['url'])}"
    status, body = get(url)
    assert status == 200
    rows = json.loads(body)[target["root_selector"]]
    assert rows, f"{dashboard} / {title}: empty {target['root_selector']} from {url}"
    missing = [c["selector"] for c in target["columns"] if c["selector"] not in rows[0]]
    assert not missing, (missing, sorted(rows[0]))
    for column in target["columns"]:
        assert column["selector"] in rows[0], f"{dashboard} / {title}: no {column['selector']!r} in {url}"


def test_costs_in_prometheus_match_the_store(stack: tuple[ReceiverService, Prometheus]) -> None:
    service, prometheus = stack
    total = store_total_nano(service) / NANO
    assert _close(prometheus.query("sum(spanmeter_cost_usd_total)"), total)
    by_tenant = prometheus.query("sum by (tenant) (spanmeter_cost_usd_total)")
    assert 1 < len(by_tenant) <= TOP_TENANTS + 1
    assert math.isclose(math.fsum(float(s["value"][1]) for s in by_tenant), total, rel_tol=1e-12)
    (spend,) = prometheus.query('sum(increase(spanmeter_cost_usd_total{data_mode="real"}[5m]))')
    assert float(spend["value"][1]) > 0  # the second wave, between scrapes


def test_tenant_cardinality_is_bounded_and_sums_are_exact(stack: tuple[ReceiverService, Prometheus]) -> None:
    service, _ = stack
    _, raw = get(f"http://127.0.0.1:{service.http_port}/metrics")
    body = raw.decode()
    for name in (
        "spanmeter_cost_usd_total",
        "spanmeter_attempts_total",
        "spanmeter_requests_total",
        "spanmeter_tokens_total",
    ):
        tenants = {labels.get("tenant", "") for labels, _ in metric_samples(body, name)}
        assert len(tenants) <= TOP_TENANTS + 1, (name, len(tenants))
        assert "other" in tenants
    costs = [value for _, value in metric_samples(body, "spanmeter_cost_usd_total")]
    assert round(math.fsum(costs) * NANO) == store_total_nano(service)  # exact to the nano-USD
    attempts = sum(value for _, value in metric_samples(body, "spanmeter_attempts_total"))
    requests = sum(value for _, value in metric_samples(body, "spanmeter_requests_total"))
    assert (attempts, requests) == store_attempts_and_requests(service)
    assert (attempts, requests) == (7_500, 3_250)  # both waves; external ids req-0 .. req-3249
    assert "user-" not in body and "user_id" not in body
    # budget gauges: a * budget exposes at most N states, and counts all of them
    spends = [labels for labels, _ in metric_samples(body, "spanmeter_budget_spend_usd")]
    assert 0 < sum(1 for labels in spends if labels["budget"] == "tenant-24h") <= TOP_TENANTS
    states = sum(
        value
        for labels, value in metric_samples(body, "spanmeter_budget_states")
        if labels["budget"] == "tenant-24h"
    )
    assert states == TENANTS


def test_a_redelivered_request_is_counted_once(tmp_path: Path) -> None:
    # A receiver of its own: this test adds spans, and the module's receiver must keep the
    # totals the other tests assert.
    config = ServeConfig(db=str(tmp_path / "cost.db"), grpc_port=0, http_port=0, store_process=False)
    with ReceiverService(config) as service:
        redeliver(service)


def redeliver(service: ReceiverService) -> None:
    request = ExportTraceServiceRequest()
    span = request.resource_spans.add().scope_spans.add().spans.add()
    span.trace_id, span.span_id, span.name = bytes(range(1, 17)), bytes(range(1, 9)), "chat gpt-4o"
    span.start_time_unix_nano = time.time_ns() - 1_000_000
    span.end_time_unix_nano = time.time_ns()
    for key, value in (
        ("gen_ai.operation.name", "chat"),
        ("gen_ai.provider.name", "openai"),
        ("gen_ai.request.model", "gpt-4o"),
        ("spanmeter.tenant_id", "redelivery"),
    ):
        attribute = span.attributes.add()
        attribute.key, attribute.value.string_value = key, value
    for key, number in (("gen_ai.usage.input_tokens", 1000), ("gen_ai.usage.output_tokens", 100)):
        attribute = span.attributes.add()
        attribute.key, attribute.value.int_value = key, number

    def post() -> None:
        http = urllib.request.Request(
            f"http://127.0.0.1:{service.http_port}/v1/traces",
            data=request.SerializeToString(),
            headers={"Content-Type": "application/x-protobuf"},
        )
        with urllib.request.urlopen(http, timeout=10) as response:
            assert response.status == 200

    def total() -> float:
        _, raw = get(f"http://127.0.0.1:{service.http_port}/metrics")
        return math.fsum(value for _, value in metric_samples(raw.decode(), "spanmeter_cost_usd_total"))

    before = total()
    post()
    once = total()
    post()  # the same request again: an OTLP retry after a lost acknowledgement
    assert once > before
    assert total() == once
    assert round(total() * NANO) == store_total_nano(service)
