"""Throughput of the OTLP receiver transport with a no-op handler, against parse-only.

Measures, in one run (machines are noisy, so only same-run ratios mean much):

* ``FromString``: ``ExportTraceServiceRequest.FromString`` alone on one core, the ceiling;
* gRPC: ``OTLPServer`` with a handler that does nothing, fed pre-encoded requests;
* HTTP protobuf: the same over ``POST /v1/traces``;
* OTLP/JSON: ``json.loads`` alone, ``decode_json`` alone, and HTTP JSON end to end.

The server runs in this process pinned to one core; the load comes from a client in another
process pinned to the other core, sending pre-encoded bytes (no SDK encoding in the number), with
a few requests in flight so the server never waits for the client.

Usage::

    python bench/transport.py [--spans 512] [--seconds 5] [--inflight 4]
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import multiprocessing as mp
import os
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import grpc
from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import KeyValue

from spanmeter.receiver import IngestResult, OTLPServer, decode_json

GRPC_METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


def build_request(n_spans: int, seed: int = 7) -> bytes:
    """A realistic GenAI export: ~25 attributes and ~860 bytes per span."""
    rng = random.Random(seed)
    request = ExportTraceServiceRequest()
    resource_spans = request.resource_spans.add()
    for key, value in (("service.name", "checkout-assistant"), ("deployment.environment.name", "prod")):
        resource_spans.resource.attributes.add(key=key).value.string_value = value
    scope_spans = resource_spans.scope_spans.add()
    scope_spans.scope.name = "opentelemetry.instrumentation.openai_v2"
    scope_spans.scope.version = "2.4b0"
    for i in range(n_spans):
        span = scope_spans.spans.add()
        span.trace_id = rng.randbytes(16)
        span.span_id = rng.randbytes(8)
        span.parent_span_id = rng.randbytes(8)
        span.name = "chat gpt-4o-mini"
        span.kind = 3
        span.start_time_unix_nano = 1_760_000_000_000_000_000 + i * 1_000_000
        span.end_time_unix_nano = span.start_time_unix_nano + rng.randrange(10**8, 10**10)
        strings = {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "openai",
            "gen_ai.request.model": "gpt-4o-mini",
            "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
            "gen_ai.response.id": f"chatcmpl-{rng.getrandbits(96):024x}",
            "gen_ai.conversation.id": f"conv-{rng.getrandbits(64):016x}",
            "server.address": "api.openai.com",
            "spanmeter.endpoint_tag": rng.choice(["search", "summarise", "support-bot"]),
            "spanmeter.tenant_id": f"tenant-{rng.randrange(200)}",
            "user.id": f"{rng.getrandbits(128):032x}",
            "gen_ai.prompt.name": "answer-question",
            "gen_ai.prompt.version": f"v{rng.randrange(1, 9)}",
            "spanmeter.data_mode": "real",
            "deployment.environment.name": "prod",
        }
        ints = {
            "gen_ai.usage.input_tokens": rng.randrange(100, 5000),
            "gen_ai.usage.output_tokens": rng.randrange(10, 800),
            "gen_ai.usage.cache_read.input_tokens": rng.randrange(0, 3000),
            "gen_ai.usage.cache_creation.input_tokens": 0,
            "gen_ai.usage.reasoning.output_tokens": rng.randrange(0, 200),
            "server.port": 443,
        }
        attributes: list[KeyValue] = []
        for key, text in strings.items():
            kv = KeyValue(key=key)
            kv.value.string_value = text
            attributes.append(kv)
        for key, number in ints.items():
            kv = KeyValue(key=key)
            kv.value.int_value = number
            attributes.append(kv)
        for key, real in (("gen_ai.request.temperature", 0.2), ("gen_ai.request.top_p", 1.0)):
            kv = KeyValue(key=key)
            kv.value.double_value = real
            attributes.append(kv)
        kv = KeyValue(key="gen_ai.request.stream")
        kv.value.bool_value = False
        attributes.append(kv)
        kv = KeyValue(key="gen_ai.response.finish_reasons")
        kv.value.array_value.values.add().string_value = "stop"
        attributes.append(kv)
        span.attributes.extend(attributes)
        span.status.code = 1
    return request.SerializeToString()


def to_otlp_json(body: bytes) -> bytes:
    """The same request as OTLP/JSON: hex ids and integer enums (proto3 JSON has base64 and names)."""
    document = json_format.MessageToDict(
        ExportTraceServiceRequest.FromString(body), use_integers_for_enums=True
    )
    for resource_spans in document["resourceSpans"]:
        for scope_spans in resource_spans["scopeSpans"]:
            for span in scope_spans["spans"]:
                for key in ("traceId", "spanId", "parentSpanId"):
                    if key in span:
                        span[key] = base64.b64decode(span[key]).hex()
    return json.dumps(document).encode()


def _pin(core: int) -> None:
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > 1:
        os.sched_setaffinity(0, {core})


def measure_parse(body: bytes, n_spans: int, seconds: float, parse: Callable[[bytes], object]) -> float:
    """Spans/s of ``parse(body)`` alone on this core."""
    count = 0
    end = time.perf_counter() + seconds
    start = time.perf_counter()
    while time.perf_counter() < end:
        for _ in range(20):
            parse(body)
        count += 20
    return count * n_spans / (time.perf_counter() - start)


def _grpc_client(port: int, body: bytes, seconds: float, inflight: int, out: mp.Queue) -> None:
    _pin(1)
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        export = channel.unary_unary(GRPC_METHOD, _registered_method=True)
        export(body, timeout=10)  # warm-up: connection set up outside the timing
        done = 0
        lock = threading.Lock()

        def worker(end: float) -> None:
            nonlocal done
            while time.perf_counter() < end:
                export(body, timeout=10)
                with lock:
                    done += 1

        start = time.perf_counter()
        with ThreadPoolExecutor(inflight) as pool:
            for _ in range(inflight):
                pool.submit(worker, start + seconds)
        out.put((done, time.perf_counter() - start))


def _http_client(port: int, body: bytes, seconds: float, inflight: int, out: mp.Queue) -> None:
    _pin(1)
    headers = {"Content-Type": "application/json" if body.startswith(b"{") else "application/x-protobuf"}
    done = 0
    lock = threading.Lock()

    def worker(end: float) -> None:
        nonlocal done
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("POST", "/v1/traces", body, headers)  # warm-up
        conn.getresponse().read()
        while time.perf_counter() < end:
            conn.request("POST", "/v1/traces", body, headers)
            response = conn.getresponse()
            response.read()
            if response.status != 200:
                raise RuntimeError(f"HTTP {response.status}")
            with lock:
                done += 1
        conn.close()

    start = time.perf_counter()
    with ThreadPoolExecutor(inflight) as pool:
        for future in [pool.submit(worker, start + seconds) for _ in range(inflight)]:
            future.result()
    out.put((done, time.perf_counter() - start))


def measure_transport(
    client: Callable[..., None], port: int, body: bytes, n_spans: int, args: argparse.Namespace
) -> float:
    ctx = mp.get_context("spawn")
    out: mp.Queue = ctx.Queue()
    proc = ctx.Process(target=client, args=(port, body, args.seconds, args.inflight, out))
    proc.start()
    done, elapsed = out.get(timeout=args.seconds + 60)
    proc.join(30)
    return done * n_spans / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--spans", type=int, default=512, help="spans per request")
    parser.add_argument("--seconds", type=float, default=5.0, help="duration of each measurement")
    parser.add_argument("--inflight", type=int, default=4, help="concurrent requests from the client")
    parser.add_argument("--workers", type=int, default=8, help="server worker threads per transport")
    args = parser.parse_args()

    _pin(0)  # before any thread exists, so every server thread inherits it
    body = build_request(args.spans)
    print(f"request: {args.spans} spans, {len(body)} bytes ({len(body) / args.spans:.0f} B/span)")

    def noop(request: ExportTraceServiceRequest) -> IngestResult:
        return IngestResult()

    json_body = to_otlp_json(body)
    parse = measure_parse(body, args.spans, args.seconds, ExportTraceServiceRequest.FromString)
    with OTLPServer(noop, grpc_port=0, http_port=0, workers=args.workers) as server:
        grpc_rate = measure_transport(_grpc_client, server.grpc_port, body, args.spans, args)
        http_rate = measure_transport(_http_client, server.http_port, body, args.spans, args)
        http_json_rate = measure_transport(_http_client, server.http_port, json_body, args.spans, args)
    parse = (parse + measure_parse(body, args.spans, args.seconds, ExportTraceServiceRequest.FromString)) / 2
    json_loads = measure_parse(json_body, args.spans, args.seconds, json.loads)
    json_decode = measure_parse(json_body, args.spans, args.seconds, decode_json)

    print(f"{'what':<30}{'spans/s':>12}{'vs FromString':>15}{'vs json.loads':>15}")
    for name, rate in (
        ("FromString only (1 core)", parse),
        ("gRPC, no-op handler", grpc_rate),
        ("HTTP protobuf, no-op handler", http_rate),
        ("json.loads only (1 core)", json_loads),
        ("decode_json only (1 core)", json_decode),
        ("HTTP JSON, no-op handler", http_json_rate),
    ):
        print(f"{name:<30}{rate:>12,.0f}{rate / parse:>15.2f}{rate / json_loads:>15.2f}")


if __name__ == "__main__":
    main()
