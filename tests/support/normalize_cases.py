"""Recorded GenAI spans, one per instrumentation, each with the record normalize() must make.

Each case is the attribute set an instrumentation actually writes (recorded from the
library where it is installed here, otherwise transcribed from its source at the version
named), including the attributes the normaliser must ignore. The expected record is written
out in full, so a change in any field shows up as a failing case. They live here because the
normaliser's tests are not their only readers: the receiver's ingest path and the collector's
OTTL statements are checked against the same spans, so every consumer agrees on one set.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from spanmeter.normalise import GenAIRecord

__all__ = [
    "ALL_CASES",
    "DOUBLE_COUNTING_CASES",
    "END_NS",
    "INSTRUMENTATION_CASES",
    "OPENAI_V2_CHAT",
    "START_NS",
    "Case",
]


START_NS = 1_760_000_000_000_000_000
END_NS = START_NS + 1_234_500_000  # 1234.5 ms


@dataclass
class Case:
    """One recorded span and the record it must become."""

    attributes: dict[str, Any]
    expected: GenAIRecord
    resource: dict[str, Any] = field(default_factory=dict)
    span_name: str | None = None
    scope_name: str | None = None
    status_code: int = 0  # UNSET: what OTel instrumentations leave on success


def _record(**fields: Any) -> GenAIRecord:
    """An expected record with the span times every case uses."""
    fields.setdefault("start_time_ns", START_NS)
    fields.setdefault("end_time_ns", END_NS)
    fields.setdefault("latency_ms", 1234.5)
    fields.setdefault("outcome", "success")
    return GenAIRecord(**fields)


# --- one span per instrumentation --------------------------------------------------------

OPENAI_V2_CHAT = Case(
    # Recorded from opentelemetry-util-genai 1.3b0's TelemetryHandler as openai-v2 2.4b0
    # drives it (zero cache-creation counts are dropped by util-genai).
    attributes={
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.request.temperature": 0.2,
        "gen_ai.response.finish_reasons": ("stop",),
        "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
        "gen_ai.response.id": "chatcmpl-AbC123",
        "gen_ai.usage.input_tokens": 2150,
        "gen_ai.usage.output_tokens": 96,
        "gen_ai.usage.cache_read.input_tokens": 1920,
        "server.address": "api.openai.com",
        "server.port": 443,
        # stamped by spanmeter's processor from baggage/context at span start
        "spanmeter.endpoint_tag": "checkout.ai_summary",
        "spanmeter.tenant_id": "t_42",
        "gen_ai.prompt.version": "summarizer_v3",
        "spanmeter.external_request_id": "req_01HZXB6MQZ2WQ9D2KCF9M4V2QY",
        "spanmeter.data_mode": "real",
        "user.id": "u_5f1d",
    },
    resource={"service.name": "checkout", "deployment.environment.name": "prod"},
    span_name="chat gpt-4o-mini",
    scope_name="opentelemetry.instrumentation.openai_v2",
    expected=_record(
        response_id="chatcmpl-AbC123",
        provider="openai",
        request_model="gpt-4o-mini",
        response_model="gpt-4o-mini-2024-07-18",
        operation="chat",
        input_tokens=2150,
        output_tokens=96,
        cache_read_tokens=1920,
        endpoint_tag="checkout.ai_summary",
        prompt_version="summarizer_v3",
        tenant_id="t_42",
        user_id="u_5f1d",
        external_request_id="req_01HZXB6MQZ2WQ9D2KCF9M4V2QY",
        data_mode="real",
        environment="prod",
        instrumentation="otel",
    ),
)

UTIL_GENAI_ANTHROPIC_CACHE_WRITE = Case(
    # util-genai 1.3b0 spells the cache-write count gen_ai.usage.cache_write.input_tokens
    # (the registry says cache_creation); both must be read.
    attributes={
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "anthropic",
        "gen_ai.request.model": "claude-sonnet-4-5",
        "gen_ai.response.model": "claude-sonnet-4-5-20250929",
        "gen_ai.usage.input_tokens": 12_240,
        "gen_ai.usage.output_tokens": 512,
        "gen_ai.usage.cache_read.input_tokens": 8_000,
        "gen_ai.usage.cache_write.input_tokens": 4_000,
        "gen_ai.usage.reasoning.output_tokens": 128,
        "gen_ai.conversation.id": "conv_7",
    },
    scope_name="opentelemetry.instrumentation.anthropic",
    expected=_record(
        provider="anthropic",
        request_model="claude-sonnet-4-5",
        response_model="claude-sonnet-4-5-20250929",
        operation="chat",
        input_tokens=12_240,
        output_tokens=512,
        cache_read_tokens=8_000,
        cache_write_tokens=4_000,
        reasoning_tokens=128,
        session_id="conv_7",
        instrumentation="otel",
    ),
)

TRACELOOP_NEW = Case(
    # OpenLLMetry openai instrumentation with the Traceloop SDK (association properties,
    # workflow name, managed prompt), gen_ai.* names of semconv-ai >= 0.4.
    attributes={
        "llm.request.type": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4.1-mini",
        "gen_ai.response.model": "gpt-4.1-mini-2025-04-14",
        "gen_ai.response.id": "chatcmpl-BxT9",
        "gen_ai.openai.api_base": "https://api.openai.com/v1/",
        "llm.is_streaming": False,
        "llm.headers": "None",
        "gen_ai.usage.input_tokens": 1840,
        "gen_ai.usage.output_tokens": 412,
        "llm.usage.total_tokens": 2252,
        "gen_ai.usage.cache_read_input_tokens": 1536,
        "gen_ai.usage.reasoning_tokens": 256,
        "traceloop.workflow.name": "support.reply",
        "traceloop.entity.path": "draft_reply",
        "traceloop.association.properties.user_id": "u_7f3a",
        "traceloop.association.properties.tenant_id": "acme",
        "traceloop.association.properties.session_id": "sess_91",
        "traceloop.prompt.managed": True,
        "traceloop.prompt.key": "support_reply",
        "traceloop.prompt.version": 7,
    },
    scope_name="opentelemetry.instrumentation.openai.v1",
    expected=_record(
        response_id="chatcmpl-BxT9",
        provider="openai",
        request_model="gpt-4.1-mini",
        response_model="gpt-4.1-mini-2025-04-14",
        operation="chat",
        input_tokens=1840,
        output_tokens=412,
        cache_read_tokens=1536,
        reasoning_tokens=256,
        endpoint_tag="support.reply",
        prompt_name="support_reply",
        prompt_version="7",
        tenant_id="acme",
        user_id="u_7f3a",
        session_id="sess_91",
        instrumentation="traceloop",
    ),
)

TRACELOOP_LEGACY = Case(
    # Pre-0.4 OpenLLMetry: prompt/completion token names, capitalised gen_ai.system,
    # customer_id as the tenant, legacy llm.request.type "completion".
    attributes={
        "llm.request.type": "completion",
        "gen_ai.system": "OpenAI",
        "gen_ai.request.model": "gpt-3.5-turbo-instruct",
        "gen_ai.response.model": "gpt-3.5-turbo-instruct",
        "gen_ai.usage.prompt_tokens": 120,
        "gen_ai.usage.completion_tokens": 48,
        "llm.usage.total_tokens": 168,
        "traceloop.association.properties.customer_id": "cust_9",
    },
    scope_name="opentelemetry.instrumentation.openai.v1",
    expected=_record(
        provider="openai",
        request_model="gpt-3.5-turbo-instruct",
        response_model="gpt-3.5-turbo-instruct",
        operation="text_completion",
        input_tokens=120,
        output_tokens=48,
        tenant_id="cust_9",
        instrumentation="traceloop",
    ),
)

OPENINFERENCE_OPENAI = Case(
    # openinference-instrumentation-openai 0.1.66 with context attributes (using_session,
    # using_user, using_prompt_template) and a cost written by an OI cost processor.
    attributes={
        "openinference.span.kind": "LLM",
        "llm.provider": "openai",
        "llm.system": "openai",
        "llm.model_name": "gpt-4o-2024-08-06",
        "llm.invocation_parameters": '{"model": "gpt-4o", "temperature": 0}',
        "input.mime_type": "application/json",
        "output.mime_type": "application/json",
        "llm.token_count.prompt": 1200,
        "llm.token_count.completion": 300,
        "llm.token_count.total": 1500,
        "llm.token_count.prompt_details.cache_read": 1024,
        "llm.token_count.completion_details.reasoning": 0,
        "session.id": "sess-1",
        "user.id": "user-1",
        "llm.prompt_template.version": "v2.1",
        "llm.cost.total": 0.00434,
    },
    scope_name="openinference.instrumentation.openai",
    expected=_record(
        provider="openai",
        request_model="gpt-4o-2024-08-06",
        operation="chat",
        input_tokens=1200,
        output_tokens=300,
        cache_read_tokens=1024,
        prompt_version="v2.1",
        user_id="user-1",
        session_id="sess-1",
        reported_cost_usd=Decimal("0.00434"),
        reported_cost_source="local",
        reported_cost_key="llm.cost.total",
        instrumentation="openinference",
    ),
)

OPENINFERENCE_ANTHROPIC = Case(
    # openinference-instrumentation-anthropic 3.1.0: llm.token_count.prompt already sums
    # input + cache_creation + cache_read (40 + 200 + 5000), so nothing is added.
    attributes={
        "openinference.span.kind": "LLM",
        "llm.provider": "anthropic",
        "llm.system": "anthropic",
        "llm.model_name": "claude-sonnet-4-5-20250929",
        "llm.token_count.prompt": 5240,
        "llm.token_count.completion": 310,
        "llm.token_count.total": 5550,
        "llm.token_count.prompt_details.cache_read": 5000,
        "llm.token_count.prompt_details.cache_write": 200,
    },
    scope_name="openinference.instrumentation.anthropic",
    expected=_record(
        provider="anthropic",
        request_model="claude-sonnet-4-5-20250929",
        operation="chat",
        input_tokens=5240,
        output_tokens=310,
        cache_read_tokens=5000,
        cache_write_tokens=200,
        instrumentation="openinference",
    ),
)

OPENLIT_OPENAI = Case(
    # OpenLIT 1.45 openai: its own cost in gen_ai.usage.cost, the OpenAI ``user`` kwarg as
    # gen_ai.request.user, environment and service name copied onto every span.
    attributes={
        "telemetry.sdk.name": "openlit",
        "gen_ai.operation.name": "chat",
        "gen_ai.system": "openai",
        "server.address": "api.openai.com",
        "server.port": 443,
        "gen_ai.request.model": "gpt-4o",
        "gen_ai.response.model": "gpt-4o-2024-08-06",
        "deployment.environment": "production",
        "service.name": "support-bot",
        "gen_ai.request.user": "user-42",
        "gen_ai.request.is_stream": False,
        "gen_ai.usage.input_tokens": 1000,
        "gen_ai.usage.output_tokens": 200,
        "gen_ai.client.token.usage": 1200,
        "gen_ai.usage.cost": 0.0045,
        "gen_ai.usage.cache_read.input_tokens": 0,
        "gen_ai.usage.reasoning_tokens": 0,
        "gen_ai.response.finish_reasons": ("stop",),
    },
    resource={"service.name": "support-bot", "deployment.environment": "production"},
    scope_name="openlit.otel.tracing",
    status_code=1,  # OpenLIT sets OK explicitly
    expected=_record(
        provider="openai",
        request_model="gpt-4o",
        response_model="gpt-4o-2024-08-06",
        operation="chat",
        input_tokens=1000,
        output_tokens=200,
        user_id="user-42",
        environment="production",
        reported_cost_usd=Decimal("0.0045"),
        reported_cost_source="local",
        reported_cost_key="gen_ai.usage.cost",
        instrumentation="openlit",
    ),
)

OPENLIT_ANTHROPIC = Case(
    # OpenLIT 1.45 anthropic: gen_ai.usage.input_tokens is Anthropic's raw, cache-EXCLUSIVE
    # usage.input_tokens. 3000 uncached + 2048 read + 512 written = 5560 input tokens. The
    # cache is smaller than the raw input, so only the rule table (not the safety rule)
    # can get this right. Its span-level environment is OpenLIT's placeholder "default".
    attributes={
        "telemetry.sdk.name": "openlit",
        "gen_ai.operation.name": "chat",
        "gen_ai.system": "anthropic",
        "gen_ai.request.model": "claude-3-5-sonnet-latest",
        "gen_ai.response.model": "claude-3-5-sonnet-20241022",
        "deployment.environment": "default",
        "gen_ai.usage.input_tokens": 3000,
        "gen_ai.usage.output_tokens": 380,
        "gen_ai.usage.cache_read.input_tokens": 2048,
        "gen_ai.usage.cache_creation.input_tokens": 512,
        "gen_ai.usage.cost": 0.0169,
    },
    resource={"deployment.environment.name": "staging"},
    scope_name="openlit.otel.tracing",
    status_code=1,
    expected=_record(
        provider="anthropic",
        request_model="claude-3-5-sonnet-latest",
        response_model="claude-3-5-sonnet-20241022",
        operation="chat",
        input_tokens=5560,
        output_tokens=380,
        cache_read_tokens=2048,
        cache_write_tokens=512,
        environment="staging",
        reported_cost_usd=Decimal("0.0169"),
        reported_cost_source="local",
        reported_cost_key="gen_ai.usage.cost",
        instrumentation="openlit",
    ),
)

VERCEL_V4_DO_GENERATE = Case(
    # AI SDK 4.x generateText inner span (generate-text.ts, v4): promptTokens/completionTokens
    # on both the ai.* and the gen_ai.* side, provider id with its API suffix.
    attributes={
        "operation.name": "ai.generateText.doGenerate support-reply",
        "ai.operationId": "ai.generateText.doGenerate",
        "resource.name": "support-reply",
        "ai.telemetry.functionId": "support-reply",
        "ai.telemetry.metadata.userId": "u_123",
        "ai.telemetry.metadata.tenantId": "acme",
        "ai.model.provider": "openai.chat",
        "ai.model.id": "gpt-4o-mini",
        "ai.settings.maxRetries": 2,
        "ai.prompt.format": "messages",
        "ai.response.finishReason": "stop",
        "ai.response.id": "chatcmpl-Q1",
        "ai.response.model": "gpt-4o-mini-2024-07-18",
        "ai.response.timestamp": "2025-03-01T10:00:00.000Z",
        "ai.usage.promptTokens": 512,
        "ai.usage.completionTokens": 128,
        "gen_ai.system": "openai.chat",
        "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.response.finish_reasons": ("stop",),
        "gen_ai.response.id": "chatcmpl-Q1",
        "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
        "gen_ai.usage.prompt_tokens": 512,
        "gen_ai.usage.completion_tokens": 128,
    },
    span_name="ai.generateText.doGenerate",
    scope_name="ai",
    expected=_record(
        response_id="chatcmpl-Q1",
        provider="openai",
        request_model="gpt-4o-mini",
        response_model="gpt-4o-mini-2024-07-18",
        operation="chat",
        input_tokens=512,
        output_tokens=128,
        endpoint_tag="support-reply",
        tenant_id="acme",
        user_id="u_123",
        instrumentation="vercel",
    ),
)

VERCEL_V6_DO_STREAM = Case(
    # AI SDK 6 streamText inner span with Anthropic prompt caching: inputTokens is the
    # total (200 uncached + 6000 read + 200 written), with the breakdown alongside.
    attributes={
        "operation.name": "ai.streamText.doStream chat.assistant",
        "ai.operationId": "ai.streamText.doStream",
        "ai.model.provider": "anthropic.messages",
        "ai.model.id": "claude-sonnet-4-5",
        "ai.telemetry.functionId": "chat.assistant",
        "ai.telemetry.metadata.endpointTag": "chat.assistant_v2",
        "ai.telemetry.metadata.promptVersion": "assistant-v5",
        "ai.telemetry.metadata.sessionId": "s-42",
        "ai.response.msToFirstChunk": 412.5,
        "ai.response.msToFinish": 2311.0,
        "ai.response.model": "claude-sonnet-4-5-20250929",
        "ai.usage.inputTokens": 6400,
        "ai.usage.inputTokenDetails.noCacheTokens": 200,
        "ai.usage.inputTokenDetails.cacheReadTokens": 6000,
        "ai.usage.inputTokenDetails.cacheWriteTokens": 200,
        "ai.usage.outputTokens": 900,
        "ai.usage.outputTokenDetails.textTokens": 600,
        "ai.usage.outputTokenDetails.reasoningTokens": 300,
        "ai.usage.totalTokens": 7300,
        "ai.usage.reasoningTokens": 300,
        "ai.usage.cachedInputTokens": 6000,
        "gen_ai.system": "anthropic.messages",
        "gen_ai.request.model": "claude-sonnet-4-5",
        "gen_ai.response.model": "claude-sonnet-4-5-20250929",
        "gen_ai.usage.input_tokens": 6400,
        "gen_ai.usage.output_tokens": 900,
    },
    span_name="ai.streamText.doStream",
    scope_name="ai",
    expected=_record(
        provider="anthropic",
        request_model="claude-sonnet-4-5",
        response_model="claude-sonnet-4-5-20250929",
        operation="chat",
        input_tokens=6400,
        output_tokens=900,
        cache_read_tokens=6000,
        cache_write_tokens=200,
        reasoning_tokens=300,
        endpoint_tag="chat.assistant_v2",
        prompt_version="assistant-v5",
        session_id="s-42",
        instrumentation="vercel",
    ),
)

LANGFUSE_GENERATION = Case(
    # Langfuse Python SDK v3 generation: usage and cost as JSON strings in Langfuse's own
    # usage model, where "input" is the uncached remainder (800 + 1200 read = 2000).
    attributes={
        "langfuse.observation.type": "generation",
        "langfuse.observation.model.name": "gpt-4o",
        "langfuse.observation.model.parameters": '{"temperature": 0.2}',
        "langfuse.observation.usage_details": (
            '{"input": 800, "output": 150, "input_cache_read": 1200, "total": 2150}'
        ),
        "langfuse.observation.cost_details": (
            '{"input": 0.002, "input_cache_read": 0.0015, "output": 0.0015, "total": 0.005}'
        ),
        "langfuse.observation.prompt.name": "summarize",
        "langfuse.observation.prompt.version": 3,
        "langfuse.observation.completion_start_time": '"2025-05-01T10:00:00.412Z"',
        "langfuse.environment": "production",
        "langfuse.trace.name": "summarize-doc",
        "langfuse.user.id": "user-9",
        "langfuse.session.id": "sess-3",
    },
    scope_name="langfuse-sdk",
    expected=_record(
        request_model="gpt-4o",
        input_tokens=2000,
        output_tokens=150,
        cache_read_tokens=1200,
        prompt_name="summarize",
        prompt_version="3",
        user_id="user-9",
        environment="production",
        session_id="sess-3",
        reported_cost_usd=Decimal("0.005"),
        reported_cost_source="local",
        reported_cost_key="langfuse.observation.cost_details",
        instrumentation="langfuse",
    ),
)

PYDANTIC_AI_MODEL_REQUEST = Case(
    # pydantic-ai 2.68 model request span (InstrumentedModel, settings version 5), with
    # Logfire's genai-prices cost in operation.cost and the details compat keys.
    attributes={
        "gen_ai.operation.name": "chat",
        "gen_ai.system": "openai",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4o",
        "server.address": "api.openai.com",
        "server.port": 443,
        "model_request_parameters": '{"function_tools": [], "output_mode": "text"}',
        "logfire.span_type": "span",
        "logfire.msg": "chat gpt-4o",
        "gen_ai.response.model": "gpt-4o-2024-08-06",
        "gen_ai.response.id": "chatcmpl-Pz1",
        "gen_ai.response.finish_reasons": ("stop",),
        "gen_ai.usage.input_tokens": 2400,
        "gen_ai.usage.output_tokens": 180,
        "gen_ai.usage.cache_read.input_tokens": 1024,
        "gen_ai.usage.details.cache_read_tokens": 1024,
        "gen_ai.usage.details.reasoning_tokens": 64,
        "operation.cost": 0.00571,
        "gen_ai.conversation.id": "conv-1",
    },
    span_name="chat gpt-4o",
    scope_name="pydantic-ai",
    expected=_record(
        response_id="chatcmpl-Pz1",
        provider="openai",
        request_model="gpt-4o",
        response_model="gpt-4o-2024-08-06",
        operation="chat",
        input_tokens=2400,
        output_tokens=180,
        cache_read_tokens=1024,
        reasoning_tokens=64,
        session_id="conv-1",
        reported_cost_usd=Decimal("0.00571"),
        reported_cost_source="local",
        reported_cost_key="operation.cost",
        instrumentation="pydantic_ai",
    ),
)

CAMELCASE_PAYLOAD = Case(
    # The request payload our users already send, as span attributes (numbers as JSON
    # gives them). latencyMs wins over the span's own duration.
    attributes={
        "externalRequestId": "req_01HZXB6MQZ2WQ9D2KCF9M4V2QY",
        "provider": "anthropic",
        "model": "claude-3-5-haiku-20241022",
        "endpointTag": "agent.workflow",
        "promptVersion": "agent_v2",
        "userId": "tenant_acme_hash",
        "tenantId": "acme",
        "inputTokens": 980,
        "outputTokens": 420,
        "latencyMs": 892,
        "status": "success",
        "dataMode": "real",
        "environment": "prod",
    },
    expected=_record(
        provider="anthropic",
        request_model="claude-3-5-haiku-20241022",
        input_tokens=980,
        output_tokens=420,
        endpoint_tag="agent.workflow",
        prompt_version="agent_v2",
        tenant_id="acme",
        user_id="tenant_acme_hash",
        external_request_id="req_01HZXB6MQZ2WQ9D2KCF9M4V2QY",
        data_mode="real",
        environment="prod",
        latency_ms=892.0,
        instrumentation="payload",
    ),
)

INSTRUMENTATION_CASES = {
    "openai-v2 chat with cache reads": OPENAI_V2_CHAT,
    "util-genai anthropic cache_write spelling": UTIL_GENAI_ANTHROPIC_CACHE_WRITE,
    "traceloop new names": TRACELOOP_NEW,
    "traceloop legacy names": TRACELOOP_LEGACY,
    "openinference openai": OPENINFERENCE_OPENAI,
    "openinference anthropic": OPENINFERENCE_ANTHROPIC,
    "openlit openai with cost": OPENLIT_OPENAI,
    "openlit anthropic exclusive input": OPENLIT_ANTHROPIC,
    "vercel v4 doGenerate": VERCEL_V4_DO_GENERATE,
    "vercel v6 doStream with cache details": VERCEL_V6_DO_STREAM,
    "langfuse sdk generation": LANGFUSE_GENERATION,
    "pydantic-ai model request": PYDANTIC_AI_MODEL_REQUEST,
    "camelCase payload": CAMELCASE_PAYLOAD,
}


# --- double counting: outer spans are read but not billable ------------------------------

VERCEL_OUTER_GENERATE_TEXT = Case(
    # AI SDK 5 outer span: ai.usage.* summed over its doGenerate steps, no gen_ai.usage.*.
    attributes={
        "operation.name": "ai.generateText support-reply",
        "ai.operationId": "ai.generateText",
        "ai.model.provider": "openai.responses",
        "ai.model.id": "gpt-4.1",
        "ai.telemetry.functionId": "support-reply",
        "ai.settings.maxRetries": 2,
        "ai.response.finishReason": "stop",
        "ai.usage.inputTokens": 1500,
        "ai.usage.outputTokens": 300,
        "ai.usage.totalTokens": 1800,
    },
    span_name="ai.generateText",
    scope_name="ai",
    expected=_record(
        provider="openai",
        request_model="gpt-4.1",
        input_tokens=1500,
        output_tokens=300,
        endpoint_tag="support-reply",
        billable=False,
        instrumentation="vercel",
    ),
)

PYDANTIC_AI_AGENT_RUN = Case(
    # pydantic-ai agent run span: the run's cumulative usage under gen_ai.aggregated_usage.*
    attributes={
        "model_name": "gpt-4o",
        "agent_name": "support_agent",
        "gen_ai.agent.name": "support_agent",
        "logfire.msg": "support_agent run",
        "final_result": "Refund issued.",
        "gen_ai.aggregated_usage.input_tokens": 4800,
        "gen_ai.aggregated_usage.output_tokens": 360,
        "gen_ai.aggregated_usage.details.cache_read_tokens": 2048,
    },
    span_name="invoke_agent support_agent",
    scope_name="pydantic-ai",
    expected=_record(
        input_tokens=4800,
        output_tokens=360,
        cache_read_tokens=2048,
        billable=False,
        instrumentation="pydantic_ai",
    ),
)

INVOKE_AGENT = Case(
    # util-genai invoke_agent span carrying the agent's summed usage.
    attributes={
        "gen_ai.operation.name": "invoke_agent",
        "gen_ai.agent.name": "triage",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4.1",
        "gen_ai.usage.input_tokens": 9100,
        "gen_ai.usage.output_tokens": 640,
    },
    span_name="invoke_agent triage",
    expected=_record(
        provider="openai",
        request_model="gpt-4.1",
        operation="invoke_agent",
        input_tokens=9100,
        output_tokens=640,
        billable=False,
        instrumentation="otel",
    ),
)

OPENINFERENCE_AGENT = Case(
    # openinference smolagents: the agent run span carries the run's token totals.
    attributes={
        "openinference.span.kind": "AGENT",
        "input.value": '{"task": "summarise the ticket"}',
        "smolagents.max_steps": 6,
        "llm.token_count.prompt": 9000,
        "llm.token_count.completion": 700,
        "llm.token_count.total": 9700,
    },
    span_name="CodeAgent.run",
    expected=_record(
        operation="invoke_agent",
        input_tokens=9000,
        output_tokens=700,
        billable=False,
        instrumentation="openinference",
    ),
)

OPENINFERENCE_CHAIN = Case(
    # A chain span that repeats its LLM child's model and token counts.
    attributes={
        "openinference.span.kind": "CHAIN",
        "llm.model_name": "gpt-4o-mini",
        "llm.token_count.prompt": 800,
        "llm.token_count.completion": 90,
    },
    span_name="RunnableSequence",
    expected=_record(
        request_model="gpt-4o-mini",
        input_tokens=800,
        output_tokens=90,
        billable=False,
        instrumentation="openinference",
    ),
)

TRACELOOP_WORKFLOW = Case(
    # OpenLLMetry openai-agents instrumentation: the root "Agent Workflow" span.
    attributes={
        "traceloop.span.kind": "workflow",
        "gen_ai.provider.name": "openai",
        "traceloop.workflow.name": "Agent Workflow",
    },
    span_name="Agent Workflow",
    status_code=1,
    expected=_record(
        provider="openai",
        endpoint_tag="Agent Workflow",
        billable=False,
        instrumentation="traceloop",
    ),
)

DOUBLE_COUNTING_CASES = {
    "vercel outer generateText": VERCEL_OUTER_GENERATE_TEXT,
    "pydantic-ai agent run with aggregated usage": PYDANTIC_AI_AGENT_RUN,
    "invoke_agent span": INVOKE_AGENT,
    "openinference AGENT span": OPENINFERENCE_AGENT,
    "openinference CHAIN span": OPENINFERENCE_CHAIN,
    "traceloop workflow span": TRACELOOP_WORKFLOW,
}


# every case: the instrumentation spans and the outer spans
ALL_CASES = {**INSTRUMENTATION_CASES, **DOUBLE_COUNTING_CASES}
