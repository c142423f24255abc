"""A span exporter that backs off instead of hammering a receiver that is down or busy.

The OTLP exporters already retry inside one export call. What they do not do is remember
across calls: with the endpoint down, every batch costs a full timeout of retries and an
error log line. ``GuardedSpanExporter`` adds that memory:

* after a failed export it *pauses*: batches arriving during the pause are dropped at once
  (no network, no log line, counted), so the exporter thread, the batch queue and memory
  stay bounded and the app never waits;
* the pause honours the receiver's ``Retry-After`` (HTTP 429/503) when one was seen,
  otherwise grows exponentially (1 s, 2 s, 4 s... up to ``max_pause_s``);
* the first success ends the pause and resets the backoff;
* a refusal of the API key (HTTP 401/403) is logged once with the receiver's own message,
  which names the scope needed (the OTLP exporter alone logs the status code only).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from email.utils import parsedate_to_datetime
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

__all__ = ["ExportStats", "GuardedSpanExporter", "parse_retry_after"]

_logger = logging.getLogger(__name__)


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delay-seconds or HTTP-date)."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        return max(when.timestamp() - (time.time() if now is None else now), 0.0)
    return seconds if seconds >= 0 and seconds == seconds and seconds != float("inf") else None


def _status_message(body: bytes) -> str:
    """The message of an OTLP/HTTP error body (a ``google.rpc.Status``), or ''."""
    from google.rpc.status_pb2 import Status  # the OTLP exporters depend on googleapis-common-protos

    try:
        return Status.FromString(body[:4096]).message[:300]
    except Exception:  # not a Status (a proxy's page): the status code will do
        return ""


class ExportStats:
    """Counters of a guarded exporter (read them; they only grow)."""

    __slots__ = ("dropped_spans", "exported_spans", "failed_exports", "failed_spans", "throttled_responses")

    def __init__(self) -> None:
        self.exported_spans = 0
        self.failed_spans = 0
        """Spans in batches the inner exporter gave up on."""
        self.dropped_spans = 0
        """Spans dropped without an attempt because the exporter was pausing."""
        self.failed_exports = 0
        self.throttled_responses = 0
        """HTTP 429/503 answers seen."""

    def as_dict(self) -> dict[str, int]:
        """All counters by name."""
        return {name: getattr(self, name) for name in self.__slots__}


class GuardedSpanExporter(SpanExporter):
    """Wraps an exporter with failure memory: pause, drop and count while it is failing."""

    def __init__(
        self,
        inner: SpanExporter,
        *,
        initial_pause_s: float = 1.0,
        max_pause_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Create the guard.

        Args:
            inner: The real exporter (OTLP gRPC or HTTP).
            initial_pause_s: Pause after the first failure.
            max_pause_s: Upper bound of the exponential pause and of a Retry-After.
            clock: Monotonic clock (tests inject one).
        """
        if initial_pause_s <= 0 or max_pause_s < initial_pause_s:
            raise ValueError("need 0 < initial_pause_s <= max_pause_s")
        self._inner = inner
        self._initial = initial_pause_s
        self._max = max_pause_s
        self._clock = clock
        self._lock = threading.Lock()
        self._paused_until = 0.0
        self._next_pause = initial_pause_s
        self._retry_after: float | None = None
        self._logged_pause = False
        self.stats = ExportStats()
        self.last_refusal: str | None = None
        """The last 401/403 answer, ``HTTP 403: <the receiver's message>`` (None: none seen)."""

    @property
    def inner(self) -> SpanExporter:
        """The wrapped exporter."""
        return self._inner

    def observe_response(self, status_code: int, retry_after: str | None, body: bytes = b"") -> None:
        """Tell the guard about an HTTP answer (used by the requests response hook)."""
        if status_code in (429, 503):
            with self._lock:
                self.stats.throttled_responses += 1
                self._retry_after = parse_retry_after(retry_after)
        elif status_code in (401, 403):
            refusal = f"HTTP {status_code}: {_status_message(body) or 'refused'}"
            if refusal != self.last_refusal:  # once per distinct answer, not per batch
                _logger.warning(
                    "spanmeter: the receiver refused the export: %s (send an ingest key: "
                    "configure(api_key=...) or SPANMETER_API_KEY)",
                    refusal,
                )
            self.last_refusal = refusal

    def requests_hook(self) -> Callable[..., Any]:
        """A ``requests`` response hook that feeds :meth:`observe_response`."""

        def hook(response: Any, *args: Any, **kwargs: Any) -> Any:
            try:
                status = int(response.status_code)
                body = response.content if status in (401, 403) else b""
                self.observe_response(status, response.headers.get("Retry-After"), body)
            except Exception:  # a hook must never break the export
                _logger.debug("spanmeter: could not read response", exc_info=True)
            return response

        return hook

    def paused_for(self) -> float:
        """Seconds left in the current pause (0 when exporting normally)."""
        return max(self._paused_until - self._clock(), 0.0)

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        now = self._clock()
        if now < self._paused_until:
            self.stats.dropped_spans += len(spans)
            return SpanExportResult.FAILURE
        try:
            result = self._inner.export(spans)
        except Exception:  # an exporter bug must not kill the batch thread
            _logger.exception("spanmeter: span exporter raised")
            result = SpanExportResult.FAILURE
        with self._lock:
            if result is SpanExportResult.SUCCESS:
                self.stats.exported_spans += len(spans)
                if self._paused_until:
                    _logger.info("spanmeter: export endpoint is back")
                self._paused_until = 0.0
                self._next_pause = self._initial
                self._retry_after = None
                self._logged_pause = False
                return result
            self.stats.failed_exports += 1
            self.stats.failed_spans += len(spans)
            pause = self._next_pause
            if self._retry_after is not None:
                pause = max(self._retry_after, self._initial)
                self._retry_after = None
            pause = min(pause, self._max)
            self._paused_until = self._clock() + pause
            self._next_pause = min(self._next_pause * 2, self._max)
            if not self._logged_pause:
                self._logged_pause = True
                _logger.warning(
                    "spanmeter: export failed; pausing %.1fs and dropping spans meanwhile (counted)", pause
                )
        return result

    def shutdown(self) -> None:
        self._inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self._inner.force_flush(timeout_millis)
