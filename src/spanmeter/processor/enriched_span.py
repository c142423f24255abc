"""A finished span whose cost attributes are computed when they are first read.

Why lazy: in the Python SDK a span's attributes are frozen before ``_on_ending`` runs, so
cost cannot be set on the live span; it has to travel on a copy. Building that copy and
pricing it costs several microseconds, and ``on_end`` runs on the app's request thread.
This class makes the copy almost free and defers the real work (normalise, price, merge)
to the first read of ``attributes``, which for a ``BatchSpanProcessor`` delegate happens
on the exporter's background thread.

Why a slotted proxy rather than a field copy: spans wait in the batch queue for up to a
second, and every extra object alive there is more for the garbage collector to scan on
the app's thread. The proxy is one small object that forwards to the span it wraps.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from types import MappingProxyType
from typing import Any

from opentelemetry import trace as trace_api
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationInfo, InstrumentationScope
from opentelemetry.trace.status import Status
from opentelemetry.util import types

__all__ = ["EnrichedSpan"]

_logger = logging.getLogger(__name__)

Enrich = Callable[[ReadableSpan], "dict[str, Any] | None"]


class EnrichedSpan(ReadableSpan):
    """Read-only view of ``span`` with the attributes ``enrich(span)`` returns merged in."""

    __slots__ = ("_enrich", "_merged", "_source")

    def __init__(self, span: ReadableSpan, enrich: Enrich) -> None:
        # ReadableSpan.__init__ is deliberately not called: every property is forwarded.
        self._source = span
        self._enrich: Enrich | None = enrich
        self._merged: types.Attributes = None

    def _enriched(self) -> types.Attributes:
        enrich = self._enrich
        if enrich is not None:
            # Benign race: two readers may both compute; the results are identical.
            base = self._source.attributes or {}
            try:
                extra = enrich(self._source)
            except Exception:  # a pricing bug must not cost the span itself
                _logger.exception("spanmeter: enrichment failed; exporting the span without cost")
                extra = None
            self._merged = {**base, **extra} if extra else base
            self._enrich = None
        return self._merged

    @property
    def source(self) -> ReadableSpan:
        """The original span, as the app's tracer finished it."""
        return self._source

    @property
    def attributes(self) -> types.Attributes:
        merged = self._enriched()
        return merged if isinstance(merged, MappingProxyType) else MappingProxyType(merged or {})

    @property
    def dropped_attributes(self) -> int:
        return self._source.dropped_attributes

    @property
    def dropped_events(self) -> int:
        return self._source.dropped_events

    @property
    def dropped_links(self) -> int:
        return self._source.dropped_links

    @property
    def name(self) -> str:
        return self._source.name

    def get_span_context(self) -> trace_api.SpanContext | None:
        return self._source.get_span_context()

    @property
    def context(self) -> trace_api.SpanContext | None:
        return self._source.context

    @property
    def kind(self) -> trace_api.SpanKind:
        return self._source.kind

    @property
    def parent(self) -> trace_api.SpanContext | None:
        return self._source.parent

    @property
    def start_time(self) -> int | None:
        return self._source.start_time

    @property
    def end_time(self) -> int | None:
        return self._source.end_time

    @property
    def status(self) -> Status:
        return self._source.status

    @property
    def events(self) -> Sequence[Event]:
        return self._source.events

    @property
    def links(self) -> Sequence[trace_api.Link]:
        return self._source.links

    @property
    def resource(self) -> Resource:
        return self._source.resource

    @property
    def instrumentation_scope(self) -> InstrumentationScope | None:
        return self._source.instrumentation_scope

    @property
    def instrumentation_info(self) -> InstrumentationInfo | None:  # pyright: ignore[reportIncompatibleMethodOverride]
        return self._source.instrumentation_scope  # type: ignore[return-value]  # the deprecated alias

    def to_json(self, indent: int | None = 4) -> str:
        copy = ReadableSpan(
            name=self.name,
            context=self.context,
            parent=self.parent,
            resource=self.resource,
            attributes=self._enriched(),
            events=self.events,
            links=self.links,
            kind=self.kind,
            status=self.status,
            start_time=self.start_time,
            end_time=self.end_time,
            instrumentation_scope=self.instrumentation_scope,
        )
        return copy.to_json(indent)
