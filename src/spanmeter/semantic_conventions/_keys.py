"""Names for the normaliser's internals: slots, naming families, and single keys.

A *slot* is one fact the normaliser reads (the provider, the input token count, the
tenant...); a *family* is a naming convention (OTel, OpenLLMetry/Traceloop, OpenInference,
Vercel AI SDK, Langfuse, Pydantic AI, spanmeter's camelCase payload). Both are small ints so
the per-span scan can work with list indexes and bit masks.
"""

from __future__ import annotations

from typing import Final

from .attributes import (
    ERROR_TYPE,
    GEN_AI_RESPONSE_ID,
    GEN_AI_USAGE_COST,
    GEN_AI_USAGE_COST_AMOUNT,
    GEN_AI_USAGE_COST_CURRENCY,
    GEN_AI_USAGE_COST_SOURCE,
    SPANMETER_COST_NANO_USD,
    SPANMETER_DUPLICATE_OF,
    SPANMETER_NOT_BILLABLE_REASON,
    SPANMETER_PRICING_STATUS,
)

__all__ = ["Family", "Key", "Slot"]


class Slot:
    """Slot numbers: indexes into the per-span list of best ranks (plain ints for speed)."""

    PROVIDER: Final = 0
    REQUEST_MODEL: Final = 1
    RESPONSE_MODEL: Final = 2
    OPERATION: Final = 3
    INPUT: Final = 4
    OUTPUT: Final = 5
    TOTAL: Final = 6
    CACHE_READ: Final = 7
    CACHE_WRITE: Final = 8
    REASONING: Final = 9
    ENDPOINT_TAG: Final = 10
    PROMPT_NAME: Final = 11
    PROMPT_VERSION: Final = 12
    TENANT: Final = 13
    USER: Final = 14
    EXTERNAL_REQUEST_ID: Final = 15
    DATA_MODE: Final = 16
    ENVIRONMENT: Final = 17
    SESSION: Final = 18
    COUNT: Final = 19


class Family:
    """Naming-family bit flags, OR-ed together while scanning a span's keys.

    The last two are not naming families but markers the normaliser needs; collecting them
    in the same pass saves a second look at the span.
    """

    NONE: Final = 0
    OTEL: Final = 1
    TRACELOOP: Final = 2
    OPENINFERENCE: Final = 4
    VERCEL: Final = 8
    LANGFUSE: Final = 16
    PYDANTIC_AI: Final = 32
    PAYLOAD: Final = 64
    NAMES_MASK: Final = 127
    AGGREGATED_USAGE: Final = 128
    """Pydantic AI agent-run usage (``gen_ai.aggregated_usage.*``): the span sums its children."""
    VERCEL_V6_USAGE: Final = 256
    """``ai.usage.inputTokenDetails.*``, written only by AI SDK v6: with it
    ``ai.usage.inputTokens`` is the cache-inclusive total, without it (v4/v5) the provider's
    raw input count."""


class Key:
    """Keys the normaliser names at a call site (most have no alias slot of their own)."""

    OPENINFERENCE_SPAN_KIND: Final = "openinference.span.kind"
    LLM_PROVIDER: Final = "llm.provider"
    LLM_SYSTEM: Final = "llm.system"
    TRACELOOP_SPAN_KIND: Final = "traceloop.span.kind"
    VERCEL_OPERATION_ID: Final = "ai.operationId"
    VERCEL_NO_CACHE_TOKENS: Final = "ai.usage.inputTokenDetails.noCacheTokens"
    VERCEL_CACHE_READ_TOKENS: Final = "ai.usage.inputTokenDetails.cacheReadTokens"
    VERCEL_CACHE_WRITE_TOKENS: Final = "ai.usage.inputTokenDetails.cacheWriteTokens"
    LANGFUSE_OBSERVATION_TYPE: Final = "langfuse.observation.type"
    LANGFUSE_LEVEL: Final = "langfuse.observation.level"
    LANGFUSE_USAGE_DETAILS: Final = "langfuse.observation.usage_details"
    LANGFUSE_COST_DETAILS: Final = "langfuse.observation.cost_details"
    TELEMETRY_SDK_NAME: Final = "telemetry.sdk.name"
    OPERATION_COST: Final = "operation.cost"
    LLM_COST_TOTAL: Final = "llm.cost.total"
    ERROR: Final = ERROR_TYPE
    PAYLOAD_STATUS: Final = "status"
    PAYLOAD_LATENCY_MS: Final = "latencyMs"
    PAYLOAD_MODEL: Final = "model"
    PAYLOAD_PROVIDER: Final = "provider"
    COST_AMOUNT: Final = GEN_AI_USAGE_COST_AMOUNT
    COST_CURRENCY: Final = GEN_AI_USAGE_COST_CURRENCY
    COST_SOURCE: Final = GEN_AI_USAGE_COST_SOURCE
    COST: Final = GEN_AI_USAGE_COST
    PRICING_STATUS: Final = SPANMETER_PRICING_STATUS
    COST_NANO_USD: Final = SPANMETER_COST_NANO_USD
    RESPONSE_ID: Final = GEN_AI_RESPONSE_ID
    DUPLICATE_OF: Final = SPANMETER_DUPLICATE_OF
    NOT_BILLABLE_REASON: Final = SPANMETER_NOT_BILLABLE_REASON
