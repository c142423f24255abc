"""``investigate`` latency over a 7-day window holding 10 million spans.

Run: ``python bench/investigate.py`` (``--help`` for sizes; ``--db`` keeps and reuses the
filled store between runs). The store holds ``--spans`` spans in the window and as many in
the 7-day baseline before it, as compacted rollups written directly (raw rows are not what
investigate reads; :func:`store.fill_rollups` explains the shortcut), with the realistic
cardinality of ``bench/store.py``: 50 endpoint tags, 20 models, 1,000 Zipf tenants,
10,000 users. Reported: the median of ``--repeats`` runs of the whole investigation
(12 rollup reads, the ranking of every group of six dimensions, the classification and its
evidence), unfiltered and filtered, plus the parts on their own.

A/B of two source trees on the same store, same session:
``python bench/investigate.py --db STORE --ab OTHER_SRC [--pairs 3]`` runs the filtered
investigations from ``OTHER_SRC`` (for example the previous commit's ``src``, unpacked with
``git archive``) and from this tree, interleaved, each in its own process, and checks that
both give the same reports.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from spanmeter.analysis.evidence import first_hour, recent_mix
from spanmeter.analysis.investigate import investigate
from spanmeter.analysis.window import TimeWindow
from spanmeter.store import SQLiteStore
from store import DAY_NS, RealisticRows, fill_rollups

END_NS = 1_772_668_800 * 10**9  # 2026-03-05T00:00Z, a day boundary
FILTERED = (
    ("investigate --where endpoint_tag=endpoint-07", {"endpoint_tag": "endpoint-07"}),
    ("investigate --where tenant_id=tenant-0003", {"tenant_id": "tenant-0003"}),
)


def median_ms(run: Callable[[], object], repeats: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeats):
        began = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - began)
    return statistics.median(times) * 1000, result


def main() -> None:
    parser = argparse.ArgumentParser(description="investigate latency over a 7-day window")
    parser.add_argument(
        "--spans", type=int, default=10_000_000, help="spans in the 7-day window (and in the baseline)"
    )
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--db", type=Path, help="store to fill (or reuse when it exists)")
    parser.add_argument(
        "--ab",
        metavar="OTHER_SRC",
        type=Path,
        help="A/B: filtered investigations from OTHER_SRC vs this tree",
    )
    parser.add_argument("--pairs", type=int, default=3, help="interleaved pairs of runs with --ab")
    parser.add_argument("--filtered-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    path = args.db or Path(tempfile.mkdtemp()) / "investigate.db"
    if not path.exists():
        began = time.perf_counter()
        fill_rollups(path, RealisticRows(), 2 * args.spans, 14, END_NS)
        print(f"filled {2 * args.spans:,} spans over 14 days in {time.perf_counter() - began:.0f} s")
    window = TimeWindow(END_NS - 7 * DAY_NS, END_NS)
    if args.filtered_only:
        with SQLiteStore(path) as store:
            for label, where in FILTERED:
                elapsed, report = median_ms(
                    lambda w=where: investigate(store, window, "previous", where=w), args.repeats
                )
                digest = hashlib.sha256(json.dumps(report, sort_keys=True).encode()).hexdigest()[:16]
                print(json.dumps({"label": label, "ms": elapsed, "digest": digest}), flush=True)
        return
    if args.ab:
        ab_runs(args.ab, path, args.pairs, args.repeats)
        return
    with SQLiteStore(path) as store:
        total = store.aggregate((), window.start_ns, window.end_ns, data_mode=None).total
        print(f"window: {total.attempts:,} spans ({total.logical_requests:,} logical requests)")
        print(f"  {'question':<58}{'median ms':>10}")
        cases: list[tuple[str, Callable[[], object]]] = [
            (
                "investigate, 7 days vs previous 7, all dimensions",
                lambda: investigate(store, window, "previous"),
            ),
            ("investigate, data_mode=all", lambda: investigate(store, window, "previous", data_mode=None)),
        ]
        cases += [
            (label, lambda w=where: investigate(store, window, "previous", where=w))
            for label, where in FILTERED
        ]
        scope = {"where": {}, "environment": None, "data_mode": "real"}
        cases += [
            (
                "  part: evidence, first hour of prompt version v2 (bisect)",
                lambda: first_hour(store, "prompt_version", "v2", window, scope),
            ),
            (
                "  part: evidence, models on endpoint-07 (last hour)",
                lambda: recent_mix(store, "model", "endpoint-07", window, scope),
            ),
        ]
        for dimension in ("endpoint_tag", "tenant_id", "user_id", "prompt_version", "model", "provider"):
            cases.append((f"  part: aggregate by {dimension}, one window", _part(store, dimension, window)))
        for label, run in cases:
            elapsed, result = median_ms(run, args.repeats)
            note = ""
            if isinstance(result, dict) and "classification" in result:
                note = f"  ({result['classification']['type']})"
            print(f"  {label:<58}{elapsed:>10.1f}{note}")


def ab_runs(other: Path, path: Path, pairs: int, repeats: int) -> None:
    """Interleaved filtered investigations from ``other`` and from this tree, same store."""
    this = Path(__file__).resolve().parents[1] / "src"
    print(f"A/B, filtered investigations, median of {repeats} runs each, {pairs} interleaved pairs")
    figures: dict[str, dict[str, list[float]]] = {}
    digests: dict[str, set[str]] = {}
    for _ in range(pairs):
        for name, src in (("A", other), ("B", this)):
            env = {
                **os.environ,
                "PYTHONPATH": os.pathsep.join(filter(None, [str(src), os.environ.get("PYTHONPATH")])),
            }
            command = [
                sys.executable,
                __file__,
                "--db",
                str(path),
                "--repeats",
                str(repeats),
                "--filtered-only",
            ]
            output = subprocess.run(command, env=env, check=True, capture_output=True, text=True).stdout
            for line in output.splitlines():
                run = json.loads(line)
                figures.setdefault(run["label"], {}).setdefault(name, []).append(run["ms"])
                digests.setdefault(run["label"], set()).add(run["digest"])
    print(f"  {'question':<46}{'A ms':>10}{'B ms':>10}{'B/A':>8}  reports")
    for label, runs in figures.items():
        a, b = statistics.median(runs["A"]), statistics.median(runs["B"])
        same = "identical" if len(digests[label]) == 1 else "DIFFER"
        print(f"  {label:<46}{a:>10.1f}{b:>10.1f}{b / a:>8.3f}  {same}")
    print(f"  A: {other}\n  B: {this}")


def _part(store: SQLiteStore, dimension: str, window: TimeWindow) -> Callable[[], object]:
    return lambda: store.aggregate((dimension,), window.start_ns, window.end_ns)


if __name__ == "__main__":
    main()
