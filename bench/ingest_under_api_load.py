"""Durable ingest rate of one exporter, alone and with 16 API clients on the heaviest routes.

A real ``spanmeter serve`` (store process, SQLite) on 127.0.0.1. One exporter (a raw OTLP/HTTP
sender, one request in flight as an SDK's batch processor has, pre-encoded 512-span requests
from ``bench/ingest.py``) posts as fast as it is answered; a 200 means the spans are committed,
so spans acknowledged per second is the durable ingest rate. It is measured alone, then again
while 16 API clients (another process) request ``/api/v1/investigate``,
``/api/v1/top?by=user_id`` and ``/api/v1/export/requests`` back to back; after a 429 or 503
they wait as ``Retry-After`` asks, or, with ``--hammer``, only 10 ms. The store is filled
first so the queries have work to do. Both phases run in the same session on the same
store; the ratio is what counts.

Usage::

    python bench/ingest_under_api_load.py [--seconds 10] [--clients 16] [--fill 200] [--hammer]

``SPANMETER_API_WORKERS`` in the environment reaches the receiver (its API cap).
"""

from __future__ import annotations

import argparse
import collections
import http.client
import multiprocessing as mp
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from ingest import build_requests, server  # bench/ingest.py's traffic and receiver

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
    """Run ``clients`` API clients for ``seconds`` (in its own process); puts the status counts."""
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
    queue.put(dict(counts))


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each phase")
    parser.add_argument("--clients", type=int, default=16, help="concurrent API clients")
    parser.add_argument("--fill", type=int, default=200, help="512-span requests stored before measuring")
    parser.add_argument("--requests", type=int, default=800, help="distinct requests for the two phases")
    parser.add_argument(
        "--hammer", action="store_true", help="API clients ignore Retry-After (retry in 10 ms)"
    )
    args = parser.parse_args()

    bodies = build_requests(args.fill + args.requests)
    fill, measured = bodies[: args.fill], bodies[args.fill :]
    with tempfile.TemporaryDirectory() as tmp, server("serve", Path(tmp) / "bench.db") as (_, _, port):
        stored, took = post_all(port, fill, None)
        print(f"filled the store: {stored:,} spans in {took:.1f} s")
        half = len(measured) // 2
        alone, alone_s = post_all(port, measured[:half], args.seconds)
        alone_rate = alone / alone_s
        print(f"ingest alone:            {alone_rate:10,.0f} spans/s ({alone:,} spans in {alone_s:.1f} s)")

        queue: Any = mp.get_context("spawn").Queue()
        load = mp.get_context("spawn").Process(
            target=api_load, args=(port, args.clients, args.hammer, args.seconds + 1, queue)
        )
        load.start()
        time.sleep(1.0)  # every client has its first query running
        loaded, loaded_s = post_all(port, measured[half:], args.seconds)
        counts = queue.get(timeout=300)
        load.join(60)
        loaded_rate = loaded / loaded_s
        print(
            f"with {args.clients} API clients:     {loaded_rate:10,.0f} spans/s"
            f" ({loaded:,} spans in {loaded_s:.1f} s)"
        )
        print(f"API answers meanwhile: {dict(sorted(counts.items()))}")
        print(f"ratio: {loaded_rate / alone_rate:.2f} (target >= 0.80)")
        if (
            len(measured[:half]) * SPANS_PER_REQUEST <= alone
            or len(measured[half:]) * SPANS_PER_REQUEST <= loaded
        ):
            print("note: a phase ran out of requests before its time; raise --requests")


if __name__ == "__main__":
    main()
