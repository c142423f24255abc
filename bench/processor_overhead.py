"""Microseconds CostSpanProcessor adds on the app's thread, against a bare BatchSpanProcessor.

Run: ``python bench/processor_overhead.py [--spans 20000] [--repeats 7]``

Every configuration is measured in the same run, interleaved in a shuffled order with a
garbage collection before each, and the median of the repeats is reported (these machines are noisy; compare within one run, by difference).
Spans are made in bursts of 1,000 with the batch worker asleep (queue and batch size
larger than a burst), so the timed loop measures only the app's thread; each burst's
export is timed separately, with an exporter that reads every span's attributes as an OTLP encoder would,
which is where spanmeter's pricing runs.
"""

from __future__ import annotations

import argparse
import gc
import itertools
import random
import statistics
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from spanmeter import attribution
from spanmeter.processor import CostSpanProcessor, current_attribution

GENAI_ATTRIBUTES = {  # 14 attributes + the response id, as the official OpenAI instrumentation sets them
    "gen_ai.operation.name": "chat",
    "gen_ai.provider.name": "openai",
    "gen_ai.request.model": "gpt-4o-mini",
    "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
    "gen_ai.response.finish_reasons": ("stop",),
    "gen_ai.usage.input_tokens": 1200,
    "gen_ai.usage.output_tokens": 300,
    "gen_ai.usage.cache_read.input_tokens": 1024,
    "gen_ai.request.temperature": 0.2,
    "gen_ai.request.max_tokens": 512,
    "server.address": "api.openai.com",
    "server.port": 443,
    "openai.response.system_fingerprint": "fp_123",
    "gen_ai.request.stream": False,
}
PLAIN_ATTRIBUTES = {f"http.attr_{i}": f"value-{i}" for i in range(15)}


class ReadingExporter(SpanExporter):
    """Touches every attribute, like the OTLP encoder, so lazy enrichment is paid here."""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        for span in spans:
            for _ in (span.attributes or {}).items():
                pass
        return SpanExportResult.SUCCESS


class StampFromScope(SpanProcessor):
    """What an app pays to put the same dimensions on its spans without spanmeter:
    read them from context and ``set_attributes`` in ``on_start`` (like the contrib
    BaggageSpanProcessor does)."""

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        dimensions = current_attribution(parent_context)
        if dimensions:
            span.set_attributes(dimensions)


def make_provider(wrap: bool, burst: int, stamp: bool = False) -> tuple[TracerProvider, SpanProcessor]:
    batch = BatchSpanProcessor(
        ReadingExporter(),
        max_queue_size=burst + 1,
        max_export_batch_size=burst + 1,
        schedule_delay_millis=3_600_000,
    )
    processor: SpanProcessor = CostSpanProcessor(batch) if wrap else batch
    provider = TracerProvider()
    if stamp:
        provider.add_span_processor(StampFromScope())
    provider.add_span_processor(processor)
    return provider, processor


def run_once(
    wrap: bool,
    attributes: dict[str, object],
    spans: int,
    scope: Callable[[], AbstractContextManager[object]],
    burst: int = 1000,
    stamp: bool = False,
) -> tuple[float, float]:
    """(µs per span on the app's thread, µs per span on the export thread).

    Spans are made in bursts of ``burst`` (a real batch queue holds at most 2,048 and is
    flushed every second); each burst is flushed outside the app-thread timing.
    """
    provider, processor = make_provider(wrap, burst, stamp)
    tracer = provider.get_tracer("bench")
    # every call has its own response id, set once the response is in (as instrumentations
    # do): one id for all would make every span after the first a duplicate of one call
    genai = "gen_ai.provider.name" in attributes
    ids = itertools.count()
    gc.collect()  # the previous configuration's garbage must not be collected in this one's timing
    app = export = 0.0
    with scope():
        for _ in range(max(spans // burst, 1)):
            start = time.perf_counter()
            for _ in range(burst):
                with tracer.start_as_current_span("chat gpt-4o-mini", attributes=attributes) as span:
                    if genai:
                        span.set_attribute("gen_ai.response.id", f"chatcmpl-{next(ids)}")
            app += time.perf_counter() - start
            start = time.perf_counter()
            processor.force_flush()
            export += time.perf_counter() - start
    provider.shutdown()
    done = max(spans // burst, 1) * burst
    return app / done * 1e6, export / done * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()

    def scoped() -> AbstractContextManager[object]:
        return attribution(
            endpoint_tag="checkout.ai_summary", tenant_id="t_1", user_id="u_1", prompt_version="v3"
        )

    Case = tuple[bool, dict[str, object], Callable[[], AbstractContextManager[object]], bool]
    cases: dict[str, Case] = {
        "bare BSP, GenAI span": (False, GENAI_ATTRIBUTES, nullcontext, False),
        "CostSpanProcessor, GenAI span": (True, GENAI_ATTRIBUTES, nullcontext, False),
        "bare BSP, non-GenAI span": (False, PLAIN_ATTRIBUTES, nullcontext, False),
        "CostSpanProcessor, non-GenAI span": (True, PLAIN_ATTRIBUTES, nullcontext, False),
        "bare BSP + app stamps 4 dims, GenAI span in scope": (False, GENAI_ATTRIBUTES, scoped, True),
        "CostSpanProcessor, GenAI span in attribution scope": (True, GENAI_ATTRIBUTES, scoped, False),
    }
    run_once(True, GENAI_ATTRIBUTES, 2000, nullcontext)  # warm caches and price resolution
    app: dict[str, list[float]] = {name: [] for name in cases}
    export: dict[str, list[float]] = {name: [] for name in cases}
    order = list(cases)
    shuffler = random.Random(1)
    for _ in range(args.repeats):
        shuffler.shuffle(order)  # no configuration always runs after the same one
        for name in order:
            wrap, attributes, scope, stamp = cases[name]
            a, e = run_once(wrap, attributes, args.spans, scope, stamp=stamp)
            app[name].append(a)
            export[name].append(e)
    median = {name: statistics.median(values) for name, values in app.items()}
    export_median = {name: statistics.median(values) for name, values in export.items()}
    print(f"{args.spans} spans x {args.repeats} repeats, median µs per span")
    print(f"{'configuration':<54}{'app thread':>12}{'export thread':>15}")
    for name in cases:
        print(f"{name:<54}{median[name]:>12.2f}{export_median[name]:>15.2f}")
    print()
    comparisons = {
        "GenAI span": ("CostSpanProcessor, GenAI span", "bare BSP, GenAI span"),
        "non-GenAI span": ("CostSpanProcessor, non-GenAI span", "bare BSP, non-GenAI span"),
        "in scope, vs app stamping itself": (
            "CostSpanProcessor, GenAI span in attribution scope",
            "bare BSP + app stamps 4 dims, GenAI span in scope",
        ),
    }
    for kind, (ours, base) in comparisons.items():
        added = median[ours] - median[base]
        moved = export_median[ours] - export_median[base]
        ratio = median[ours] / median[base]
        print(
            f"added on the app thread, {kind:<34}{added:>7.2f} µs  (x{ratio:.3f})"
            f"  export thread +{moved:.2f} µs"
        )


if __name__ == "__main__":
    main()
