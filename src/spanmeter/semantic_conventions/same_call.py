"""One provider call, one billable span: which GenAI spans describe the same call.

Provider SDKs have started tracing their own calls: the anthropic SDK (2.x) emits an
``anthropic.messages.create`` CLIENT span with full ``gen_ai.usage.*`` by default, beside
the span of whatever instrumentation the app runs (OpenLLMetry, OpenInference,
pydantic-ai). Both are billable GenAI spans, so summing them bills the call twice. Two
spans describe the same call when:

* they carry the same provider and response id (``gen_ai.response.id``), in any trace
  (OpenLLMetry puts the SDK's span in a trace of its own);
* or one is the other's parent and both are billable GenAI spans for the same call: the
  child is an SDK's own span under an instrumentation's span (OpenInference's ``create``
  carries no response id), or the two report the same model and the same usage (two
  instrumentations stacked on one client).

Of such a pair the span with the richer attribution (more of endpoint tag, prompt name and
version, tenant, user, external request id, session) is kept billable; on a tie the first
seen. The other is stored ``not_billable`` with the reason and the id of the span it
duplicates, so nothing disappears silently. The next SDK that traces itself is one entry
in :data:`NATIVE_SDK_SCOPES`.

:class:`SameCallIndex` applies the rule to spans as they are seen: per OTLP request at the
receiver (where the earlier span can still be demoted) and over a bounded memory of recent
spans in the app's processor (where it has already been exported: the first one stays).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final, Generic, Literal, TypeVar

from .record import GenAIRecord

__all__ = [
    "DUPLICATE_REASONS",
    "NATIVE_SDK_PROVIDERS",
    "NATIVE_SDK_SCOPES",
    "DuplicateReason",
    "SameCall",
    "SameCallIndex",
    "attribution_richness",
]

NATIVE_SDK_SCOPES: Final[Mapping[str, str]] = MappingProxyType(
    {
        # anthropic-sdk-python 2.x: on by default, off with ANTHROPIC_OPEN_TELEMETRY=false
        "com.anthropic.sdk.python": "anthropic",
    }
)
"""Instrumentation scope of a provider SDK's own tracing -> the provider it calls."""

NATIVE_SDK_PROVIDERS: Final[frozenset[str]] = frozenset(NATIVE_SDK_SCOPES.values())
"""Providers whose SDK traces its own calls: the only ones whose two spans of a call may
travel apart (the SDK's span in a trace of its own), so the store pairs them across
requests (:mod:`spanmeter.store.sqlite.provider_calls`); other pairs travel together."""

DuplicateReason = Literal["same_response_id", "sdk_span_under_instrumentation", "same_usage_as_parent"]
"""Why a span is not billable although it describes a provider call."""
DUPLICATE_REASONS: Final[frozenset[str]] = frozenset(
    {"same_response_id", "sdk_span_under_instrumentation", "same_usage_as_parent"}
)

_Handle = TypeVar("_Handle")


def attribution_richness(record: GenAIRecord) -> int:
    """How many attribution dimensions the span carries: the richer one is kept."""
    return sum(
        value is not None
        for value in (
            record.endpoint_tag,
            record.prompt_name,
            record.prompt_version,
            record.tenant_id,
            record.user_id,
            record.external_request_id,
            record.session_id,
        )
    )


def _usage(record: GenAIRecord) -> tuple[object, ...] | None:
    if record.input_tokens is None and record.output_tokens is None:
        return None
    return (
        record.model,
        record.input_tokens,
        record.output_tokens,
        record.cache_read_tokens,
        record.cache_write_tokens,
        record.reasoning_tokens,
    )


@dataclass(slots=True)
class _Seen(Generic[_Handle]):
    handle: _Handle
    record: GenAIRecord
    span_id: bytes


@dataclass(frozen=True, slots=True)
class SameCall(Generic[_Handle]):
    """A verdict: ``duplicate`` describes the same call as ``kept``, for ``reason``."""

    duplicate: _Handle
    kept: _Handle
    kept_span_id: bytes
    reason: DuplicateReason


def _pair_reason(parent: GenAIRecord, child: GenAIRecord) -> DuplicateReason | None:
    """Why a billable child describes its billable parent's call, or None if it does not."""
    if child.native_sdk and not parent.native_sdk:
        return "sdk_span_under_instrumentation"
    usage = _usage(child)
    if usage is not None and usage == _usage(parent):
        return "same_usage_as_parent"
    return None


class SameCallIndex(Generic[_Handle]):
    """Spans seen so far, by call key, by span and by parent; finds a new span's twin.

    Only billable GenAI spans should be added. ``handle`` is the caller's reference to the
    span (a row index, a span), returned in verdicts.
    """

    def __init__(self, *, replace_earlier: bool, max_spans: int | None = None) -> None:
        """Create an index.

        Args:
            replace_earlier: A later, richer twin may demote the earlier span (true where
                the earlier one is not stored or exported yet, as within one request).
            max_spans: Spans remembered before the memory restarts (None: no bound).
        """
        self._replace = replace_earlier
        self._max = max_spans
        self._by_call: dict[tuple[str | None, str], _Seen[_Handle]] = {}
        self._by_span: dict[tuple[bytes, bytes], _Seen[_Handle]] = {}
        self._by_parent: dict[tuple[bytes, bytes], _Seen[_Handle]] = {}

    def __len__(self) -> int:
        return len(self._by_span)

    def add(
        self,
        handle: _Handle,
        record: GenAIRecord,
        trace_id: bytes,
        span_id: bytes,
        parent_span_id: bytes | None,
    ) -> SameCall[_Handle] | None:
        """Remember a billable span; the verdict if it describes a call already seen."""
        if self._max is not None and len(self._by_span) >= self._max:
            self._by_call.clear()
            self._by_span.clear()
            self._by_parent.clear()
        seen = _Seen(handle, record, span_id)
        twin: _Seen[_Handle] | None = None
        reason: DuplicateReason | None = None
        call_key = (record.provider, record.response_id) if record.response_id else None
        if call_key is not None:
            twin = self._by_call.get(call_key)
            reason = "same_response_id" if twin is not None else None
        if twin is None and parent_span_id:
            parent = self._by_span.get((trace_id, parent_span_id))
            if parent is not None:
                reason = _pair_reason(parent.record, record)
                twin = parent if reason is not None else None
        if twin is None:
            child = self._by_parent.get((trace_id, span_id))
            if child is not None:
                reason = _pair_reason(record, child.record)
                twin = child if reason is not None else None
        if twin is None or reason is None:
            self._remember(seen, call_key, trace_id, parent_span_id)
            return None
        # richness only when it can decide: most verdicts have no earlier span to replace
        if self._replace and attribution_richness(record) > attribution_richness(twin.record):
            self._remember(seen, call_key, trace_id, parent_span_id)
            return SameCall(twin.handle, handle, span_id, reason)
        return SameCall(handle, twin.handle, twin.span_id, reason)

    def _remember(
        self,
        seen: _Seen[_Handle],
        call_key: tuple[str | None, str] | None,
        trace_id: bytes,
        parent_span_id: bytes | None,
    ) -> None:
        if call_key is not None:
            self._by_call[call_key] = seen
        self._by_span[(trace_id, seen.span_id)] = seen
        if parent_span_id:
            self._by_parent[(trace_id, parent_span_id)] = seen
