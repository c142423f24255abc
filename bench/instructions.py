"""Instructions per span of the hot paths, counted by valgrind: a measure the machine's load does not move.

Run: ``python bench/instructions.py [--ab OTHER_SRC] [SCENARIO ...]`` (needs ``valgrind``).

Timings on these shared 2-core machines move by ±25% between runs; instruction counts
(``valgrind --tool=callgrind``) move by well under 1%, so an A/B of two source trees can be
read from them even while other work runs. Each scenario is run twice under callgrind, over
``n1`` and over ``n2`` spans (rows), with the same set-up in both (built for ``n2``, warmed
on other spans): the difference divided by ``n2 - n1`` is the cost of one span, without
start-up, imports, set-up or the first calls' cache fills. ``PYTHONHASHSEED`` is pinned.
Instructions are not time (a cache miss costs more than an add), but the paths compared here
do the same kind of work, so their ratio tracks the time's.

Scenarios:

The receiver's scenarios run with the collector tuned as ``spanmeter serve`` tunes it.

* ``processor-export``: the export thread of ``CostSpanProcessor`` per GenAI span (the
  lazy enrichment: normalise, same-call check, price, merge, plus the exporter reading
  every attribute), spans of ``bench/processor_overhead.py`` (a response id of their own
  each), garbage collection included;
* ``normalize``: ``normalize`` alone over the attribute dicts the pipeline builds from
  ``bench/ingest.py``'s requests;
* ``pipeline-rows``: the receiver's row building (``IngestPipeline._rows``: attribute
  extraction, normalise, hash, price, the row tuple, the same-call prefilter) on those
  requests;
* ``store-write``: the store process's write path per row (``SQLiteStore.write_batches``
  with the received tuples, 512-row batches, 16 a transaction) on ``bench/ingest.py``'s
  rows, where a third are anthropic rows with a response id, so they claim their call
  (:mod:`spanmeter.store.sqlite.provider_calls`).

With ``--ab OTHER_SRC`` every scenario is also run with ``PYTHONPATH=OTHER_SRC`` (the
benchmark's own code is this tree's in both).
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
THIS_SRC = HERE.parent / "src"
SIZES: dict[str, tuple[int, int]] = {
    "processor-export": (1000, 3000),
    "normalize": (1024, 3072),
    "pipeline-rows": (1024, 3072),
    "store-write": (8192, 24576),
}


# --- what runs under valgrind --------------------------------------------------------------


def _processor_export(n: int, total: int) -> Callable[[], None]:
    import itertools

    from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider

    from processor_overhead import GENAI_ATTRIBUTES, ReadingExporter
    from spanmeter.processor import CostSpanProcessor

    class Keep(SpanProcessor):
        def __init__(self) -> None:
            self.spans: list[ReadableSpan] = []

        def on_end(self, span: ReadableSpan) -> None:
            self.spans.append(span)

    keep = Keep()
    provider = TracerProvider()
    provider.add_span_processor(CostSpanProcessor(keep))
    tracer = provider.get_tracer("bench")
    ids = itertools.count()
    for _ in range(total + 200):
        with tracer.start_as_current_span("chat gpt-4o-mini", attributes=GENAI_ATTRIBUTES) as span:
            span.set_attribute("gen_ai.response.id", f"chatcmpl-{next(ids)}")
    exporter = ReadingExporter()
    exporter.export(keep.spans[:200])  # warm: price resolution, caches
    spans = keep.spans[200 : 200 + n]

    def run() -> None:
        exporter.export(spans)

    return run


def _requests(total: int, parse: Any = None) -> list[Any]:
    from ingest import SPANS_PER_REQUEST, build_requests
    from spanmeter.ingest.extract import INGEST_REQUEST_TYPE

    count = -(-total // SPANS_PER_REQUEST)
    parse = parse or INGEST_REQUEST_TYPE.FromString
    return [parse(body) for body in build_requests(count + 1, seed=11)]


def _pipeline() -> Any:
    from ingest import _NullSink
    from spanmeter.identity import UserIdHasher
    from spanmeter.ingest import IngestMetrics, IngestPipeline
    from spanmeter.pricing import PriceBook

    return IngestPipeline(
        _NullSink(), PriceBook(), metrics=IngestMetrics(), user_id_hasher=UserIdHasher(b"k" * 32)
    )


def _normalize(n: int, total: int) -> Callable[[], None]:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    from ingest import SPANS_PER_REQUEST
    from spanmeter.ingest.extract import RESOURCE_WANTED, wanted_attributes

    try:
        normalize = importlib.import_module("spanmeter.normalise").normalize
    except ModuleNotFoundError:  # an older tree, whose normaliser sat in semantic_conventions
        normalize = importlib.import_module("spanmeter.semantic_conventions").normalize
    requests = _requests(total, ExportTraceServiceRequest.FromString)
    hasher = _pipeline()._hasher
    versioned = "scope_version" in inspect.signature(normalize).parameters
    calls = []
    for request in requests:
        for resource_spans in request.resource_spans:
            resource = wanted_attributes(resource_spans.resource.attributes, RESOURCE_WANTED)
            for scope_spans in resource_spans.scope_spans:
                scope = scope_spans.scope
                for span in scope_spans.spans:
                    kwargs = {
                        "span_name": span.name,
                        "start_time_ns": span.start_time_unix_nano,
                        "end_time_ns": span.end_time_unix_nano,
                        "status_code": span.status.code,
                        "scope_name": scope.name,
                        "user_id_hasher": hasher,
                    }
                    if versioned:  # an older tree's normalize has no scope_version
                        kwargs["scope_version"] = scope.version
                    calls.append((wanted_attributes(span.attributes), resource, kwargs))
    warm, calls = calls[:SPANS_PER_REQUEST], calls[SPANS_PER_REQUEST : SPANS_PER_REQUEST + n]
    for attributes, resource, kwargs in warm:
        normalize(attributes, resource, **kwargs)

    def run() -> None:
        for attributes, resource, kwargs in calls:
            normalize(attributes, resource, **kwargs)

    return run


def _pipeline_rows(n: int, total: int) -> Callable[[], None]:
    from ingest import SPANS_PER_REQUEST

    requests = _requests(total)
    pipeline = _pipeline()
    pipeline._rows(requests[0], 1)  # warm
    measured = requests[1 : 1 + n // SPANS_PER_REQUEST]

    def run() -> None:
        for request in measured:
            pipeline._rows(request, 1)

    return run


def _store_write(n: int, total: int) -> Callable[[], None]:
    import pickle

    from ingest import SPANS_PER_REQUEST
    from spanmeter.store import SQLiteStore
    from spanmeter.store.rows import row_from_values

    per_transaction = 8192 // SPANS_PER_REQUEST
    requests = _requests(total + 8192)
    pipeline = _pipeline()
    messages = [pickle.dumps((1, pipeline._rows(request, 1)[0])) for request in requests]
    store = SQLiteStore(Path(tempfile.mkdtemp(), "bench.db"))

    def write(received: list[bytes]) -> None:
        # as the store process does: unpickle, rebuild the rows, one transaction a group
        for start in range(0, len(received), per_transaction):
            group = [pickle.loads(message)[1] for message in received[start : start + per_transaction]]
            rows = [[row_from_values(values) for values in batch] for batch in group]
            if hasattr(store, "write_received_batches"):
                store.write_received_batches(rows, group)
            else:  # a tree from before the fast path had its own name (an A/B against it)
                store.write_batches(rows, group)  # type: ignore[call-arg]

    write(messages[:per_transaction])  # warm, and a store that is not empty
    measured = messages[per_transaction : per_transaction + n // SPANS_PER_REQUEST]
    return lambda: write(measured)


SCENARIOS: dict[str, Callable[[int, int], Callable[[], None]]] = {
    "processor-export": _processor_export,
    "normalize": _normalize,
    "pipeline-rows": _pipeline_rows,
    "store-write": _store_write,
}


SERVER_SIDE = frozenset({"normalize", "pipeline-rows", "store-write"})
"""Scenarios that run in ``spanmeter serve``'s processes, whose collector is tuned at start
(``tune_gc``: start-up objects frozen, the young generation collected every 20,000
allocations); the processor's scenario keeps an app's default collector."""


def _child(scenario: str, n: int, total: int) -> None:
    sys.path.insert(0, str(HERE))
    import gc

    run = SCENARIOS[scenario](n, total)
    if scenario in SERVER_SIDE:
        from spanmeter.service.maintenance import tune_gc

        tune_gc()
    else:
        gc.collect()
    run()


# --- the driver ----------------------------------------------------------------------------


def _instructions(scenario: str, n: int, total: int, src: Path) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp, "callgrind.out")
        env = {**os.environ, "PYTHONHASHSEED": "0", "PYTHONPATH": str(src)}
        command = [
            "valgrind",
            "--tool=callgrind",
            f"--callgrind-out-file={out}",
            sys.executable,
            str(Path(__file__).resolve()),
            "--child",
            scenario,
            str(n),
            str(total),
        ]
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
        found = re.search(r"Collected : (\d+)", done.stderr)
        if found is None:
            raise RuntimeError(f"no instruction count from valgrind:\n{done.stderr[-2000:]}")
        return int(found.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("scenarios", nargs="*", help=f"any of {', '.join(SCENARIOS)} (default: all)")
    parser.add_argument("--ab", type=Path, help="another tree's src, measured too (A)")
    parser.add_argument(
        "--src", type=Path, default=THIS_SRC, help="the tree measured as B (default: this one)"
    )
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        scenario, n, total = args.child
        _child(scenario, int(n), int(total))
        return
    unknown = set(args.scenarios) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenarios: {', '.join(sorted(unknown))}")
    trees = [("A", args.ab.resolve()), ("B", args.src.resolve())] if args.ab else [("B", args.src.resolve())]
    print("instructions per span (callgrind), (Ir(n2) - Ir(n1)) / (n2 - n1)")
    for scenario in args.scenarios or list(SCENARIOS):
        n1, n2 = SIZES[scenario]
        figures = []
        for name, src in trees:
            per_span = (_instructions(scenario, n2, n2, src) - _instructions(scenario, n1, n2, src)) / (
                n2 - n1
            )
            figures.append(per_span)
            print(f"  {scenario:<18} {name:<10} {per_span:>10,.0f}", flush=True)
        if len(figures) == 2:
            print(
                f"  {scenario:<18} {'B - A':<10} {figures[1] - figures[0]:>+10,.0f} ({figures[1] / figures[0] - 1:+.1%})"
            )


if __name__ == "__main__":
    main()
