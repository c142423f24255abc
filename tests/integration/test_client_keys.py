"""Keys on the client side and on ``/metrics``: ``--metrics-auth``, ``/readyz``'s warning when
served ``--insecure-no-auth``, ``--api-key`` on every CLI command with ``--url``,
``BudgetGuard(api_key=)`` and ``configure(api_key=)``/the ``spanmeter`` exporter.

Real receivers on 127.0.0.1 (port 0) with real keys made by ``spanmeter keys create`` before
they start (so no cache time to wait), the real OTel SDK, a real ``spanmeter serve`` process.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import click
import pytest
import yaml
from click.testing import CliRunner
from opentelemetry.exporter.otlp.proto.grpc import exporter as otlp_grpc
from opentelemetry.sdk.trace import TracerProvider

import spanmeter
from spanmeter.auth.authenticator import CACHE_S
from spanmeter.cli import main
from spanmeter.otel_exporter import SpanmeterSpanExporter
from spanmeter.otel_exporter.exporters import export_headers
from spanmeter.service import ReceiverService, ServeConfig
from support.api_keys import create_key
from support.budget_helpers import genai_attributes
from support.doc_blocks import read_blocks
from support.serve_process import free_port, serve_process

ROOT = Path(__file__).resolve().parents[2]

BUDGETS = """
budgets:
  - {name: per-tenant, scope: {tenant_id: "*"}, window: {rolling: 24h}, limit_usd: "0.01", warn_at: [50%]}
"""


@dataclass
class Keyed:
    service: ReceiverService
    db: Path
    ingest: str
    read: str
    admin: str

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.service.http_port}"


@pytest.fixture
def keyed(tmp_path: Path) -> Iterator[Keyed]:
    db = tmp_path / "keyed.db"
    ingest, read, admin = (
        create_key(db, "app", "ingest"),
        create_key(db, "grafana", "read"),
        create_key(db, "ops", "admin"),
    )
    budgets = tmp_path / "budgets.yaml"
    budgets.write_text(BUDGETS)
    config = ServeConfig(
        db=str(db),
        grpc_port=0,
        http_port=0,
        store_process=False,
        metrics_auth=True,
        budgets_file=str(budgets),
    )
    with ReceiverService(config) as service:
        yield Keyed(service, db, ingest, read, admin)


def get(url: str, key: str | None = None) -> tuple[int, dict[str, str], str]:
    request = urllib.request.Request(url)
    if key is not None:
        request.add_header("Authorization", f"Bearer {key}")
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, {k.lower(): v for k, v in answer.headers.items()}, answer.read().decode()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, {k.lower(): v for k, v in error.headers.items()}, error.read().decode()


# -- /metrics and /readyz ------------------------------------------------------------------------


def test_metrics_takes_a_read_or_admin_key_when_metrics_auth_is_on(keyed: Keyed) -> None:
    status, headers, body = get(f"{keyed.base}/metrics")
    assert status == 401 and headers["www-authenticate"].startswith("Bearer") and "API key" in body
    assert "spanmeter_" not in body
    status, headers, body = get(f"{keyed.base}/metrics", keyed.ingest)
    assert status == 403 and "www-authenticate" not in headers
    assert "scope 'ingest'" in body and "needs 'read'" in body
    assert get(f"{keyed.base}/metrics", "spm_0000000000000000_" + "A" * 43)[0] == 401
    for key in (keyed.read, keyed.admin):
        status, headers, body = get(f"{keyed.base}/metrics", key)
        assert (
            status == 200 and "spanmeter_ingest" in body and headers["content-type"].startswith("text/plain")
        )
    # a key limited to tenants may not read every tenant's counters
    tenant_key = create_key(keyed.db, "acme-dash", "read", "--tenant", "acme")
    status, _, body = get(f"{keyed.base}/metrics", tenant_key)
    assert status == 403 and "limited to tenants" in body and "spanmeter_" not in body
    # health stays open, and says nothing about exposure on loopback
    assert get(f"{keyed.base}/healthz")[0] == 200
    status, _, body = get(f"{keyed.base}/readyz")
    assert status == 200 and json.loads(body) == {"ready": True}


def test_metrics_stay_open_without_metrics_auth_even_with_keys(tmp_path: Path) -> None:
    db = tmp_path / "open-metrics.db"
    ingest = create_key(db, "app", "ingest")
    with ReceiverService(ServeConfig(db=str(db), grpc_port=0, http_port=0, store_process=False)) as service:
        base = f"http://127.0.0.1:{service.http_port}"
        status, _, body = get(f"{base}/metrics")
        assert status == 200 and "spanmeter_ingest" in body
        assert get(f"{base}/api/v1/top?by=model&since=1h")[0] == 401  # the API still needs one
        assert get(f"{base}/api/v1/top?by=model&since=1h", ingest)[0] == 403


def test_metrics_auth_is_read_from_the_environment_and_the_config_file(tmp_path: Path) -> None:
    assert ServeConfig.load(environ={}).metrics_auth is False
    assert ServeConfig.load(environ={"SPANMETER_METRICS_AUTH": "true"}).metrics_auth is True
    config_file = tmp_path / "spanmeter.yaml"
    config_file.write_text("metrics_auth: true\ninsecure_no_auth: true\n")
    loaded = ServeConfig.load(config_file=config_file, environ={})
    assert loaded.metrics_auth is True and loaded.insecure_no_auth is True
    overridden = ServeConfig.load({"metrics_auth": False}, config_file=config_file, environ={})
    assert overridden.metrics_auth is False
    with pytest.raises(ValueError, match="environment: invalid metrics_auth"):
        ServeConfig.load(environ={"SPANMETER_METRICS_AUTH": "maybe"})


def test_serve_insecure_no_auth_warns_on_readyz_until_a_key_exists(tmp_path: Path) -> None:
    """The real ``spanmeter serve`` with its flags: exposed without keys, ``/readyz`` is ready
    (200) and says why it is insecure; ``--metrics-auth`` has nothing to check yet. Once a key
    exists the warning goes and ``/metrics`` needs the key, without a restart."""
    db = tmp_path / "exposed.db"
    arguments = ("--host", "0.0.0.0", "--insecure-no-auth", "--metrics-auth", "--no-store-process")
    with serve_process(str(db), *arguments, log=tmp_path / "serve.log") as (_, _, http_port):
        base = f"http://127.0.0.1:{http_port}"
        status, _, body = get(f"{base}/readyz")
        document = json.loads(body)
        assert status == 200 and document["ready"] is True
        assert "--insecure-no-auth" in document["warning"] and "no API key exists" in document["warning"]
        assert "0.0.0.0" in document["warning"]
        assert get(f"{base}/metrics")[0] == 200  # no key yet: authentication is off
        read = create_key(db, "grafana", "read")
        time.sleep(CACHE_S + 0.3)
        status, _, body = get(f"{base}/readyz")
        assert status == 200 and json.loads(body) == {"ready": True}
        assert get(f"{base}/metrics")[0] == 401
        assert get(f"{base}/metrics", read)[0] == 200
    assert "--insecure-no-auth" in (tmp_path / "serve.log").read_text()  # and warned at start


def test_prometheus_scrapes_with_the_documented_authorization_block(keyed: Keyed, tmp_path: Path) -> None:
    """The ``authorization`` block of docs/prometheus.md in a real Prometheus: with the read key
    in its ``credentials_file`` the target is up; the same job without the block is down (401)."""
    prometheus_bin = shutil.which("prometheus")
    assert prometheus_bin, "prometheus is not installed: run scripts/install-system-deps"
    (block,) = [
        b
        for b in read_blocks(ROOT, [ROOT / "docs" / "prometheus.md"])
        if b.lang == "yaml" and "authorization:" in b.text
    ]
    (job,) = yaml.safe_load(block.text)["scrape_configs"]
    assert job["authorization"]["type"] == "Bearer" and "credentials_file" in job["authorization"]
    key_file = tmp_path / "spanmeter-read-key"
    key_file.write_text(keyed.read + "\n")
    job["static_configs"] = [{"targets": [f"127.0.0.1:{keyed.service.http_port}"]}]
    job["authorization"]["credentials_file"] = str(key_file)
    without = {k: v for k, v in job.items() if k != "authorization"} | {"job_name": "no-key"}
    config = {
        "global": {"scrape_interval": "1s", "scrape_timeout": "900ms"},
        "scrape_configs": [job, without],
    }
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    with (tmp_path / "prometheus.log").open("wb") as log:
        process = subprocess.Popen(
            [
                prometheus_bin,
                f"--config.file={tmp_path / 'prometheus.yml'}",
                f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
        try:
            deadline = time.monotonic() + 30
            health: dict[str, tuple[str, str]] = {}
            while time.monotonic() < deadline:
                try:
                    _, _, body = get(f"http://127.0.0.1:{port}/api/v1/targets")
                    targets = json.loads(body)["data"]["activeTargets"]
                    health = {t["labels"]["job"]: (t["health"], t["lastError"]) for t in targets}
                except (OSError, ValueError, KeyError):
                    pass
                if {state for state, _ in health.values()} >= {"up", "down"}:
                    break
                time.sleep(0.2)
            assert health.get(job["job_name"]) == ("up", ""), health
            assert health["no-key"][0] == "down" and "401" in health["no-key"][1], health
        finally:
            process.terminate()
            process.wait(10)


def test_the_provisioned_infinity_header_reads_the_api(keyed: Keyed) -> None:
    """What Grafana's Infinity datasource sends, built from the provisioning file as Grafana
    expands it (``${SPANMETER_READ_KEY}`` replaced), opens a dashboard's API query."""
    (source,) = [
        s
        for s in yaml.safe_load(
            (ROOT / "deploy" / "grafana" / "provisioning" / "datasources" / "spanmeter.yaml").read_text()
        )["datasources"]
        if s["uid"] == "spanmeter-api"
    ]
    name = source["jsonData"]["httpHeaderName1"]
    value = source["secureJsonData"]["httpHeaderValue1"].replace("${SPANMETER_READ_KEY}", keyed.read)
    url = f"{keyed.base}/api/v1/top?" + urllib.parse.urlencode({"by": "tenant_id", "since": "1h"})
    request = urllib.request.Request(url, headers={name: value})
    with urllib.request.urlopen(request, timeout=10) as answer:
        assert answer.status == 200 and "groups" in json.loads(answer.read())
    assert get(url)[0] == 401
    assert re.fullmatch(r"Bearer spm_\w+_\S+", value)


# -- the CLI -------------------------------------------------------------------------------------


def _commands(
    group: click.Group, prefix: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], click.Command]]:
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            yield from _commands(command, (*prefix, name))
        else:
            yield (*prefix, name), command


def test_every_command_with_url_takes_api_key() -> None:
    with_url = {
        path: {option for param in command.params for option in getattr(param, "opts", [])}
        for path, command in _commands(main)
        if any("--url" in getattr(param, "opts", []) for param in command.params)
    }
    assert len(with_url) >= 10, sorted(with_url)  # top, investigate, compare, ..., alerts, budgets
    missing = sorted(" ".join(path) for path, options in with_url.items() if "--api-key" not in options)
    assert not missing, missing
    result = CliRunner().invoke(main, ["top", "--help"])
    assert "--api-key KEY" in result.output and "SPANMETER_API_KEY" in result.output


def test_cli_api_key_against_a_keyed_receiver(keyed: Keyed) -> None:
    runner = CliRunner()
    no_env = {"SPANMETER_API_KEY": "", "SPANMETER_URL": ""}
    top = ["top", "--url", keyed.base, "--by", "model"]
    assert runner.invoke(main, [*top, "--api-key", keyed.read], env=no_env).exit_code == 0
    refused = runner.invoke(main, top, env=no_env)
    assert refused.exit_code == 1 and "HTTP 401" in refused.output and "--api-key" in refused.output
    wrong = runner.invoke(main, [*top, "--api-key", keyed.ingest], env=no_env)
    assert wrong.exit_code == 1 and "HTTP 403" in wrong.output
    assert "scope 'ingest'" in wrong.output and "needs 'read'" in wrong.output
    assert "Traceback" not in wrong.output and isinstance(wrong.exception, SystemExit)  # a message, no trace
    # the option wins over the variable
    env_ingest = {"SPANMETER_API_KEY": keyed.ingest, "SPANMETER_URL": ""}
    assert runner.invoke(main, [*top, "--api-key", keyed.read], env=env_ingest).exit_code == 0
    assert runner.invoke(main, top, env=env_ingest).exit_code == 1
    # an admin route names the admin scope
    ack = runner.invoke(
        main, ["alerts", "ack", "1", "--url", keyed.base, "--api-key", keyed.read], env=no_env
    )
    assert ack.exit_code == 1 and "HTTP 403" in ack.output and "needs 'admin'" in ack.output
    status = runner.invoke(
        main,
        ["budgets", "status", "--url", keyed.base, "--api-key", keyed.read, "--format", "json"],
        env=no_env,
    )
    assert status.exit_code == 0, status.output
    assert "states" in json.loads(status.output)
    # a streamed export sends it too
    export = runner.invoke(
        main,
        [
            "export",
            "requests",
            "--since",
            "1h",
            "--url",
            keyed.base,
            "--api-key",
            keyed.read,
            "--format",
            "csv",
        ],
        env=no_env,
    )
    assert export.exit_code == 0, export.output


# -- BudgetGuard ---------------------------------------------------------------------------------


def _send(provider: TracerProvider, count: int, tenant: str = "acme") -> None:
    tracer = provider.get_tracer("keys")
    for _ in range(count):
        with tracer.start_as_current_span(
            "chat", attributes=genai_attributes("gpt-4o", 1000, 100, tenant_id=tenant)
        ):
            pass


def test_budget_guard_sends_its_key(keyed: Keyed, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SPANMETER_API_KEY", raising=False)
    without = spanmeter.BudgetGuard(keyed.base, start=False)
    assert without.refresh() is False
    assert without.last_error is not None and without.last_error.startswith("HTTP 401")
    assert "api_key=" in without.last_error and keyed.read not in without.last_error
    wrong = spanmeter.BudgetGuard(keyed.base, start=False, api_key=keyed.ingest)
    assert wrong.refresh() is False
    assert (
        wrong.last_error is not None and "HTTP 403" in wrong.last_error and "needs 'read'" in wrong.last_error
    )
    provider = TracerProvider()
    pipeline = spanmeter.configure(keyed.base, tracer_provider=provider, api_key=keyed.ingest, timeout_s=5)
    _send(provider, 4)  # 4 x 3.5 milli-USD: over the 10 milli-USD limit
    assert pipeline.force_flush()
    pipeline.shutdown()
    with spanmeter.BudgetGuard(keyed.base, start=False, api_key=keyed.read) as guard:
        assert guard.refresh() is True, guard.last_error
        decision = guard.check(tenant_id="acme")
        assert (decision.state, decision.budget, decision.fresh) == ("exceeded", "per-tenant", True)
    monkeypatch.setenv("SPANMETER_API_KEY", keyed.admin)  # the default: the variable
    from_env = spanmeter.BudgetGuard(keyed.base, start=False)
    assert from_env.refresh() is True and from_env.check(tenant_id="acme").state == "exceeded"


# -- configure() and the spanmeter exporter ----------------------------------------------------


@pytest.mark.parametrize("protocol", ["http/protobuf", "grpc"])
def test_configure_exports_with_its_key(keyed: Keyed, protocol: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SPANMETER_API_KEY", raising=False)
    port = keyed.service.http_port if protocol == "http/protobuf" else keyed.service.grpc_port
    endpoint = f"http://127.0.0.1:{port}"
    provider = TracerProvider()
    pipeline = spanmeter.configure(
        endpoint, protocol=protocol, tracer_provider=provider, api_key=keyed.ingest, timeout_s=5
    )
    _send(provider, 3)
    assert pipeline.force_flush()
    pipeline.shutdown()
    assert pipeline.stats()["export.exported_spans"] == 3
    assert keyed.service.store.count_requests() == 3


def test_configure_without_a_key_is_refused_and_says_why(
    keyed: Keyed, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delenv("SPANMETER_API_KEY", raising=False)
    caplog.set_level(logging.WARNING)
    # the SDK's DuplicateFilter drops a log line of the same format within 20 s (another
    # test's refusal, or the first one here): without it, each refusal below is seen
    monkeypatch.setattr(otlp_grpc.logger, "filters", [])
    provider = TracerProvider()
    pipeline = spanmeter.configure(keyed.base, tracer_provider=provider, timeout_s=5)
    _send(provider, 2)
    pipeline.force_flush()
    pipeline.shutdown()
    assert pipeline.stats()["export.failed_spans"] == 2 and pipeline.stats()["export.exported_spans"] == 0
    assert pipeline.exporter.last_refusal is not None and pipeline.exporter.last_refusal.startswith(
        "HTTP 401"
    )
    # a read key: refused with the scope it lacks, in the log line an operator sees
    provider = TracerProvider()
    pipeline = spanmeter.configure(keyed.base, tracer_provider=provider, api_key=keyed.read, timeout_s=5)
    _send(provider, 1)
    pipeline.force_flush()
    pipeline.shutdown()
    assert pipeline.exporter.last_refusal is not None and "needs 'ingest'" in pipeline.exporter.last_refusal
    assert any("needs 'ingest'" in record.getMessage() for record in caplog.records)
    # gRPC without a key: UNAUTHENTICATED
    provider = TracerProvider()
    grpc_endpoint = f"http://127.0.0.1:{keyed.service.grpc_port}"
    pipeline = spanmeter.configure(grpc_endpoint, protocol="grpc", tracer_provider=provider, timeout_s=5)
    _send(provider, 1)
    pipeline.force_flush()
    pipeline.shutdown()
    assert pipeline.stats()["export.failed_spans"] == 1
    assert any("UNAUTHENTICATED" in record.getMessage() for record in caplog.records)
    # gRPC with a read key: the OTLP exporter logs the status and the receiver's message
    provider = TracerProvider()
    pipeline = spanmeter.configure(
        grpc_endpoint, protocol="grpc", tracer_provider=provider, api_key=keyed.read, timeout_s=5
    )
    _send(provider, 1)
    pipeline.force_flush()
    pipeline.shutdown()
    assert any(
        "PERMISSION_DENIED" in record.getMessage() and "needs 'ingest'" in record.getMessage()
        for record in caplog.records
    )
    assert keyed.service.store.count_requests() == 0


@pytest.mark.parametrize("protocol", ["http/protobuf", "grpc"])
def test_the_spanmeter_exporter_sends_spanmeter_api_key(
    keyed: Keyed, protocol: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``OTEL_TRACES_EXPORTER=spanmeter`` builds the exporter with no arguments: the key comes
    from ``SPANMETER_API_KEY``."""
    port = keyed.service.http_port if protocol == "http/protobuf" else keyed.service.grpc_port
    monkeypatch.setenv("SPANMETER_ENDPOINT", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("SPANMETER_PROTOCOL", protocol)
    monkeypatch.setenv("SPANMETER_API_KEY", keyed.ingest)
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    _send(provider, 2)
    provider.shutdown()
    exporter = SpanmeterSpanExporter()
    try:
        assert exporter.export(memory.get_finished_spans()) is SpanExportResult.SUCCESS
    finally:
        exporter.shutdown()
    assert keyed.service.store.count_requests() == 2


def test_export_headers_keep_the_environments_and_an_explicit_authorization(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SPANMETER_API_KEY", "spm_env")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "x-team=search,x-env=prod")
    # gRPC reads the OTLP variable only without headers: merged here so none is lost
    assert export_headers(None, None, protocol="grpc") == {
        "x-team": "search",
        "x-env": "prod",
        "authorization": "Bearer spm_env",
    }
    # HTTP merges the variable itself
    assert export_headers(None, "spm_arg", protocol="http/protobuf") == {"authorization": "Bearer spm_arg"}
    assert export_headers({"Authorization": "Bearer mine"}, "spm_arg", protocol="grpc") == {
        "Authorization": "Bearer mine"
    }
    monkeypatch.setenv("SPANMETER_API_KEY", "")
    assert export_headers({"x": "1"}, None, protocol="grpc") == {"x": "1"}
