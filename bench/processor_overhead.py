"""Microseconds CostSpanProcessor adds on the app's thread, against a bare BatchSpanProcessor.

Run: ``python bench/processor_overhead.py [--spans 20000] [--repeats 7]``

Every configuration is measured in the same run, interleaved, and the median of the
repeats is reported (these machines are noisy; compare within one run, by difference).
The batch worker is kept asleep during the timed loop (queue and batch size larger than
the loop), so the loop measures only the app's thread; the export that follows is timed
separately, with an exporter that reads every span's attributes as an OTLP encoder would,
which is where spanmeter's pricing runs.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext

from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from spanmeter import attribution
from spanmeter.processor import CostSpanProcessor

GENAI_ATTRIBUTES = {  # 15 attributes, as the official OpenAI instrumentation sets them
    "gen_ai.operation.name": "chat",
    "gen_ai.provider.name": "openai",
    "gen_ai.request.model": "gpt-4o-mini",
    "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
    "gen_ai.response.id": "chatcmpl-123",
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


def make_provider(wrap: bool, spans: int) -> tuple[TracerProvider, SpanProcessor]:
    batch = BatchSpanProcessor(
        ReadingExporter(),
        max_queue_size=spans + 1,
        max_export_batch_size=spans + 1,
        schedule_delay_millis=3_600_000,
    )
    processor: SpanProcessor = CostSpanProcessor(batch) if wrap else batch
    provider = TracerProvider()
    provider.add_span_processor(processor)
    return provider, processor


def run_once(
    wrap: bool, attributes: dict[str, object], spans: int, scope: Callable[[], AbstractContextManager[object]]
) -> tuple[float, float]:
    """(µs per span on the app's thread, µs per span on the export thread)."""
    provider, processor = make_provider(wrap, spans)
    tracer = provider.get_tracer("bench")
    with scope():
        start = time.perf_counter()
        for _ in range(spans):
            with tracer.start_as_current_span("chat gpt-4o-mini", attributes=attributes):
                pass
        app = time.perf_counter() - start
    start = time.perf_counter()
    processor.force_flush()
    export = time.perf_counter() - start
    provider.shutdown()
    return app / spans * 1e6, export / spans * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()

    def scoped() -> AbstractContextManager[object]:
        return attribution(
            endpoint_tag="checkout.ai_summary", tenant_id="t_1", user_id="u_1", prompt_version="v3"
        )

    cases: dict[str, tuple[bool, dict[str, object], Callable[[], AbstractContextManager[object]]]] = {
        "bare BSP, GenAI span": (False, GENAI_ATTRIBUTES, nullcontext),
        "CostSpanProcessor, GenAI span": (True, GENAI_ATTRIBUTES, nullcontext),
        "bare BSP, non-GenAI span": (False, PLAIN_ATTRIBUTES, nullcontext),
        "CostSpanProcessor, non-GenAI span": (True, PLAIN_ATTRIBUTES, nullcontext),
        "bare BSP, GenAI span in attribution scope": (False, GENAI_ATTRIBUTES, scoped),
        "CostSpanProcessor, GenAI span in attribution scope": (True, GENAI_ATTRIBUTES, scoped),
    }
    run_once(True, GENAI_ATTRIBUTES, 2000, nullcontext)  # warm caches and price resolution
    app: dict[str, list[float]] = {name: [] for name in cases}
    export: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(args.repeats):
        for name, (wrap, attributes, scope) in cases.items():
            a, e = run_once(wrap, attributes, args.spans, scope)
            app[name].append(a)
            export[name].append(e)
    median = {name: statistics.median(values) for name, values in app.items()}
    export_median = {name: statistics.median(values) for name, values in export.items()}
    print(f"{args.spans} spans x {args.repeats} repeats, median µs per span")
    print(f"{'configuration':<52}{'app thread':>12}{'export thread':>15}")
    for name in cases:
        print(f"{name:<52}{median[name]:>12.2f}{export_median[name]:>15.2f}")
    print()
    for kind in ("GenAI span", "non-GenAI span", "GenAI span in attribution scope"):
        added = median[f"CostSpanProcessor, {kind}"] - median[f"bare BSP, {kind}"]
        moved = export_median[f"CostSpanProcessor, {kind}"] - export_median[f"bare BSP, {kind}"]
        ratio = median[f"CostSpanProcessor, {kind}"] / median[f"bare BSP, {kind}"]
        print(
            f"added on the app thread, {kind:<34}{added:>7.2f} µs  (x{ratio:.3f})"
            f"  export thread +{moved:.2f} µs"
        )


if __name__ == "__main__":
    main()
