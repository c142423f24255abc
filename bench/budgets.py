"""What budgets cost ingest: the same traffic with and without budgets, in the same run.

Run: ``python bench/budgets.py [--rows 300000] [--requests 300] [--repeats 3]``

Two measurements, because budgets run in two places of one path:

**End to end** (what "ingest" means to a user): ``spanmeter serve`` (with its store process,
where the ledger runs inside the write transactions) receives ``--requests`` OTLP/HTTP
requests of 512 realistic spans (``bench/ingest.py``'s generator and client: 1,000 Zipf
tenants named ``tenant-0`` .. ``tenant-999``), 8 in flight, durable before each answer;
spans/s with no budgets file, and with 1,000 per-tenant budgets.

**Store write path** (the part budgets add work to, so the worst case), in this process with
the store process's garbage-collector settings (``tune_gc``):

every configuration stores the same realistic rows (``bench/store.py``'s generator: 1,000
Zipf-distributed tenants, 10,000 users, 50 endpoint tags, 20 models, 30% retries) into a
fresh SQLite store through ``write_batches``, the call the group-commit writer makes, with
the budget ledger registered or not:

* ``none``: no budgets (the baseline);
* ``1000 tenants``: 1,000 budgets, one per tenant (``scope: {tenant_id: tenant-0042}``),
  daily, 100 USD each: the heaviest tenants cross their thresholds during the run, so
  alerts are inserted in the ingest transactions too, as in production;
* ``tenant *``: one budget with ``scope: {tenant_id: "*"}`` (1,000 states);
* ``mixed``: the 1,000 per-tenant budgets plus a monthly global one, a rolling 6-hour one
  per endpoint tag (``*``) and a daily one per user (``*``: 10,000 states).

Runs are interleaved (none, 1000 tenants, ..., none, ...) so that drift on a noisy machine
hits every configuration alike, and each figure is the median of ``--repeats`` runs. Two
transaction sizes: 512 rows (one OTLP batch per transaction, the worst case for a per-
transaction cost) and 4,096 rows (what group commit produces under load).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).parent))

from ingest import build_requests, drive, free_port  # bench/ingest.py's traffic and client
from spanmeter.budgets import BudgetLedgerHook, parse_config
from spanmeter.budgets.definitions.model import BudgetsConfig
from spanmeter.service.maintenance import tune_gc
from spanmeter.store import SpanRow, SQLiteStore
from store import RealisticRows  # bench/store.py's rows

BATCH = 512


def tenant_budgets(limit_usd: str, name: str = "tenant-{i:04d}") -> list[dict[str, object]]:
    """One daily budget per tenant, for tenants named ``name.format(i=...)``."""
    return [
        {
            "name": f"tenant-{i:04d}",
            "scope": {"tenant_id": name.format(i=i)},
            "window": "day",
            "limit_usd": limit_usd,
            "forecast": False,
        }
        for i in range(1000)
    ]


@contextlib.contextmanager
def serve(db: Path, budgets: Path | None) -> Iterator[tuple[int, int]]:
    """``spanmeter serve`` (store process) in its own process; yields its HTTP port and pid."""
    grpc_port, http_port = free_port(), free_port()
    command = [sys.executable, "-m", "spanmeter", "serve", "--db", str(db)]
    command += ["--grpc-port", str(grpc_port), "--http-port", str(http_port)]
    if budgets is not None:
        command += ["--budgets", str(budgets)]
    env = {**os.environ, "SPANMETER_USER_ID_HASH_KEY": "bench"}
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", http_port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("spanmeter serve did not start") from None
                time.sleep(0.05)
        yield http_port, process.pid
    finally:
        process.terminate()
        process.wait(60)


def cpu_seconds(pid: int) -> float:
    """User + system CPU of ``pid`` and of its children (the store process), from /proc."""
    total = 0.0
    pids = [pid]
    for task in Path(f"/proc/{pid}/task").iterdir():
        pids += [int(child) for child in (task / "children").read_text().split()]
    for one in pids:
        fields = Path(f"/proc/{one}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def end_to_end(tmp: Path, requests: int, repeats: int) -> None:
    """spans/s and receiver CPU per span of ``spanmeter serve``, with and without 1,000
    per-tenant budgets. CPU per span is the steadier figure on a shared machine: other load
    slows a run down but does not make the receiver burn more CPU per span."""
    budgets = tmp / "budgets.yaml"
    document = {"budgets": tenant_budgets("100", "tenant-{i}"), "delivery": {"log": False}}
    budgets.write_text(yaml.safe_dump(document))
    print(f"building {requests} requests x 512 spans ...", flush=True)
    bodies = build_requests(requests)
    spans = requests * 512
    rates: dict[str, list[float]] = {"none": [], "1000 tenants": []}
    cpu: dict[str, list[float]] = {"none": [], "1000 tenants": []}
    for repeat in range(repeats):
        for name, file in (("none", None), ("1000 tenants", budgets)):
            with serve(tmp / f"e2e-{repeat}-{len(name)}.db", file) as (port, pid):
                drive("http", port, build_requests(20, seed=1000 + repeat), 2)  # warm-up
                before = cpu_seconds(pid)
                rate, _ = drive("http", port, bodies, 8)
                cpu[name].append((cpu_seconds(pid) - before) / spans * 1e6)
            rates[name].append(rate)
    print(f"\nend to end: spanmeter serve, OTLP/HTTP, 8 requests in flight, medians of {repeats}")
    print(f"  {'budgets':<14}{'spans/s':>10}{'vs none':>10}{'CPU µs/span':>13}{'vs none':>10}")
    base_rate, base_cpu = statistics.median(rates["none"]), statistics.median(cpu["none"])
    for name in rates:
        rate, used = statistics.median(rates[name]), statistics.median(cpu[name])
        print(
            f"  {name:<14}{rate:>10,.0f}{rate / base_rate - 1:>+10.1%}{used:>13.1f}{used / base_cpu - 1:>+10.1%}"
        )
    # Each pair ran back to back, so its ratio is the least disturbed by drift on the machine.
    pairs = [b / a - 1 for a, b in zip(rates["none"], rates["1000 tenants"], strict=True)]
    pairs_cpu = [b / a - 1 for a, b in zip(cpu["none"], cpu["1000 tenants"], strict=True)]
    print(f"  spans/s per pair:  {', '.join(f'{p:+.1%}' for p in pairs)}")
    print(f"  CPU/span per pair: {', '.join(f'{p:+.1%}' for p in pairs_cpu)}")


def configurations() -> dict[str, BudgetsConfig | None]:
    per_tenant = tenant_budgets("100")
    return {
        "none": None,
        "1000 tenants": parse_config({"budgets": per_tenant, "delivery": {"log": False}}),
        "tenant *": parse_config(
            {
                "budgets": [{"name": "t", "scope": {"tenant_id": "*"}, "window": "day", "limit_usd": "100"}],
                "delivery": {"log": False},
            }
        ),
        "mixed": parse_config(
            {
                "budgets": [
                    *per_tenant,
                    {"name": "global", "window": "month", "limit_usd": 100_000},
                    {
                        "name": "endpoint",
                        "scope": {"endpoint_tag": "*"},
                        "window": {"rolling": "6h"},
                        "limit_usd": 500,
                    },
                    {"name": "user", "scope": {"user_id": "*"}, "window": "day", "limit_usd": 20},
                ],
                "delivery": {"log": False},
            }
        ),
    }


def run(path: Path, rows: list[SpanRow], config: BudgetsConfig | None, per_txn: int) -> tuple[float, int]:
    """rows/s through write_batches, and the alerts inserted."""
    with SQLiteStore(path) as store:
        if config is not None:
            store.attach_ledger(BudgetLedgerHook(config))
        groups = [rows[i : i + BATCH] for i in range(0, len(rows), BATCH)]
        step = max(1, per_txn // BATCH)
        started = time.perf_counter()
        for i in range(0, len(groups), step):
            store.write_batches(groups[i : i + step])
        elapsed = time.perf_counter() - started
        stats = store.budget_store.ledger_stats
        assert stats.failures == 0
        return len(rows) / elapsed, stats.alerts


def measure(
    label: str, fn: Callable[[], tuple[float, int]], results: dict[str, list[float]], alerts: dict[str, int]
) -> None:
    rate, inserted = fn()
    results.setdefault(label, []).append(rate)
    alerts[label] = inserted


def main() -> None:
    parser = argparse.ArgumentParser(description="Ingest write path with and without budgets.")
    parser.add_argument("--rows", type=int, default=300_000, help="rows for the store write path")
    parser.add_argument("--requests", type=int, default=300, help="512-span requests end to end (0: skip)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if args.requests:
            end_to_end(Path(tmp), args.requests, args.repeats)
        now_ns = time.time_ns() // 3_600_000_000_000 * 3_600_000_000_000
        rows = RealisticRows().rows(args.rows, now_ns)
        configs = configurations()
        tune_gc()  # the store process's collector settings, since this is the work it does
        print(f"\nstore write path: {len(rows):,} rows, medians of {args.repeats} interleaved runs")
        for per_txn in (BATCH, 8 * BATCH):
            results: dict[str, list[float]] = {}
            alerts: dict[str, int] = {}
            for repeat in range(args.repeats):
                for name, config in configs.items():
                    path = Path(tmp) / f"{per_txn}-{repeat}-{name.replace(' ', '_').replace('*', 'all')}.db"
                    measure(name, partial(run, path, rows, config, per_txn), results, alerts)
            base = statistics.median(results["none"])
            print(f"\n  {per_txn:,} rows per transaction")
            print(f"  {'budgets':<14}{'rows/s':>10}{'vs none':>10}{'alerts':>8}   runs")
            for name in configs:
                rate = statistics.median(results[name])
                runs = ", ".join(f"{r:,.0f}" for r in results[name])
                print(f"  {name:<14}{rate:>10,.0f}{rate / base - 1:>+10.1%}{alerts[name]:>8}   {runs}")


if __name__ == "__main__":
    main()
