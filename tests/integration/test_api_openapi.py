"""The one JSON API against a real receiver: its OpenAPI document lists every route the
dispatcher answers, with the CLI's parameter specs, and schemathesis finds no server error
and no answer off the document in a bounded run; the dispatcher's own answers (404, 405,
413, 414) are JSON errors."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any, Final

import pytest
import schemathesis
import schemathesis.checks
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from schemathesis.specs.openapi import checks as openapi_checks

from spanmeter.analysis.parameters import EXPORT, TOP
from spanmeter.analysis.views import VIEWS
from spanmeter.api import MAX_BODY_BYTES, MAX_QUERY_BYTES, OPENAPI_PATH
from spanmeter.dimensions import RANKABLE
from spanmeter.service import ReceiverService, ServeConfig
from spanmeter.store import SQLiteStore
from spanmeter.synthetic import SyntheticConfig, generate
from support.budget_helpers import genai_attributes

BUDGETS = """
budgets:
  - name: per-tenant
    scope: {tenant_id: "*"}
    window: {rolling: 24h}
    limit_usd: "0.005"
"""


def _get(url: str, *, method: str = "GET", body: bytes | None = None) -> tuple[int, dict[str, str], Any]:
    request = urllib.request.Request(url, data=body, method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            raw = response.read()
            return response.status, dict(response.headers), json.loads(raw) if raw else None
    except urllib.error.HTTPError as error:
        raw = error.read()
        return error.code, dict(error.headers), json.loads(raw) if raw else None


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A receiver with budgets over a store holding a day of synthetic traffic and an alert."""
    folder = tmp_path_factory.mktemp("openapi")
    path = folder / "cost.db"
    start = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0) - timedelta(days=1)
    with SQLiteStore(path) as store:
        generate(SyntheticConfig(start=start, days=1, requests_per_hour=20)).write_to(store)
    budgets = folder / "budgets.yaml"
    budgets.write_text(BUDGETS)
    config = ServeConfig(
        db=str(path), grpc_port=None, http_port=0, budgets_file=str(budgets), store_process=False
    )
    with ReceiverService(config) as service:
        url = f"http://127.0.0.1:{service.http_port}"
        provider = TracerProvider(resource=Resource.create({"service.name": "openapi"}))
        provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"{url}/v1/traces")))
        for _ in range(3):  # 3.5 milli-USD a call: the tenant's budget is exceeded, an alert raised
            attributes = genai_attributes("gpt-4o", 1000, 100, tenant_id="acme", endpoint_tag="search")
            with provider.get_tracer("openapi").start_as_current_span("chat", attributes=attributes):
                pass
        provider.shutdown()
        yield url


@pytest.fixture(scope="module")
def document(base: str) -> dict[str, Any]:
    status, headers, body = _get(base + OPENAPI_PATH)
    assert status == 200 and headers["Content-Type"] == "application/json"
    return body


def test_the_document_lists_every_route_with_the_cli_parameter_specs(document: dict[str, Any]) -> None:
    assert document["openapi"] == "3.1.0"
    paths = document["paths"]
    expected = {
        *VIEWS,
        EXPORT.route + "/requests",
        EXPORT.route + "/rollups",
        "/api/v1/budgets",
        "/api/v1/budgets/status",
        "/api/v1/alerts",
        "/api/v1/alerts/{id}",
        "/api/v1/alerts/{id}/ack",
        "/api/v1/alerts/{id}/resolve",
        "/api/v1/audit",
        "/healthz",
        "/readyz",
        OPENAPI_PATH,
    }
    assert set(paths) == expected
    for route, view in VIEWS.items():
        names = [p["name"] for p in paths[route]["get"]["parameters"]]
        assert names == [p.name for p in view.spec.all_params], route
    top = {p["name"]: p for p in paths[TOP.route]["get"]["parameters"]}
    assert top["by"]["schema"] == {"type": "string", "enum": list(RANKABLE), "default": "endpoint_tag"}
    assert top["limit"]["schema"] == {"type": "integer", "minimum": 1, "maximum": 10_000, "default": 20}
    assert top["data_mode"]["schema"]["default"] == "real"
    assert top["where"]["schema"] == {"type": "array", "items": {"type": "string"}}
    assert set(paths[TOP.route]["get"]["responses"]["200"]["content"]) == {
        "application/json",
        "text/csv",
        "text/plain",
    }
    assert set(paths["/api/v1/alerts/{id}/ack"]) == {"post"}
    audit = paths["/api/v1/audit"]["get"]
    assert audit["x-scope"] == "audit:read"
    assert [p["name"] for p in audit["parameters"]] == ["since", "action", "limit"]
    assert "requestBody" in paths["/api/v1/alerts/{id}/ack"]["post"]
    status = paths["/api/v1/budgets/status"]["get"]
    assert "304" in status["responses"]
    assert {"name": "match", "default": "applies", "enum": ["applies", "exact"]}.items() <= {
        "name": "match",
        **next(p["schema"] for p in status["parameters"] if p["name"] == "match"),
    }.items()
    for path, operations in paths.items():
        for method, operation in operations.items():
            assert operation["x-scope"], (method, path)
            assert operation["responses"]["414"]["content"]["application/json"]["schema"] == {
                "$ref": "#/components/schemas/Error"
            }


def test_the_dispatcher_answers_its_own_errors_as_json(base: str) -> None:
    status, _, body = _get(base + "/api/v1/nothing-here")
    assert (status, body) == (404, {"error": "no such endpoint: /api/v1/nothing-here"})
    status, headers, body = _get(base + "/api/v1/top", method="POST", body=b"{}")
    assert (status, headers["Allow"], body) == (405, "GET", {"error": "use GET"})
    status, headers, _ = _get(base + "/api/v1/alerts/1/ack")
    assert (status, headers["Allow"]) == (405, "POST")
    status, _, body = _get(base + "/api/v1/top?where=" + "x" * MAX_QUERY_BYTES)
    assert status == 414 and "query string" in body["error"]
    status, _, body = _get(base + "/api/v1/alerts/1/ack", method="POST", body=b" " * (MAX_BODY_BYTES + 1))
    assert (status, body) == (413, {"error": "body too large"})
    status, _, body = _get(base + "/api/v1/alerts/99999999999999999999999")
    assert status == 404 and "no alert" in body["error"]
    status, _, body = _get(base + "/api/v1/alerts?limit=99999999999999999999999")
    assert status == 400 and "limit" in body["error"]
    status, headers, _ = _get(base + "/readyz", method="HEAD")
    assert (status, headers["Content-Type"]) == (200, "application/json")


_SERVER_ERROR: Final[Any] = vars(schemathesis.checks)["not_a_server_error"]
_CONFORMANCE: Final[list[Any]] = [
    _SERVER_ERROR,
    *(
        vars(openapi_checks)[name]
        for name in ("status_code_conformance", "content_type_conformance", "response_schema_conformance")
    ),
]
_HEALTH_CHECKS: Final[Any] = list(HealthCheck)
_POSITIVE: Final[Any] = schemathesis.GenerationMode.POSITIVE
_NEGATIVE: Final[Any] = schemathesis.GenerationMode.NEGATIVE


def _run(operation: Any, mode: Any, checks: list[Any], examples: int) -> str | None:
    """A bounded hypothesis run of one operation; the first failure, as text."""

    @given(case=operation.as_strategy(mode))
    @settings(
        max_examples=examples,
        deadline=None,
        suppress_health_check=_HEALTH_CHECKS,
        derandomize=True,
        database=None,
        phases=(Phase.explicit, Phase.generate),
    )
    def run(case: Any) -> None:
        case.call_and_validate(checks=checks)

    try:
        run()
    except Unsatisfiable:  # nothing to get wrong: an operation without parameters, negatively
        return None
    except Exception as error:  # every check's failure, reported per operation below
        return f"{operation.method.upper()} {operation.path} ({mode.value}): {error}"
    return None


def test_schemathesis_finds_no_server_error_and_no_answer_off_the_document(base: str) -> None:
    """A bounded run over every operation: valid requests get only answers the document
    declares (status, content type and, for JSON, schema); requests off the document
    never get a server error."""
    schema: Any = schemathesis.openapi.from_url(base + OPENAPI_PATH)
    operations: list[Any] = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == 19  # every operation but the document itself, which schemathesis leaves out
    failures = [
        failure
        for operation in operations
        for failure in (
            _run(operation, _POSITIVE, _CONFORMANCE, 25),
            _run(operation, _NEGATIVE, [_SERVER_ERROR], 10),
        )
        if failure is not None
    ]
    assert failures == [], "\n\n".join(failures)
