"""Durable ingest rate of one exporter, alone and with 16 API clients on the heaviest routes.

A real ``spanmeter serve`` (store process, SQLite) on 127.0.0.1. One exporter (a raw OTLP/HTTP
sender, one request in flight as an SDK's batch processor has, pre-encoded 512-span requests
from ``bench/ingest.py``) posts as fast as it is answered; a 200 means the spans are committed,
so spans acknowledged per second is the durable ingest rate. It is measured alone, then while
16 API clients (another process) request ``/api/v1/investigate``,
``/api/v1/top?by=user_id`` and ``/api/v1/export/requests`` back to back, alternately, for
``--pairs`` pairs on the same store (the store is filled first so the queries have work to
do); after a 429 or 503 the clients wait as ``Retry-After`` asks, or, with ``--hammer``, only
10 ms. The ratio of the summed loaded rate to the summed alone rate is what counts.

Each phase also prints where the CPU went (in cores, averaged over the phase): the receiver
process, its children (the store process, the query processes), the API clients, and the
other load on the machine (everything else that ran meanwhile: these machines are shared).

A/B of two source trees in the same run: ``--ab OTHER_SRC`` (e.g. ``git archive HEAD src |
tar -x -C /tmp/before``, then ``/tmp/before/src``) starts a server from each tree, fills both,
then runs the pairs alternately on the two.

Usage::

    python bench/ingest_under_api_load.py [--seconds 8] [--clients 16] [--fill 100] [--pairs 3]
        [--hammer] [--ab OTHER_SRC]

``SPANMETER_API_WORKERS`` in the environment reaches the receiver (its API cap).
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import http.client
import multiprocessing as mp
import os
import resource
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ingest import _busy_cpu_s, _children, _cpu_s, build_requests, server  # bench/ingest.py

HEAVY_ROUTES = (
    "/api/v1/investigate?since=1h&format=json",
    "/api/v1/top?by=user_id&since=1h&limit=100",
    "/api/v1/export/requests?since=1h&format=ndjson",
)
SPANS_PER_REQUEST = 512


def post_all(port: int, bodies: list[bytes], seconds: float | None) -> tuple[int, float]:
    """POST ``bodies`` in order on one connection until they or ``seconds`` run out; returns
    (spans acknowledged, elapsed seconds). Throttled requests are retried, as an SDK would."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    headers = {"Content-Type": "application/x-protobuf"}
    acknowledged = 0
    started = time.perf_counter()
    for body in bodies:
        if seconds is not None and time.perf_counter() - started >= seconds:
            break
        while True:
            connection.request("POST", "/v1/traces", body=body, headers=headers)
            response = connection.getresponse()
            response.read()
            if response.status == 200:
                acknowledged += SPANS_PER_REQUEST
                break
            if response.status not in (429, 503):
                raise RuntimeError(f"export answered {response.status}")
            time.sleep(0.05)
    connection.close()
    return acknowledged, time.perf_counter() - started


def _api_client(
    port: int, index: int, hammer: bool, stop: threading.Event, counts: collections.Counter[str]
) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    route = index
    while not stop.is_set():
        path = HEAVY_ROUTES[route % len(HEAVY_ROUTES)]
        try:
            connection.request("GET", path)
            response = connection.getresponse()
            response.read()
        except (OSError, http.client.HTTPException):
            counts["error"] += 1
            connection.close()
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
            continue
        counts[str(response.status)] += 1
        if response.status in (429, 503):
            stop.wait(0.01 if hammer else float(response.getheader("Retry-After") or 1))
        else:
            route += 1
    connection.close()


def api_load(port: int, clients: int, hammer: bool, seconds: float, queue: Any) -> None:
    """Run ``clients`` API clients for ``seconds`` (in its own process); puts the status
    counts and this process's CPU seconds."""
    stop = threading.Event()
    counts: collections.Counter[str] = collections.Counter()
    threads = [
        threading.Thread(target=_api_client, args=(port, i, hammer, stop, counts), daemon=True)
        for i in range(clients)
    ]
    for thread in threads:
        thread.start()
    time.sleep(seconds)
    stop.set()
    for thread in threads:
        thread.join(130)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    queue.put((dict(counts), usage.ru_utime + usage.ru_stime))


@dataclass
class Phase:
    """One measured phase: spans acknowledged and CPU, in cores, averaged over it."""

    spans: int
    seconds: float
    receiver: float
    children: float
    clients: float
    other: float
    answers: dict[str, int] = field(default_factory=dict[str, int])

    @property
    def rate(self) -> float:
        return self.spans / self.seconds

    def line(self, label: str) -> str:
        answers = f"; API answers {dict(sorted(self.answers.items()))}" if self.answers else ""
        return (
            f"  {label:34s} {self.rate:8,.0f} spans/s  cores: receiver {self.receiver:.2f},"
            f" store+query processes {self.children:.2f}, API clients {self.clients:.2f},"
            f" other load {self.other:.2f}{answers}"
        )


def measure(pid: int, port: int, bodies: list[bytes], seconds: float, load: tuple[int, bool] | None) -> Phase:
    """One phase on the server ``pid``: alone (``load`` None) or with ``load`` = (clients,
    hammer) API clients, started a second before the exporter and stopped after it."""
    process = queue = None
    if load is not None:
        ctx = mp.get_context("spawn")
        queue = ctx.Queue()
        process = ctx.Process(target=api_load, args=(port, load[0], load[1], seconds + 1.5, queue))
        process.start()
        time.sleep(1.0)  # every client has its first query running
    children = _children(pid)
    receiver_before = _cpu_s(pid)
    children_before = {child: _cpu_s(child) for child in children}
    own_before = _own_cpu_s()
    busy_before, started = _busy_cpu_s(), time.perf_counter()
    spans, took = post_all(port, bodies, seconds)
    elapsed = time.perf_counter() - started
    busy = _busy_cpu_s() - busy_before
    receiver = _cpu_s(pid) - receiver_before
    child_cpu = 0.0
    for child in _children(pid):  # a query process started meanwhile counts from zero
        with contextlib.suppress(OSError):
            child_cpu += _cpu_s(child) - children_before.get(child, 0.0)
    own = _own_cpu_s() - own_before
    answers: dict[str, int] = {}
    clients = 0.0
    if process is not None and queue is not None:
        answers, client_cpu = queue.get(timeout=300)
        process.join(60)
        clients = client_cpu * elapsed / (seconds + 1.5)  # its share in this window
    other = max(0.0, busy - receiver - child_cpu - own - clients)
    return Phase(
        spans, took, receiver / elapsed, child_cpu / elapsed, clients / elapsed, other / elapsed, answers
    )


def _own_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _ready(port: int) -> bool:
    try:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        connection.request("GET", "/readyz")
        return connection.getresponse().status == 200
    except OSError:
        return False


@contextlib.contextmanager
def filled_server(tmp: Path, name: str, src: Path | None, fill: list[bytes]) -> Iterator[tuple[int, int]]:
    """A ``spanmeter serve`` (from ``src``, else this tree) with ``fill`` stored; (pid, port)."""
    with server("serve", tmp / f"{name}.db", src) as (process, _, port):
        deadline = time.monotonic() + 180  # a loaded machine starts it slowly
        while not _ready(port) and time.monotonic() < deadline:
            time.sleep(0.2)
        stored, took = post_all(port, fill, None)
        print(f"{name}: filled the store with {stored:,} spans in {took:.1f} s", flush=True)
        yield process.pid, port


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=8.0, help="length of each phase")
    parser.add_argument("--clients", type=int, default=16, help="concurrent API clients")
    parser.add_argument("--fill", type=int, default=100, help="512-span requests stored before measuring")
    parser.add_argument("--pairs", type=int, default=3, help="alone/loaded pairs per server")
    parser.add_argument("--phase-requests", type=int, default=120, help="distinct requests per phase")
    parser.add_argument(
        "--hammer", action="store_true", help="API clients ignore Retry-After (retry in 10 ms)"
    )
    parser.add_argument("--ab", type=Path, help="also run a server from this source tree (A), alternately")
    args = parser.parse_args()

    phases = 2 * args.pairs
    bodies = build_requests(args.fill + phases * args.phase_requests)
    fill, measured = bodies[: args.fill], bodies[args.fill :]
    chunks = [measured[i * args.phase_requests : (i + 1) * args.phase_requests] for i in range(phases)]
    trees: list[tuple[str, Path | None]] = [("this tree", None)]
    if args.ab is not None:
        trees.insert(0, (f"A {args.ab}", args.ab))
    results: dict[str, tuple[list[Phase], list[Phase]]] = {name: ([], []) for name, _ in trees}
    load = (args.clients, args.hammer)
    print(
        f"{args.clients} API clients{' (hammer)' if args.hammer else ''}, {args.pairs} pairs of"
        f" {args.seconds:g} s phases, cap SPANMETER_API_WORKERS={os.environ.get('SPANMETER_API_WORKERS', 'default')}"
    )
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        servers = {
            name: stack.enter_context(filled_server(Path(tmp), f"s{index}", src, fill))
            for index, (name, src) in enumerate(trees)
        }
        for pair in range(args.pairs):
            for name, _ in trees:
                pid, port = servers[name]
                alone = measure(pid, port, chunks[2 * pair], args.seconds, None)
                loaded = measure(pid, port, chunks[2 * pair + 1], args.seconds, load)
                results[name][0].append(alone)
                results[name][1].append(loaded)
                print(f"pair {pair + 1}, {name}: ratio {loaded.rate / alone.rate:.2f}", flush=True)
                print(alone.line("alone"), flush=True)
                print(loaded.line(f"with {args.clients} API clients"), flush=True)
                if max(a.spans for a in (alone, loaded)) >= args.phase_requests * SPANS_PER_REQUEST:
                    print("  note: a phase ran out of requests before its time; raise --phase-requests")
    for name, (alone_phases, loaded_phases) in results.items():
        alone_rate = sum(p.spans for p in alone_phases) / sum(p.seconds for p in alone_phases)
        loaded_rate = sum(p.spans for p in loaded_phases) / sum(p.seconds for p in loaded_phases)
        ratios = ", ".join(
            f"{lo.rate / al.rate:.2f}" for al, lo in zip(alone_phases, loaded_phases, strict=True)
        )
        print(
            f"{name}: alone {alone_rate:,.0f} spans/s, with {args.clients} API clients {loaded_rate:,.0f}"
            f" spans/s: ratio {loaded_rate / alone_rate:.2f} (pairs: {ratios}; target >= 0.80)"
        )


if __name__ == "__main__":
    main()
