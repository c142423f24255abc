"""One stored row per GenAI attempt: what the receiver hands to any store.

A :class:`SpanRow` is built from the two things the pipeline already has for a span, the
normalised :class:`~spanmeter.normalise.record.GenAIRecord` and its
:class:`~spanmeter.pricing.result.PriceResult`, plus the ids and times only the transport
knows::

    row = SpanRow.from_record(
        record, price, trace_id=span.trace_id, span_id=span.span_id,
        received_at_ns=time.time_ns(), service_name="checkout",
    )

The row is flat and narrow on purpose (no attribute blobs): the store writes tens of
thousands of them a second, and every column costs on that path.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from operator import attrgetter
from typing import TYPE_CHECKING, Any, Final

from ..pricing.result import CostFields, cost_fields

if TYPE_CHECKING:
    from spanmeter.normalise.record import GenAIRecord, SpanOutcome
    from spanmeter.pricing.result import PriceResult

__all__ = [
    "DEFAULT_DATA_MODE",
    "FIELD_NAMES",
    "SPAN_ID_BYTES",
    "TRACE_ID_BYTES",
    "RowValues",
    "SpanRow",
    "priced_values",
    "record_values",
    "row_from_values",
    "row_values",
]

TRACE_ID_BYTES: Final = 16
"""Length of an OTLP trace id."""
SPAN_ID_BYTES: Final = 8
"""Length of an OTLP span id."""
DEFAULT_DATA_MODE: Final = "real"
"""Data mode of a span that does not say: production traffic unless marked otherwise."""


@dataclass(slots=True, kw_only=True)
class SpanRow:
    """One GenAI attempt as stored: identity, times, attribution, usage, cost and provenance.

    Mutable and unfrozen on purpose: a frozen dataclass pays an ``object.__setattr__`` per
    field at construction, and rows are built once per span on the ingest path.
    """

    trace_id: bytes
    """OTLP trace id, 16 bytes."""
    span_id: bytes
    """OTLP span id, 8 bytes. With ``trace_id`` and ``start_time_ns`` it identifies a
    delivery of the span (see the dedupe notes in :mod:`spanmeter.store.api`)."""
    start_time_ns: int
    """Span start, Unix ns; 0 when the span has none (OTLP's encoding of "unset")."""
    end_time_ns: int | None = None
    """Span end, Unix ns."""
    received_at_ns: int
    """When the receiver got the span, Unix ns. Stands in for the event time of spans
    without a start time."""
    service_name: str | None = None
    provider: str | None = None
    request_model: str | None = None
    response_model: str | None = None
    model: str | None = None
    """The model that was priced: the response model when reported, else the request model."""
    operation: str | None = None
    input_tokens: int | None = None
    """All input tokens, cache reads and writes included (OTel semantics)."""
    output_tokens: int | None = None
    """All output tokens, reasoning included."""
    cache_read_tokens: int | None = None
    cache_write_tokens: int | None = None
    reasoning_tokens: int | None = None
    endpoint_tag: str | None = None
    prompt_name: str | None = None
    prompt_version: str | None = None
    tenant_id: str | None = None
    user_id: str | None = None
    """Already hashed upstream; the store never sees a raw user id."""
    external_request_id: str | None = None
    """The app's id of the logical request; attempts sharing it are retries of one request."""
    data_mode: str = DEFAULT_DATA_MODE
    """``real``, ``test`` or ``demo``."""
    environment: str | None = None
    session_id: str | None = None
    outcome: SpanOutcome = "unknown"
    error_type: str | None = None
    latency_ms: float | None = None
    cost_nano_usd: int | None = None
    """Total cost in nano-USD; None when the attempt could not be priced (never a fake 0)."""
    input_cost_nano_usd: int | None = None
    output_cost_nano_usd: int | None = None
    cache_read_cost_nano_usd: int | None = None
    cache_write_cost_nano_usd: int | None = None
    reasoning_cost_nano_usd: int | None = None
    pricing_status: str = "no_usage"
    """A :class:`~spanmeter.pricing.result.PricingStatus` value."""
    pricing_source: str | None = None
    pricing_source_version: str | None = None
    pricing_provider: str | None = None
    pricing_model: str | None = None
    pricing_effective_date: str | None = None
    """ISO date (``YYYY-MM-DD``) from which the applied price was in force. Text rather than
    a ``date`` so that no implicit sqlite3 adapter (deprecated since Python 3.12) is needed."""
    billable: bool = True
    """False for outer spans whose usage repeats their children's: stored, never summed."""
    issues: str | None = None
    """Data-quality problems found while normalising, ``; ``-joined, or None."""
    response_id: str | None = None
    """The provider's id of the call (``gen_ai.response.id``), when the span carries one."""
    duplicate_of: str | None = None
    """Hex span id of the span that carries this call's cost, when this (not billable) span
    describes the same provider call (see :mod:`spanmeter.normalise.same_call`)."""
    not_billable_reason: str | None = None
    """Why this span of a provider call is not billable (``same_response_id``...)."""
    scope_name: str | None = None
    """Instrumentation scope that emitted the span (which instrumentation, for doctor)."""
    scope_version: str | None = None
    """Its version."""

    @property
    def event_time_ns(self) -> int:
        """The time the attempt is bucketed by: its start, or its arrival when it has none."""
        return self.start_time_ns if self.start_time_ns > 0 else self.received_at_ns

    @classmethod
    def from_record(
        cls,
        record: GenAIRecord,
        price: PriceResult,
        *,
        trace_id: bytes,
        span_id: bytes,
        received_at_ns: int,
        service_name: str | None = None,
    ) -> SpanRow:
        """Build the stored row of one normalised, priced span.

        Args:
            record: The normalised span.
            price: Its pricing result (amounts are None unless priced or reported).
            trace_id: 16-byte OTLP trace id.
            span_id: 8-byte OTLP span id.
            received_at_ns: Arrival time at the receiver, Unix ns.
            service_name: ``service.name`` of the emitting resource.

        Raises:
            ValueError: The ids do not have OTLP's lengths (they are the dedupe key, so a
                malformed id must not reach storage).
        """
        if len(trace_id) != TRACE_ID_BYTES or len(span_id) != SPAN_ID_BYTES:
            raise ValueError(
                f"trace_id must be {TRACE_ID_BYTES} bytes and span_id {SPAN_ID_BYTES} bytes, "
                f"got {len(trace_id)} and {len(span_id)}"
            )
        return row_from_values(record_values(record, price, trace_id, span_id, received_at_ns, service_name))


FIELD_NAMES: Final[tuple[str, ...]] = tuple(f.name for f in fields(SpanRow))
"""Field names in declaration order: the column order of every store."""

row_values: Final[Callable[[SpanRow], tuple[object, ...]]] = attrgetter(*FIELD_NAMES)
"""A row's values as a tuple in :data:`FIELD_NAMES` order.

``attrgetter`` does this in C, several times faster than ``dataclasses.astuple`` (which
deep-copies) on a path that runs once per stored span."""

RowValues = tuple[Any, ...]
"""A row as a plain tuple in :data:`FIELD_NAMES` order: what crosses a process boundary
(a tuple of ints, bytes and strings pickles in about a microsecond; a dataclass several)."""

# The two converters below are generated from FIELD_NAMES, as ``dataclasses`` generates
# ``__init__``: the column order then cannot drift from the class, and each runs as one
# flat function (a 45-keyword ``__init__`` call costs ~5 us a row, these well under 1 us).

# How each field is computed from (record, price, ids, arrival, service); every field of
# SpanRow must be listed here, which is checked when this module is imported.
_FROM_RECORD: Final[dict[str, str]] = {
    "trace_id": "trace_id",
    "span_id": "span_id",
    "start_time_ns": "start if start is not None and start > 0 else 0",
    "end_time_ns": "record.end_time_ns",
    "received_at_ns": "received_at_ns",
    "service_name": "service_name",
    "provider": "record.provider",
    "request_model": "record.request_model",
    "response_model": "record.response_model",
    "model": "record.response_model or record.request_model",
    "operation": "record.operation",
    "input_tokens": "record.input_tokens",
    "output_tokens": "record.output_tokens",
    "cache_read_tokens": "record.cache_read_tokens",
    "cache_write_tokens": "record.cache_write_tokens",
    "reasoning_tokens": "record.reasoning_tokens",
    "endpoint_tag": "record.endpoint_tag",
    "prompt_name": "record.prompt_name",
    "prompt_version": "record.prompt_version",
    "tenant_id": "record.tenant_id",
    "user_id": "record.user_id",
    "external_request_id": "record.external_request_id",
    "data_mode": "record.data_mode or DEFAULT_DATA_MODE",
    "environment": "record.environment",
    "session_id": "record.session_id",
    "outcome": "record.outcome",
    "error_type": "record.error_type",
    "latency_ms": "record.latency_ms",
    "cost_nano_usd": "cost[0]",
    "input_cost_nano_usd": "cost[1]",
    "output_cost_nano_usd": "cost[2]",
    "cache_read_cost_nano_usd": "cost[3]",
    "cache_write_cost_nano_usd": "cost[4]",
    "reasoning_cost_nano_usd": "cost[5]",
    "pricing_status": "cost[6]",
    "pricing_source": "cost[7]",
    "pricing_source_version": "cost[8]",
    "pricing_provider": "cost[9]",
    "pricing_model": "cost[10]",
    "pricing_effective_date": "cost[11]",
    "billable": "record.billable",
    "issues": '"; ".join(record.issues) if record.issues else None',
    "response_id": "record.response_id",
    "duplicate_of": "record.duplicate_of",
    "not_billable_reason": "record.not_billable_reason",
    "scope_name": "record.scope_name",
    "scope_version": "record.scope_version",
}


_COST_COLUMNS: Final = 12
"""Columns filled from a price's :data:`~spanmeter.pricing.result.CostFields`."""


def _generate() -> tuple[Callable[..., RowValues], Callable[[RowValues], SpanRow]]:
    mismatched = set(FIELD_NAMES) ^ set(_FROM_RECORD)
    if mismatched:  # a field added to SpanRow without saying how ingest fills it (or a stale one)
        raise RuntimeError(f"spanmeter.store.rows: fields and sources differ: {sorted(mismatched)}")
    sources = ", ".join(_FROM_RECORD[name] for name in FIELD_NAMES)
    # The cost columns are consecutive: one unpacking instead of twelve subscripts.
    sources = sources.replace(", ".join(f"cost[{i}]" for i in range(_COST_COLUMNS)), "*cost")
    if "cost[" in sources:  # pragma: no cover - a column moved out of the run
        raise RuntimeError("spanmeter.store.rows: the cost columns are no longer consecutive")
    values_src = (
        "def priced_values(record, cost, trace_id, span_id, received_at_ns, service_name):\n"
        "    start = record.start_time_ns\n"
        f"    return ({sources},)\n"
    )
    row_src = (
        "def row_from_values(values):\n"
        f"    ({', '.join(FIELD_NAMES)},) = values\n"
        "    row_ = new_(SpanRow_)\n"
        + "".join(f"    row_.{name} = {name}\n" for name in FIELD_NAMES)
        + "    return row_\n"
    )
    namespace: dict[str, Any] = {
        "DEFAULT_DATA_MODE": DEFAULT_DATA_MODE,
        "SpanRow_": SpanRow,
        "new_": object.__new__,
    }
    exec(values_src + row_src, namespace)  # the source is built above from field names only
    return namespace["priced_values"], namespace["row_from_values"]


_priced_values, _row_from_values = _generate()

priced_values: Final[Callable[[GenAIRecord, CostFields, bytes, bytes, int, str | None], RowValues]] = (
    _priced_values
)
"""``priced_values(record, cost, trace_id, span_id, received_at_ns, service_name)``: as
:func:`record_values`, with the price as the row's cost columns
(:data:`~spanmeter.pricing.result.CostFields`, from
:meth:`~spanmeter.pricing.PriceBook.price_record_fields`): what ingest ships to the store."""


def record_values(
    record: GenAIRecord,
    price: PriceResult,
    trace_id: bytes,
    span_id: bytes,
    received_at_ns: int,
    service_name: str | None,
) -> RowValues:
    """The stored row of one normalised, priced span as :data:`RowValues`, without building
    a :class:`SpanRow`. Unlike :meth:`SpanRow.from_record` it
    does not check the id lengths: the caller has (the store checks them again)."""
    return _priced_values(record, cost_fields(price), trace_id, span_id, received_at_ns, service_name)


row_from_values: Final[Callable[[RowValues], SpanRow]] = _row_from_values
"""The :class:`SpanRow` of :data:`RowValues` (the inverse of :data:`row_values`).

Raises:
    ValueError: ``values`` does not hold exactly one value per field."""
