"""The alias tables: every attribute key the normaliser reads, and what it means.

Each *slot* (a field of :class:`~spanmeter.normalise.GenAIRecord`, or a
fact the normaliser needs) has an ordered tuple of keys: the canonical spanmeter/OTel key
first, then the aliases that other instrumentations write for the same fact. The first key
present on a span wins. The names come from each instrumentation's own attribute constants
(OTel GenAI semconv, openai-v2 + util-genai, OpenLLMetry/Traceloop, OpenInference, OpenLIT,
Vercel AI SDK v4-v6, Langfuse, Pydantic AI/Logfire; versions in the tests' fixtures) plus
the camelCase payload fields users already send.

Each key is also tagged with the naming *family* it belongs to, so the normaliser can say
which instrumentation produced a span (and apply that family's token rules) from the same
single pass over the span's keys. Generic keys that any family may carry (``user.id``,
``error.type``, spanmeter's own keys) have no family.

Everything here is data; the lookup structures are built once at import.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from . import attributes as attr
from ._keys import Family, Key, Slot

__all__ = ["CANDIDATE_MARKERS", "INDEX", "NORMALIZER_KEYS", "RESOURCE_KEYS", "SLOT_KEYS"]


_O, _T, _I, _V = Family.OTEL, Family.TRACELOOP, Family.OPENINFERENCE, Family.VERCEL
_L, _P, _U, _N = Family.LANGFUSE, Family.PYDANTIC_AI, Family.PAYLOAD, Family.NONE

# (slot, ((key, family), ...)) with keys in precedence order.
_SLOTS: Final[tuple[tuple[int, tuple[tuple[str, int], ...]], ...]] = (
    (
        Slot.PROVIDER,
        (
            (attr.GEN_AI_PROVIDER_NAME, _O),
            (attr.GEN_AI_SYSTEM, _O),
            (Key.LLM_PROVIDER, _I),
            (Key.LLM_SYSTEM, _I),
            ("ai.model.provider", _V),
            (Key.PAYLOAD_PROVIDER, _U),
        ),
    ),
    (
        Slot.REQUEST_MODEL,
        (
            (attr.GEN_AI_REQUEST_MODEL, _O),
            ("llm.request.model_name", _I),
            ("llm.model_name", _I),
            ("embedding.model_name", _I),
            ("ai.model.id", _V),
            ("langfuse.observation.model.name", _L),
            (Key.PAYLOAD_MODEL, _U),
        ),
    ),
    (
        Slot.RESPONSE_MODEL,
        (
            (attr.GEN_AI_RESPONSE_MODEL, _O),
            ("llm.response.model_name", _I),
            ("ai.response.model", _V),
        ),
    ),
    (
        Slot.OPERATION,
        (
            (attr.GEN_AI_OPERATION_NAME, _O),
            ("llm.request.type", _T),  # Traceloop before semconv-ai 0.5
        ),
    ),
    (
        Slot.INPUT,
        (
            (attr.GEN_AI_USAGE_INPUT_TOKENS, _O),
            (attr.GEN_AI_USAGE_PROMPT_TOKENS, _O),  # old OTel name; Traceloop legacy, Vercel v4
            ("llm.token_count.prompt", _I),
            ("ai.usage.inputTokens", _V),  # AI SDK v5/6
            ("ai.usage.promptTokens", _V),  # AI SDK v4
            ("ai.usage.tokens", _V),  # embedding calls: input only
            ("inputTokens", _U),
            ("gen_ai.aggregated_usage.input_tokens", _P),  # agent-run sums: informational
        ),
    ),
    (
        Slot.OUTPUT,
        (
            (attr.GEN_AI_USAGE_OUTPUT_TOKENS, _O),
            (attr.GEN_AI_USAGE_COMPLETION_TOKENS, _O),
            ("llm.token_count.completion", _I),
            ("ai.usage.outputTokens", _V),
            ("ai.usage.completionTokens", _V),
            ("outputTokens", _U),
            ("gen_ai.aggregated_usage.output_tokens", _P),
        ),
    ),
    (
        Slot.TOTAL,
        (
            # Only evidence that a span is GenAI: input/output are never derived from a total.
            ("gen_ai.usage.total_tokens", _N),
            ("llm.usage.total_tokens", _T),
            ("llm.token_count.total", _I),
            ("ai.usage.totalTokens", _V),
        ),
    ),
    (
        Slot.CACHE_READ,
        (
            (attr.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS, _O),
            ("gen_ai.usage.cache_read_input_tokens", _T),
            ("llm.token_count.prompt_details.cache_read", _I),
            ("llm.token_count.prompt_details.cache_input", _I),  # older OI name, same meaning
            (Key.VERCEL_CACHE_READ_TOKENS, _V),  # AI SDK v6
            ("ai.usage.cachedInputTokens", _V),  # AI SDK v5
            ("gen_ai.usage.details.cache_read_tokens", _P),
            ("gen_ai.aggregated_usage.cache_read.input_tokens", _P),
            ("gen_ai.aggregated_usage.details.cache_read_tokens", _P),
        ),
    ),
    (
        Slot.CACHE_WRITE,
        (
            (attr.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS, _O),
            ("gen_ai.usage.cache_write.input_tokens", _O),  # util-genai 1.3b0's spelling
            ("gen_ai.usage.cache_creation_input_tokens", _T),
            ("llm.token_count.prompt_details.cache_write", _I),
            (Key.VERCEL_CACHE_WRITE_TOKENS, _V),
            ("gen_ai.usage.details.cache_write_tokens", _P),
            ("gen_ai.aggregated_usage.cache_creation.input_tokens", _P),
            ("gen_ai.aggregated_usage.details.cache_write_tokens", _P),
        ),
    ),
    (
        Slot.REASONING,
        (
            (attr.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS, _O),
            ("gen_ai.usage.reasoning_tokens", _T),  # also OpenLIT
            ("llm.usage.reasoning_tokens", _T),
            ("llm.token_count.completion_details.reasoning", _I),
            ("ai.usage.outputTokenDetails.reasoningTokens", _V),
            ("ai.usage.reasoningTokens", _V),
            ("gen_ai.usage.details.reasoning_tokens", _P),
            ("gen_ai.aggregated_usage.reasoning.output_tokens", _P),
            ("gen_ai.aggregated_usage.details.reasoning_tokens", _P),
        ),
    ),
    (
        Slot.ENDPOINT_TAG,
        (
            (attr.SPANMETER_ENDPOINT_TAG, _N),
            ("endpointTag", _U),
            ("ai.telemetry.metadata.endpointTag", _V),
            ("ai.telemetry.functionId", _V),
            ("traceloop.workflow.name", _T),
        ),
    ),
    (
        Slot.PROMPT_NAME,
        (
            (attr.GEN_AI_PROMPT_NAME, _O),
            ("langfuse.observation.prompt.name", _L),
            ("traceloop.prompt.key", _T),
        ),
    ),
    (
        Slot.PROMPT_VERSION,
        (
            (attr.GEN_AI_PROMPT_VERSION, _O),
            ("spanmeter.prompt_version", _N),
            ("promptVersion", _U),
            ("ai.telemetry.metadata.promptVersion", _V),
            ("traceloop.prompt.version", _T),
            ("llm.prompt_template.version", _I),
            ("langfuse.observation.prompt.version", _L),
        ),
    ),
    (
        Slot.TENANT,
        (
            (attr.SPANMETER_TENANT_ID, _N),
            ("tenantId", _U),
            ("ai.telemetry.metadata.tenantId", _V),
            ("traceloop.association.properties.tenant_id", _T),
            ("traceloop.association.properties.customer_id", _T),
        ),
    ),
    (
        Slot.USER,
        (
            (attr.USER_ID, _N),
            ("userId", _U),
            (attr.ENDUSER_ID, _N),
            ("langfuse.user.id", _L),
            ("gen_ai.request.user", _N),  # OpenLIT, from the OpenAI ``user`` argument
            ("traceloop.association.properties.user_id", _T),
            ("ai.telemetry.metadata.userId", _V),
        ),
    ),
    (
        Slot.EXTERNAL_REQUEST_ID,
        (
            (attr.SPANMETER_EXTERNAL_REQUEST_ID, _N),
            ("externalRequestId", _U),
        ),
    ),
    (
        Slot.DATA_MODE,
        (
            (attr.SPANMETER_DATA_MODE, _N),
            ("dataMode", _U),
        ),
    ),
    (
        Slot.ENVIRONMENT,
        (
            # The resource's deployment.environment.name slots in after the first key; see
            # the normaliser. OpenLIT writes deployment.environment on every span, "default"
            # unless configured, which is why it ranks below the canonical resource key.
            (attr.DEPLOYMENT_ENVIRONMENT_NAME, _N),
            ("environment", _U),
            (attr.DEPLOYMENT_ENVIRONMENT, _N),
            ("langfuse.environment", _L),
        ),
    ),
    (
        Slot.SESSION,
        (
            (attr.GEN_AI_CONVERSATION_ID, _O),
            (attr.SESSION_ID, _N),
            ("langfuse.session.id", _L),
            ("traceloop.association.properties.session_id", _T),
            ("ai.telemetry.metadata.sessionId", _V),
        ),
    ),
)

# Keys read directly (no slot), with their family.
_SINGLE_KEYS: Final[tuple[tuple[str, int], ...]] = (
    (Key.OPENINFERENCE_SPAN_KIND, _I),
    (Key.TRACELOOP_SPAN_KIND, _T),
    (Key.VERCEL_OPERATION_ID, _V),
    (Key.VERCEL_NO_CACHE_TOKENS, _V),
    (Key.LANGFUSE_OBSERVATION_TYPE, _L),
    (Key.LANGFUSE_LEVEL, _L),
    (Key.LANGFUSE_USAGE_DETAILS, _L),
    (Key.LANGFUSE_COST_DETAILS, _L),
    (Key.TELEMETRY_SDK_NAME, _N),
    (Key.OPERATION_COST, _P),
    (Key.LLM_COST_TOTAL, _I),
    (Key.ERROR, _N),
    (Key.PAYLOAD_STATUS, _U),
    (Key.PAYLOAD_LATENCY_MS, _U),
    (Key.COST_AMOUNT, _N),
    (Key.COST_CURRENCY, _N),
    (Key.COST_SOURCE, _N),
    (Key.COST, _N),
    (Key.PRICING_STATUS, _N),
    (Key.COST_NANO_USD, _N),
    (Key.RESPONSE_ID, _N),
    (Key.DUPLICATE_OF, _N),
    (Key.NOT_BILLABLE_REASON, _N),
)

SLOT_KEYS: Final[tuple[tuple[str, ...], ...]] = tuple(
    keys for _, keys in sorted((slot, tuple(k for k, _ in pairs)) for slot, pairs in _SLOTS)
)
"""Slot number -> its keys in precedence order."""


_VERCEL_V6_KEYS: Final = frozenset(
    {Key.VERCEL_NO_CACHE_TOKENS, Key.VERCEL_CACHE_READ_TOKENS, Key.VERCEL_CACHE_WRITE_TOKENS}
)


def _build_index() -> dict[str, tuple[int, int, int]]:
    """Key -> (family and marker bits, slot, rank). Keys read on their own get the spare
    slot ``Slot.COUNT``, so the scan needs no branch for them."""
    index: dict[str, tuple[int, int, int]] = {}
    entries = [
        (key, family, slot, rank) for slot, pairs in _SLOTS for rank, (key, family) in enumerate(pairs)
    ]
    entries += [(key, family, Slot.COUNT, 0) for key, family in _SINGLE_KEYS]
    for key, family, slot, rank in entries:
        if key in index:
            raise ValueError(f"attribute key {key!r} listed twice in the alias tables")
        if key.startswith("gen_ai.aggregated_usage."):
            family |= Family.AGGREGATED_USAGE
        if key in _VERCEL_V6_KEYS:
            family |= Family.VERCEL_V6_USAGE
        index[key] = (family, slot, rank)
    return index


INDEX: Final[Mapping[str, tuple[int, int, int]]] = _build_index()
"""Every key the normaliser reads -> (family and marker bits, slot, rank). A plain dict
behind a read-only type: ``dict.get`` is the hot path's only lookup and a proxy would slow it."""

NORMALIZER_KEYS: Final[frozenset[str]] = frozenset(INDEX)
"""Every span attribute key :func:`~spanmeter.normalise.normalize` may read.
A receiver can drop every other attribute before normalising."""

RESOURCE_KEYS: Final[frozenset[str]] = frozenset(
    {
        attr.DEPLOYMENT_ENVIRONMENT_NAME,
        attr.DEPLOYMENT_ENVIRONMENT,
        attr.SPANMETER_TENANT_ID,
        attr.SPANMETER_ENDPOINT_TAG,
        attr.SPANMETER_DATA_MODE,
    }
)
"""Every resource attribute key the normaliser may read: the environment, and the
attribution dimensions a whole service may declare once (one tenant per deployment...)."""

CANDIDATE_MARKERS: Final[frozenset[str]] = frozenset(
    {
        *SLOT_KEYS[Slot.PROVIDER],
        *SLOT_KEYS[Slot.REQUEST_MODEL],
        *SLOT_KEYS[Slot.RESPONSE_MODEL],
        *SLOT_KEYS[Slot.OPERATION],
        *SLOT_KEYS[Slot.INPUT],
        *SLOT_KEYS[Slot.OUTPUT],
        *SLOT_KEYS[Slot.TOTAL],
        Key.OPENINFERENCE_SPAN_KIND,
        Key.VERCEL_OPERATION_ID,
        Key.LANGFUSE_USAGE_DETAILS,
    }
)
"""Keys whose presence may make a span GenAI. A superset of what the normaliser accepts as
evidence (it also checks values), so the cheap pre-check never drops a GenAI span."""
