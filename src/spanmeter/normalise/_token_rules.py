"""Does a span's input-token count include prompt-cache tokens? One documented table.

OTel says ``gen_ai.usage.input_tokens`` includes cache reads and cache writes, and
spanmeter's :class:`~spanmeter.normalise.record.GenAIRecord` follows OTel. But
Anthropic's API (and Bedrock's Converse API) report ``input_tokens`` *excluding* the cache,
and some emitters pass that raw number through. Pricing an exclusive count as inclusive
undercharges every cached call; the opposite overcharges it. A receiver cannot tell the two
apart from the numbers alone, so the emitter decides, through this table.

The normaliser computes an *emitter* label for the span (its instrumentation family, with a
generation or source-key qualifier where the semantics changed) and looks up
``(emitter or scope-name prefix, canonical provider)``; the first matching rule wins and the
default is the OTel semantics. Independently, the normaliser's safety rule treats input as
exclusive whenever cache read + cache write exceed it, which no inclusive count can do.

Review this table when an instrumentation changes its numbers: the scope version is not
part of the key, so a fixed emitter stays "exclusive" here until its row is removed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

__all__ = [
    "EMITTER_LANGFUSE_INPUT",
    "EMITTER_LANGFUSE_INPUT_TOKENS",
    "EMITTER_VERCEL_V5",
    "EMITTER_VERCEL_V6",
    "INPUT_CACHE_RULES",
    "InputCacheRule",
    "input_includes_cache",
]

EMITTER_VERCEL_V5: Final = "vercel-ai-sdk<=5"
"""AI SDK v4/v5 spans: no ``ai.usage.inputTokenDetails.*`` keys."""
EMITTER_VERCEL_V6: Final = "vercel-ai-sdk>=6"
"""AI SDK v6 spans: ``ai.usage.inputTokenDetails.*`` present, ``inputTokens`` is the total."""
EMITTER_LANGFUSE_INPUT: Final = "langfuse-usage-details:input"
"""Tokens from ``langfuse.observation.usage_details`` key ``input`` (Langfuse's own usage
model, where ``input`` is the uncached remainder and cache counts are separate types)."""
EMITTER_LANGFUSE_INPUT_TOKENS: Final = "langfuse-usage-details:input_tokens"
"""Tokens from ``langfuse.observation.usage_details`` key ``input_tokens``: a provider's raw
usage object passed through, whose semantics are the provider's."""


@dataclass(frozen=True, slots=True)
class InputCacheRule:
    """One row: for this emitter (or scope) and provider, does input include the cache?"""

    emitter: str | None
    """Emitter label (an instrumentation family such as ``openlit``, or one of the
    ``EMITTER_*`` labels); None to match on ``scope_prefix`` only."""
    scope_prefix: str | None
    """Instrumentation scope name prefix that also selects this row; None for none."""
    provider: str | None
    """Canonical provider the row applies to; None for every provider."""
    includes_cache: bool
    """True when the emitter's input count already includes cache reads and writes."""
    reason: str
    """Where the behaviour was verified, so the row can be re-checked and retired."""


INPUT_CACHE_RULES: Final[tuple[InputCacheRule, ...]] = (
    InputCacheRule(
        "openlit",
        "openlit",
        "anthropic",
        False,
        "OpenLIT 1.45 anthropic: gen_ai.usage.input_tokens is Anthropic's raw usage.input_tokens; "
        "cache read/creation are set separately (instrumentation/anthropic/utils.py).",
    ),
    InputCacheRule(
        EMITTER_VERCEL_V5,
        None,
        "anthropic",
        False,
        "AI SDK v4/v5 @ai-sdk/anthropic: inputTokens = usage.input_tokens, cache reads only in "
        "cachedInputTokens (v5) or provider metadata (v4).",
    ),
    InputCacheRule(
        EMITTER_VERCEL_V5,
        None,
        "aws.bedrock",
        False,
        "AI SDK v5 @ai-sdk/amazon-bedrock: inputTokens = Converse usage.inputTokens, which "
        "excludes cacheRead/cacheWriteInputTokens.",
    ),
    InputCacheRule(
        None,
        "opentelemetry.instrumentation.bedrock",
        "aws.bedrock",
        False,
        "OpenLLMetry bedrock 0.62 (Converse): input_tokens = usage.inputTokens as-is, cache "
        "emitted separately (traceloop/openllmetry#4449, open).",
    ),
    InputCacheRule(
        EMITTER_LANGFUSE_INPUT,
        None,
        None,
        False,
        "Langfuse usage model: 'input' is the uncached remainder; cache reads/writes are "
        "separate usage types priced on their own.",
    ),
    InputCacheRule(
        EMITTER_LANGFUSE_INPUT_TOKENS,
        None,
        "anthropic",
        False,
        "A raw Anthropic usage object: input_tokens excludes cache_read/cache_creation_input_tokens.",
    ),
    InputCacheRule(
        EMITTER_LANGFUSE_INPUT_TOKENS,
        None,
        "aws.bedrock",
        False,
        "A raw Bedrock Converse usage object: inputTokens excludes the cache.",
    ),
    # Inclusive rows below restate the default; they are kept so the verified behaviour of
    # each emitter that handles Anthropic is written down in one place.
    InputCacheRule(
        "traceloop",
        None,
        "anthropic",
        True,
        "OpenLLMetry anthropic >= 0.62: input_tokens = input + cache_read + cache_creation "
        "(anthropic/__init__.py _set_token_usage).",
    ),
    InputCacheRule(
        "openinference",
        None,
        "anthropic",
        True,
        "openinference-instrumentation-anthropic 3.1: llm.token_count.prompt = input + "
        "cache_creation + cache_read (_utils.py).",
    ),
    InputCacheRule(
        "pydantic_ai",
        None,
        None,
        True,
        "pydantic-ai 2.68: input_tokens includes cached reads for every provider (usage.py, "
        "genai-prices extraction).",
    ),
    InputCacheRule(
        EMITTER_VERCEL_V6,
        None,
        None,
        True,
        "AI SDK v6: ai.usage.inputTokens = usage.inputTokens.total (noCache + cacheRead + cacheWrite).",
    ),
)
"""The rule table, first match wins; anything unmatched follows OTel (inclusive)."""


def input_includes_cache(emitter: str | None, scope_name: str | None, provider: str | None) -> bool:
    """Look up whether this emitter's input count for this provider includes the cache.

    Args:
        emitter: The span's emitter label (family or ``EMITTER_*``), None if unknown.
        scope_name: Instrumentation scope name, None if unknown.
        provider: Canonical provider, None if unknown.

    Returns:
        True (OTel semantics) unless a rule says the count is exclusive.
    """
    for rule in INPUT_CACHE_RULES:
        if rule.provider is not None and rule.provider != provider:
            continue
        if (rule.emitter is not None and rule.emitter == emitter) or (
            rule.scope_prefix is not None
            and scope_name is not None
            and scope_name.startswith(rule.scope_prefix)
        ):
            return rule.includes_cache
    return True
