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


_Seen = tuple[
    _Handle, bytes, bool, "str | None", "int | None", "int | None", int, int, int, "GenAIRecord | None"
]
"""A remembered span: its handle, its span id, whether an SDK traced it, its usage (model,
input, output, cache read, cache write and reasoning tokens), and its record where a later
twin may replace it (for the richness), else None.

Plain values, not the record, because the app's processor remembers thousands of spans: a
tuple holding nothing but strings, numbers and bytes is untracked by the garbage collector
at its first pass, where every kept record (with its issues list and the tuple holding it)
was traversed again by each collection, on the export thread."""

_USAGE: Final = slice(3, 9)


@dataclass(frozen=True, slots=True)
class SameCall(Generic[_Handle]):
    """A verdict: ``duplicate`` describes the same call as ``kept``, for ``reason``."""

    duplicate: _Handle
    kept: _Handle
    kept_span_id: bytes
    reason: DuplicateReason


def _pair_reason(parent: _Seen[_Handle], child: _Seen[_Handle]) -> DuplicateReason | None:
    """Why a billable child describes its billable parent's call, or None if it does not."""
    if child[2] and not parent[2]:
        return "sdk_span_under_instrumentation"
    if (child[4] is not None or child[5] is not None) and child[_USAGE] == parent[_USAGE]:
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
        """Remember a billable span; the verdict if it describes a call already seen.

        Written flat (no helper calls but for a pair's reason): the app's processor runs it
        for every GenAI span it prices."""
        by_span = self._by_span
        if self._max is not None and len(by_span) >= self._max:
            self._by_call.clear()
            by_span.clear()
            self._by_parent.clear()
        replace = self._replace
        seen: _Seen[_Handle] = (
            handle,
            span_id,
            record.native_sdk,
            record.response_model or record.request_model,  # record.model, without the call
            record.input_tokens,
            record.output_tokens,
            record.cache_read_tokens,
            record.cache_write_tokens,
            record.reasoning_tokens,
            record if replace else None,
        )
        response_id = record.response_id
        call_key = (record.provider, response_id) if response_id else None
        twin: _Seen[_Handle] | None = None
        reason: DuplicateReason | None = None
        if call_key is not None:
            twin = self._by_call.get(call_key)
            if twin is not None:
                reason = "same_response_id"
        if twin is None and parent_span_id:
            parent = by_span.get((trace_id, parent_span_id))
            if parent is not None:
                reason = _pair_reason(parent, seen)
                if reason is not None:
                    twin = parent
        if twin is None:
            by_parent = self._by_parent
            child = by_parent.get((trace_id, span_id)) if by_parent else None
            if child is not None:
                reason = _pair_reason(seen, child)
                if reason is not None:
                    twin = child
        if twin is None or reason is None:
            if call_key is not None:
                self._by_call[call_key] = seen
            by_span[(trace_id, span_id)] = seen
            if parent_span_id:
                self._by_parent[(trace_id, parent_span_id)] = seen
            return None
        # richness only when it can decide: most verdicts have no earlier span to replace
        earlier = twin[9]  # kept whenever replace_earlier
        if earlier is not None and attribution_richness(record) > attribution_richness(earlier):
            if call_key is not None:
                self._by_call[call_key] = seen
            by_span[(trace_id, span_id)] = seen
            if parent_span_id:
                self._by_parent[(trace_id, parent_span_id)] = seen
            return SameCall(twin[0], handle, span_id, reason)
        return SameCall(handle, twin[0], twin[1], reason)
