"""The one typed record every GenAI span becomes, whatever instrumentation emitted it.

The processor (in the app) and the receiver (at ingest) both turn span attributes into a
:class:`GenAIRecord` through :func:`spanmeter.normalise.normalize`, so the two
sides can never disagree on what a span means.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal

__all__ = [
    "CostSource",
    "GenAIRecord",
    "SpanOutcome",
]

SpanOutcome = Literal["success", "error", "unknown"]
"""Outcome of the call: OTel status ERROR, an ``error.type`` or an error-like ``status``
attribute is ``error``; a ``status`` attribute that is neither error- nor success-like is
``unknown``; otherwise ``success`` (OTel instrumentations leave the status UNSET on
success, so no error reported means success)."""

CostSource = Literal["provider", "local"]
"""Who computed a cost that arrived on the span: the provider's response (``provider``,
e.g. OpenRouter's ``usage.cost``) or a tool in the app (``local``, e.g. OpenLIT)."""


@dataclass(slots=True)
class GenAIRecord:
    """A GenAI span in spanmeter's terms. Token counts follow OTel semantics.

    ``input_tokens`` *includes* cache reads and cache writes and ``output_tokens``
    includes reasoning tokens, whatever the emitting instrumentation did; the normaliser
    owns that conversion, once.
    """

    provider: str | None = None
    """Canonical provider: the ``gen_ai.provider.name`` enum value (``openai``,
    ``anthropic``, ``aws.bedrock``, ``azure.ai.openai``, ``gcp.vertex_ai``, ``x_ai``...),
    whichever enum or vendor spelling the span used."""
    request_model: str | None = None
    """Model the app asked for."""
    response_model: str | None = None
    """Model that answered, when reported."""
    operation: str | None = None
    """``gen_ai.operation.name`` value (``chat``, ``embeddings``, ``text_completion``...)."""

    input_tokens: int | None = None
    """All input tokens, cache reads and writes included. None when not reported."""
    output_tokens: int | None = None
    """All output tokens, reasoning included. None when not reported."""
    cache_read_tokens: int = 0
    """Input tokens served from the provider's prompt cache (subset of input)."""
    cache_write_tokens: int = 0
    """Input tokens written to the provider's prompt cache (subset of input)."""
    reasoning_tokens: int = 0
    """Reasoning/thinking tokens (subset of output)."""
    usage_invalid: bool = False
    """A token count was present but unusable (negative, absurd, not a number): the span
    must not be priced on the counts that remain, which would undercount it."""

    endpoint_tag: str | None = None
    prompt_name: str | None = None
    prompt_version: str | None = None
    tenant_id: str | None = None
    user_id: str | None = None
    """Hashed user id (never the raw id once normalised with a hasher)."""
    external_request_id: str | None = None
    data_mode: str | None = None
    """``real``/``test``/``demo``; None when the span does not say (consumers default to real)."""
    environment: str | None = None
    session_id: str | None = None

    outcome: SpanOutcome = "unknown"
    error_type: str | None = None
    latency_ms: float | None = None
    start_time_ns: int | None = None
    end_time_ns: int | None = None

    reported_cost_usd: Decimal | None = None
    """A cost already on the span (another tool's or the provider's), in USD."""
    reported_cost_source: CostSource | None = None
    reported_cost_key: str | None = None
    """The attribute the reported cost was read from, for provenance."""

    billable: bool = True
    """False for spans whose usage is the sum of child spans (Vercel ``ai.generateText``,
    pydantic-ai agent runs, agent/workflow spans): they carry no cost of their own, so
    counting them would double count."""
    response_id: str | None = None
    """The provider's id of the call (``gen_ai.response.id``, e.g. ``chatcmpl-...``,
    ``msg_...``): two spans with the same provider and response id describe one call."""
    native_sdk: bool = False
    """The span comes from a provider SDK's own tracing (see
    :data:`~spanmeter.normalise.same_call.NATIVE_SDK_SCOPES`), which describes
    the same call as an instrumentation's span around or beside it."""
    duplicate_of: str | None = None
    """Hex span id of the span that carries this call's cost, when this span describes the
    same provider call (then ``billable`` is False and ``not_billable_reason`` says why)."""
    not_billable_reason: str | None = None
    """Why a span describing a provider call is not billable (a
    :data:`~spanmeter.normalise.same_call.DuplicateReason`)."""
    scope_name: str | None = None
    """The emitting instrumentation scope (``opentelemetry.instrumentation.openai.v1``...)."""
    scope_version: str | None = None
    """Its version: with the name, what ``spanmeter doctor`` names behind spans without usage."""
    instrumentation: str | None = None
    """Which naming family was recognised (``otel``, ``traceloop``, ``openinference``,
    ``openlit``, ``vercel``, ``langfuse``, ``pydantic_ai``, ``payload``)."""
    issues: list[str] = field(default_factory=list[str])
    """Data-quality problems found while normalising (negative or non-numeric token
    counts, cache larger than input...). The offending value is dropped, never guessed."""

    @property
    def model(self) -> str | None:
        """Model to price: the response model when reported, else the request model."""
        return self.response_model or self.request_model

    @property
    def has_usage(self) -> bool:
        """True when the span reports any token usage."""
        return self.input_tokens is not None or self.output_tokens is not None
