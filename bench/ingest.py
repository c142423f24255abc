"""Sustained durable ingest of the receiver, against ceilings measured in the same run.

Run: ``python bench/ingest.py [--requests 300] [--inflight 8] [--serve-mode process|thread|both]
[--profile standard|high-cardinality|both] [--transport grpc|http|both]``

Stores side by side: ``python bench/ingest.py --store postgresql [--replicas 1,2]
[--postgres-url URL]`` runs only ``spanmeter serve``, on SQLite, then on one PostgreSQL
(started for the run with fsync on, as ``bench/postgres_store.py`` does, or the server at
``--postgres-url``) with 1 and 2 replicas, the client spreading its requests over the
replicas, same requests, same run: durable spans/s as a ratio to SQLite's, CPU per span of
every process (PostgreSQL's server processes summed), peak RSS per replica, and the rows
stored afterwards counted against the spans sent.

A/B of two source trees, same session: ``python bench/ingest.py --ab OTHER_SRC [--pairs 3]``
runs only ``spanmeter serve`` (store process, OTLP/gRPC), alternately from ``OTHER_SRC``
(e.g. ``git archive HEAD src | tar -x -C /tmp/before``, then ``/tmp/before/src``) and from
this tree, and prints each run's spans/s, CPU per span of each process and the other load.

Authentication on vs off, same session: ``python bench/ingest.py --auth [--pairs 3]`` runs
``spanmeter serve`` (store process) alternately without a usable API key (one made and
revoked, so both stores are made the same way) and with an ingest key in its store (the client sending ``Authorization: Bearer``, gRPC metadata ``authorization``),
over OTLP/gRPC and OTLP/HTTP, and prints each pair's ratio and the median ratio, of spans/s
and of the receiver process's CPU per span; and, measured apart in this process, what the
check itself costs per request (``Authenticator.check`` on a cached key: the parse, one
dict lookup, one SHA-256) against the receiver's CPU per request.

What it measures, all in one run (these machines are noisy: compare ratios, not runs):

* ceiling 1: ``ExportTraceServiceRequest.FromString`` plus reading the attributes the
  normaliser needs (``spanmeter.ingest.iter_spans``), on one core, in this process;
* ceiling 2, *a receiver that parses and answers without storing*: ``OTLPServer`` in its
  own process with a handler that runs ``iter_spans`` over every request (parse, then the
  filtered attribute dicts that cost needs) and answers success. This is the comparator
  for the durable figure: any receiver that prices spans must at least read their
  attributes, and reading them (not parsing, not the transport) is what a Python receiver
  pays for per span;
* for reference, the same receiver with a handler that does nothing at all (``parse
  only``: the transport and ``FromString``, no attribute touched). It runs several times
  faster than any receiver that reads a single attribute per span, so a ratio against it
  says more about upb than about ingest;
* and spanmeter's own pipeline without its store: the real ingest handler (decode into the
  map-typed request, normalise, hash user ids, price, build the row tuples) answering as
  soon as the rows are built, into a sink that keeps nothing. The durable figure against
  it is what storing costs: the transaction, the dedupe, the rollups, the wait for the
  commit, and the second process sharing the two cores;
* ``spanmeter serve``: the real receiver (normalise, price, dedupe, group commit to SQLite,
  answer only after the commit), in its own process(es), warmed up with 20 other requests,
  then fed the same way; by default with its store process (``--serve-mode thread`` runs
  the one-process writer thread instead, ``both`` runs the two one after the other);

each over OTLP/gRPC and OTLP/HTTP protobuf with 512-span requests of realistic GenAI spans
(20 models, 3 providers, ~15 attributes, every span id unique so nothing is deduplicated
away; correlated dimensions as in ``bench/store.py``; start times with nanosecond
precision in the last half minute, as live exporters send them). ``--profile
high-cardinality`` sends 200 tenants x 500 users (100,000 users), 12 prompt versions, 3
environments and ~21 attributes a span (an array among them) starting over the last hour
instead (see :class:`_Population`). The load comes from a
client process that sends pre-encoded bytes with a few requests in flight. Then the real
receiver is paced at half its measured rate to read the export latency (p50/p99), and its
peak RSS is read from /proc (summed over the receiver and its store process: each one's
own peak, so an upper bound of the joint peak).
"""

from __future__ import annotations

import argparse
import bisect
import contextlib
import http.client
import itertools
import json
import multiprocessing as mp
import os
import random
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Generator
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


PROFILES = ("standard", "high-cardinality")
"""Traffic shapes :func:`build_requests` makes; see :class:`_Population`."""

HC_TENANTS = 200
HC_USERS_PER_TENANT = 500
HC_PROMPT_VERSIONS = 12
HC_ENVIRONMENTS = ("prod", "staging", "dev")


class _Population:
    """Who calls what, drawn once per seed: the correlations that real traffic has.

    ``standard`` mirrors ``bench/store.py``: 1,000 tenants with Zipf-distributed traffic,
    each using a few of 50 endpoint tags; an endpoint mostly calls one model (sometimes a
    second) with one to three prompt versions; a tenant's calls come from its own ~40 of
    10,000 users; 30% of calls carry an external request id, half of those a retry of a
    recent request.

    ``high-cardinality`` keeps the endpoints, models and request ids but has 200 tenants of
    500 users each (100,000 users; tenants' traffic Zipf with a flatter exponent, users
    uniform within a tenant, so most of them show up), any of 12 prompt versions on any
    endpoint and 3 environments (on the span); its spans carry six more attributes (see
    :func:`build_requests`) and start anywhere in the last hour.
    """

    def __init__(self, rng: random.Random, profile: str = "standard") -> None:
        self.profile = profile
        self.endpoints = [f"feature.{i}" for i in range(50)]
        self.endpoint_models = {e: rng.sample(range(len(MODELS)), 2) for e in self.endpoints}
        self.endpoint_versions = {e: [f"v{j}" for j in range(1, rng.randint(2, 4))] for e in self.endpoints}
        tenants, exponent = (1000, 1.1) if profile == "standard" else (HC_TENANTS, 0.6)
        self.tenants = [f"tenant-{i}" for i in range(tenants)]
        self.tenant_endpoints = {t: rng.sample(self.endpoints, rng.randint(3, 10)) for t in self.tenants}
        weights = [1 / (i + 1) ** exponent for i in range(tenants)]
        self.tenant_cdf = list(itertools.accumulate(w / sum(weights) for w in weights))
        self.users = [f"{rng.getrandbits(128):032x}" for _ in range(10_000)]
        self.open_ids: list[str] = []
        if profile == "high-cardinality":
            self.endpoint_versions = {
                e: [f"v{j}" for j in range(1, HC_PROMPT_VERSIONS + 1)] for e in self.endpoints
            }
            self.users = [f"{rng.getrandbits(128):032x}" for _ in range(tenants * HC_USERS_PER_TENANT)]

    def user(self, rng: random.Random, tenant_index: int) -> str:
        """One of the tenant's own users."""
        if self.profile == "standard":
            return self.users[(tenant_index * 37 + rng.randrange(40)) % 10_000]
        return self.users[tenant_index * HC_USERS_PER_TENANT + rng.randrange(HC_USERS_PER_TENANT)]


def build_requests(count: int, seed: int = 11, profile: str = "standard") -> list[bytes]:
    """``count`` distinct OTLP requests of 512 realistic GenAI spans.

    ``standard``: ~15 attributes a span; start times have nanosecond precision and lie
    within the last half minute, as a live exporter sends them (an SDK stamps
    ``time_ns()``; a batch leaves within seconds). ``high-cardinality``: the population of
    :class:`_Population` for it, ~21 attributes a span (the environment, the response model,
    max tokens, top-p, a session id and a conversation id added), start times spread over
    the last hour.
    """
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; expected one of {PROFILES}")
    rng = random.Random(seed)
    people = _Population(rng, profile)
    wide = profile == "high-cardinality"
    earliest = 3_600 * 10**9 if wide else 30 * 10**9
    now = time.time_ns()
    bodies: list[bytes] = []
    for _ in range(count):
        request = ExportTraceServiceRequest()
        resource_spans = request.resource_spans.add()
        for key, value in (("service.name", "assistant"), ("deployment.environment.name", "prod")):
            resource_spans.resource.attributes.add(key=key).value.string_value = value
        scope = resource_spans.scope_spans.add()
        scope.scope.name = "opentelemetry.instrumentation.openai_v2"
        for _ in range(SPANS_PER_REQUEST):
            tenant_index = min(bisect.bisect_left(people.tenant_cdf, rng.random()), len(people.tenants) - 1)
            tenant = people.tenants[tenant_index]
            endpoint = rng.choice(people.tenant_endpoints[tenant])
            provider, model = MODELS[people.endpoint_models[endpoint][0 if rng.random() < 0.85 else 1]]
            span = scope.spans.add()
            span.trace_id = rng.randbytes(16)
            span.span_id = rng.randbytes(8)
            span.name = f"chat {model}"
            span.kind = 3
            span.start_time_unix_nano = now - rng.randrange(10**9, earliest)
            span.end_time_unix_nano = span.start_time_unix_nano + rng.randrange(10**8, 10**10)
            texts = {
                "gen_ai.operation.name": "chat",
                "gen_ai.provider.name": provider,
                "gen_ai.request.model": model,
                "gen_ai.response.id": f"r-{rng.getrandbits(64):016x}",
                "server.address": "api.example.com",
                "spanmeter.endpoint_tag": endpoint,
                "spanmeter.tenant_id": tenant,
                "user.id": people.user(rng, tenant_index),
                "gen_ai.prompt.version": rng.choice(people.endpoint_versions[endpoint]),
            }
            roll = rng.random()
            if roll < 0.15 and people.open_ids:
                texts["spanmeter.external_request_id"] = rng.choice(people.open_ids)  # a retry
            elif roll < 0.3:
                external_id = f"req-{rng.getrandbits(64):016x}"
                texts["spanmeter.external_request_id"] = external_id
                people.open_ids.append(external_id)
                if len(people.open_ids) > 256:
                    people.open_ids.pop(0)
            numbers = {
                "gen_ai.usage.input_tokens": rng.randrange(100, 8000),
                "gen_ai.usage.output_tokens": rng.randrange(10, 1200),
                "gen_ai.usage.cache_read.input_tokens": rng.randrange(0, 90),
                "server.port": 443,
            }
            if wide:
                texts["deployment.environment.name"] = rng.choice(HC_ENVIRONMENTS)
                texts["gen_ai.response.model"] = f"{model}-2025-01-01"
                texts["session.id"] = f"s-{rng.getrandbits(48):012x}"
                texts["gen_ai.conversation.id"] = f"c-{rng.getrandbits(48):012x}"
                numbers["gen_ai.request.max_tokens"] = rng.choice((1024, 2048, 4096))
            for key, text in texts.items():
                span.attributes.add(key=key).value.string_value = text
            for key, number in numbers.items():
                span.attributes.add(key=key).value.int_value = number
            span.attributes.add(key="gen_ai.request.temperature").value.double_value = 0.2
            if wide:
                span.attributes.add(key="gen_ai.request.top_p").value.double_value = 0.9
            span.attributes.add(
                key="gen_ai.response.finish_reasons"
            ).value.array_value.values.add().string_value = "stop"
            if rng.random() < 0.04:
                span.status.code = 2  # ERROR
        bodies.append(request.SerializeToString())
    return bodies


def describe(bodies: list[bytes]) -> str:
    """Bytes, attributes and distinct tenants and users of the spans in ``bodies``."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    spans = attributes = 0
    tenants: set[str] = set()
    users: set[str] = set()
    for body in bodies:
        for resource_spans in ExportTraceServiceRequest.FromString(body).resource_spans:
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    spans += 1
                    attributes += len(span.attributes)
                    for attribute in span.attributes:
                        if attribute.key == "user.id":
                            users.add(attribute.value.string_value)
                        elif attribute.key == "spanmeter.tenant_id":
                            tenants.add(attribute.value.string_value)
    return (
        f"{sum(map(len, bodies)) / spans:.0f} bytes and {attributes / spans:.1f} attributes a span,"
        f" {len(tenants):,} tenants, {len(users):,} distinct users"
    )


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


class _NullSink:
    """A row sink that stores nothing: every batch is answered as stored at once."""

    pending_rows = 0

    def submit(self, rows: Any) -> Any:
        from concurrent.futures import Future

        from spanmeter.store import WriteResult

        done: Future[WriteResult] = Future()
        done.set_result(WriteResult(inserted=len(rows)))
        return done

    def close(self) -> None:
        pass


def _serve_nostore(mode: str, grpc_port: int, http_port: int) -> None:
    """A receiver that answers without storing: ``read`` walks the attributes, ``noop`` not,
    ``pipeline`` runs spanmeter's whole ingest pipeline (normalise, hash, price, row tuples)
    into a sink that stores nothing."""
    from spanmeter.ingest import IngestMetrics, IngestPipeline, iter_spans
    from spanmeter.pricing import PriceBook
    from spanmeter.receiver import IngestResult, OTLPServer

    def read(request: Any) -> IngestResult:
        for _ in iter_spans(request):
            pass
        return IngestResult()

    def noop(request: Any) -> IngestResult:
        return IngestResult()

    handler: Any = {"read": read, "noop": noop}.get(mode)
    if mode == "pipeline":
        handler = IngestPipeline(_NullSink(), PriceBook.from_env(), metrics=IngestMetrics())
    with OTLPServer(handler, grpc_port=grpc_port, http_port=http_port):
        threading.Event().wait()


@contextlib.contextmanager
def server(
    kind: str, db: Path | str, src: Path | None = None
) -> Generator[tuple[subprocess.Popen[bytes], int, int], None, None]:
    """``kind``: ``noop`` / ``read`` / ``pipeline`` (no store), ``serve`` / ``serve-thread``
    (spanmeter serve); ``db``: a SQLite path or a ``postgresql://`` URL;
    ``src``: import spanmeter from this source tree (its child processes too)."""
    grpc_port, http_port = free_port(), free_port()
    if kind in ("noop", "read", "pipeline"):
        command = [sys.executable, __file__, "--serve-nostore", kind, str(grpc_port), str(http_port)]
    else:
        # --db for a path: older trees (--ab) know only that spelling
        option = "--store" if str(db).startswith("postgresql://") else "--db"
        command = [sys.executable, "-m", "spanmeter", "serve", option, str(db)]
        command += ["--grpc-port", str(grpc_port), "--http-port", str(http_port)]
        command += ["--no-store-process"] if kind == "serve-thread" else ["--store-process"]
    env = {**os.environ, "SPANMETER_USER_ID_HASH_KEY": "bench"}
    if src is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(src), os.environ.get("PYTHONPATH")]))
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
    """Peak RSS of ``pid`` plus that of each of its children, in MB."""
    total = 0.0
    for child in [pid, *_children(pid)]:
        lines: list[str] = []
        with contextlib.suppress(OSError):
            lines = Path(f"/proc/{child}/status").read_text().splitlines()
        for line in lines:
            if line.startswith("VmHWM:"):
                total += int(line.split()[1]) / 1024
    return total


def _children(pid: int) -> list[int]:
    found: list[int] = []
    with contextlib.suppress(OSError):  # gone meanwhile
        for task in Path(f"/proc/{pid}/task").iterdir():
            text = (task / "children").read_text().split()
            for child in map(int, text):
                found += [child, *_children(child)]
    return found


# --- client (its own process) ----------------------------------------------------------------


def _send_all(
    transport: str,
    ports: list[int],
    bodies: list[bytes],
    inflight: int,
    rate: float | None,
    out: Any,
    key: str | None = None,
) -> None:
    """Send every body once (retrying throttled ones), with ``key`` as the bearer token when
    given; report spans/s and latencies.

    With several ``ports`` (replicas), the ``inflight`` senders are spread over them in
    turn, as a load balancer spreads exports: each replica gets its share of the senders."""
    import grpc

    metadata = None if key is None else (("authorization", f"Bearer {key}"),)
    headers = {"Content-Type": "application/x-protobuf"}
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"

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
        channels = {port: grpc.insecure_channel(f"127.0.0.1:{port}") for port in ports}
        exports = {
            port: channel.unary_unary(GRPC_METHOD, _registered_method=True)
            for port, channel in channels.items()
        }

        def send(body: bytes, port: int) -> None:
            while True:
                try:
                    exports[port](body, timeout=30, metadata=metadata)
                    return
                except grpc.RpcError as error:
                    if error.code() not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED):
                        raise
                    time.sleep(0.2)

    local = threading.local()

    def send_http(body: bytes, port: int) -> None:
        conn = getattr(local, "conn", None)
        if conn is None:
            conn = local.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        while True:
            conn.request("POST", "/v1/traces", body, headers)
            response = conn.getresponse()
            response.read()
            if response.status == 200:
                return
            if response.status not in (429, 503):
                raise RuntimeError(f"HTTP {response.status}")
            time.sleep(float(response.headers.get("Retry-After", "1")) / 5)

    sender = send if transport == "grpc" else send_http

    def worker(port: int) -> None:
        while (index := next_index()) is not None:
            paced(take_slot())
            began = time.perf_counter()
            sender(bodies[index], port)
            with lock:
                latencies.append(time.perf_counter() - began)

    with ThreadPoolExecutor(inflight) as pool:
        for future in [pool.submit(worker, ports[i % len(ports)]) for i in range(inflight)]:
            future.result()
    elapsed = time.perf_counter() - start
    out.put((len(bodies) * SPANS_PER_REQUEST / elapsed, latencies))


def drive(
    transport: str,
    port: int | list[int],
    bodies: list[bytes],
    inflight: int,
    rate: float | None = None,
    key: str | None = None,
) -> tuple[float, list[float]]:
    """Spans/s and each request's latency, from a client process (``port``: one server, or
    a list of replicas sharing the load)."""
    ports = port if isinstance(port, list) else [port]
    ctx = mp.get_context("fork")
    out: Any = ctx.Queue()
    process = ctx.Process(target=_send_all, args=(transport, ports, bodies, inflight, rate, out, key))
    process.start()
    result = out.get(timeout=600)
    process.join(60)
    return result


_TICK = os.sysconf("SC_CLK_TCK")


def _busy_cpu_s() -> float:
    """CPU seconds the whole machine spent busy so far (all cores)."""
    ticks = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    return (sum(ticks) - ticks[3] - ticks[4]) / _TICK  # minus idle and iowait


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


last_cpu: list[tuple[float, float]] = []
"""Per server process (each receiver, then its children) during the last :func:`measured`
call: CPU microseconds per span, and the share of one core it kept busy."""
last_roles: list[str] = []
"""What each entry of :data:`last_cpu` is: ``receiver N`` or ``store process N``."""
last_database_cpu: list[tuple[float, float]] = []
"""The database server's processes together during the last :func:`measured` call given
one (same units as :data:`last_cpu`), else empty."""


def _tree_cpu(root: int) -> dict[int, float]:
    """CPU seconds of ``root`` and each of its descendants, by pid (those alive now)."""
    found: dict[int, float] = {}
    for pid in [root, *_children(root)]:
        with contextlib.suppress(OSError):
            found[pid] = _cpu_s(pid)
    return found


def measured(
    server_pid: int | list[int],
    transport: str,
    port: int | list[int],
    bodies: list[bytes],
    inflight: int,
    database_pid: int | None = None,
    *,
    key: str | None = None,
) -> tuple[float, float]:
    """``drive`` plus the other load on the machine meanwhile, in cores.

    The machine is shared: whatever else ran during the measurement (in cores, averaged
    over it) is printed next to the figure, so a disturbed run shows as one. Each server
    process's CPU per span is left in :data:`last_cpu`: which process is near 100% busy is
    the one bounding the rate. ``server_pid``: one receiver or several replicas;
    ``database_pid``: the database server's top process, whose whole tree (backends come
    and go) is counted as ours and reported in :data:`last_database_cpu`.
    """
    roots = server_pid if isinstance(server_pid, list) else [server_pid]
    pids: list[int] = []
    roles: list[str] = []
    for number, root in enumerate(roots, 1):
        children = _children(root)
        pids += [root, *children]
        roles += [f"receiver {number}"] + [f"store process {number}"] * len(children)
    each_before = [_cpu_s(pid) for pid in pids]
    database_before = _tree_cpu(database_pid) if database_pid else {}
    own_before = _own_and_children_cpu_s()
    busy_before, started = _busy_cpu_s(), time.perf_counter()
    rate, _ = drive(transport, port, bodies, inflight, key=key)
    elapsed = time.perf_counter() - started
    each = [_cpu_s(pid) - before for pid, before in zip(pids, each_before, strict=True)]
    database = 0.0
    if database_pid:
        after = _tree_cpu(database_pid)
        database = sum(cpu - database_before.get(pid, 0.0) for pid, cpu in after.items())
    ours = sum(each) + database + _own_and_children_cpu_s() - own_before
    spans = len(bodies) * SPANS_PER_REQUEST
    last_cpu[:] = [(cpu / spans * 1e6, cpu / elapsed) for cpu in each]
    last_roles[:] = roles
    last_database_cpu[:] = [(database / spans * 1e6, database / elapsed)] if database_pid else []
    return rate, max(0.0, (_busy_cpu_s() - busy_before - ours) / elapsed)


def _own_and_children_cpu_s() -> float:
    usage = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    return sum(u.ru_utime + u.ru_stime for u in usage)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--requests", type=int, default=300, help="512-span requests per run")
    parser.add_argument("--inflight", type=int, default=8)
    parser.add_argument(
        "--serve-mode",
        choices=("process", "thread", "both"),
        default="process",
        help="spanmeter serve with its store process, with a writer thread, or both",
    )
    parser.add_argument(
        "--ab", metavar="OTHER_SRC", type=Path, help="A/B: spanmeter serve from OTHER_SRC vs this tree"
    )
    parser.add_argument("--pairs", type=int, default=3, help="interleaved pairs of runs with --ab or --auth")
    parser.add_argument(
        "--profile",
        choices=(*PROFILES, "both"),
        default="standard",
        help="traffic: standard (1,000 tenants, 10,000 users, ~16 attributes, last half minute),"
        " high-cardinality (200 tenants x 500 users, 12 prompt versions, 3 environments, ~21"
        " attributes, last hour), or both one after the other",
    )
    parser.add_argument("--transport", choices=("grpc", "http", "both"), default="both")
    parser.add_argument(
        "--store",
        choices=("sqlite", "postgresql"),
        default="sqlite",
        help="sqlite: the ceilings and spanmeter serve on SQLite; postgresql: spanmeter serve on"
        " SQLite, then on PostgreSQL with each number of --replicas, same traffic, as ratios",
    )
    parser.add_argument(
        "--replicas", default="1,2", help="with --store postgresql: replica counts to run (default 1,2)"
    )
    parser.add_argument(
        "--postgres-url",
        help="with --store postgresql: a server to use instead of one started for the run"
        " (postgresql://...; a database is created there per measurement, so the role needs CREATEDB)",
    )
    parser.add_argument(
        "--auth", action="store_true", help="spanmeter serve with an ingest key vs without any, same run"
    )
    parser.add_argument("--serve-nostore", nargs=3, metavar=("MODE", "GRPC", "HTTP"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_nostore:
        mode, grpc_port, http_port = args.serve_nostore
        _serve_nostore(mode, int(grpc_port), int(http_port))
        return
    if args.ab:
        if args.profile == "both":
            parser.error("--ab runs one --profile at a time")
        ab_runs(args.ab, args.requests, args.inflight, args.pairs, args.profile)
        return
    if args.auth:
        auth_runs(args.requests, args.inflight, args.pairs)
        return
    profiles = PROFILES if args.profile == "both" else (args.profile,)
    transports = ("grpc", "http") if args.transport == "both" else (args.transport,)
    if args.store == "postgresql":
        replicas = [int(n) for n in args.replicas.split(",")]
        store_runs(profiles, transports, args.requests, args.inflight, replicas, args.postgres_url)
        return
    for profile in profiles:
        ceiling_runs(profile, transports, args.requests, args.inflight, args.serve_mode)


def ceiling_runs(
    profile: str, transports: tuple[str, ...], requests: int, inflight: int, serve_mode: str
) -> None:
    """The ceilings and ``spanmeter serve`` on SQLite, one profile of traffic."""
    print(f"profile {profile}: building {requests} requests x {SPANS_PER_REQUEST} spans ...", flush=True)
    bodies = build_requests(requests, profile=profile)
    print(f"  {describe(bodies)}")
    ceiling = parse_ceiling(bodies, 3.0)
    print(f"ceiling 1, parse + attribute read, one core: {ceiling:>10,.0f} spans/s", flush=True)
    warm_up = build_requests(20, seed=7, profile=profile)
    modes = {"process": ["serve"], "thread": ["serve-thread"], "both": ["serve", "serve-thread"]}
    with tempfile.TemporaryDirectory() as tmp:
        for transport in transports:
            print(f"\nOTLP/{transport} ({inflight} requests in flight)")
            nostore: dict[str, float] = {}
            others: dict[str, float] = {}
            for kind in ("noop", "read", "pipeline"):
                with server(kind, Path(tmp) / "unused.db") as (process, grpc_port, http_port):
                    port = grpc_port if transport == "grpc" else http_port
                    drive(transport, port, bodies[:20], 2)  # warm-up
                    nostore[kind], others[kind] = measured(process.pid, transport, port, bodies, inflight)
            print(
                f"  receiver without store, parse only:      {nostore['noop']:>10,.0f} spans/s"
                f"  (reference; other load {others['noop']:.2f} cores)"
            )
            print(
                f"  ceiling 2, no store, parse + attr read:  {nostore['read']:>10,.0f} spans/s"
                f"  (other load {others['read']:.2f} cores)"
            )
            print(
                f"  no store, spanmeter's whole pipeline:    {nostore['pipeline']:>10,.0f} spans/s"
                f"  (normalise, price, rows; other load {others['pipeline']:.2f} cores)"
            )
            for kind in modes[serve_mode]:
                db = Path(tmp) / f"{transport}-{kind}.db"
                with server(kind, db) as (process, grpc_port, http_port):
                    port = grpc_port if transport == "grpc" else http_port
                    drive(transport, port, warm_up, 2)  # other spans: nothing deduplicated later
                    durable, other = measured(process.pid, transport, port, bodies, inflight)
                    names = ["receiver", "store process"]
                    cpu = ", ".join(
                        f"{names[min(i, 1)]} {us:.1f} us ({busy:.0%} busy)"
                        for i, (us, busy) in enumerate(last_cpu)
                    )
                    half = durable / 2
                    paced_bodies = build_requests(
                        max(int(half * 6 / SPANS_PER_REQUEST), 20), seed=99 + len(transport), profile=profile
                    )
                    _, latencies = drive(transport, port, paced_bodies, inflight, rate=half)
                    rss = peak_rss_mb(process.pid)
                quantiles = statistics.quantiles(latencies, n=100)
                name = "spanmeter serve" if kind == "serve" else "serve --no-store-process"
                print(
                    f"  {name + ', durable:':40s} {durable:>10,.0f} spans/s"
                    f"  ({durable / nostore['read']:.0%} of ceiling 2, {durable / nostore['pipeline']:.0%} of the"
                    f" pipeline without store; other load {other:.2f} cores)"
                )
                print(
                    f"    at half that rate ({half:,.0f} spans/s): export latency"
                    f" p50 {quantiles[49] * 1000:.0f} ms, p99 {quantiles[98] * 1000:.0f} ms"
                )
                print(f"    CPU per span while at full rate: {cpu}")
                print(f"    peak RSS, all its processes: {rss:.0f} MB", flush=True)


def store_runs(
    profiles: tuple[str, ...],
    transports: tuple[str, ...],
    requests: int,
    inflight: int,
    replicas: list[int],
    postgres_url: str | None,
) -> None:
    """``spanmeter serve`` on SQLite, then on one PostgreSQL with each number of replicas,
    fed the same requests, in one run: durable spans/s as a ratio to SQLite's, each process's
    CPU per span (the database server's included), peak RSS per replica, and a count of the
    rows stored afterwards (every span sent, once)."""
    from pg import databases
    from spanmeter.store import open_store

    with tempfile.TemporaryDirectory() as tmp, databases(postgres_url) as pg:
        where = "started for the run (fsync on)" if postgres_url is None else "given by --postgres-url"
        print(f"PostgreSQL: {where}")
        for profile in profiles:
            print(
                f"\nprofile {profile}: building {requests} requests x {SPANS_PER_REQUEST} spans ...",
                flush=True,
            )
            bodies = build_requests(requests, profile=profile)
            warm_up = build_requests(20, seed=7, profile=profile)
            print(f"  {describe(bodies)}")
            for transport in transports:
                print(f"OTLP/{transport} ({inflight} requests in flight, spread over the replicas)")
                base = 0.0
                runs: list[tuple[str, str, int]] = [
                    ("SQLite, spanmeter serve", str(Path(tmp) / f"{profile}-{transport}.db"), 1)
                ]
                runs += [(f"PostgreSQL, {n} replica{'s' if n > 1 else ''}", "", n) for n in replicas]
                for label, target, count in runs:
                    target = target or pg.new()
                    postgres = target.startswith("postgresql://")
                    with contextlib.ExitStack() as stack:
                        started = [stack.enter_context(server("serve", target)) for _ in range(count)]
                        pids = [process.pid for process, _, _ in started]
                        ports = [
                            grpc_port if transport == "grpc" else http_port
                            for _, grpc_port, http_port in started
                        ]
                        drive(transport, ports, warm_up, 2)  # other spans: nothing deduplicated later
                        rate, other = measured(
                            pids, transport, ports, bodies, inflight, pg.root_pid() if postgres else None
                        )
                        rss = [peak_rss_mb(pid) for pid in pids]
                    store = open_store(target)
                    try:
                        stored = store.count_requests()
                    finally:
                        store.close()
                    sent = (len(bodies) + len(warm_up)) * SPANS_PER_REQUEST
                    base = base or rate
                    cpu = ", ".join(
                        f"{role} {us:.1f} us ({busy:.0%})"
                        for role, (us, busy) in zip(last_roles, last_cpu, strict=True)
                    )
                    if last_database_cpu:
                        us, busy = last_database_cpu[0]
                        cpu += f", PostgreSQL {us:.1f} us ({busy:.0%})"
                    print(
                        f"  {label + ', durable:':34s} {rate:>9,.0f} spans/s  {rate / base:5.2f}x SQLite"
                        f"  (other load {other:.2f} cores)"
                    )
                    print(f"    CPU per span (busy): {cpu}")
                    print(
                        "    peak RSS per replica (with its store process): "
                        + ", ".join(f"{mb:.0f} MB" for mb in rss)
                        + f"; stored {stored:,} rows of {sent:,} spans sent",
                        flush=True,
                    )
                    if stored != sent:
                        raise SystemExit(f"{label}: {stored} rows stored, {sent} spans sent")


def ab_runs(other: Path, requests: int, inflight: int, pairs: int, profile: str = "standard") -> None:
    """Interleaved runs of ``spanmeter serve`` from ``other`` and from this tree, OTLP/gRPC."""
    bodies = build_requests(requests, profile=profile)
    warm_up = build_requests(20, seed=7, profile=profile)
    this = Path(__file__).resolve().parents[1] / "src"
    print(
        f"A/B over OTLP/gRPC, {profile} profile, {requests} requests x {SPANS_PER_REQUEST} spans,"
        f" {inflight} in flight"
    )
    with tempfile.TemporaryDirectory() as tmp:
        for pair in range(pairs):
            for name, src in (("A " + str(other), other), ("B this tree", this)):
                db = Path(tmp) / f"ab-{pair}-{name[0]}.db"
                with server("serve", db, src) as (process, grpc_port, _):
                    drive("grpc", grpc_port, warm_up, 2)
                    rate, other_load = measured(process.pid, "grpc", grpc_port, bodies, inflight)
                cpu = ", ".join(f"{us:.1f} us ({busy:.0%} busy)" for us, busy in last_cpu)
                print(
                    f"  {name:40.40s} {rate:>8,.0f} spans/s  receiver, store process: {cpu};"
                    f" other load {other_load:.2f} cores",
                    flush=True,
                )


def _make_ingest_key(db: Path, *, revoke: bool = False) -> str:
    """An ingest key in the store at ``db``, made the way an operator does (the CLI); with
    ``revoke``, revoked again at once, so the store is made the same way and holds no usable
    key (authentication off)."""
    command = [sys.executable, "-m", "spanmeter", "keys", "create", "--name", "bench", "--scope", "ingest"]
    made = subprocess.run(
        [*command, "--format", "json", "--store", str(db)],
        check=True,
        capture_output=True,
        text=True,
    )
    if revoke:
        cli = [sys.executable, "-m", "spanmeter", "keys", "revoke", "bench", "--store", str(db)]
        subprocess.run(cli, check=True, capture_output=True)
    return str(json.loads(made.stdout)["key"])


def _refused_without_key(transport: str, port: int, body: bytes) -> bool:
    """Does the receiver refuse an export without a key (so authentication really is on)?"""
    if transport == "grpc":
        import grpc

        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            try:
                channel.unary_unary(GRPC_METHOD)(body, timeout=30)
            except grpc.RpcError as error:
                return error.code() is grpc.StatusCode.UNAUTHENTICATED  # type: ignore[attr-defined]
            return False
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("POST", "/v1/traces", body, {"Content-Type": "application/x-protobuf"})
    status = conn.getresponse().status
    conn.close()
    return status == 401


def _check_cost_us() -> float:
    """Microseconds of one ``Authenticator.check`` of a valid, cached ingest key (best of 5)."""
    import timeit

    from spanmeter.auth import Authenticator, issue_key
    from spanmeter.store import ApiKey, SQLiteStore

    with tempfile.TemporaryDirectory() as tmp, SQLiteStore(Path(tmp) / "keys.db") as store:
        issued = issue_key()
        store.add_api_key(ApiKey("bench", issued.key_id, issued.hash, "ingest", (), time.time_ns()))
        authenticator = Authenticator(store)
        header = f"Bearer {issued.key}"
        assert authenticator.check(header, "ingest") is not None
        runs = timeit.repeat(lambda: authenticator.check(header, "ingest"), number=20_000, repeat=5)
    return min(runs) / 20_000 * 1e6


def auth_runs(requests: int, inflight: int, pairs: int) -> None:
    """Interleaved runs of ``spanmeter serve`` without keys and with an ingest key, per transport.

    Each pair alternates which run goes first, so a drift in the machine's other load over
    the pair does not favour one side.
    """
    bodies = build_requests(requests)
    warm_up = build_requests(20, seed=7)
    print(
        f"auth off vs on, {requests} requests x {SPANS_PER_REQUEST} spans, {inflight} in flight,"
        f" {pairs} pairs per transport"
    )
    check_us = _check_cost_us()
    print(f"Authenticator.check, cached ingest key, in this process: {check_us:.1f} us per request")
    with tempfile.TemporaryDirectory() as tmp:
        for transport in ("grpc", "http"):
            print(f"\nOTLP/{transport}")
            ratios: list[float] = []
            cpu_ratios: list[float] = []
            receiver_us: list[float] = []
            for pair in range(pairs):
                rates: dict[str, float] = {}
                cpus: dict[str, float] = {}
                for mode in ("off", "on") if pair % 2 == 0 else ("on", "off"):
                    db = Path(tmp) / f"auth-{transport}-{pair}-{mode}.db"
                    # both sides' stores made by the CLI before serve opens them; off: key revoked
                    made = _make_ingest_key(db, revoke=mode == "off")
                    key = made if mode == "on" else None
                    with server("serve", db) as (process, grpc_port, http_port):
                        port = grpc_port if transport == "grpc" else http_port
                        if key is not None:
                            assert _refused_without_key(transport, port, warm_up[0]), "auth is not on"
                        drive(transport, port, warm_up, 2, key=key)
                        rates[mode], other = measured(process.pid, transport, port, bodies, inflight, key=key)
                    cpus[mode] = last_cpu[0][0]
                    receiver_us.append(last_cpu[0][0])
                    cpu = ", ".join(f"{us:.1f} us ({busy:.0%} busy)" for us, busy in last_cpu)
                    print(
                        f"  pair {pair + 1}, auth {mode:3s} {rates[mode]:>8,.0f} spans/s"
                        f"  receiver, store process: {cpu}; other load {other:.2f} cores",
                        flush=True,
                    )
                ratios.append(rates["on"] / rates["off"])
                cpu_ratios.append(cpus["on"] / cpus["off"])
                print(
                    f"  pair {pair + 1}: on / off = {ratios[-1]:.3f} spans/s,"
                    f" {cpu_ratios[-1]:.3f} receiver CPU per span",
                    flush=True,
                )
            print(
                f"  OTLP/{transport}: median on / off = {statistics.median(ratios):.3f} spans/s"
                f" (pairs: {', '.join(f'{r:.3f}' for r in ratios)}),"
                f" {statistics.median(cpu_ratios):.3f} receiver CPU per span",
                flush=True,
            )
            per_request = min(receiver_us) * SPANS_PER_REQUEST
            print(
                f"  the check alone: {check_us:.1f} us per request = {check_us / per_request:.2%} of the"
                f" receiver's CPU per {SPANS_PER_REQUEST}-span request (its least, {per_request:,.0f} us)",
                flush=True,
            )


if __name__ == "__main__":
    main()
