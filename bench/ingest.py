"""Sustained durable ingest of the receiver, against ceilings measured in the same run.

Run: ``python bench/ingest.py [--requests 300] [--inflight 8]``

What it measures, all in one run (these machines are noisy: compare ratios, not runs):

* ceiling 1: ``ExportTraceServiceRequest.FromString`` plus reading the attributes the
  normaliser needs (``spanmeter.ingest.iter_spans``), on one core, in this process;
* ceiling 2: a receiver that parses and answers without storing (``OTLPServer`` with a no-op
  handler), in its own process;
* ``spanmeter serve``: the real receiver (normalise, price, dedupe, group commit to SQLite,
  answer only after the commit), in its own process, fed the same way;

each over OTLP/gRPC and OTLP/HTTP protobuf with 512-span requests of realistic GenAI spans
(20 models, 3 providers, ~15 attributes, every span id unique so nothing is deduplicated
away). The load comes from a client process that sends pre-encoded bytes with a few
requests in flight. Then the real receiver is paced at half its measured rate to read the
export latency (p50/p99), and its peak RSS is read from /proc.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import multiprocessing as mp
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

GRPC_METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
SPANS_PER_REQUEST = 512

MODELS = (
    [
        ("openai", m)
        for m in (
            "gpt-4o",
            "gpt-4o-mini",
            "gpt-4.1",
            "gpt-4.1-mini",
            "gpt-4.1-nano",
            "o3",
            "o4-mini",
            "gpt-5",
        )
    ]
    + [
        ("anthropic", m)
        for m in (
            "claude-sonnet-4-5",
            "claude-3-5-haiku-20241022",
            "claude-opus-4-1",
            "claude-3-7-sonnet-20250219",
            "claude-sonnet-4-20250514",
            "claude-haiku-4-5",
        )
    ]
    + [
        ("gcp.gemini", m)
        for m in (
            "gemini-2.5-pro",
            "gemini-2.5-flash",
            "gemini-2.0-flash",
            "gemini-1.5-pro",
            "gemini-1.5-flash",
            "gemini-2.5-flash-lite",
        )
    ]
)


def build_requests(count: int, seed: int = 11) -> list[bytes]:
    """``count`` distinct OTLP requests of 512 realistic GenAI spans (~15 attributes each)."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    rng = random.Random(seed)
    now = time.time_ns()
    bodies = []
    for _ in range(count):
        request = ExportTraceServiceRequest()
        resource_spans = request.resource_spans.add()
        for key, value in (("service.name", "assistant"), ("deployment.environment.name", "prod")):
            resource_spans.resource.attributes.add(key=key).value.string_value = value
        scope = resource_spans.scope_spans.add()
        scope.scope.name = "opentelemetry.instrumentation.openai_v2"
        for _ in range(SPANS_PER_REQUEST):
            provider, model = rng.choice(MODELS)
            span = scope.spans.add()
            span.trace_id = rng.randbytes(16)
            span.span_id = rng.randbytes(8)
            span.name = f"chat {model}"
            span.kind = 3
            span.start_time_unix_nano = now - rng.randrange(1, 3_600) * 1_000_000_000
            span.end_time_unix_nano = span.start_time_unix_nano + rng.randrange(10**8, 10**10)
            texts = {
                "gen_ai.operation.name": "chat",
                "gen_ai.provider.name": provider,
                "gen_ai.request.model": model,
                "gen_ai.response.id": f"r-{rng.getrandbits(64):016x}",
                "server.address": "api.example.com",
                "spanmeter.endpoint_tag": f"feature.{rng.randrange(50)}",
                "spanmeter.tenant_id": f"tenant-{rng.randrange(1000)}",
                "user.id": f"{rng.getrandbits(128):032x}",
                "gen_ai.prompt.version": f"v{rng.randrange(1, 9)}",
            }
            if rng.random() < 0.3:
                texts["spanmeter.external_request_id"] = f"req-{rng.randrange(10**6)}"
            numbers = {
                "gen_ai.usage.input_tokens": rng.randrange(100, 8000),
                "gen_ai.usage.output_tokens": rng.randrange(10, 1200),
                "gen_ai.usage.cache_read.input_tokens": rng.randrange(0, 90),
                "server.port": 443,
            }
            for key, text in texts.items():
                span.attributes.add(key=key).value.string_value = text
            for key, number in numbers.items():
                span.attributes.add(key=key).value.int_value = number
            span.attributes.add(key="gen_ai.request.temperature").value.double_value = 0.2
            span.attributes.add(
                key="gen_ai.response.finish_reasons"
            ).value.array_value.values.add().string_value = "stop"
        bodies.append(request.SerializeToString())
    return bodies


def parse_ceiling(bodies: list[bytes], seconds: float) -> float:
    """Spans/s for FromString + reading the normaliser's attributes, this core."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    from spanmeter.ingest import iter_spans

    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for body in bodies[:20]:
            for _ in iter_spans(ExportTraceServiceRequest.FromString(body)):
                done += 1
    return done / (time.perf_counter() - start)


# --- servers -------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _serve_nostore(grpc_port: int, http_port: int) -> None:
    from spanmeter.receiver import IngestResult, OTLPServer

    def handler(request: Any) -> IngestResult:
        return IngestResult()

    with OTLPServer(handler, grpc_port=grpc_port, http_port=http_port):
        threading.Event().wait()


@contextlib.contextmanager
def server(kind: str, db: Path) -> Iterator[tuple[subprocess.Popen[bytes], int, int]]:
    grpc_port, http_port = free_port(), free_port()
    if kind == "nostore":
        command = [sys.executable, __file__, "--serve-nostore", str(grpc_port), str(http_port)]
    else:
        command = [sys.executable, "-m", "spanmeter", "serve", "--db", str(db)]
        command += ["--grpc-port", str(grpc_port), "--http-port", str(http_port)]
    env = {**os.environ, "SPANMETER_USER_ID_HASH_KEY": "bench"}
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", http_port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        yield process, grpc_port, http_port
    finally:
        process.terminate()
        process.wait(60)


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


# --- client (its own process) ----------------------------------------------------------------


def _send_all(
    transport: str, port: int, bodies: list[bytes], inflight: int, rate: float | None, out: Any
) -> None:
    """Send every body once (retrying throttled ones); report spans/s and latencies."""
    import grpc

    latencies: list[float] = []
    lock = threading.Lock()
    queue = list(range(len(bodies)))
    interval = SPANS_PER_REQUEST / rate if rate else 0.0
    start = time.perf_counter()

    def next_index() -> int | None:
        with lock:
            return queue.pop() if queue else None

    def paced(sent: int) -> None:
        if interval:
            delay = start + sent * interval - time.perf_counter()
            if delay > 0:
                time.sleep(delay)

    counter = [0]

    def take_slot() -> int:
        with lock:
            counter[0] += 1
            return counter[0] - 1

    if transport == "grpc":
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        export = channel.unary_unary(GRPC_METHOD, _registered_method=True)

        def send(body: bytes) -> None:
            while True:
                try:
                    export(body, timeout=30)
                    return
                except grpc.RpcError as error:
                    if error.code() not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED):
                        raise
                    time.sleep(0.2)

    local = threading.local()

    def send_http(body: bytes) -> None:
        conn = getattr(local, "conn", None)
        if conn is None:
            conn = local.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        while True:
            conn.request("POST", "/v1/traces", body, {"Content-Type": "application/x-protobuf"})
            response = conn.getresponse()
            response.read()
            if response.status == 200:
                return
            if response.status not in (429, 503):
                raise RuntimeError(f"HTTP {response.status}")
            time.sleep(float(response.headers.get("Retry-After", "1")) / 5)

    sender = send if transport == "grpc" else send_http

    def worker() -> None:
        while (index := next_index()) is not None:
            paced(take_slot())
            began = time.perf_counter()
            sender(bodies[index])
            with lock:
                latencies.append(time.perf_counter() - began)

    with ThreadPoolExecutor(inflight) as pool:
        for future in [pool.submit(worker) for _ in range(inflight)]:
            future.result()
    elapsed = time.perf_counter() - start
    out.put((len(bodies) * SPANS_PER_REQUEST / elapsed, latencies))


def drive(
    transport: str, port: int, bodies: list[bytes], inflight: int, rate: float | None = None
) -> tuple[float, list[float]]:
    ctx = mp.get_context("fork")
    out: Any = ctx.Queue()
    process = ctx.Process(target=_send_all, args=(transport, port, bodies, inflight, rate, out))
    process.start()
    result = out.get(timeout=600)
    process.join(60)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300, help="512-span requests per run")
    parser.add_argument("--inflight", type=int, default=8)
    parser.add_argument(
        "--serve-nostore", nargs=2, type=int, metavar=("GRPC", "HTTP"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.serve_nostore:
        _serve_nostore(*args.serve_nostore)
        return

    print(f"building {args.requests} requests x {SPANS_PER_REQUEST} spans ...", flush=True)
    bodies = build_requests(args.requests)
    print(f"  {sum(map(len, bodies)) / args.requests / SPANS_PER_REQUEST:.0f} bytes per span")
    ceiling = parse_ceiling(bodies, 3.0)
    print(f"ceiling 1, parse + attribute read, one core: {ceiling:>10,.0f} spans/s")
    results: dict[tuple[str, str], float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for transport in ("grpc", "http"):
            with server("nostore", Path(tmp) / "unused.db") as (_, grpc_port, http_port):
                port = grpc_port if transport == "grpc" else http_port
                drive(transport, port, bodies[:20], 2)  # warm-up
                results[("nostore", transport)], _ = drive(transport, port, bodies, args.inflight)
            db = Path(tmp) / f"{transport}.db"
            with server("serve", db) as (process, grpc_port, http_port):
                port = grpc_port if transport == "grpc" else http_port
                results[("serve", transport)], _ = drive(transport, port, bodies, args.inflight)
                half = results[("serve", transport)] / 2
                paced_bodies = build_requests(
                    max(int(half * 6 / SPANS_PER_REQUEST), 20), seed=99 + len(transport)
                )
                _, latencies = drive(transport, port, paced_bodies, args.inflight, rate=half)
                rss = peak_rss_mb(process.pid)
            quantiles = statistics.quantiles(latencies, n=100)
            nostore = results[("nostore", transport)]
            durable = results[("serve", transport)]
            print(f"\nOTLP/{transport} ({args.inflight} requests in flight)")
            print(f"  ceiling 2, receiver without store:    {nostore:>10,.0f} spans/s")
            print(
                f"  spanmeter serve, durable:             {durable:>10,.0f} spans/s  ({durable / nostore:.0%} of ceiling 2)"
            )
            print(
                f"  at half that rate ({half:,.0f} spans/s): export latency p50 {quantiles[49] * 1000:.0f} ms,"
                f" p99 {quantiles[98] * 1000:.0f} ms"
            )
            print(f"  receiver peak RSS: {rss:.0f} MB")


if __name__ == "__main__":
    main()
