"""The spanmeter attribute contract: canonical span attribute keys.

Constants only, no logic: the keys, and the closed set of values of a key where spanmeter
defines one (:data:`DATA_MODES`). Upstream OTel keys are imported from
``opentelemetry-semantic-conventions`` rather than retyped; keys that upstream does not
ship yet (or never will, being ours) are declared here with the reason.

The GenAI keys upstream are marked "moved to the semantic-conventions-genai repository"
and are all in Development status: the *values* are what the wire carries, and those are
what we pin here.
"""

from __future__ import annotations

from typing import Final

# The semconv package ships py.typed, but pyright does not apply it to ``_incubating`` (a
# namespace package: no __init__.py) and asks for stubs, which nobody publishes; the names
# imported from there are string literals all the same.
from opentelemetry.semconv._incubating.attributes.deployment_attributes import (  # pyright: ignore[reportMissingTypeStubs]
    DEPLOYMENT_ENVIRONMENT,
    DEPLOYMENT_ENVIRONMENT_NAME,
)
from opentelemetry.semconv._incubating.attributes.enduser_attributes import ENDUSER_ID  # pyright: ignore[reportMissingTypeStubs]
from opentelemetry.semconv._incubating.attributes.gen_ai_attributes import (  # pyright: ignore[reportMissingTypeStubs]
    GEN_AI_AGENT_NAME,
    GEN_AI_CONVERSATION_ID,
    GEN_AI_OPERATION_NAME,
    GEN_AI_PROMPT_NAME,
    GEN_AI_PROVIDER_NAME,
    GEN_AI_REQUEST_MODEL,
    GEN_AI_RESPONSE_ID,
    GEN_AI_RESPONSE_MODEL,
    GEN_AI_SYSTEM,
    GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS,
    GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS,
    GEN_AI_USAGE_COMPLETION_TOKENS,
    GEN_AI_USAGE_INPUT_TOKENS,
    GEN_AI_USAGE_OUTPUT_TOKENS,
    GEN_AI_USAGE_PROMPT_TOKENS,
    GEN_AI_USAGE_REASONING_OUTPUT_TOKENS,
    GEN_AI_WORKFLOW_NAME,
)
from opentelemetry.semconv._incubating.attributes.session_attributes import SESSION_ID  # pyright: ignore[reportMissingTypeStubs]
from opentelemetry.semconv._incubating.attributes.user_attributes import USER_ID  # pyright: ignore[reportMissingTypeStubs]
from opentelemetry.semconv.attributes.error_attributes import ERROR_TYPE

__all__ = [
    "DATA_MODES",
    "DEPLOYMENT_ENVIRONMENT",
    "DEPLOYMENT_ENVIRONMENT_NAME",
    "ENDUSER_ID",
    "ERROR_TYPE",
    "GEN_AI_AGENT_NAME",
    "GEN_AI_CONVERSATION_ID",
    "GEN_AI_OPERATION_NAME",
    "GEN_AI_PROMPT_NAME",
    "GEN_AI_PROMPT_VERSION",
    "GEN_AI_PROVIDER_NAME",
    "GEN_AI_REQUEST_MODEL",
    "GEN_AI_RESPONSE_ID",
    "GEN_AI_RESPONSE_MODEL",
    "GEN_AI_SYSTEM",
    "GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS",
    "GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS",
    "GEN_AI_USAGE_COMPLETION_TOKENS",
    "GEN_AI_USAGE_COST",
    "GEN_AI_USAGE_COST_AMOUNT",
    "GEN_AI_USAGE_COST_CURRENCY",
    "GEN_AI_USAGE_COST_SOURCE",
    "GEN_AI_USAGE_INPUT_TOKENS",
    "GEN_AI_USAGE_OUTPUT_TOKENS",
    "GEN_AI_USAGE_PROMPT_TOKENS",
    "GEN_AI_USAGE_REASONING_OUTPUT_TOKENS",
    "GEN_AI_WORKFLOW_NAME",
    "SESSION_ID",
    "SPANMETER_COST_CACHE_READ_USD",
    "SPANMETER_COST_CACHE_WRITE_USD",
    "SPANMETER_COST_INPUT_USD",
    "SPANMETER_COST_NANO_USD",
    "SPANMETER_COST_OUTPUT_USD",
    "SPANMETER_COST_REASONING_USD",
    "SPANMETER_COST_REPORTED_USD",
    "SPANMETER_DATA_MODE",
    "SPANMETER_DUPLICATE_OF",
    "SPANMETER_ENDPOINT_TAG",
    "SPANMETER_EXTERNAL_REQUEST_ID",
    "SPANMETER_NOT_BILLABLE_REASON",
    "SPANMETER_PRICING_EFFECTIVE_DATE",
    "SPANMETER_PRICING_MODEL",
    "SPANMETER_PRICING_PROVIDER",
    "SPANMETER_PRICING_SOURCE",
    "SPANMETER_PRICING_SOURCE_VERSION",
    "SPANMETER_PRICING_STATUS",
    "SPANMETER_TENANT_ID",
    "USER_ID",
]

# --- keys upstream does not ship (yet) -------------------------------------------------

GEN_AI_PROMPT_VERSION: Final = "gen_ai.prompt.version"
"""Prompt version (deploy label). Added by semantic-conventions-genai PR #179 and emitted
by opentelemetry-util-genai, but not in the Python semconv package yet."""

GEN_AI_USAGE_COST: Final = "gen_ai.usage.cost"
"""Total cost of the operation in USD (double). Not OTel semconv: the de-facto key that
OpenLIT writes and Langfuse reads, so every backend that already shows cost shows ours."""

GEN_AI_USAGE_COST_AMOUNT: Final = "gen_ai.usage.cost.amount"
"""Proposed OTel key (semantic-conventions-genai PR #443, open): cost amount (double)."""

GEN_AI_USAGE_COST_CURRENCY: Final = "gen_ai.usage.cost.currency"
"""Proposed OTel key (PR #443): ISO 4217 currency of ``gen_ai.usage.cost.amount``."""

GEN_AI_USAGE_COST_SOURCE: Final = "gen_ai.usage.cost.source"
"""Proposed OTel key (PR #443): ``provider`` (reported in the response) or ``local``."""

# --- attribution dimensions --------------------------------------------------------------

SPANMETER_ENDPOINT_TAG: Final = "spanmeter.endpoint_tag"
"""Product feature that made the call, e.g. ``checkout.ai_summary``. Low cardinality."""

SPANMETER_TENANT_ID: Final = "spanmeter.tenant_id"
"""Tenant (customer account) that the call is billed to; an opaque id, not a name."""

SPANMETER_EXTERNAL_REQUEST_ID: Final = "spanmeter.external_request_id"
"""One id per logical request, reused across retries: lets reports separate logical
requests from attempts (the retry multiplier)."""

SPANMETER_DATA_MODE: Final = "spanmeter.data_mode"
"""``real``, ``test`` or ``demo``: keeps synthetic traffic out of operational reviews."""

DATA_MODES: Final = frozenset({"real", "test", "demo"})
"""The values ``spanmeter.data_mode`` may take (a closed set, so it belongs to the key)."""

# --- cost written by spanmeter -----------------------------------------------------------

SPANMETER_COST_NANO_USD: Final = "spanmeter.cost.nano_usd"
"""Exact total cost as an integer number of nano-USD (1e-9 USD). ``gen_ai.usage.cost`` is
the same amount as a float for backends that only read that key; sums use this one."""

SPANMETER_COST_INPUT_USD: Final = "spanmeter.cost.input"
"""Cost of uncached input tokens, USD (double)."""

SPANMETER_COST_OUTPUT_USD: Final = "spanmeter.cost.output"
"""Cost of output tokens other than reasoning tokens, USD (double)."""

SPANMETER_COST_CACHE_READ_USD: Final = "spanmeter.cost.cache_read"
"""Cost of input tokens read from the provider's prompt cache, USD (double)."""

SPANMETER_COST_CACHE_WRITE_USD: Final = "spanmeter.cost.cache_write"
"""Cost of input tokens written to the provider's prompt cache, USD (double)."""

SPANMETER_COST_REASONING_USD: Final = "spanmeter.cost.reasoning"
"""Cost of reasoning (thinking) output tokens, USD (double)."""

SPANMETER_COST_REPORTED_USD: Final = "spanmeter.cost.reported"
"""A cost that arrived on the span from another tool, kept for comparison when the
pricing policy chose spanmeter's own price over it. USD (double)."""

SPANMETER_PRICING_STATUS: Final = "spanmeter.pricing.status"
"""How the cost was obtained: ``priced``, ``reported``, ``unknown_model``, ``no_model``,
``no_usage`` or ``invalid_usage`` (see :class:`spanmeter.pricing.PricingStatus`)."""

SPANMETER_DUPLICATE_OF: Final = "spanmeter.duplicate_of"
"""On a span that describes the same provider call as another one (an SDK's own span beside
an instrumentation's): the hex span id of the span that carries the call's cost. Such a
span has ``spanmeter.pricing.status`` ``not_billable``."""

SPANMETER_NOT_BILLABLE_REASON: Final = "spanmeter.not_billable.reason"
"""Why a span that describes a provider call is not billable: ``same_response_id``,
``sdk_span_under_instrumentation``, ``same_usage_as_parent`` (see
:mod:`spanmeter.normalise.same_call`)."""

SPANMETER_PRICING_SOURCE: Final = "spanmeter.pricing.source"
"""Where the price came from: ``genai-prices``, ``override`` or ``reported``."""

SPANMETER_PRICING_SOURCE_VERSION: Final = "spanmeter.pricing.source_version"
"""Version of the price source (genai-prices package version, or the override file's
content hash), so a cost can be reproduced or re-priced later."""

SPANMETER_PRICING_PROVIDER: Final = "spanmeter.pricing.provider"
"""Provider id in the price source that the span was matched to."""

SPANMETER_PRICING_MODEL: Final = "spanmeter.pricing.model"
"""Model id in the price source that the span was matched to."""

SPANMETER_PRICING_EFFECTIVE_DATE: Final = "spanmeter.pricing.effective_date"
"""ISO date from which the applied price was in force (empty when the source gives none)."""
