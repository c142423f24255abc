"""``spanmeter serve`` as it runs in production: a receiver process plus its store process.

Real OTel SDK exporters (gRPC and HTTP protobuf) in, ``top`` out, counters on ``/metrics``
from the receiver process, a graceful SIGTERM that leaves both processes gone with exit
code 0, and a store process that follows its parent when the parent is killed.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc for the child")

# gpt-4o-mini at $0.15 / $0.60 per million tokens: nano-USD per token 150 and 600
PRICE_IN, PRICE_OUT = 150, 600


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(child) for child in (task / "children").read_text().split()]
    return found


def helpers(pid: int) -> tuple[int, list[int]]:
    """The receiver's store process and its query processes (by what each runs), nothing else."""
    store: list[int] = []
    queries: list[int] = []
    for child in children(pid):
        command = Path(f"/proc/{child}/cmdline").read_bytes()
        (store if b"store_worker" in command else queries if b"query_worker" in command else []).append(child)
    assert len(store) + len(queries) == len(children(pid)), "a child that is neither"
    (store_pid,) = store
    return store_pid, queries


def gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return True
    return state == "Z"


@contextmanager
def serve(db: Path) -> Iterator[tuple[subprocess.Popen[bytes], int, int]]:
    grpc_port, http_port = free_port(), free_port()
    ports = ["--grpc-port", str(grpc_port), "--http-port", str(http_port)]
    process = subprocess.Popen(
        [sys.executable, "-m", "spanmeter", "serve", "--store-process", "--db", str(db), *ports],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, "SPANMETER_USER_ID_HASH_KEY": "k"},
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/readyz", timeout=1) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                assert process.poll() is None, process.stderr.read().decode() if process.stderr else ""
                assert time.monotonic() < deadline, "receiver did not become ready"
                time.sleep(0.05)
        yield process, grpc_port, http_port
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(30)
        if process.stderr:
            process.stderr.close()


def send(exporter: SpanExporter, endpoint_count: int, spans: int) -> dict[str, int]:
    """Export ``spans`` GenAI spans through the SDK; returns the expected cost per endpoint."""
    provider = TracerProvider(resource=Resource.create({"service.name": "serve-test"}))
    provider.add_span_processor(BatchSpanProcessor(exporter, max_export_batch_size=256))
    tracer = provider.get_tracer("load")
    expected: dict[str, int] = {}
    for i in range(spans):
        endpoint = f"endpoint.{i % endpoint_count}"
        tokens_in, tokens_out = 100 + i % 37, 10 + i % 11
        attributes = {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "openai",
            "gen_ai.request.model": "gpt-4o-mini",
            "gen_ai.usage.input_tokens": tokens_in,
            "gen_ai.usage.output_tokens": tokens_out,
            "spanmeter.endpoint_tag": endpoint,
        }
        with tracer.start_as_current_span("chat gpt-4o-mini", attributes=attributes):
            pass
        expected[endpoint] = expected.get(endpoint, 0) + tokens_in * PRICE_IN + tokens_out * PRICE_OUT
    provider.shutdown()  # flushes: every export acknowledged (durable) before this returns
    return expected


def get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as answer:
        return answer.read()


def metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not exposed")


def test_serve_with_a_store_process_end_to_end(tmp_path: Path) -> None:
    db = tmp_path / "spans.db"
    with serve(db) as (process, grpc_port, http_port):
        store_pid, query_pids = helpers(process.pid)  # the store process; no query process yet
        assert query_pids == []  # the API starts them when it is used
        by_grpc = send(GrpcExporter(endpoint=f"http://127.0.0.1:{grpc_port}", insecure=True), 5, 1500)
        by_http = send(HttpExporter(endpoint=f"http://127.0.0.1:{http_port}/v1/traces"), 5, 1500)
        expected = {e: by_grpc.get(e, 0) + by_http.get(e, 0) for e in by_grpc.keys() | by_http.keys()}

        report = json.loads(get(f"http://127.0.0.1:{http_port}/api/v1/top?by=endpoint_tag&since=1h"))
        assert {g["endpoint_tag"]: g["cost_nano_usd"] for g in report["groups"]} == expected
        assert report["totals"]["attempts"] == 3000
        _, query_pids = helpers(process.pid)
        assert len(query_pids) == 1  # the query above started one

        metrics = get(f"http://127.0.0.1:{http_port}/metrics").decode()
        assert metric(metrics, "spanmeter_spans_received_total") == 3000
        assert metric(metrics, "spanmeter_spans_stored_total") == 3000
        assert metric(metrics, "spanmeter_spans_duplicate_total") == 0
        assert metric(metrics, "spanmeter_ingest_queue_rows") == 0

        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0
        deadline = time.monotonic() + 10
        while not all(gone(pid) for pid in (store_pid, *query_pids)) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert all(gone(pid) for pid in (store_pid, *query_pids))
    with sqlite3.connect(db) as conn:
        assert conn.execute("select count(*) from requests").fetchone() == (3000,)


def test_the_store_process_follows_a_killed_receiver(tmp_path: Path) -> None:
    with serve(tmp_path / "spans.db") as (process, _, http_port):
        get(f"http://127.0.0.1:{http_port}/api/v1/top?by=endpoint_tag&since=1h")  # a query process
        store_pid, query_pids = helpers(process.pid)
        assert len(query_pids) == 1
        process.send_signal(signal.SIGKILL)  # no drain, no goodbye: the children read end-of-file
        process.wait(10)
        deadline = time.monotonic() + 15
        while not all(gone(pid) for pid in (store_pid, *query_pids)) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert gone(store_pid) and all(gone(pid) for pid in query_pids)
