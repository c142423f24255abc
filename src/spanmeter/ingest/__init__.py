"""Ingest: decoded OTLP requests become priced, deduplicated, stored GenAI rows."""

from __future__ import annotations

from .extract import ExtractedSpan, any_value, iter_spans, wanted_attributes
from .metrics import IngestMetrics
from .pipeline import IngestPipeline
from .sink import LocalRowSink, RowSink

__all__ = [
    "ExtractedSpan",
    "IngestMetrics",
    "IngestPipeline",
    "LocalRowSink",
    "RowSink",
    "any_value",
    "iter_spans",
    "wanted_attributes",
]
