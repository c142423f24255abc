"""normalize(): the rules that decide money, one table per rule.

Provider spellings, bad values (dropped with a note, never guessed), cache-inclusive
input, reported costs, outcome, attribution precedence, and the cheap pre-check.
"""

from __future__ import annotations

from decimal import Decimal
from types import MappingProxyType
from typing import Any

import pytest
from opentelemetry.attributes import BoundedAttributes
from opentelemetry.trace import StatusCode

from spanmeter.normalise import GenAIRecord, canonical_provider, is_genai_candidate, normalize
from spanmeter.normalise._token_rules import (
    EMITTER_LANGFUSE_INPUT,
    EMITTER_VERCEL_V5,
    EMITTER_VERCEL_V6,
    input_includes_cache,
)

CHAT = {"gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o"}
"""The smallest GenAI span; each test adds the attributes it is about."""


def norm(attributes: dict[str, Any], resource: dict[str, Any] | None = None, **kwargs: Any) -> GenAIRecord:
    record = normalize({**CHAT, **attributes}, resource, **kwargs)
    assert record is not None
    return record


# --- providers ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spelling", "canonical"),
    [
        # gen_ai.provider.name enum: unchanged
        ("openai", "openai"),
        ("anthropic", "anthropic"),
        ("aws.bedrock", "aws.bedrock"),
        ("azure.ai.openai", "azure.ai.openai"),
        ("azure.ai.inference", "azure.ai.inference"),
        ("gcp.gemini", "gcp.gemini"),
        ("gcp.vertex_ai", "gcp.vertex_ai"),
        ("gcp.gen_ai", "gcp.gen_ai"),
        ("mistral_ai", "mistral_ai"),
        ("x_ai", "x_ai"),
        ("cohere", "cohere"),
        ("deepseek", "deepseek"),
        ("groq", "groq"),
        ("perplexity", "perplexity"),
        ("ibm.watsonx.ai", "ibm.watsonx.ai"),
        ("moonshot_ai", "moonshot_ai"),
        # old gen_ai.system enum values
        ("xai", "x_ai"),
        ("az.ai.inference", "azure.ai.inference"),
        ("az.ai.openai", "azure.ai.openai"),
        ("vertex_ai", "gcp.vertex_ai"),
        ("gemini", "gcp.gemini"),
        ("ibm.watson.ai", "ibm.watsonx.ai"),
        # OpenInference llm.provider / llm.system values on their own
        ("azure", "azure.ai.openai"),
        ("aws", "aws.bedrock"),
        ("google", "gcp.gen_ai"),
        ("vertexai", "gcp.vertex_ai"),
        ("mistralai", "mistral_ai"),
        # Vercel AI SDK provider ids
        ("openai.chat", "openai"),
        ("openai.responses", "openai"),
        ("anthropic.messages", "anthropic"),
        ("google.generative-ai", "gcp.gemini"),
        ("google.vertex", "gcp.vertex_ai"),
        ("google.vertex.chat", "gcp.vertex_ai"),
        ("amazon-bedrock", "aws.bedrock"),
        ("azure-openai.chat", "azure.ai.openai"),
        ("azure.chat", "azure.ai.openai"),
        ("mistral.chat", "mistral_ai"),
        ("xai.chat", "x_ai"),
        ("groq.chat", "groq"),
        ("deepseek.chat", "deepseek"),
        # payload ids, any case and padding
        ("bedrock", "aws.bedrock"),
        (" OpenAI ", "openai"),
        ("Anthropic", "anthropic"),
        # unknown: lower-cased and stripped, otherwise unchanged
        (" Together ", "together"),
        ("vllm", "vllm"),
        ("openai-proxy.chat", "openai-proxy.chat"),
        ("aws.sagemaker", "aws.sagemaker"),  # not "aws" (Bedrock): only API suffixes are dropped
    ],
)
def test_canonical_provider(spelling: str, canonical: str) -> None:
    assert canonical_provider(spelling) == canonical


@pytest.mark.parametrize(
    ("llm_provider", "llm_system", "canonical"),
    [
        ("azure", "openai", "azure.ai.openai"),
        ("azure", "mistralai", "azure.ai.inference"),
        ("aws", "anthropic", "aws.bedrock"),
        ("google", "vertexai", "gcp.vertex_ai"),
        ("google", None, "gcp.gen_ai"),
        (None, "vertexai", "gcp.vertex_ai"),
        ("xai", None, "x_ai"),
        ("openai", "openai", "openai"),
    ],
)
def test_openinference_provider_and_system_pair(
    llm_provider: str | None, llm_system: str | None, canonical: str
) -> None:
    attributes = {"openinference.span.kind": "LLM", "llm.model_name": "m"}
    if llm_provider is not None:
        attributes["llm.provider"] = llm_provider
    if llm_system is not None:
        attributes["llm.system"] = llm_system
    record = normalize(attributes)
    assert record is not None and record.provider == canonical


def test_provider_name_wins_over_the_legacy_system_key() -> None:
    record = normalize(
        {"gen_ai.provider.name": "x_ai", "gen_ai.system": "openai", "gen_ai.request.model": "grok-4"}
    )
    assert record is not None and record.provider == "x_ai"


# --- bad token values --------------------------------------------------------------------

KEY = "gen_ai.usage.input_tokens"


@pytest.mark.parametrize(
    ("value", "expected", "issue"),
    [
        (12, 12, None),
        (12.0, 12, None),
        ("12", 12, None),
        (" 12 ", 12, None),
        (0, 0, None),
        (100_000_000, 100_000_000, None),
        (float("nan"), None, "not finite"),
        (float("inf"), None, "not finite"),
        (-5, None, "negative"),
        (-5.0, None, "negative"),
        ("-5", None, "not an integer string"),
        (12.5, None, "not an integer"),
        (True, None, "bool"),
        (False, None, "bool"),
        (10**12, None, "absurd"),
        (100_000_001, None, "absurd"),
        ([1], None, "unsupported type list"),
        ((1,), None, "unsupported type tuple"),
        ("abc", None, "not an integer string"),
        ("1e3", None, "not an integer string"),
        ("12.0", None, "not an integer string"),
        ("١٢", None, "not an integer string"),  # Arabic-Indic digits: not what any SDK sends
        ("", None, "not an integer string"),
    ],
)
def test_token_counts_are_accepted_only_when_unambiguous(
    value: Any, expected: int | None, issue: str | None
) -> None:
    record = norm({KEY: value, "gen_ai.usage.output_tokens": 7})
    assert record.input_tokens == expected
    assert record.output_tokens == 7
    assert record.issues == ([f"{KEY}: {issue}"] if issue else [])


def test_an_unusable_count_falls_back_to_the_next_alias_with_a_note() -> None:
    record = norm({KEY: "abc", "llm.token_count.prompt": 40})
    assert record.input_tokens == 40
    assert record.issues == [f"{KEY}: not an integer string"]


@pytest.mark.parametrize(
    "key",
    [
        "gen_ai.usage.cache_read.input_tokens",
        "gen_ai.usage.cache_creation.input_tokens",
        "gen_ai.usage.reasoning_tokens",
    ],
)
def test_unusable_breakdown_counts_become_zero_with_a_note(key: str) -> None:
    record = norm({KEY: 100, "gen_ai.usage.output_tokens": 10, key: -1})
    assert (record.cache_read_tokens, record.cache_write_tokens, record.reasoning_tokens) == (0, 0, 0)
    assert record.issues == [f"{key}: negative"]


def test_missing_breakdown_counts_are_zero_and_missing_usage_is_none() -> None:
    record = norm({})
    assert (record.input_tokens, record.output_tokens) == (None, None)
    assert (record.cache_read_tokens, record.cache_write_tokens, record.reasoning_tokens) == (0, 0, 0)
    assert not record.has_usage
    assert record.issues == []


# --- bad dimension values ----------------------------------------------------------------

TENANT = "spanmeter.tenant_id"


@pytest.mark.parametrize(
    ("value", "expected", "issue"),
    [
        ("acme", "acme", None),
        ("  acme  ", "acme", None),
        ("", None, None),
        ("   ", None, None),
        (42, "42", None),
        ("x" * 300, "x" * 256, "truncated to 256 chars"),
        (4.2, None, "unsupported type float"),
        (True, None, "unsupported type bool"),
        (["acme"], None, "unsupported type list"),
        (("a", "b"), None, "unsupported type tuple"),
    ],
)
def test_dimension_values(value: Any, expected: str | None, issue: str | None) -> None:
    record = norm({TENANT: value})
    assert record.tenant_id == expected
    assert record.issues == ([f"{TENANT}: {issue}"] if issue else [])


@pytest.mark.parametrize(
    ("value", "expected", "issue"),
    [
        ("real", "real", None),
        ("TEST", "test", None),
        (" Demo ", "demo", None),
        ("prod", None, "data mode: 'prod' is not one of real, test, demo"),
        (1, None, "data mode: '1' is not one of real, test, demo"),
    ],
)
def test_data_mode_is_one_of_three(value: Any, expected: str | None, issue: str | None) -> None:
    record = norm({"spanmeter.data_mode": value})
    assert record.data_mode == expected
    assert record.issues == ([issue] if issue else [])


def test_an_unusable_model_falls_back_to_the_next_alias() -> None:
    record = normalize(
        {"gen_ai.request.model": ["gpt-4o"], "llm.model_name": "gpt-4o", "gen_ai.system": "openai"}
    )
    assert record is not None and record.request_model == "gpt-4o"
    assert record.issues == ["gen_ai.request.model: unsupported type list"]


def test_a_long_model_name_is_truncated_with_a_note() -> None:
    record = normalize({"gen_ai.request.model": "m" * 400, "gen_ai.usage.input_tokens": 1})
    assert record is not None and record.request_model == "m" * 256
    assert record.issues == ["gen_ai.request.model: truncated to 256 chars"]


# --- input includes the cache ------------------------------------------------------------


@pytest.mark.parametrize(
    ("emitter", "scope", "provider", "includes"),
    [
        ("otel", "opentelemetry.instrumentation.openai_v2", "openai", True),
        ("otel", "opentelemetry.instrumentation.anthropic", "anthropic", True),
        ("openlit", "openlit.otel.tracing", "anthropic", False),
        (None, "openlit.otel.tracing", "anthropic", False),
        ("openlit", "openlit.otel.tracing", "openai", True),
        (EMITTER_VERCEL_V5, "ai", "anthropic", False),
        (EMITTER_VERCEL_V5, "ai", "aws.bedrock", False),
        (EMITTER_VERCEL_V5, "ai", "openai", True),
        (EMITTER_VERCEL_V6, "ai", "anthropic", True),
        ("traceloop", "opentelemetry.instrumentation.bedrock", "aws.bedrock", False),
        ("traceloop", "opentelemetry.instrumentation.anthropic", "anthropic", True),
        ("openinference", "openinference.instrumentation.anthropic", "anthropic", True),
        ("pydantic_ai", "pydantic-ai", "anthropic", True),
        (EMITTER_LANGFUSE_INPUT, "langfuse-sdk", None, False),
        (None, None, None, True),
    ],
)
def test_cache_rule_table(
    emitter: str | None, scope: str | None, provider: str | None, includes: bool
) -> None:
    assert input_includes_cache(emitter, scope, provider) is includes


def test_vercel_v5_anthropic_input_is_made_inclusive() -> None:
    # AI SDK 5 @ai-sdk/anthropic: inputTokens is usage.input_tokens (8000 uncached).
    record = normalize(
        {
            "ai.operationId": "ai.generateText.doGenerate",
            "ai.model.provider": "anthropic.messages",
            "ai.model.id": "claude-sonnet-4-5",
            "ai.usage.inputTokens": 8000,
            "ai.usage.cachedInputTokens": 2000,
            "ai.usage.outputTokens": 100,
            "gen_ai.usage.input_tokens": 8000,
        }
    )
    assert record is not None
    assert (record.input_tokens, record.cache_read_tokens, record.issues) == (10_000, 2000, [])


def test_traceloop_bedrock_input_is_made_inclusive_by_scope() -> None:
    record = normalize(
        {
            "gen_ai.system": "AWS",
            "gen_ai.request.model": "anthropic.claude-3-5-sonnet-20241022-v2:0",
            "gen_ai.usage.input_tokens": 3000,
            "gen_ai.usage.cache_read_input_tokens": 1000,
            "gen_ai.usage.cache_creation_input_tokens": 500,
            "gen_ai.usage.output_tokens": 50,
        },
        scope_name="opentelemetry.instrumentation.bedrock",
    )
    assert record is not None
    assert (record.provider, record.input_tokens) == ("aws.bedrock", 4500)


def test_cache_larger_than_input_means_input_was_exclusive() -> None:
    # Anthropic's raw numbers through an instrumentation the table does not know.
    record = norm(
        {
            "gen_ai.provider.name": "anthropic",
            KEY: 12,
            "gen_ai.usage.cache_read.input_tokens": 5000,
            "gen_ai.usage.cache_creation.input_tokens": 300,
        },
        scope_name="some.other.instrumentation",
    )
    assert record.input_tokens == 5312
    assert record.issues == ["cache tokens exceed input tokens: input treated as exclusive of cache"]


def test_inclusive_input_is_left_alone() -> None:
    record = norm({KEY: 5300, "gen_ai.usage.cache_read.input_tokens": 5000})
    assert (record.input_tokens, record.issues) == (5300, [])


def test_reasoning_larger_than_output_means_output_was_exclusive() -> None:
    record = norm({"gen_ai.usage.output_tokens": 100, "gen_ai.usage.reasoning.output_tokens": 900})
    assert record.output_tokens == 1000
    assert record.issues == [
        "reasoning tokens exceed output tokens: output treated as exclusive of reasoning"
    ]


@pytest.mark.parametrize(
    ("usage_details", "provider", "expected"),
    [
        # Langfuse usage types: "input" excludes the cache
        ('{"input": 100, "output": 20, "input_cache_read": 400}', None, (500, 20, 400, 0, 0)),
        # OpenAI's raw usage object: prompt_tokens includes cached_tokens
        (
            '{"prompt_tokens": 500, "completion_tokens": 20, "prompt_tokens_details": {"cached_tokens": 400},'
            ' "completion_tokens_details": {"reasoning_tokens": 8}}',
            "openai",
            (500, 20, 400, 0, 8),
        ),
        # Anthropic's raw usage object: input_tokens excludes both cache counts
        (
            '{"input_tokens": 100, "output_tokens": 20, "cache_read_input_tokens": 400,'
            ' "cache_creation_input_tokens": 50}',
            "anthropic",
            (550, 20, 400, 50, 0),
        ),
    ],
)
def test_langfuse_usage_details(usage_details: str, provider: str | None, expected: tuple[int, ...]) -> None:
    attributes: dict[str, Any] = {
        "langfuse.observation.model.name": "m",
        "langfuse.observation.usage_details": usage_details,
    }
    if provider is not None:
        attributes["gen_ai.system"] = provider
    record = normalize(attributes, scope_name="langfuse-sdk")
    assert record is not None
    got = (
        record.input_tokens,
        record.output_tokens,
        record.cache_read_tokens,
        record.cache_write_tokens,
        record.reasoning_tokens,
    )
    assert got == expected
    assert record.issues == []


@pytest.mark.parametrize(
    ("raw", "issue"),
    [
        ("{not json", "langfuse.observation.usage_details: invalid JSON"),
        ("[1, 2]", "langfuse.observation.usage_details: not a JSON object"),
        (42, "langfuse.observation.usage_details: unsupported type int"),
        ('{"input": -1, "output": 2}', "langfuse.observation.usage_details.input: negative"),
        ("[" * 5000 + "]" * 5000, "langfuse.observation.usage_details: invalid JSON"),
    ],
)
def test_bad_langfuse_usage_details(raw: Any, issue: str) -> None:
    record = normalize({"langfuse.observation.model.name": "m", "langfuse.observation.usage_details": raw})
    assert record is not None
    assert record.input_tokens is None
    assert issue in record.issues


# --- a cost already on the span ----------------------------------------------------------


@pytest.mark.parametrize(
    ("attributes", "cost", "source", "key"),
    [
        (
            {
                "gen_ai.usage.cost.amount": 0.0123,
                "gen_ai.usage.cost.currency": "USD",
                "gen_ai.usage.cost.source": "provider",
            },
            Decimal("0.0123"),
            "provider",
            "gen_ai.usage.cost.amount",
        ),
        (
            {"gen_ai.usage.cost.amount": 0.5, "gen_ai.usage.cost.source": "local"},
            Decimal("0.5"),
            "local",
            "gen_ai.usage.cost.amount",
        ),
        ({"gen_ai.usage.cost.amount": 0.5}, Decimal("0.5"), None, "gen_ai.usage.cost.amount"),
        ({"gen_ai.usage.cost": 0.1}, Decimal("0.1"), "local", "gen_ai.usage.cost"),
        ({"gen_ai.usage.cost": 0}, Decimal("0"), "local", "gen_ai.usage.cost"),
        ({"gen_ai.usage.cost": "0.25"}, Decimal("0.25"), "local", "gen_ai.usage.cost"),
        ({"operation.cost": 1e-05}, Decimal("0.00001"), "local", "operation.cost"),
        ({"llm.cost.total": 0.3}, Decimal("0.3"), "local", "llm.cost.total"),
        (
            {"langfuse.observation.cost_details": '{"total": 0.07}'},
            Decimal("0.07"),
            "local",
            "langfuse.observation.cost_details",
        ),
        # spanmeter priced the span in the app: its own exact integer, not the float copy
        (
            {
                "spanmeter.pricing.status": "priced",
                "spanmeter.cost.nano_usd": 12_345_678,
                "gen_ai.usage.cost": 0.012345678,
            },
            Decimal("0.012345678"),
            "local",
            "spanmeter.cost.nano_usd",
        ),
        ({"spanmeter.pricing.status": "unknown_model", "gen_ai.usage.cost": 0.5}, None, None, None),
    ],
)
def test_reported_cost(
    attributes: dict[str, Any], cost: Decimal | None, source: str | None, key: str | None
) -> None:
    record = norm(attributes)
    assert (record.reported_cost_usd, record.reported_cost_source, record.reported_cost_key) == (
        cost,
        source,
        key,
    )
    assert record.issues == []


def test_reported_cost_is_exact_from_the_float_repr() -> None:
    record = norm({"gen_ai.usage.cost": 0.1 + 0.2})
    assert record.reported_cost_usd == Decimal("0.30000000000000004")  # repr, not binary expansion


@pytest.mark.parametrize(
    ("attributes", "issue"),
    [
        ({"gen_ai.usage.cost": float("nan")}, "gen_ai.usage.cost: not finite"),
        ({"gen_ai.usage.cost": -0.01}, "gen_ai.usage.cost: negative"),
        ({"gen_ai.usage.cost": "free"}, "gen_ai.usage.cost: not a number"),
        ({"gen_ai.usage.cost": True}, "gen_ai.usage.cost: unsupported type bool"),
        ({"operation.cost": 5e9}, "operation.cost: absurd"),
        (
            {"gen_ai.usage.cost.amount": 0.2, "gen_ai.usage.cost.currency": "EUR"},
            "gen_ai.usage.cost.currency: 'EUR' is not USD, cost ignored",
        ),
        (
            {"langfuse.observation.cost_details": '{"input": 0.1}'},
            "langfuse.observation.cost_details: no total",
        ),
        (
            {"spanmeter.pricing.status": "priced", "spanmeter.cost.nano_usd": -3},
            "spanmeter.cost.nano_usd: negative",
        ),
    ],
)
def test_unusable_costs_are_dropped_with_a_note(attributes: dict[str, Any], issue: str) -> None:
    record = norm(attributes)
    assert record.reported_cost_usd is None
    assert record.issues == [issue]


def test_an_unusable_cost_falls_through_to_the_next_key() -> None:
    record = norm(
        {"gen_ai.usage.cost.amount": 0.2, "gen_ai.usage.cost.currency": "EUR", "operation.cost": 0.19}
    )
    assert (record.reported_cost_usd, record.reported_cost_key) == (Decimal("0.19"), "operation.cost")


def test_an_unknown_cost_source_is_noted() -> None:
    record = norm({"gen_ai.usage.cost.amount": 0.2, "gen_ai.usage.cost.source": "vendor"})
    assert (record.reported_cost_usd, record.reported_cost_source) == (Decimal("0.2"), None)
    assert record.issues == ["gen_ai.usage.cost.source: not provider or local"]


# --- outcome and latency -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("attributes", "status_code", "outcome", "error_type"),
    [
        ({}, 0, "success", None),
        ({}, None, "success", None),
        ({}, 1, "success", None),
        ({}, 2, "error", None),
        ({}, StatusCode.ERROR, "error", None),
        ({"error.type": "RateLimitError"}, 0, "error", "RateLimitError"),
        ({"error.type": "timeout"}, 2, "error", "timeout"),
        ({"status": "success"}, None, "success", None),
        ({"status": "error"}, None, "error", "error"),
        ({"status": "Timeout"}, None, "error", "timeout"),
        ({"langfuse.observation.level": "ERROR"}, None, "error", None),
    ],
)
def test_outcome(attributes: dict[str, Any], status_code: Any, outcome: str, error_type: str | None) -> None:
    record = norm(attributes, status_code=status_code)
    assert (record.outcome, record.error_type, record.issues) == (outcome, error_type, [])


def test_an_unrecognised_payload_status_is_unknown_with_a_note() -> None:
    record = norm({"status": "partial"})
    assert record.outcome == "unknown"
    assert record.issues == ["status: 'partial' is neither success nor error"]


@pytest.mark.parametrize(
    ("attributes", "start", "end", "latency", "issues"),
    [
        ({}, 1_000, 2_501_000, 2.5, []),
        ({}, None, 2_000, None, []),
        ({}, 5_000, 1_000, None, ["span ends before it starts: no latency"]),
        ({"latencyMs": 892}, 0, 5_000_000_000, 892.0, []),
        ({"latencyMs": "892.5"}, None, None, 892.5, []),
        ({"latencyMs": -1}, 0, 3_000_000, 3.0, ["latencyMs: negative"]),
        ({"latencyMs": float("nan")}, None, None, None, ["latencyMs: not finite"]),
        ({"latencyMs": "slow"}, None, None, None, ["latencyMs: not a number"]),
        # Beyond a float's range: noted like any unusable number, never an OverflowError.
        ({"latencyMs": 10**400}, None, None, None, ["latencyMs: not a number"]),
    ],
)
def test_latency(
    attributes: dict[str, Any], start: int | None, end: int | None, latency: float | None, issues: list[str]
) -> None:
    record = norm(attributes, start_time_ns=start, end_time_ns=end)
    assert (record.latency_ms, record.start_time_ns, record.end_time_ns) == (latency, start, end)
    assert record.issues == issues


# --- attribution precedence --------------------------------------------------------------


@pytest.mark.parametrize(
    ("attributes", "expected"),
    [
        ({"user.id": "a", "userId": "b", "enduser.id": "c"}, "a"),
        ({"userId": "b", "enduser.id": "c", "langfuse.user.id": "d"}, "b"),
        ({"enduser.id": "c", "langfuse.user.id": "d"}, "c"),
        ({"langfuse.user.id": "d", "gen_ai.request.user": "e"}, "d"),
        ({"gen_ai.request.user": "e", "traceloop.association.properties.user_id": "f"}, "e"),
        ({"traceloop.association.properties.user_id": "f", "ai.telemetry.metadata.userId": "g"}, "f"),
        ({"ai.telemetry.metadata.userId": "g"}, "g"),
    ],
)
def test_user_id_precedence(attributes: dict[str, Any], expected: str) -> None:
    assert norm(attributes).user_id == expected


def test_user_id_hasher_is_applied() -> None:
    record = norm({"userId": "alice@example.com"}, user_id_hasher=lambda raw: f"h:{len(raw)}")
    assert record.user_id == "h:17"


def test_a_failing_hasher_drops_the_user_id_and_never_stores_it_raw() -> None:
    def broken(raw: str) -> str:
        raise RuntimeError("no key")

    record = norm({"userId": "alice@example.com"}, user_id_hasher=broken)
    assert record.user_id is None
    assert record.issues == ["user id: hasher failed, user id dropped"]


@pytest.mark.parametrize(
    ("span", "resource", "expected"),
    [
        ({"deployment.environment.name": "prod"}, {"deployment.environment.name": "staging"}, "prod"),
        ({"deployment.environment": "default"}, {"deployment.environment.name": "staging"}, "staging"),
        ({"environment": "prod"}, {"deployment.environment": "staging"}, "prod"),
        ({"langfuse.environment": "production"}, {}, "production"),
        ({}, {"deployment.environment": "qa"}, "qa"),
        ({}, {}, None),
    ],
)
def test_environment_precedence(span: dict[str, Any], resource: dict[str, Any], expected: str | None) -> None:
    assert norm(span, resource).environment == expected


def test_resource_attributes_are_a_fallback_for_tenant_endpoint_and_data_mode() -> None:
    resource = {
        "spanmeter.tenant_id": "t_res",
        "spanmeter.endpoint_tag": "ep_res",
        "spanmeter.data_mode": "Demo",
    }
    record = norm({}, resource)
    assert (record.tenant_id, record.endpoint_tag, record.data_mode) == ("t_res", "ep_res", "demo")
    record = norm({"tenantId": "t_span", "endpointTag": "ep_span", "dataMode": "test"}, resource)
    assert (record.tenant_id, record.endpoint_tag, record.data_mode) == ("t_span", "ep_span", "test")


def test_sdk_mappings_work_like_dicts() -> None:
    attributes = {**CHAT, KEY: 10, "http.route": "/chat"}
    resource = {"service.name": "svc", "deployment.environment.name": "prod"}
    expected = normalize(attributes, resource)
    sdk_attributes = MappingProxyType(BoundedAttributes(attributes=attributes, immutable=True))
    sdk_resource = BoundedAttributes(attributes=resource, immutable=True)
    assert normalize(sdk_attributes, sdk_resource) == expected
    assert expected is not None and expected.environment == "prod"


# --- the cheap pre-check -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("attributes", "candidate"),
    [
        ({"gen_ai.usage.input_tokens": 1}, True),
        ({"gen_ai.request.model": "m"}, True),
        ({"gen_ai.provider.name": "openai"}, True),
        ({"gen_ai.system": "openai"}, True),
        ({"gen_ai.operation.name": "chat"}, True),
        ({"llm.token_count.prompt": 1}, True),
        ({"ai.usage.promptTokens": 1}, True),
        ({"ai.usage.inputTokens": 1}, True),
        ({"ai.model.id": "m"}, True),
        ({"openinference.span.kind": "CHAIN"}, True),
        ({"inputTokens": 1}, True),
        ({"model": "m"}, True),
        ({"langfuse.observation.usage_details": "{}"}, True),
        ({"gen_ai.aggregated_usage.input_tokens": 1}, True),
        ({"http.request.method": "GET", "url.path": "/"}, False),
        ({"db.system": "postgresql"}, False),
        ({"spanmeter.tenant_id": "t"}, False),
        ({}, False),
    ],
)
def test_is_genai_candidate(attributes: dict[str, Any], candidate: bool) -> None:
    assert is_genai_candidate(attributes) is candidate
    bounded = BoundedAttributes(attributes=attributes, immutable=False)
    assert is_genai_candidate(bounded) is candidate
    assert is_genai_candidate(MappingProxyType(bounded)) is candidate
