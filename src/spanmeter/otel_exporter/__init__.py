"""One line (or environment variables only) to send attributed, priced spans to spanmeter."""

from __future__ import annotations

from .batch import CountingBatchSpanProcessor
from .configure import SpanmeterPipeline, configure
from .entry_points import SpanmeterConfigurator, SpanmeterSpanExporter
from .exporters import make_guarded_exporter
from .guarded import ExportStats, GuardedSpanExporter, parse_retry_after

__all__ = [
    "CountingBatchSpanProcessor",
    "ExportStats",
    "GuardedSpanExporter",
    "SpanmeterConfigurator",
    "SpanmeterPipeline",
    "SpanmeterSpanExporter",
    "configure",
    "make_guarded_exporter",
    "parse_retry_after",
]
