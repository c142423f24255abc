"""Ingest cannot be starved by the JSON API: slow queries fill the API's own threads, OTLP
exports still go through at once, the API's cap answers 429 and its time limit 503."""

from __future__ import annotations

import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpanExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from spanmeter.service import ReceiverService, ServeConfig
from spanmeter.store import SQLiteStore

_PROMPTLY_S = 5.0
"""An export must be answered well within an exporter's default 10 s timeout."""


class SlowReadStore(SQLiteStore):
    """A real SQLite store whose analysis reads wait, after :meth:`hold`, until ``gate`` opens."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.gate = threading.Event()
        self.gate.set()  # open while the service starts (it reads the store to seed /metrics)
        self.entered = threading.Semaphore(0)

    def hold(self) -> None:
        self.entered = threading.Semaphore(0)
        self.gate.clear()

    def _wait(self) -> None:
        if self.gate.is_set():
            return
        self.entered.release()
        self.gate.wait(60.0)  # a failing test must not hang the suite

    def top(self, *args: Any, **kwargs: Any) -> Any:
        self._wait()
        return super().top(*args, **kwargs)

    def aggregate(self, *args: Any, **kwargs: Any) -> Any:
        self._wait()
        return super().aggregate(*args, **kwargs)


@pytest.fixture
def slow(tmp_path: Path) -> Iterator[tuple[ReceiverService, SlowReadStore]]:
    store = SlowReadStore(tmp_path / "cost.db")
    config = ServeConfig(
        db=str(tmp_path / "cost.db"),
        grpc_port=0,
        http_port=0,
        store_process=False,
        workers=2,
        api_workers=2,
        api_timeout_s=1,
    )
    service = ReceiverService(config, store=store).start()
    store.hold()
    try:
        yield service, store
    finally:
        store.gate.set()
        service.stop(grace_s=2.0)


def _spans(count: int = 3) -> list[ReadableSpan]:
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "checkout"}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("test.scope")
    for i in range(count):
        attributes = {
            "gen_ai.operation.name": "chat",
            "gen_ai.system": "openai",
            "gen_ai.request.model": "gpt-4o",
            "gen_ai.usage.input_tokens": 100 + i,
            "gen_ai.usage.output_tokens": 10,
        }
        with tracer.start_as_current_span(f"chat gpt-4o {i}", attributes=attributes):
            pass
    provider.shutdown()
    return list(memory.get_finished_spans())


def _get(url: str, timeout: float = 30.0) -> tuple[int, Mapping[str, str], float]:
    started = time.monotonic()
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            response.read()
            return response.status, dict(response.headers), time.monotonic() - started
    except urllib.error.HTTPError as error:
        error.read()
        return error.code, dict(error.headers), time.monotonic() - started


def _in_background(url: str, results: list[int]) -> threading.Thread:
    thread = threading.Thread(target=lambda: results.append(_get(url)[0]), daemon=True)
    thread.start()
    return thread


def test_exports_go_through_while_slow_queries_hold_the_api(
    slow: tuple[ReceiverService, SlowReadStore],
) -> None:
    service, store = slow
    base = f"http://127.0.0.1:{service.http_port}"
    heavy = f"{base}/api/v1/top?by=user_id&since=30d"
    results: list[int] = []
    # Twelve clients, more than the ingest threads (2) and the API's slots (2) together.
    threads = [_in_background(heavy, results) for _ in range(12)]
    for _ in range(2):  # both API slots are inside the store, waiting on the gate
        assert store.entered.acquire(timeout=10.0)

    status, headers, took = _get(heavy)
    assert status == 429 and int(headers["Retry-After"]) >= 1 and took < _PROMPTLY_S

    spans = _spans()
    exporters: list[SpanExporter] = [
        HttpSpanExporter(endpoint=f"{base}/v1/traces", timeout=_PROMPTLY_S),
        GrpcSpanExporter(endpoint=f"127.0.0.1:{service.grpc_port}", insecure=True, timeout=_PROMPTLY_S),
    ]
    for exporter in exporters:
        started = time.monotonic()
        assert exporter.export(spans) is SpanExportResult.SUCCESS
        assert time.monotonic() - started < _PROMPTLY_S
        exporter.shutdown()
    status, _, took = _get(f"{base}/readyz")
    assert status == 200 and took < _PROMPTLY_S  # health is not behind the API either

    for thread in threads:
        thread.join(10.0)
    # Each held request hit the 1 s limit (503), every other one was over the cap (429).
    assert sorted(set(results)) == [429, 503] and results.count(503) == 2
    store.gate.set()
    deadline = time.monotonic() + 10.0
    while (status := _get(heavy)[0]) == 429 and time.monotonic() < deadline:
        time.sleep(0.05)  # the abandoned queries finish and give their slots back
    assert status == 200


def test_a_query_over_the_time_limit_is_answered_503_and_keeps_its_slot(
    slow: tuple[ReceiverService, SlowReadStore],
) -> None:
    service, _ = slow
    heavy = f"http://127.0.0.1:{service.http_port}/api/v1/top?by=user_id&since=30d"
    status, headers, took = _get(heavy)
    assert status == 503 and int(headers["Retry-After"]) >= 1
    assert 0.9 <= took < _PROMPTLY_S
    # The abandoned query still runs (the store cannot cancel it) and counts under the cap.
    second: list[int] = []
    _in_background(heavy, second).join(10.0)
    assert second == [503]
    status, headers, _ = _get(heavy)
    assert status == 429 and "Retry-After" in headers
