"""``BudgetGuard.check`` on the caller's thread: nanoseconds per call, and no I/O.

Run: ``python bench/budget_guard.py [--calls 1000000]``

A local HTTP server plays the receiver's ``/api/v1/budgets/status`` with 1,000 per-tenant
states, 50 per-endpoint states and a global one (the shape of a real deployment); the
guard polls it every 10 ms in the background during the measurement (far more often than
its 10 s default, to show that polling never reaches the caller). Reported, best of 5:

* ``check`` for a combination already seen (the steady state of an app: its tenants and
  endpoints recur), next to a bare Python function call with the same keyword arguments
  (the floor for any in-process check);
* the same with a raw ``user_id`` too (hashed with the deployment's key when a combination
  is first worked out, so a seen one costs no hashing);
* ``check`` for a combination never seen in this snapshot (worked out once, then memoised),
  and the same with a raw ``user_id`` (one keyed hash more);
* socket and file events on the caller's thread during all the calls (``sys.addaudithook``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import spanmeter

os.environ.setdefault("SPANMETER_USER_ID_HASH_KEY", "bench-key")  # as a deployment sets it


def status_document() -> bytes:
    states: list[dict[str, Any]] = [
        {"budget": "global", "scope": {"data_mode": "real"}, "state": "ok", "ratio": 0.4}
    ]
    for i in range(1000):
        name = "exceeded" if i % 97 == 0 else "warning" if i % 13 == 0 else "ok"
        states.append(
            {
                "budget": "tenant",
                "scope": {"data_mode": "real", "tenant_id": f"t{i}"},
                "state": name,
                "ratio": 0.5,
            }
        )
    for i in range(50):
        scope = {"data_mode": "real", "endpoint_tag": f"e{i}"}
        states.append({"budget": "endpoint", "scope": scope, "state": "ok", "ratio": 0.2})
    return json.dumps({"states": states}).encode()


def serve(body: bytes) -> tuple[ThreadingHTTPServer, list[int]]:
    hits = [0]

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            hits[0] += 1
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, hits


def best_ns(fn: Any, calls: int) -> float:
    best = float("inf")
    for _ in range(5):
        started = time.perf_counter()
        fn(calls)
        best = min(best, (time.perf_counter() - started) / calls)
    return best * 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1_000_000)
    args = parser.parse_args()
    server, hits = serve(status_document())
    guard = spanmeter.BudgetGuard(f"http://127.0.0.1:{server.server_address[1]}", refresh_s=0.01)
    while not guard.fresh:
        time.sleep(0.01)
    caller = threading.get_ident()
    io_events: list[str] = []
    recording = threading.Event()

    def audit(event: str, _: tuple[Any, ...]) -> None:
        io = event.startswith(("socket.", "urllib.", "http.")) or event in ("open", "os.open")
        if io and recording.is_set() and threading.get_ident() == caller:
            io_events.append(event)

    sys.addaudithook(audit)
    check = guard.check

    def seen(calls: int) -> None:
        for _ in range(calls):
            check(tenant_id="t42", endpoint_tag="e7")

    def seen_user(calls: int) -> None:
        for _ in range(calls):
            check(tenant_id="t42", endpoint_tag="e7", user_id="alice@example.com")

    def floor(calls: int) -> None:
        def bare(
            *, tenant_id: str | None = None, endpoint_tag: str | None = None, model: str | None = None
        ) -> object:
            return None

        for _ in range(calls):
            bare(tenant_id="t42", endpoint_tag="e7")

    tenants = [f"new-{i}" for i in range(args.calls // 10)]

    def unseen(calls: int) -> None:
        for tenant in tenants[:calls]:
            check(tenant_id=tenant, endpoint_tag="e7")
        tenants.reverse()  # next round: new snapshot or not, different keys first

    users = [f"user-{i}@example.com" for i in range(args.calls // 10)]

    def unseen_user(calls: int) -> None:
        for user in users[:calls]:
            check(tenant_id="t42", endpoint_tag="e7", user_id=user)
        users.reverse()

    polls_before = hits[0]
    recording.set()
    hit = best_ns(seen, args.calls)
    hit_user = best_ns(seen_user, args.calls)
    miss = best_ns(unseen, len(tenants))
    miss_user = best_ns(unseen_user, len(users))
    recording.clear()
    bare = best_ns(floor, args.calls)
    polls = hits[0] - polls_before
    decision = guard.check(tenant_id="t0", endpoint_tag="e7")
    guard.close()
    server.shutdown()
    print(f"BudgetGuard.check, {args.calls:,} calls, best of 5 (1,051 budget states, polled every 10 ms)")
    print(f"  combination already seen:    {hit:7.0f} ns per call")
    print(f"  ... with a raw user_id:      {hit_user:7.0f} ns per call")
    print(f"  bare function call, floor:   {bare:7.0f} ns per call")
    print(f"  combination never seen:      {miss:7.0f} ns per call (worked out once per snapshot)")
    print(f"  ... with a new raw user_id:  {miss_user:7.0f} ns per call (plus one keyed hash)")
    print(f"  background polls meanwhile:  {polls:7d}")
    print(f"  I/O events on the caller's thread: {len(io_events)}")
    print(f"  sample decision: {decision.state} ({decision.budget}, {decision.ratio:.0%})")


if __name__ == "__main__":
    main()
