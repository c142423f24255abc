"""Self-observability of ingest, exposed on ``/metrics`` in Prometheus format.

Each receiver owns its own ``CollectorRegistry`` (not the process-global one), so several
receivers can run in one process (tests) and nothing else in the process leaks into the
exposition. Counters are monotonic and reset on restart; Prometheus' ``rate()`` and
``increase()`` handle resets.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["IngestMetrics"]


class IngestMetrics:
    """The ingest counters, gauges and histograms of one receiver."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        r = self.registry
        self.spans_received = self._counter(
            "spanmeter_spans_received", "Spans received in OTLP exports (all kinds)."
        )
        self.spans_non_genai = self._counter(
            "spanmeter_spans_non_genai", "Spans skipped because they are not GenAI spans."
        )
        self.spans_not_billable = self._counter(
            "spanmeter_spans_not_billable",
            "GenAI spans skipped because their usage is the sum of child spans (counted there).",
        )
        self._pricing = self._counter(
            "spanmeter_spans_genai",
            "GenAI spans received, by pricing status (priced, reported, or the reason they are unpriced).",
            ("pricing_status",),
        )
        self.spans_stored = self._counter("spanmeter_spans_stored", "GenAI spans committed to the store.")
        self.spans_duplicate = self._counter(
            "spanmeter_spans_duplicate",
            "GenAI spans received again (same trace and span id) and counted once.",
        )
        self.spans_rejected = self._counter(
            "spanmeter_spans_rejected", "Spans rejected (reported as partial success)."
        )
        self.throttled = self._counter(
            "spanmeter_exports_throttled", "Exports answered with a retryable throttling status."
        )
        self.rate_limited_spans = Counter(
            "spanmeter_ingest_rate_limited_spans",
            "Spans refused (429 / RESOURCE_EXHAUSTED, for the exporter to resend) because their"
            " ingest key was over its rate limit, by key name.",
            ["key"],
            registry=r,
        )
        self.export_latency = Histogram(
            "spanmeter_export_duration_seconds",
            "Time from decoded export to durable commit.",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
            registry=r,
        )
        self.queue_depth = Gauge(
            "spanmeter_ingest_queue_rows", "Rows waiting for the store's group commit.", registry=r
        )
        self._status_children: dict[str, Counter] = {}

    def _counter(self, name: str, documentation: str, labels: tuple[str, ...] = ()) -> Counter:
        """A counter in this receiver's own registry."""
        return Counter(name, documentation, labels, registry=self.registry)

    def count_pricing_many(self, counts: Mapping[str, int]) -> None:
        """Count GenAI spans by pricing status, once per request rather than per span."""
        for status, count in counts.items():
            child = self._status_children.get(status)
            if child is None:
                child = self._status_children[status] = self._pricing.labels(pricing_status=status)
            child.inc(count)

    def count_rate_limited(self, key: str, spans: int) -> None:
        """Count one export refused for its key's rate limit (also a throttled export)."""
        self.rate_limited_spans.labels(key=key).inc(spans)
        self.throttled.inc()

    def track_queue(self, depth: Callable[[], float]) -> None:
        """Report the store queue depth at scrape time."""
        self.queue_depth.set_function(depth)
