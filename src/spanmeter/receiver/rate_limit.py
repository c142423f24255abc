"""Per-key ingest rate limits: a token bucket of spans per ingest key.

A key made with ``spanmeter keys create --scope ingest --rate-limit N`` may export ``N`` spans
a second on average, with bursts of up to :data:`BURST_S` seconds' worth. A request that does
not fit is refused whole, before the pipeline sees it (nothing of it is stored), with a
retryable answer saying when it would fit (:class:`~spanmeter.receiver.contract.RateLimited`:
HTTP 429 + ``Retry-After``, gRPC ``RESOURCE_EXHAUSTED`` + ``RetryInfo``); the exporter keeps
the batch and sends it again then.

The check runs after decoding: OTLP carries no span count outside the message, and decoding
is what the receiver does with every request anyway; counting the spans of a decoded
request is a walk over its scope lists only. A key without a limit (and a request while
authentication is off) costs one attribute read. Buckets live in each receiver process:
replicas behind a load balancer each allow the key's rate.

A single request larger than the bucket would never fit; it is admitted when the bucket is
full and leaves it in debt, so the key's average rate still holds.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from spanmeter.receiver.contract import RateLimited

__all__ = ["BURST_S", "RateLimiter", "count_spans"]

BURST_S: Final = 1.0
"""A bucket holds this many seconds of a key's rate: an exporter's batch of up to one
second's worth goes through at once after a pause."""


def count_spans(request: Any) -> int:
    """The spans in a decoded ``ExportTraceServiceRequest`` (or its wire-format twin)."""
    return sum(len(scope.spans) for resource in request.resource_spans for scope in resource.scope_spans)


@dataclass(slots=True)
class _Bucket:
    rate: float
    tokens: float
    updated: float


class RateLimiter:
    """The ``admit`` check of the OTLP transports (:data:`~spanmeter.receiver.contract.Admit`).

    Args:
        default_rate: Spans/s for ingest keys without a limit of their own; None: unlimited.
        on_refused: Called with the key's name and the refused request's span count (the
            ``/metrics`` counter).
        clock: Monotonic seconds (tests move it).
    """

    def __init__(
        self,
        *,
        default_rate: int | None = None,
        on_refused: Callable[[str, int], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if default_rate is not None and default_rate <= 0:
            raise ValueError(f"a rate limit must be positive, got {default_rate!r}")
        self._default = default_rate
        self._on_refused = on_refused
        self._clock = clock
        self._lock = threading.Lock()
        self._buckets: dict[str, _Bucket] = {}

    def __call__(self, caller: Any, request: Any) -> None:
        """Admit ``request`` from ``caller`` (an :class:`~spanmeter.auth.Identity`, or None
        while authentication is off), or raise :class:`RateLimited`."""
        if caller is None:
            return
        rate: int | None = getattr(caller, "rate_limit", None) or self._default
        if rate is None:
            return
        name = str(caller.name)
        spans = count_spans(request)
        wait = self.take(name, rate, spans)
        if wait > 0:
            if self._on_refused is not None:
                self._on_refused(name, spans)
            raise RateLimited(
                f"API key {name!r} is over its rate limit of {rate} spans/s; retry in {wait:.1f} s",
                retry_after_s=wait,
            )

    def take(self, name: str, rate: float, spans: int) -> float:
        """Take ``spans`` tokens from ``name``'s bucket: 0.0 when they were taken, else the
        seconds until they would be there (nothing taken)."""
        capacity = rate * BURST_S
        now = self._clock()
        with self._lock:
            bucket = self._buckets.get(name)
            if bucket is None:
                bucket = self._buckets[name] = _Bucket(rate, capacity, now)
            else:
                if bucket.rate != rate:  # the key was made again with another limit
                    bucket.rate = rate
                bucket.tokens = min(capacity, bucket.tokens + (now - bucket.updated) * rate)
                bucket.updated = now
            needed = min(float(spans), capacity)
            if bucket.tokens >= needed:
                bucket.tokens -= spans  # a request over the capacity leaves the bucket in debt
                return 0.0
            return (needed - bucket.tokens) / rate
