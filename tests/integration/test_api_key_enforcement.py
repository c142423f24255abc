"""API keys enforced: once a key exists, OTLP/HTTP, OTLP/gRPC and the JSON API need one with
the right scope; health stays open; ``serve`` refuses an exposed address without keys.

Real receiver on 127.0.0.1 (port 0), real OTel SDK exporters sending the key the way every
OTel SDK does (``OTEL_EXPORTER_OTLP_HEADERS``-style headers), real SQLite store.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from click.testing import CliRunner
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter
from opentelemetry.sdk.trace.export import SpanExportResult

from spanmeter.auth import Authenticator, issue_key
from spanmeter.auth.authenticator import CACHE_S, AuthError
from spanmeter.cli import main
from spanmeter.service import ReceiverService, ServeConfig
from spanmeter.store import ApiKey, SQLiteStore
from support.api_keys import create_key
from support.sdk_spans import chat_spans


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[tuple[ReceiverService, Path]]:
    db = tmp_path / "keys.db"
    config = ServeConfig(db=str(db), grpc_port=0, http_port=0, store_process=False)
    with ReceiverService(config) as service:
        yield service, db


def _get(port: int, path: str, key: str | None = None, method: str = "GET") -> tuple[int, dict[str, str]]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method)
    if key is not None:
        request.add_header("Authorization", f"Bearer {key}")
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, {k.lower(): v for k, v in answer.headers.items()}
    except urllib.error.HTTPError as error:
        return error.code, {k.lower(): v for k, v in error.headers.items()}


def test_without_keys_everything_is_open(receiver: tuple[ReceiverService, Path]) -> None:
    service, _ = receiver
    assert HttpExporter(endpoint=f"http://127.0.0.1:{service.http_port}/v1/traces").export(chat_spans()) is (
        SpanExportResult.SUCCESS
    )
    assert _get(service.http_port, "/api/v1/top?by=model&since=1h")[0] == 200


def test_keys_are_required_by_scope_on_every_transport(receiver: tuple[ReceiverService, Path]) -> None:
    service, db = receiver
    ingest, read, admin = (
        create_key(db, "app", "ingest"),
        create_key(db, "grafana", "read"),
        create_key(db, "ops", "admin"),
    )
    time.sleep(CACHE_S + 0.2)  # the receiver learns that keys exist within its cache time
    http_url = f"http://127.0.0.1:{service.http_port}/v1/traces"
    grpc_url = f"http://127.0.0.1:{service.grpc_port}"
    spans = chat_spans()
    assert HttpExporter(endpoint=http_url).export(spans) is SpanExportResult.FAILURE  # no key
    assert HttpExporter(endpoint=http_url, headers={"authorization": f"Bearer {read}"}).export(spans) is (
        SpanExportResult.FAILURE
    )
    assert HttpExporter(endpoint=http_url, headers={"authorization": f"Bearer {ingest}"}).export(spans) is (
        SpanExportResult.SUCCESS
    )
    assert GrpcExporter(endpoint=grpc_url, insecure=True, timeout=5).export(spans) is SpanExportResult.FAILURE
    grpc_with_key = GrpcExporter(
        endpoint=grpc_url, insecure=True, headers={"authorization": f"Bearer {ingest}"}
    )
    assert grpc_with_key.export(chat_spans()) is SpanExportResult.SUCCESS
    # the statuses themselves, as a Collector sees them
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2_grpc import TraceServiceStub

    with grpc.insecure_channel(f"127.0.0.1:{service.grpc_port}") as channel:
        stub = TraceServiceStub(channel)
        for metadata, code in (
            ((), grpc.StatusCode.UNAUTHENTICATED),
            ((("authorization", f"Bearer {read}"),), grpc.StatusCode.PERMISSION_DENIED),
            (
                (("authorization", "Bearer spm_0000000000000000_" + "A" * 43),),
                grpc.StatusCode.UNAUTHENTICATED,
            ),
        ):
            with pytest.raises(grpc.RpcError) as refused:
                stub.Export(ExportTraceServiceRequest(), metadata=metadata, timeout=5)
            assert refused.value.code() is code  # type: ignore[attr-defined]
    port = service.http_port
    status, headers = _get(port, "/api/v1/top?by=model&since=1h")
    assert status == 401 and headers["www-authenticate"].startswith("Bearer")
    assert _get(port, "/api/v1/top?by=model&since=1h", ingest)[0] == 403
    assert _get(port, "/api/v1/top?by=model&since=1h", read)[0] == 200
    assert _get(port, "/api/v1/top?by=model&since=1h", admin)[0] == 200
    assert _get(port, "/api/v1/alerts/1/ack", read, method="POST")[0] == 403
    assert _get(port, "/api/v1/alerts/1/ack", admin, method="POST")[0] != 403  # allowed (no such alert)
    assert _get(port, "/healthz")[0] == 200 and _get(port, "/readyz")[0] == 200
    assert _get(port, "/api/v1/openapi.json")[0] == 200
    base = f"http://127.0.0.1:{port}"
    runner = CliRunner()
    denied = runner.invoke(main, ["top", "--url", base, "--by", "model"], env={"SPANMETER_API_KEY": ""})
    assert denied.exit_code == 1 and "HTTP 401" in denied.output and "SPANMETER_API_KEY" in denied.output
    allowed = runner.invoke(main, ["top", "--url", base, "--by", "model"], env={"SPANMETER_API_KEY": read})
    assert allowed.exit_code == 0, allowed.output
    wrong = runner.invoke(main, ["top", "--url", base, "--by", "model"], env={"SPANMETER_API_KEY": ingest})
    assert wrong.exit_code == 1 and "HTTP 403" in wrong.output and "'read'" in wrong.output
    # revoked: refused once the cache time has passed
    assert CliRunner().invoke(main, ["keys", "revoke", "grafana", "--store", str(db)]).exit_code == 0
    time.sleep(CACHE_S + 0.2)
    assert _get(port, "/api/v1/top?by=model&since=1h", read)[0] == 401


def test_a_key_limited_to_tenants_is_not_given_everyones_data(receiver: tuple[ReceiverService, Path]) -> None:
    """Its tenants' answers only (test_tenant_isolation has every route); data of every
    tenant at once (re-pricing audits) is refused."""
    service, db = receiver
    result = CliRunner().invoke(
        main,
        [
            "keys",
            "create",
            "--name",
            "acme",
            "--scope",
            "read",
            "--tenant",
            "acme",
            "--format",
            "json",
            "--store",
            str(db),
        ],
    )
    key = json.loads(result.output)["key"]
    time.sleep(CACHE_S + 0.2)
    assert _get(service.http_port, "/api/v1/top?by=tenant_id&since=1h", key)[0] == 200
    assert _get(service.http_port, "/api/v1/top?by=model&since=1h&where=tenant_id=other", key)[0] == 403
    assert _get(service.http_port, "/api/v1/reprice/audits", key)[0] == 403


def test_authenticator_caches_the_store_and_checks_secrets(tmp_path: Path) -> None:
    clock = [0.0]
    with SQLiteStore(tmp_path / "a.db") as store:
        auth = Authenticator(store, clock=lambda: clock[0])
        assert auth.check(None, "read") is None  # no key yet: open
        issued = issue_key()
        store.add_api_key(ApiKey("k", issued.key_id, issued.hash, "admin", (), time.time_ns()))
        assert auth.check(None, "read") is None  # cached for CACHE_S
        clock[0] += CACHE_S
        with pytest.raises(AuthError) as missing:
            auth.check(None, "read")
        assert missing.value.kind == "unauthenticated"
        identity = auth.check(f"Bearer {issued.key}", "admin")
        assert identity is not None and identity.name == "k" and identity.tenants is None
        tampered = issued.key[:-1] + ("A" if issued.key[-1] != "A" else "B")
        with pytest.raises(AuthError, match="unknown"):
            auth.check(f"Bearer {tampered}", "read")
        with pytest.raises(AuthError) as forbidden:
            auth.check(f"Bearer {issued.key}", "ingest")
        assert forbidden.value.kind == "forbidden" and "'admin'" in forbidden.value.message


def test_serve_refuses_an_exposed_address_without_keys(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SPANMETER_USER_ID_HASH_KEY", "k")
    db = tmp_path / "exposed.db"
    args = ["serve", "--store", str(db), "--host", "0.0.0.0", "--grpc-port", "0", "--http-port", "0"]
    refused = CliRunner().invoke(main, args)
    assert (
        refused.exit_code == 1
        and "no API key exists" in refused.output
        and "--insecure-no-auth" in refused.output
    )
    monkeypatch.delenv("SPANMETER_USER_ID_HASH_KEY")
    create_key(db, "app", "ingest")
    refused = CliRunner().invoke(main, args)
    assert refused.exit_code == 1 and "SPANMETER_USER_ID_HASH_KEY is unset" in refused.output
