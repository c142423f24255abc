"""What a GenAI span did, whether it failed, and whether its usage counts.

Three questions every instrumentation answers differently:

* **operation**: ``gen_ai.operation.name``, Traceloop's legacy ``llm.request.type``,
  OpenInference's span kind, or the Vercel AI SDK's operation id;
* **outcome**: OTel status ERROR, ``error.type``, Langfuse's level, or the payload's
  ``status`` field;
* **billable**: frameworks put the *sum* of their children's usage on outer spans (Vercel
  ``ai.generateText`` around ``ai.generateText.doGenerate``, Pydantic AI agent runs,
  agent/workflow/chain spans). Those spans are kept for information but flagged, or every
  call would be counted twice.
"""

from __future__ import annotations

from typing import Final

from ..semantic_conventions.alias_table import SLOT_KEYS, Key, Slot
from ._values import to_text
from .record import SpanOutcome

__all__ = ["is_billable", "is_inference_marker", "operation", "outcome"]

_OPERATION_NAME, _LLM_REQUEST_TYPE = SLOT_KEYS[Slot.OPERATION]
_STATUS_CODE_ERROR: Final = 2  # opentelemetry.trace.StatusCode.ERROR

_TRACELOOP_REQUEST_TYPES: Final = {"completion": "text_completion", "embedding": "embeddings"}
"""Traceloop's legacy ``llm.request.type`` values that differ from ``gen_ai.operation.name``."""
_OPENINFERENCE_OPERATIONS: Final = {
    # OpenInference's own span-kind -> gen_ai.operation.name conversion (_genai_conversion.py).
    "LLM": "chat",
    "EMBEDDING": "embeddings",
    "AGENT": "invoke_agent",
    "TOOL": "execute_tool",
    "RETRIEVER": "retrieval",
}
_OPENINFERENCE_INFERENCE_KINDS: Final = frozenset({"LLM", "EMBEDDING"})
_VERCEL_CALL_OPERATIONS: Final = ((".doGenerate", "chat"), (".doStream", "chat"), (".doEmbed", "embeddings"))
"""Suffixes of the Vercel AI SDK spans that wrap exactly one provider call."""
_VERCEL_OUTER_OPERATIONS: Final = frozenset(
    {"ai.generateText", "ai.streamText", "ai.generateObject", "ai.streamObject", "ai.embed", "ai.embedMany"}
)
"""Vercel AI SDK spans whose ``ai.usage.*`` is the sum over their provider-call children."""

_AGGREGATE_OPERATIONS: Final = frozenset({"invoke_agent", "create_agent", "invoke_workflow"})
_OPENINFERENCE_AGGREGATE_KINDS: Final = frozenset({"AGENT", "CHAIN"})
_TRACELOOP_AGGREGATE_KINDS: Final = frozenset({"workflow", "agent", "task"})
_LANGFUSE_AGGREGATE_TYPES: Final = frozenset({"agent", "chain"})

_ERROR_STATUSES: Final = frozenset(
    {"error", "failed", "failure", "fail", "timeout", "timed_out", "cancelled", "canceled", "aborted"}
    | {"rate_limited", "throttled"}
)
_SUCCESS_STATUSES: Final = frozenset({"success", "succeeded", "ok", "completed"})


def _vercel_call(operation_id: str) -> str | None:
    """``ai.generateText.doGenerate`` -> ``chat``: the operation of one provider call."""
    for suffix, name in _VERCEL_CALL_OPERATIONS:
        if operation_id.endswith(suffix):
            return name
    return None


def is_inference_marker(oi_kind: str | None, vercel_op: str | None) -> bool:
    """True for an OpenInference LLM/EMBEDDING span or a Vercel AI SDK model operation.

    Args:
        oi_kind: ``openinference.span.kind``, upper-cased, or None.
        vercel_op: Vercel operation id (``ai.operationId`` or the span name), or None.
    """
    if oi_kind in _OPENINFERENCE_INFERENCE_KINDS:
        return True
    return vercel_op is not None and (
        vercel_op in _VERCEL_OUTER_OPERATIONS or _vercel_call(vercel_op) is not None
    )


def operation(
    found: dict[str, object], oi_kind: str | None, vercel_op: str | None, issues: list[str]
) -> str | None:
    """The ``gen_ai.operation.name`` value, read or derived from the family's own marker.

    Args:
        found: The span's known attributes.
        oi_kind: ``openinference.span.kind``, upper-cased, or None.
        vercel_op: Vercel operation id, or None.
        issues: Notes about unusable values are appended here.
    """
    text = to_text(_OPERATION_NAME, found.get(_OPERATION_NAME), issues)
    if text is not None:
        return text.lower()
    text = to_text(_LLM_REQUEST_TYPE, found.get(_LLM_REQUEST_TYPE), issues)
    if text is not None:
        name = text.lower()
        return _TRACELOOP_REQUEST_TYPES.get(name, name)
    if oi_kind is not None:
        return _OPENINFERENCE_OPERATIONS.get(oi_kind)
    if vercel_op is not None:
        return _vercel_call(vercel_op)
    return None


def outcome(
    found: dict[str, object], status_code: int | None, issues: list[str]
) -> tuple[SpanOutcome, str | None]:
    """``error`` on ERROR status, an ``error.type``, or an error-like status; else success.

    OTel instrumentations leave the status UNSET on success, so the absence of an error
    means success; only a payload ``status`` that is neither error- nor success-like is
    ``unknown`` (with a note), rather than guessed either way.

    Args:
        found: The span's known attributes.
        status_code: OTel status code value (0 UNSET, 1 OK, 2 ERROR), or None.
        issues: Notes about unusable values are appended here.

    Returns:
        ``(outcome, error type)``; the error type is ``error.type`` or the payload status.
    """
    error_type = to_text(Key.ERROR, found.get(Key.ERROR), issues)
    status = to_text(Key.PAYLOAD_STATUS, found.get(Key.PAYLOAD_STATUS), issues)
    status = status.lower() if status is not None else None
    code = getattr(status_code, "value", status_code)  # tolerate a StatusCode enum member
    if (
        code == _STATUS_CODE_ERROR
        or error_type is not None
        or status in _ERROR_STATUSES
        or found.get(Key.LANGFUSE_LEVEL) == "ERROR"
    ):
        return "error", error_type or (status if status in _ERROR_STATUSES else None)
    if status is not None and status not in _SUCCESS_STATUSES:
        issues.append(f"{Key.PAYLOAD_STATUS}: {status[:32]!r} is neither success nor error")
        return "unknown", None
    return "success", None


def is_billable(
    found: dict[str, object], op: str | None, oi_kind: str | None, vercel_op: str | None, aggregated: bool
) -> bool:
    """False for spans whose usage is the sum of their children's.

    Args:
        found: The span's known attributes.
        op: The span's operation (see :func:`operation`).
        oi_kind: ``openinference.span.kind``, upper-cased, or None.
        vercel_op: Vercel operation id, or None.
        aggregated: The span carries Pydantic AI's ``gen_ai.aggregated_usage.*``.
    """
    if aggregated or op in _AGGREGATE_OPERATIONS or oi_kind in _OPENINFERENCE_AGGREGATE_KINDS:
        return False
    if vercel_op in _VERCEL_OUTER_OPERATIONS:
        return False
    traceloop_kind = found.get(Key.TRACELOOP_SPAN_KIND)
    if isinstance(traceloop_kind, str) and traceloop_kind.strip().lower() in _TRACELOOP_AGGREGATE_KINDS:
        return False
    langfuse_type = found.get(Key.LANGFUSE_OBSERVATION_TYPE)
    if isinstance(langfuse_type, str) and langfuse_type.strip().lower() in _LANGFUSE_AGGREGATE_TYPES:
        return False
    # The app-side processor already classified the span (same rules, older version maybe).
    return found.get(Key.PRICING_STATUS) != "not_billable"
