"""Tenant isolation, both sides, on a real receiver (127.0.0.1, port 0) with real API keys.

Read side: every route of the API's route table x every caller (no key, ingest, read, a
read key limited to one tenant, admin) answers the expected status; a key limited to
tenants sees only its tenants, and its totals are the sums over its tenants' spans, as
computed here from what was sent (never from spanmeter's answers). A route added to the
table fails :func:`test_every_route_is_classified` until it is listed here.

Ingest side: an ingest key limited to tenants writes only their spans (OTLP/HTTP protobuf,
OTLP/JSON and gRPC): another tenant's span is rejected in the partial-success answer; a
span naming none gets the key's tenant when it has one, and is rejected when it has several.
"""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import json_format
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2_grpc import TraceServiceStub
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from spanmeter.api import make_api
from spanmeter.service import ReceiverService, ServeConfig
from support.api_keys import create_key
from support.budget_helpers import expected_cost, genai_attributes

OTHERS = ("tenant-beta-b7", "tenant-gamma-g3")
ACME = "tenant-acme-a1"
BETA, GAMMA = OTHERS
PLAN: tuple[tuple[str, int, int, str | None], ...] = (
    ("gpt-4o", 1200, 300, ACME),
    ("gpt-4o-mini", 800, 90, ACME),
    ("gpt-4o", 400, 50, BETA),
    ("gpt-4o-mini", 2000, 700, BETA),
    ("gpt-4o", 3000, 1000, GAMMA),
    ("gpt-4o-mini", 100, 10, None),
)
"""(model, input tokens, output tokens, tenant): the spans every read test sees."""
SCOPES = ("none", "ingest", "read", "tenant", "admin")

# Each route of the table, by class: what each caller gets.
EXPECTED: dict[str, dict[str, int]] = {
    "public": {"none": 200, "ingest": 200, "read": 200, "tenant": 200, "admin": 200},
    "tenant-read": {"none": 401, "ingest": 403, "read": 200, "tenant": 200, "admin": 200},
    "global-read": {"none": 401, "ingest": 403, "read": 200, "tenant": 403, "admin": 200},
    "tenant-write": {"none": 401, "ingest": 403, "read": 403, "tenant": 403, "admin": 200},
    "admin-read": {"none": 401, "ingest": 403, "read": 403, "tenant": 403, "admin": 200},
}
ROUTES: dict[tuple[str, str], tuple[str, str]] = {
    # (method, path) -> (class, query)
    ("GET", "/api/v1/top"): ("tenant-read", "by=tenant_id&since=1h"),
    ("GET", "/api/v1/investigate"): ("tenant-read", "since=1h"),
    ("GET", "/api/v1/compare/prompt-versions"): ("tenant-read", "since=1h"),
    ("GET", "/api/v1/economics"): ("tenant-read", "since=1h"),
    ("GET", "/api/v1/quality"): ("tenant-read", "since=1h"),
    ("GET", "/api/v1/reports/weekly"): ("tenant-read", f"week={datetime.now(timezone.utc).date()}"),
    ("GET", "/api/v1/reprice/preview"): ("tenant-read", "since=1h"),
    ("GET", "/api/v1/reprice/audits"): ("global-read", ""),
    ("GET", "/api/v1/export/requests"): ("tenant-read", "since=1h&format=json"),
    ("GET", "/api/v1/export/rollups"): ("tenant-read", "since=2h&format=json"),
    ("GET", "/api/v1/budgets"): ("global-read", ""),
    ("GET", "/api/v1/audit"): ("admin-read", "since=1h"),
    ("GET", "/api/v1/budgets/status"): ("tenant-read", ""),
    ("GET", "/api/v1/alerts"): ("tenant-read", "limit=100"),
    ("GET", "/api/v1/alerts/{id}"): ("tenant-read", ""),
    ("POST", "/api/v1/alerts/{id}/ack"): ("tenant-write", ""),
    ("POST", "/api/v1/alerts/{id}/resolve"): ("tenant-write", ""),
    ("GET", "/api/v1/openapi.json"): ("public", ""),
    ("GET", "/healthz"): ("public", ""),
    ("GET", "/readyz"): ("public", ""),
}


def _key(db: Path, name: str, scope: str, *tenants: str) -> str:
    return create_key(db, name, scope, *(option for tenant in tenants for option in ("--tenant", tenant)))


def _call(
    base: str, path: str, key: str | None, method: str = "GET", body: bytes | None = None
) -> tuple[int, bytes]:
    request = urllib.request.Request(base + path, data=body, method=method)
    if key is not None:
        request.add_header("Authorization", f"Bearer {key}")
    if body is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def _json(base: str, path: str, key: str | None) -> Any:
    status, body = _call(base, path, key)
    assert status == 200, (path, status, body[:300])
    return json.loads(body)


def _cost(*tenants: str | None) -> int:
    return sum(expected_cost(m, i, o) for m, i, o, t in PLAN if t in tenants)


class Setup:
    def __init__(self, service: ReceiverService, keys: dict[str, str | None]) -> None:
        self.service = service
        self.keys = keys
        self.base = f"http://127.0.0.1:{service.http_port}"

    def alerts(self) -> list[dict[str, Any]]:
        return _json(self.base, "/api/v1/alerts?limit=1000", self.keys["admin"])["alerts"]


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    tmp = tmp_path_factory.mktemp("tenants")
    db = tmp / "tenants.db"
    budgets = tmp / "budgets.yaml"
    budgets.write_text(
        """
budgets:
  - name: everyone
    window: {rolling: 24h}
    limit_usd: "0.000001"
  - name: per-tenant
    scope: {tenant_id: "*"}
    window: {rolling: 24h}
    limit_usd: "0.000001"
"""
    )
    # keys made before the receiver starts: it reads them on its first request
    keys: dict[str, str | None] = {
        "none": None,
        "ingest": _key(db, "app", "ingest"),
        "read": _key(db, "grafana", "read"),
        "tenant": _key(db, "acme-dashboard", "read", ACME),
        "admin": _key(db, "ops", "admin"),
        "two": _key(db, "acme-beta", "read", ACME, BETA),
        "tenant-admin": _key(db, "acme-ops", "admin", ACME),
    }
    config = ServeConfig(db=str(db), grpc_port=0, http_port=0, store_process=False, budgets_file=str(budgets))
    with ReceiverService(config) as service:
        exporter = HttpExporter(
            endpoint=f"http://127.0.0.1:{service.http_port}/v1/traces",
            headers={"authorization": f"Bearer {keys['ingest']}"},
        )
        provider = TracerProvider(resource=Resource.create({"service.name": "tenants"}))
        provider.add_span_processor(SimpleSpanProcessor(exporter))  # one export per span
        tracer = provider.get_tracer("tenants")
        for model, tokens_in, tokens_out, tenant in PLAN:
            dims = {"endpoint_tag": "search"} | ({"tenant_id": tenant} if tenant else {})
            with tracer.start_as_current_span(
                f"chat {model}", attributes=genai_attributes(model, tokens_in, tokens_out, **dims)
            ):
                pass
        provider.shutdown()
        assert sum(1 for _ in service.store.iter_requests()) == len(PLAN)
        yield Setup(service, keys)


def test_every_route_is_classified(setup: Setup) -> None:
    service = setup.service
    table = make_api(service.store, budgets=service.budgets, ready=lambda: True).routes
    assert {(route.method, route.path) for route in table} == set(ROUTES)
    for route in table:
        kind, _ = ROUTES[route.method, route.path]
        # a tenant key is let through only where the route scopes its answer
        assert route.tenant_scoped is (kind in ("tenant-read", "tenant-write")), route.path


def _acme_alert(setup: Setup) -> int:
    mine = [a for a in setup.alerts() if a["details"].get("filters", {}).get("tenant_id") == ACME]
    assert mine, "the per-tenant budget alerts for acme"
    return int(mine[0]["id"])


def test_every_route_and_caller_gets_its_status(setup: Setup) -> None:
    alert_id = _acme_alert(setup)
    for (method, path), (kind, query) in ROUTES.items():
        url = path.replace("{id}", str(alert_id)) + (f"?{query}" if query else "")
        for scope in SCOPES:  # admin last: its ack and resolve change the alert
            body = b'{"by": "test"}' if method == "POST" else None
            status, answer = _call(setup.base, url, setup.keys[scope], method, body)
            assert status == EXPECTED[kind][scope], (method, url, scope, answer[:300])
            if scope == "tenant" and status == 200 and kind != "public":
                text = answer.decode()
                for other in OTHERS:  # no other tenant's name in any answer
                    assert other not in text, (url, other)


def test_the_unlimited_read_key_sees_every_tenant(setup: Setup) -> None:
    # the check above could fail: the same answers hold the other tenants for a plain read key
    top = _json(setup.base, "/api/v1/top?by=tenant_id&since=1h", setup.keys["read"])
    assert {g["tenant_id"] for g in top["groups"]} == {ACME, BETA, GAMMA, None}
    assert top["totals"]["cost_nano_usd"] == _cost(ACME, BETA, GAMMA, None)


@pytest.mark.parametrize(
    ("key", "tenants"), [("tenant", (ACME,)), ("two", (ACME, BETA))], ids=["one-tenant", "two-tenants"]
)
def test_totals_are_those_of_the_keys_tenants(setup: Setup, key: str, tenants: tuple[str, ...]) -> None:
    base, secret = setup.base, setup.keys[key]
    expected = _cost(*tenants)
    for by in ("tenant_id", "model", "endpoint_tag", "provider"):
        top = _json(base, f"/api/v1/top?by={by}&since=1h", secret)
        assert top["totals"]["cost_nano_usd"] == expected, by
        assert sum(g["cost_nano_usd"] for g in top["groups"]) == expected
    by_tenant = _json(base, "/api/v1/top?by=tenant_id&since=1h", secret)
    assert {g["tenant_id"]: g["cost_nano_usd"] for g in by_tenant["groups"]} == {t: _cost(t) for t in tenants}
    # its own filter narrows within its tenants; one outside them is refused, never answered
    narrowed = _json(base, f"/api/v1/top?by=model&since=1h&where=tenant_id={ACME}", secret)
    assert narrowed["totals"]["cost_nano_usd"] == _cost(ACME)
    for outside in (GAMMA, ""):
        status, _ = _call(base, f"/api/v1/top?by=model&since=1h&where=tenant_id={outside}", secret)
        assert status == 403
    spans = sum(1 for *_, t in PLAN if t in tenants)
    investigate = _json(base, "/api/v1/investigate?since=1h", secret)
    assert investigate["totals"]["current"]["cost_nano_usd"] == expected
    economics = _json(base, "/api/v1/economics?since=1h", secret)
    assert economics["totals"]["cost_nano_usd"] == expected
    assert {r["tenant_id"] for r in economics["per_tenant"]["rows"]} == set(tenants)
    assert _json(base, "/api/v1/quality?since=1h", secret)["attempts"] == spans
    assert _json(base, "/api/v1/reprice/preview?since=1h", secret)["rows_scanned"] == spans
    rows = _json(base, "/api/v1/export/requests?since=1h&format=json", secret)
    assert {r["tenant_id"] for r in rows} == set(tenants)
    assert sum(int(r["cost_nano_usd"]) for r in rows) == expected
    rollups = _json(base, "/api/v1/export/rollups?since=2h&granularity=minute&format=json", secret)
    assert {r["tenant_id"] for r in rollups} == set(tenants)
    assert sum(int(r["cost_nano_usd"]) for r in rollups) == expected
    assert _call(base, f"/api/v1/budgets/status?tenant_id={GAMMA}", secret)[0] == 403
    status = _json(base, "/api/v1/budgets/status", secret)["states"]
    assert {s["scope"].get("tenant_id") for s in status} == set(tenants)  # "everyone" is left out
    assert sum(s["spend_nano_usd"] for s in status) == expected
    alerts = _json(base, "/api/v1/alerts?limit=1000", secret)["alerts"]
    assert alerts and {a["details"]["filters"]["tenant_id"] for a in alerts} <= set(tenants)


def test_other_tenants_alerts_are_not_found(setup: Setup) -> None:
    everyone = setup.alerts()
    foreign = [a for a in everyone if a["details"].get("filters", {}).get("tenant_id") != ACME]
    assert any(a["source"] == "everyone" for a in foreign)  # a global budget's alert is among them
    for alert in foreign:
        for key in ("tenant", "tenant-admin"):
            assert _call(setup.base, f"/api/v1/alerts/{alert['id']}", setup.keys[key])[0] == 404
        for action in ("ack", "resolve"):
            status, _ = _call(
                setup.base,
                f"/api/v1/alerts/{alert['id']}/{action}",
                setup.keys["tenant-admin"],
                "POST",
                b"{}",
            )
            assert status == 404
    # an admin key limited to acme acknowledges acme's alert
    status, _ = _call(
        setup.base, f"/api/v1/alerts/{_acme_alert(setup)}/ack", setup.keys["tenant-admin"], "POST", b"{}"
    )
    assert status == 200


# --------------------------------------------------------------------------- ingest side


def _otlp(tenants: list[str | None], seed: int) -> ExportTraceServiceRequest:
    spans: list[Span] = []
    for n, tenant in enumerate(tenants):
        attributes = genai_attributes("gpt-4o-mini", 100 + n, 10, **({"tenant_id": tenant} if tenant else {}))
        spans.append(
            Span(
                trace_id=bytes([seed]) * 15 + bytes([n + 1]),
                span_id=bytes([seed]) * 7 + bytes([n + 1]),
                name="chat",
                start_time_unix_nano=1_700_000_000_000_000_000 + n,
                end_time_unix_nano=1_700_000_000_100_000_000 + n,
                attributes=[KeyValue(key=k, value=_any(v)) for k, v in attributes.items()],
            )
        )
    return ExportTraceServiceRequest(resource_spans=[ResourceSpans(scope_spans=[ScopeSpans(spans=spans)])])


def _any(value: Any) -> AnyValue:
    return AnyValue(int_value=value) if isinstance(value, int) else AnyValue(string_value=str(value))


def _as_json(request: ExportTraceServiceRequest) -> bytes:
    document = json_format.MessageToDict(request)
    for resource in document["resourceSpans"]:
        for scope in resource["scopeSpans"]:
            for span in scope["spans"]:  # OTLP/JSON writes ids as hex
                span["traceId"] = base64.b64decode(span["traceId"]).hex()
                span["spanId"] = base64.b64decode(span["spanId"]).hex()
    return json.dumps(document).encode()


def _post(base: str, key: str, request: ExportTraceServiceRequest, as_json: bool) -> tuple[int, str]:
    if as_json:
        body, content_type = _as_json(request), "application/json"
    else:
        body, content_type = request.SerializeToString(), "application/x-protobuf"
    http = urllib.request.Request(f"{base}/v1/traces", data=body, method="POST")
    http.add_header("Content-Type", content_type)
    http.add_header("Authorization", f"Bearer {key}")
    with urllib.request.urlopen(http, timeout=30) as answer:
        raw = answer.read()
    if as_json:
        partial = json.loads(raw or b"{}").get("partialSuccess", {})
        return int(partial.get("rejectedSpans", 0)), str(partial.get("errorMessage", ""))
    response = ExportTraceServiceResponse.FromString(raw)
    return response.partial_success.rejected_spans, response.partial_success.error_message


def _grpc(port: int, key: str, request: ExportTraceServiceRequest) -> tuple[int, str]:
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub: Any = TraceServiceStub(channel)  # the generated stub is untyped
        response: ExportTraceServiceResponse = stub.Export(
            request, metadata=(("authorization", f"Bearer {key}"),), timeout=30
        )
    return response.partial_success.rejected_spans, response.partial_success.error_message


@pytest.fixture
def ingest_receiver(tmp_path: Path) -> Iterator[tuple[ReceiverService, dict[str, str]]]:
    db = tmp_path / "ingest.db"
    keys = {
        "one": _key(db, "acme-app", "ingest", ACME),
        "two": _key(db, "acme-beta-app", "ingest", ACME, BETA),
        "any": _key(db, "collector", "ingest"),
    }
    config = ServeConfig(db=str(db), grpc_port=0, http_port=0, store_process=False)
    with ReceiverService(config) as service:
        yield service, keys


@pytest.mark.parametrize("transport", ["protobuf", "json", "grpc"])
def test_ingest_keys_write_only_their_tenants(
    ingest_receiver: tuple[ReceiverService, dict[str, str]], transport: str
) -> None:
    service, keys = ingest_receiver
    base = f"http://127.0.0.1:{service.http_port}"

    def send(key: str, request: ExportTraceServiceRequest) -> tuple[int, str]:
        if transport == "grpc":
            assert service.grpc_port is not None
            return _grpc(service.grpc_port, key, request)
        return _post(base, key, request, transport == "json")

    mixed: list[str | None] = [ACME, BETA, GAMMA, None]
    rejected, message = send(keys["one"], _otlp(mixed, 1))
    assert rejected == 2 and "tenant_id not one of this API key's tenants" in message
    rejected, message = send(keys["two"], _otlp(mixed, 2))
    assert rejected == 2
    assert "tenant_id not one of" in message and "no tenant_id, and this API key has several" in message
    rejected, message = send(keys["any"], _otlp(mixed, 3))  # an unlimited key: everything stored
    assert (rejected, message) == (0, "")
    stored: dict[tuple[int, str | None], int] = {}
    for row in service.store.iter_requests():
        seed = row.trace_id[0]
        stored[seed, row.tenant_id] = stored.get((seed, row.tenant_id), 0) + 1
    assert stored == {
        (1, ACME): 2,  # its own span and the one naming no tenant, given the key's
        (2, ACME): 1,
        (2, BETA): 1,
        (3, ACME): 1,
        (3, BETA): 1,
        (3, GAMMA): 1,
        (3, None): 1,
    }


def test_spans_without_tenant_keys_take_the_same_path() -> None:
    # the receiver calls the pipeline exactly as before for keys without tenants
    from spanmeter.receiver._common import ingest

    calls: list[tuple[Any, ...]] = []

    def handler(request: Any, **kwargs: Any) -> Any:
        calls.append((request, kwargs))
        return None

    ingest(handler, ExportTraceServiceRequest(), None)  # type: ignore[arg-type]
    ingest(handler, ExportTraceServiceRequest(), frozenset({ACME}))  # type: ignore[arg-type]
    assert [kwargs for _, kwargs in calls] == [{}, {"tenants": frozenset({ACME})}]
