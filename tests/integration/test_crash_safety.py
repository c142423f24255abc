"""Crash safety: SIGKILL the receiver during sustained ingest from a real exporter, restart it,
and find every acknowledged span stored exactly once after the client's retries."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

BATCHES, BATCH_SIZE = 120, 200


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def make_batches() -> list[list[ReadableSpan]]:
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("load")
    for i in range(BATCHES * BATCH_SIZE):
        attributes = {
            "gen_ai.provider.name": "openai",
            "gen_ai.request.model": "gpt-4o-mini",
            "gen_ai.usage.input_tokens": 100 + i % 50,
            "gen_ai.usage.output_tokens": 10,
            "spanmeter.endpoint_tag": f"endpoint.{i % 7}",
        }
        with tracer.start_as_current_span("chat", attributes=attributes):
            pass
    spans = list(memory.get_finished_spans())
    return [spans[i : i + BATCH_SIZE] for i in range(0, len(spans), BATCH_SIZE)]


@contextmanager
def receiver(db: Path, port: int) -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "spanmeter.cli",
            "serve",
            "--db",
            str(db),
            "--grpc-port",
            "0",
            "--http-port",
            str(port),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, "SPANMETER_USER_ID_HASH_KEY": "k"},
    )
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                time.sleep(0.05)
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(10)
        if process.stderr:
            process.stderr.close()


def test_sigkill_mid_ingest_loses_no_acknowledged_span(tmp_path: Path) -> None:
    db, port = tmp_path / "crash.db", free_port()
    batches = make_batches()
    acked: list[int] = []
    exporter = OTLPSpanExporter(endpoint=f"http://127.0.0.1:{port}/v1/traces", timeout=2)

    def client() -> None:
        deadline = time.monotonic() + 120
        for index, batch in enumerate(batches):
            while exporter.export(batch) is not SpanExportResult.SUCCESS:
                assert time.monotonic() < deadline, "client could not deliver"
                time.sleep(0.05)  # a real client's retry loop: keep the batch until acknowledged
            acked.append(index)

    with receiver(db, port) as first:
        thread = threading.Thread(target=client)
        thread.start()
        while len(acked) < BATCHES // 3:
            time.sleep(0.01)
        first.send_signal(signal.SIGKILL)  # no drain, no commit, no goodbye
        first.wait(10)
    killed_after = len(acked)
    assert killed_after < BATCHES  # the kill happened during ingest
    with receiver(db, port) as second:
        thread.join(150)
        assert not thread.is_alive()
        second.send_signal(signal.SIGTERM)  # graceful: drains and commits
        assert second.wait(30) == 0
    exporter.shutdown()

    assert acked == list(range(BATCHES))
    expected = {
        (bytes(s.context.trace_id.to_bytes(16, "big")), s.context.span_id.to_bytes(8, "big"))
        for b in batches
        for s in b
    }
    with sqlite3.connect(db) as conn:
        stored = conn.execute("select trace_id, span_id from requests").fetchall()
    assert len(stored) == len(expected)  # exactly once: nothing lost, nothing counted twice
    assert {(bytes(t), bytes(s)) for t, s in stored} == expected
