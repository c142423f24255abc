"""The OpenTelemetry JS SDK (Node.js) exporting to spanmeter with an ingest key over TLS, on
both ports, configured only by the standard variables of the OTel SDKs:
``OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT``, ``OTEL_EXPORTER_OTLP_HEADERS`` (the key),
``OTEL_EXPORTER_OTLP_CERTIFICATE`` (the CA) and ``OTEL_EXPORTER_OTLP_PROTOCOL``.

A real :class:`ReceiverService` (TLS on both ports, keys in its store) and the real Node
exporters (``tests/node_otlp/export.js``, with the versions pinned in its package-lock.json:
gRPC, HTTP protobuf and HTTP JSON) run; what the receiver stored is read back through the API.

What the Node SDK does without a key, as observed here with the pinned versions (not as we
would wish): the receiver answers 401 (HTTP) or ``UNAUTHENTICATED`` (gRPC) and stores nothing.
The HTTP exporters retry only 429, 502, 503 and 504, so a 401 is sent once and the SDK logs it
as a non-retryable failure; the gRPC exporter retries no status at all, so it too sends the
batch once. The export reports ``FAILED`` with that status, the flush rejects, and the SDK's
batch span processor drops the batch: the JS SDK keeps nothing for a later retry, so once the
key is configured only new spans arrive.
"""

from __future__ import annotations

import json
import os
import ssl
import subprocess
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from spanmeter.auth import Authenticator
from spanmeter.service import ReceiverService, ServeConfig
from support.api_keys import create_key
from support.node_project import NodeProject, node_project
from support.tls_certs import ThrowawayPKI, make_pki

# Published list prices, USD per 1M tokens (input, output), of the models export.js sends.
PRICES = {
    ("openai", "gpt-4o"): (Decimal("2.50"), Decimal("10.00")),
    ("openai", "gpt-4o-mini"): (Decimal("0.15"), Decimal("0.60")),
}
SPANS = 7
GRPC_UNAUTHENTICATED = 16
PROTOCOLS = ("grpc", "http/protobuf", "http/json")


@dataclass
class Receiver:
    """The running service, its CA, its keys and the ingest key checks it made."""

    service: ReceiverService
    pki: ThrowawayPKI
    ingest_key: str
    read_key: str
    ingest_checks: list[tuple[bool, str]]  # (had an Authorization header, outcome)

    def endpoint_env(self, protocol: str, *, signal: bool) -> dict[str, str]:
        """The endpoint variable an app would set: ``OTEL_EXPORTER_OTLP_ENDPOINT``, the base
        URL (the HTTP exporters add ``/v1/traces``), or with ``signal`` the traces' own
        ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` (the full URL for HTTP)."""
        port = self.service.grpc_port if protocol == "grpc" else self.service.http_port
        base = f"https://127.0.0.1:{port}"
        if not signal:
            return {"OTEL_EXPORTER_OTLP_ENDPOINT": base}
        return {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": base if protocol == "grpc" else f"{base}/v1/traces"}

    def top(self, tenant: str) -> dict[str, Any]:
        query = urllib.parse.urlencode(
            {"by": "model", "since": "1h", "data_mode": "all", "where": f"tenant_id={tenant}"}
        )
        request = urllib.request.Request(
            f"https://127.0.0.1:{self.service.http_port}/api/v1/top?{query}",
            headers={"Authorization": f"Bearer {self.read_key}"},
        )
        context = ssl.create_default_context(cafile=str(self.pki.ca))
        with urllib.request.urlopen(request, context=context, timeout=10) as response:
            return json.loads(response.read())


@dataclass(frozen=True)
class Run:
    """One run of export.js."""

    returncode: int
    report: dict[str, Any]
    stderr: str


@pytest.fixture(scope="module")
def node() -> NodeProject:
    return node_project()


@pytest.fixture
def receiver(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Receiver]:
    checks: list[tuple[bool, str]] = []
    real_check = Authenticator.check

    def counted_check(self: Authenticator, authorization: str | None, needed: Any) -> Any:
        if needed != "ingest":
            return real_check(self, authorization, needed)
        try:
            identity = real_check(self, authorization, needed)
        except Exception as refused:
            checks.append((authorization is not None, type(refused).__name__))
            raise
        checks.append((authorization is not None, "allowed"))
        return identity

    monkeypatch.setattr(Authenticator, "check", counted_check)  # bound when the service starts
    pki = make_pki(tmp_path)
    db = tmp_path / "cost.db"
    ingest_key, read_key = create_key(db, "node-app", "ingest"), create_key(db, "grafana", "read")
    config = ServeConfig(
        db=str(db),
        grpc_port=0,
        http_port=0,
        store_process=False,
        tls_cert=str(pki.server_cert),
        tls_key=str(pki.server_key),
    )
    service = ReceiverService(config).start()
    try:
        yield Receiver(service, pki, ingest_key, read_key, checks)
    finally:
        service.stop(grace_s=1.0)


def _clean_environ() -> dict[str, str]:
    """This process's environment without anything that would configure the SDK or trust a
    CA behind the test's back."""
    return {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("OTEL_", "NODE_", "GRPC_", "SSL_CERT_"))
        and name not in ("HTTPS_PROXY", "https_proxy")
    }


def run_export(node: NodeProject, env: dict[str, str], tenant: str) -> Run:
    done = subprocess.run(
        [node.node, "export.js", str(SPANS), tenant],
        cwd=node.directory,
        env={**_clean_environ(), **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode in (0, 2), f"export.js crashed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
    lines = done.stdout.strip().splitlines()
    assert lines, done.stderr
    return Run(done.returncode, json.loads(lines[-1]), done.stderr)


def cost_nano(call: dict[str, Any]) -> int:
    price_in, price_out = PRICES[(call["provider"], call["model"])]
    # USD per 1M tokens -> nano-USD per token is price * 1000; exact for these prices
    return int(call["input_tokens"] * price_in * 1000) + int(call["output_tokens"] * price_out * 1000)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_node_sdk_exports_with_a_key_over_tls(node: NodeProject, receiver: Receiver, protocol: str) -> None:
    tenant = "acme-" + protocol.replace("/", "-")
    env = {
        **receiver.endpoint_env(protocol, signal=False),
        "OTEL_EXPORTER_OTLP_PROTOCOL": protocol,
        "OTEL_EXPORTER_OTLP_HEADERS": f"authorization=Bearer%20{receiver.ingest_key}",
        "OTEL_EXPORTER_OTLP_CERTIFICATE": str(receiver.pki.ca),
    }
    run = run_export(node, env, tenant)

    assert run.returncode == 0, run
    assert run.report["protocol"] == protocol
    assert [r["code"] for r in run.report["results"]] == [0]  # one batch, SUCCESS
    assert sum(r["spans"] for r in run.report["results"]) == SPANS
    sent = run.report["sent"]
    assert len(sent) == SPANS and {call["tenant"] for call in sent} == {tenant}
    assert receiver.ingest_checks == [(True, "allowed")]

    stored = receiver.top(tenant)
    assert stored["totals"]["attempts"] == SPANS
    assert stored["totals"]["input_tokens"] == sum(call["input_tokens"] for call in sent)
    assert stored["totals"]["output_tokens"] == sum(call["output_tokens"] for call in sent)
    expected_cost = sum(cost_nano(call) for call in sent)
    assert stored["totals"]["cost_nano_usd"] == expected_cost > 0
    by_model = {group["model"]: group["cost_nano_usd"] for group in stored["groups"]}
    assert by_model == {
        model: sum(cost_nano(call) for call in sent if call["model"] == model)
        for model in {call["model"] for call in sent}
    }


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_node_sdk_without_a_key_is_refused_once_and_nothing_is_stored(
    node: NodeProject, receiver: Receiver, protocol: str
) -> None:
    tenant = "nokey-" + protocol.replace("/", "-")
    env = {
        **receiver.endpoint_env(protocol, signal=True),
        "OTEL_EXPORTER_OTLP_PROTOCOL": protocol,
        "OTEL_EXPORTER_OTLP_CERTIFICATE": str(receiver.pki.ca),
    }
    run = run_export(node, env, tenant)

    assert run.returncode == 2, run  # the exporter reported the failure
    [result] = run.report["results"]
    assert result["code"] == 1 and result["spans"] == SPANS  # FAILED, the whole batch
    expected_status = GRPC_UNAUTHENTICATED if protocol == "grpc" else 401
    assert result["error_code"] == expected_status, result
    assert run.report["flush_errors"], run.report  # an app awaiting forceFlush sees it too
    # Sent once: the receiver saw one request, and the HTTP exporters say why they stopped.
    assert receiver.ingest_checks == [(False, "AuthError")]
    if protocol != "grpc":
        assert "Export failed with non-retryable error" in run.stderr, run.stderr
    assert receiver.top(tenant)["totals"]["attempts"] == 0


@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
def test_the_ca_comes_from_otel_exporter_otlp_certificate(
    node: NodeProject, receiver: Receiver, protocol: str
) -> None:
    """Without the CA variable the exporter does not trust the receiver (so the successful
    exports above trusted it through the variable, not through some other store)."""
    tenant = "noca-" + protocol.replace("/", "-")
    env = {
        **receiver.endpoint_env(protocol, signal=False),
        "OTEL_EXPORTER_OTLP_PROTOCOL": protocol,
        "OTEL_EXPORTER_OTLP_HEADERS": f"authorization=Bearer%20{receiver.ingest_key}",
        "OTEL_EXPORTER_OTLP_TIMEOUT": "3000",
    }
    run = run_export(node, env, tenant)

    assert run.returncode == 2, run
    [result] = run.report["results"]
    assert result["code"] == 1 and "unable to verify the first certificate" in result["error"], result
    assert receiver.ingest_checks == []  # refused in the handshake, before any request
    assert receiver.top(tenant)["totals"]["attempts"] == 0
