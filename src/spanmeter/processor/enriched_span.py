"""A finished span whose cost attributes are computed when they are first read.

Why lazy: in the Python SDK a span's attributes are frozen before ``_on_ending`` runs, so
cost cannot be set on the live span; it has to travel on a copy. Building that copy and
pricing it costs several microseconds, and ``on_end`` runs on the app's request thread.
This class makes the copy almost free (a few field assignments) and defers the real
work (normalise, price, merge) to the first read of ``attributes``, which for a
``BatchSpanProcessor`` delegate happens on the exporter's background thread.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.util import types

__all__ = ["EnrichedSpan"]

_logger = logging.getLogger(__name__)

Enrich = Callable[[ReadableSpan], "dict[str, Any] | None"]


class EnrichedSpan(ReadableSpan):
    """Read-only view of ``span`` with the attributes ``enrich(span)`` returns merged in."""

    def __init__(self, span: ReadableSpan, enrich: Enrich) -> None:
        source_fields = getattr(span, "__dict__", None)
        if source_fields is not None and type(span) is ReadableSpan:
            # The SDK hands on_end a fresh ReadableSpan snapshot: copying its fields in
            # one dict update is ~3x cheaper than the keyword constructor. Its
            # ``_attributes`` entry is shadowed by the lazy property below.
            self.__dict__.update(source_fields)
        else:
            super().__init__(
                name=span.name,
                context=span.context,
                parent=span.parent,
                resource=span.resource,
                attributes=None,
                events=span.events,
                links=span.links,
                kind=span.kind,
                status=span.status,
                start_time=span.start_time,
                end_time=span.end_time,
                instrumentation_scope=span.instrumentation_scope,
            )
        self._source = span
        self._enrich: Enrich | None = enrich
        self._merged: types.Attributes = None

    @property
    def _attributes(self) -> types.Attributes:  # pyright: ignore[reportIncompatibleVariableOverride]
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

    @_attributes.setter
    def _attributes(self, value: types.Attributes) -> None:
        # ReadableSpan.__init__ assigns None; the real value is computed lazily.
        pass

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
    def source(self) -> ReadableSpan:
        """The original span, as the app's tracer finished it."""
        return self._source
