"""A ``BatchSpanProcessor`` that counts the spans it drops and logs that once.

The SDK's processor drops the oldest span when its queue is full and logs a warning *per
dropped span*; with a receiver down under load that is thousands of log lines a second on
the app's own logger. This subclass checks the queue first, drops the new span instead,
counts it and logs once per outage.
"""

from __future__ import annotations

import logging
from collections.abc import Sized
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter

__all__ = ["CountingBatchSpanProcessor"]

_logger = logging.getLogger(__name__)


class CountingBatchSpanProcessor(BatchSpanProcessor):
    """BatchSpanProcessor with a bounded queue, a drop counter and one log line per outage."""

    def __init__(
        self,
        exporter: SpanExporter,
        *,
        max_queue_size: int = 2048,
        schedule_delay_millis: float = 1000,
        max_export_batch_size: int = 512,
    ) -> None:
        super().__init__(
            exporter,
            max_queue_size=max_queue_size,
            schedule_delay_millis=schedule_delay_millis,
            max_export_batch_size=max_export_batch_size,
        )
        self._max_queue = max_queue_size
        self.dropped_spans = 0
        self._warned = False
        # The queue lives in the SDK's private BatchProcessor. Reading its length is the
        # only way to avoid the per-span warning; if a future SDK moves it, we fall back
        # to the SDK's own behaviour rather than break.
        inner: Any = getattr(self, "_batch_processor", None)
        queue = getattr(inner, "_queue", None)
        self._queue: Sized | None = queue if isinstance(queue, Sized) else None

    def on_end(self, span: ReadableSpan) -> None:
        queue = self._queue
        if queue is not None and len(queue) >= self._max_queue:
            self.dropped_spans += 1
            if not self._warned:
                self._warned = True
                _logger.warning("spanmeter: span queue full, dropping spans (counted, logged once)")
            return
        if self._warned and queue is not None and len(queue) < self._max_queue // 2:
            self._warned = False
        super().on_end(span)
