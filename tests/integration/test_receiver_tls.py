"""TLS on both receiver ports, with real clients: the OTel SDK's gRPC and HTTP exporters,
urllib and httpx; plain-text clients are refused; with a client CA, so are clients without
a certificate."""

from __future__ import annotations

import http.client
import json
import ssl
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import httpx
import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpanExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from spanmeter.service import ReceiverService, ServeConfig
from support.api_keys import create_key
from support.tls_certs import ThrowawayPKI, make_pki

StartTLS = Callable[..., ReceiverService]


@pytest.fixture
def pki(tmp_path: Path) -> ThrowawayPKI:
    return make_pki(tmp_path)


@pytest.fixture(autouse=True)
def _no_requests_ca_bundle(monkeypatch: pytest.MonkeyPatch) -> None:
    """requests (under the SDK's HTTP exporter) lets these win over the exporter's own
    ``certificate_file``: the tests that need them set them."""
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)


@pytest.fixture
def start_tls(tmp_path: Path, pki: ThrowawayPKI) -> Iterator[StartTLS]:
    services: list[ReceiverService] = []

    def start(*, client_ca: bool = False, db: Path | None = None) -> ReceiverService:
        config = ServeConfig(
            db=str(db or tmp_path / f"cost{len(services)}.db"),
            grpc_port=0,
            http_port=0,
            store_process=False,
            tls_cert=str(pki.server_cert),
            tls_key=str(pki.server_key),
            tls_client_ca=str(pki.ca) if client_ca else None,
        )
        service = ReceiverService(config).start()
        services.append(service)
        return service

    yield start
    for service in services:
        service.stop(grace_s=1.0)


def _spans() -> list[ReadableSpan]:
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "checkout"}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    attributes = {
        "gen_ai.operation.name": "chat",
        "gen_ai.system": "openai",
        "gen_ai.request.model": "gpt-4o",
        "gen_ai.usage.input_tokens": 120,
        "gen_ai.usage.output_tokens": 12,
    }
    with provider.get_tracer("test").start_as_current_span("chat gpt-4o", attributes=attributes):
        pass
    provider.shutdown()
    return list(memory.get_finished_spans())


def _exported(exporter: SpanExporter) -> SpanExportResult:
    try:
        return exporter.export(_spans())
    finally:
        exporter.shutdown()


def _readyz(service: ReceiverService, context: ssl.SSLContext) -> int:
    url = f"https://127.0.0.1:{service.http_port}/readyz"
    with urllib.request.urlopen(url, context=context, timeout=10) as response:
        return response.status


def _stored_calls(service: ReceiverService, context: ssl.SSLContext) -> str:
    url = f"https://127.0.0.1:{service.http_port}/api/v1/top?by=provider&since=1h&data_mode=all"
    with urllib.request.urlopen(url, context=context, timeout=10) as response:
        return response.read().decode()


def test_both_ports_serve_tls_to_real_clients(
    start_tls: StartTLS, pki: ThrowawayPKI, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = start_tls()
    ca = pki.ca.read_bytes()
    grpc_exporter = GrpcSpanExporter(
        endpoint=f"127.0.0.1:{service.grpc_port}", credentials=grpc.ssl_channel_credentials(ca), timeout=10
    )
    assert _exported(grpc_exporter) is SpanExportResult.SUCCESS
    http_exporter = HttpSpanExporter(
        endpoint=f"https://127.0.0.1:{service.http_port}/v1/traces", certificate_file=str(pki.ca), timeout=10
    )
    assert _exported(http_exporter) is SpanExportResult.SUCCESS

    context = ssl.create_default_context(cafile=str(pki.ca))
    assert _readyz(service, context) == 200
    assert '"openai"' in _stored_calls(service, context)  # the API answers over TLS, spans are stored
    response = httpx.get(f"https://127.0.0.1:{service.http_port}/readyz", verify=context, timeout=10)
    assert response.status_code == 200 and response.json() == {"ready": True}

    # A client that does not trust the CA refuses the server.
    with pytest.raises(urllib.error.URLError, match="CERTIFICATE_VERIFY_FAILED"):
        _readyz(service, ssl.create_default_context())
    # What docs/receiver.md warns about: REQUESTS_CA_BUNDLE overrides certificate_file.
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", ssl.get_default_verify_paths().openssl_cafile)
    overridden = HttpSpanExporter(
        endpoint=f"https://127.0.0.1:{service.http_port}/v1/traces", certificate_file=str(pki.ca), timeout=1
    )
    assert _exported(overridden) is SpanExportResult.FAILURE


def test_plain_text_clients_are_refused(start_tls: StartTLS, pki: ThrowawayPKI) -> None:
    service = start_tls()
    connection = http.client.HTTPConnection("127.0.0.1", service.http_port, timeout=10)
    with pytest.raises((http.client.HTTPException, OSError)):
        connection.request("GET", "/readyz")
        connection.getresponse()  # the server closes: a ClientHello was expected, not HTTP
    connection.close()
    with pytest.raises(httpx.TransportError):
        httpx.get(f"http://127.0.0.1:{service.http_port}/readyz", timeout=10)
    insecure = GrpcSpanExporter(endpoint=f"127.0.0.1:{service.grpc_port}", insecure=True, timeout=2)
    assert _exported(insecure) is SpanExportResult.FAILURE
    # The port still serves TLS clients after refusing plain ones.
    assert _readyz(service, ssl.create_default_context(cafile=str(pki.ca))) == 200


def test_client_certificates_are_required_with_a_client_ca(
    start_tls: StartTLS, pki: ThrowawayPKI, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = start_tls(client_ca=True)
    ca = pki.ca.read_bytes()

    without_cert = ssl.create_default_context(cafile=str(pki.ca))
    with pytest.raises((ssl.SSLError, urllib.error.URLError, ConnectionError)):
        _readyz(service, without_cert)
    with pytest.raises(httpx.TransportError):
        httpx.get(f"https://127.0.0.1:{service.http_port}/readyz", verify=without_cert, timeout=10)
    anonymous = GrpcSpanExporter(
        endpoint=f"127.0.0.1:{service.grpc_port}", credentials=grpc.ssl_channel_credentials(ca), timeout=2
    )
    assert _exported(anonymous) is SpanExportResult.FAILURE

    with_cert = ssl.create_default_context(cafile=str(pki.ca))
    with_cert.load_cert_chain(str(pki.client_cert), str(pki.client_key))
    assert _readyz(service, with_cert) == 200
    grpc_exporter = GrpcSpanExporter(
        endpoint=f"127.0.0.1:{service.grpc_port}",
        credentials=grpc.ssl_channel_credentials(
            ca, private_key=pki.client_key.read_bytes(), certificate_chain=pki.client_cert.read_bytes()
        ),
        timeout=10,
    )
    assert _exported(grpc_exporter) is SpanExportResult.SUCCESS
    # The HTTP exporter configured by the standard variables alone, as an app would be.
    monkeypatch.setenv(
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", f"https://127.0.0.1:{service.http_port}/v1/traces"
    )
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_CERTIFICATE", str(pki.ca))
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE", str(pki.client_cert))
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_CLIENT_KEY", str(pki.client_key))
    assert _exported(HttpSpanExporter(timeout=10)) is SpanExportResult.SUCCESS
    assert '"openai"' in _stored_calls(service, with_cert)


def _stored_spans(service: ReceiverService, context: ssl.SSLContext, key: str) -> int:
    request = urllib.request.Request(
        f"https://127.0.0.1:{service.http_port}/api/v1/top?by=provider&since=1h&data_mode=all",
        headers={"Authorization": f"Bearer {key}"},
    )
    with urllib.request.urlopen(request, context=context, timeout=10) as response:
        return int(json.loads(response.read())["totals"]["attempts"])


def test_sdk_exporters_send_a_key_over_tls_to_both_ports(
    start_tls: StartTLS, pki: ThrowawayPKI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Keys and TLS together, configured the way every OTel SDK is: the key in
    ``OTEL_EXPORTER_OTLP_HEADERS``, the CA in ``OTEL_EXPORTER_OTLP_CERTIFICATE``. Without the
    header both ports refuse the export (the SDK reports the failure) and store nothing."""
    db = tmp_path / "keyed.db"
    ingest = create_key(db, "collector", "ingest")
    read = create_key(db, "grafana", "read")
    service = start_tls(db=db)
    context = ssl.create_default_context(cafile=str(pki.ca))
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_CERTIFICATE", str(pki.ca))
    grpc_endpoint = f"https://127.0.0.1:{service.grpc_port}"
    http_endpoint = f"https://127.0.0.1:{service.http_port}/v1/traces"

    assert _exported(GrpcSpanExporter(endpoint=grpc_endpoint, timeout=5)) is SpanExportResult.FAILURE
    assert _exported(HttpSpanExporter(endpoint=http_endpoint, timeout=5)) is SpanExportResult.FAILURE
    assert _stored_spans(service, context, read) == 0

    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", f"authorization=Bearer%20{ingest}")
    assert _exported(GrpcSpanExporter(endpoint=grpc_endpoint, timeout=10)) is SpanExportResult.SUCCESS
    assert _exported(HttpSpanExporter(endpoint=http_endpoint, timeout=10)) is SpanExportResult.SUCCESS
    assert _stored_spans(service, context, read) == 2
    with pytest.raises(urllib.error.HTTPError) as refused:  # an ingest key reads nothing
        _stored_spans(service, context, ingest)
    assert refused.value.code == 403
    refused.value.close()


def test_tls_settings_come_in_pairs() -> None:
    with pytest.raises(ValueError, match="certificate and its key"):
        ServeConfig.load({"tls_cert": "server.pem"}, environ={})
    with pytest.raises(ValueError, match="needs tls_cert"):
        ServeConfig.load({}, environ={"SPANMETER_TLS_CLIENT_CA": "ca.pem"})
    config = ServeConfig.load(
        {},
        environ={
            "SPANMETER_TLS_CERT": "s.pem",
            "SPANMETER_TLS_KEY": "s.key",
            "SPANMETER_TLS_CLIENT_CA": "c.pem",
        },
    )
    assert (config.tls_cert, config.tls_key, config.tls_client_ca) == ("s.pem", "s.key", "c.pem")
