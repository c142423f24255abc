"""What an operator sees of a running receiver: its self-metrics on ``/metrics``, ``/healthz``
and ``/readyz``, and backpressure end to end.

Every test runs a real :class:`ReceiverService` on ports picked at runtime and talks to it
with real clients: raw OTLP/HTTP and gRPC requests where the exact answer matters, the OTel
SDK exporters where their retrying matters. ``/metrics`` is read with
``prometheus_client``'s own parser.
"""

from __future__ import annotations

import http.client
import json
import math
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.rpc import code_pb2, error_details_pb2, status_pb2
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import KeyValue
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from prometheus_client.parser import text_string_to_metric_families

from spanmeter.service import ReceiverService, ServeConfig

EXPORT_METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
PROTOBUF = "application/x-protobuf"
TESTS_DIR = Path(__file__).resolve().parents[1]
TIMEOUT = 15.0
_ids = iter(range(1, 10**9))

Metrics = dict[str, dict[tuple[tuple[str, str], ...], float]]


# -- requests -------------------------------------------------------------------------------------


def span_attributes(**attributes: str | int) -> list[KeyValue]:
    found = []
    for key, value in attributes.items():
        kv = KeyValue(key=key.replace("__", "."))
        if isinstance(value, int):
            kv.value.int_value = value
        else:
            kv.value.string_value = value
        found.append(kv)
    return found


GENAI = {"gen_ai__operation__name": "chat", "gen_ai__provider__name": "openai"}
USAGE = {"gen_ai__usage__input_tokens": 1000, "gen_ai__usage__output_tokens": 100}


def request(*spans: dict[str, Any]) -> ExportTraceServiceRequest:
    """One request; each span is its attributes, plus ``_trace_id`` to override the id."""
    export = ExportTraceServiceRequest()
    scope = export.resource_spans.add().scope_spans.add()
    now = time.time_ns()
    for fields in spans:
        n = next(_ids)
        span = scope.spans.add()
        span.trace_id = fields.pop("_trace_id", n.to_bytes(16, "big"))
        span.span_id = n.to_bytes(8, "big")
        span.name = "span"
        span.start_time_unix_nano, span.end_time_unix_nano = now - 1_000_000, now
        span.attributes.extend(span_attributes(**fields))
    return export


def priced_spans(count: int) -> ExportTraceServiceRequest:
    return request(*({**GENAI, "gen_ai__request__model": "gpt-4o", **USAGE} for _ in range(count)))


def post(port: int, export: ExportTraceServiceRequest) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
    try:
        conn.request("POST", "/v1/traces", export.SerializeToString(), {"Content-Type": PROTOBUF})
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def grpc_export(port: int, export: ExportTraceServiceRequest) -> ExportTraceServiceResponse:
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        answer = channel.unary_unary(EXPORT_METHOD)(export.SerializeToString(), timeout=TIMEOUT)
    return ExportTraceServiceResponse.FromString(answer)


def get(port: int, path: str) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def scrape(port: int) -> Metrics:
    status, body = get(port, "/metrics")
    assert status == 200
    found: Metrics = {}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            found.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return found


def value(metrics: Metrics, name: str, **labels: str) -> float:
    series = metrics.get(name)
    assert series is not None, f"{name} is not exposed"
    return series[tuple(sorted(labels.items()))]


def total(metrics: Metrics, name: str) -> float:
    return sum(metrics.get(name, {}).values())


def wait_until(check: Callable[[], bool], what: str, timeout_s: float = TIMEOUT) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def stored_rows(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        (count,) = conn.execute("select count(*) from requests").fetchone()
    return int(count)


# -- self-metrics ---------------------------------------------------------------------------------


def test_self_metrics_count_what_became_of_every_span(tmp_path: Path) -> None:
    config = ServeConfig(db=str(tmp_path / "cost.db"), grpc_port=0, http_port=0, store_process=False)
    with ReceiverService(config) as service:
        port = service.http_port or 0
        mixed = request(
            {"http__request__method": "GET"},  # not GenAI
            {"db__system__name": "postgresql"},  # not GenAI
            {**GENAI, "gen_ai__request__model": "gpt-4o", **USAGE},  # priced
            {**GENAI, "gen_ai__request__model": "no-such-model-zz9", **USAGE},  # unknown model
            {**GENAI, "gen_ai__request__model": "gpt-4o"},  # no usage
            {**GENAI, "gen_ai__request__model": "gpt-4o", **USAGE, "_trace_id": b"short"},  # invalid
        )
        status, _, body = post(port, mixed)
        assert status == 200
        partial_success = ExportTraceServiceResponse.FromString(body).partial_success
        assert partial_success.rejected_spans == 1
        assert "invalid trace or span id" in partial_success.error_message
        assert grpc_export(service.grpc_port or 0, priced_spans(1)).partial_success.rejected_spans == 0

        metrics = scrape(port)
    assert value(metrics, "spanmeter_spans_received_total") == 7
    assert value(metrics, "spanmeter_spans_non_genai_total") == 2
    assert value(metrics, "spanmeter_spans_rejected_total") == 1
    assert value(metrics, "spanmeter_spans_stored_total") == 4
    assert metrics["spanmeter_spans_genai_total"] == {
        (("pricing_status", "priced"),): 2,
        (("pricing_status", "unknown_model"),): 1,
        (("pricing_status", "no_usage"),): 1,
    }
    # The cost counters agree: two of the four stored attempts have no price.
    assert total(metrics, "spanmeter_attempts_total") == 4
    assert total(metrics, "spanmeter_unpriced_attempts_total") == 2
    # One observation per export (HTTP and gRPC), each a positive duration.
    assert value(metrics, "spanmeter_export_duration_seconds_count") == 2
    assert value(metrics, "spanmeter_export_duration_seconds_bucket", le="+Inf") == 2
    assert 0 < value(metrics, "spanmeter_export_duration_seconds_sum") < 10
    assert value(metrics, "spanmeter_ingest_queue_rows") == 0  # present; nothing waiting
    assert value(metrics, "spanmeter_exports_throttled_total") == 0


# -- health and readiness -------------------------------------------------------------------------


def test_readyz_follows_the_store_process_and_healthz_the_process(tmp_path: Path) -> None:
    service = ReceiverService(ServeConfig(db=str(tmp_path / "cost.db"), grpc_port=0, http_port=0))
    assert not service.ready  # constructed, nothing bound yet
    with service:
        port = service.http_port or 0
        assert service.ready
        assert get(port, "/readyz") == (200, b'{"ready": true}')
        assert get(port, "/healthz") == (200, b'{"status": "ok"}')
        pid = service.store_process_pid
        assert pid is not None
        os.kill(pid, signal.SIGKILL)  # the store process this test started
        wait_until(lambda: get(port, "/readyz")[0] == 503, "/readyz to report the dead store")
        assert json.loads(get(port, "/readyz")[1]) == {"ready": False}
        assert get(port, "/healthz") == (200, b'{"status": "ok"}')  # alive: restart, don't kill
    assert not service.ready


# -- backpressure ---------------------------------------------------------------------------------


@pytest.fixture
def gated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[ReceiverService, Path]]:
    """A receiver whose store process commits to a real SQLite file only while the gate file
    is absent; the gate starts closed. At most 50 rows may wait for the store."""
    from support.gated_store import GatedSQLiteStore

    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join(filter(None, [str(TESTS_DIR), os.environ.get("PYTHONPATH")]))
    )
    db, gate = tmp_path / "cost.db", tmp_path / "gate"
    gate.touch()
    config = ServeConfig(db=str(db), grpc_port=0, http_port=0, max_pending_rows=50)
    service = ReceiverService(config, store_factory=partial(GatedSQLiteStore, str(db), str(gate), 0.05))
    with service:
        try:
            yield service, gate
        finally:
            gate.unlink(missing_ok=True)


def in_thread(target: Callable[[], Any]) -> tuple[threading.Thread, list[Any]]:
    answers: list[Any] = []
    thread = threading.Thread(target=lambda: answers.append(target()), daemon=True)
    thread.start()
    return thread, answers


def sdk_send(exporter: SpanExporter, count: int, endpoint_tag: str) -> None:
    provider = TracerProvider(resource=Resource.create({"service.name": "backpressure"}))
    provider.add_span_processor(
        BatchSpanProcessor(
            exporter, max_export_batch_size=40, schedule_delay_millis=10, export_timeout_millis=30_000
        )
    )
    tracer = provider.get_tracer("backpressure")
    for _ in range(count):
        attributes = {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "openai",
            "gen_ai.request.model": "gpt-4o",
            "gen_ai.usage.input_tokens": 10,
            "gen_ai.usage.output_tokens": 1,
            "spanmeter.endpoint_tag": endpoint_tag,
        }
        with tracer.start_as_current_span("chat gpt-4o", attributes=attributes):
            pass
    provider.shutdown()  # flushes; the exporters retry throttled exports meanwhile


def test_a_full_queue_throttles_both_transports_and_retries_are_stored_once(
    gated: tuple[ReceiverService, Path],
) -> None:
    service, gate = gated
    http_port, grpc_port = service.http_port or 0, service.grpc_port or 0
    first = priced_spans(40)
    first_post, first_answer = in_thread(lambda: post(http_port, first))
    wait_until(
        lambda: value(scrape(http_port), "spanmeter_ingest_queue_rows") == 40, "the queue to hold 40 rows"
    )

    # 40 waiting + 40 more > 50: OTLP/HTTP answers 503 with Retry-After and RetryInfo.
    over_http = priced_spans(40)
    status, headers, body = post(http_port, over_http)
    assert (status, headers["retry-after"]) == (503, "1")
    answer = status_pb2.Status.FromString(body)
    assert answer.code == code_pb2.UNAVAILABLE
    retry = error_details_pb2.RetryInfo()
    assert answer.details[0].Unpack(retry) and retry.retry_delay.ToNanoseconds() == 1_000_000_000

    # gRPC answers UNAVAILABLE with RetryInfo in the status details.
    over_grpc = priced_spans(40)
    with pytest.raises(grpc.RpcError) as refused:
        grpc_export(grpc_port, over_grpc)
    assert refused.value.code() is grpc.StatusCode.UNAVAILABLE
    trailers = dict(refused.value.trailing_metadata() or ())
    details = status_pb2.Status.FromString(trailers["grpc-status-details-bin"])
    assert details.code == code_pb2.UNAVAILABLE
    assert details.details[0].Unpack(retry) and retry.retry_delay.ToNanoseconds() == 1_000_000_000
    assert value(scrape(http_port), "spanmeter_exports_throttled_total") == 2

    # The SDK exporters hit the same full queue, honour the retry delay, and get through
    # once the store catches up.
    senders = [
        in_thread(
            lambda: sdk_send(HttpExporter(endpoint=f"http://127.0.0.1:{http_port}/v1/traces"), 120, "http")
        ),
        in_thread(
            lambda: sdk_send(
                GrpcExporter(endpoint=f"http://127.0.0.1:{grpc_port}", insecure=True), 120, "grpc"
            )
        ),
    ]
    wait_until(
        lambda: value(scrape(http_port), "spanmeter_exports_throttled_total") >= 4, "the SDK exporters' 503s"
    )
    gate.unlink()  # the store catches up
    first_post.join(TIMEOUT)
    assert first_answer[0][0] == 200
    for thread, _ in senders:
        thread.join(60)
        assert not thread.is_alive()
    # The refused raw requests, retried as their clients would after the delay.
    assert post(http_port, over_http)[0] == 200
    assert grpc_export(grpc_port, over_grpc).partial_success.rejected_spans == 0
    # A retry of an acknowledged request (a lost acknowledgement) changes nothing.
    assert post(http_port, first)[0] == 200

    sent = 40 * 3 + 120 * 2
    metrics = scrape(http_port)
    assert value(metrics, "spanmeter_spans_stored_total") == sent
    assert value(metrics, "spanmeter_spans_duplicate_total") == 40
    assert total(metrics, "spanmeter_attempts_total") == sent
    assert value(metrics, "spanmeter_ingest_queue_rows") == 0
    assert stored_rows(Path(service.config.db)) == sent
    by_endpoint = {
        dict(labels).get("endpoint_tag", ""): count
        for labels, count in metrics["spanmeter_attempts_total"].items()
    }
    assert (by_endpoint["http"], by_endpoint["grpc"]) == (120, 120)


def test_readyz_turns_503_as_soon_as_stop_begins(gated: tuple[ReceiverService, Path]) -> None:
    service, gate = gated
    port = service.http_port or 0
    kept_alive = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
    try:
        kept_alive.request("GET", "/readyz")
        response = kept_alive.getresponse()
        assert (response.status, response.read()) == (200, b'{"ready": true}')
        in_flight, answers = in_thread(lambda: post(port, priced_spans(5)))  # held by the gate
        wait_until(lambda: value(scrape(port), "spanmeter_ingest_queue_rows") == 5, "the in-flight export")
        stopper, _ = in_thread(lambda: service.stop(grace_s=TIMEOUT))
        wait_until(lambda: not service.ready, "stop() to begin")
        kept_alive.request("GET", "/readyz")
        response = kept_alive.getresponse()
        response.read()
        assert response.status == 503
        assert stopper.is_alive()  # still draining the in-flight export
        gate.unlink()
        in_flight.join(TIMEOUT)
        stopper.join(TIMEOUT)
        assert not stopper.is_alive()
        assert answers[0][0] == 200  # acknowledged during the drain, and stored
        assert stored_rows(Path(service.config.db)) == 5
    finally:
        kept_alive.close()


# -- spanmeter serve --config ---------------------------------------------------------------------


def children_of(pid: int) -> list[int]:
    tasks = Path(f"/proc/{pid}/task")
    assert tasks.is_dir(), "this test reads the receiver's child processes from /proc (Linux)"
    return [int(child) for task in tasks.iterdir() for child in (task / "children").read_text().split()]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_serve_honours_the_config_file_under_env_and_options(tmp_path: Path) -> None:
    # The file's port stays bound (never listening) by this test, so no other process can
    # take it meanwhile and "nothing listens there" below means serve did not use it.
    held = socket.socket()
    held.bind(("127.0.0.1", 0))
    file_port, option_port = held.getsockname()[1], free_port()
    config_file = tmp_path / "spanmeter.yaml"
    config_file.write_text(
        "serve:\n"
        f"  db: {tmp_path / 'from-file.db'}\n"
        f"  http_port: {file_port}\n"
        "  grpc_port: off\n"
        "  store_process: false\n"
        "  metrics_max_label_sets: 7\n"
        "  metrics_top_tenants: 3\n"
    )
    environ = {k: v for k, v in os.environ.items() if not k.startswith("SPANMETER_")}
    environ |= {"SPANMETER_METRICS_TOP_TENANTS": "4", "SPANMETER_USER_ID_HASH_KEY": "k"}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "spanmeter",
            "serve",
            "--config",
            str(config_file),
            "--http-port",
            str(option_port),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=environ,
    )
    try:

        def ready() -> bool:
            assert process.poll() is None, process.stderr.read().decode() if process.stderr else ""
            try:
                return get(option_port, "/readyz")[0] == 200  # the option beat the file's port
            except OSError:
                return False

        wait_until(ready, "spanmeter serve to be ready", 30)
        metrics = scrape(option_port)
        assert value(metrics, "spanmeter_metrics_label_sets", sets="total") == 7  # from the file
        assert value(metrics, "spanmeter_metrics_tenant_slots", slots="total") == 4  # env beat the file
        status, _, _ = post(option_port, priced_spans(3))
        assert status == 200
        # 20 prompt versions against a cap of 7 label sets: the overflow folds into ``other``.
        versions = request(
            *(
                {**GENAI, "gen_ai__request__model": "gpt-4o", **USAGE, "gen_ai__prompt__version": f"p{i}"}
                for i in range(20)
            )
        )
        assert post(option_port, versions)[0] == 200
        metrics = scrape(option_port)
        assert (
            len(metrics["spanmeter_attempts_total"])
            == value(metrics, "spanmeter_metrics_label_sets", sets="used")
            == 8
        )
        assert total(metrics, "spanmeter_attempts_total") == 23
        assert value(metrics, "spanmeter_metrics_label_overflow_total", label="prompt_version") == 14
        with pytest.raises(OSError):
            get(file_port, "/readyz")  # nothing listens on the file's port
        assert children_of(process.pid) == []  # store_process: false honoured: no store process
        with sqlite3.connect(tmp_path / "from-file.db") as conn:
            (stored_nano,) = conn.execute("select sum(cost_nano_usd) from requests").fetchone()
        assert round(math.fsum(metrics["spanmeter_cost_usd_total"].values()) * 1e9) == stored_nano  # exact
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0
        banner = process.stderr.read().decode() if process.stderr else ""
        assert f"receiving OTLP on http://127.0.0.1:{option_port} (store" in banner  # grpc_port: off
        assert stored_rows(tmp_path / "from-file.db") == 23  # the file's store
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(30)
        if process.stderr:
            process.stderr.close()
        held.close()
