"""Span attributes for a synthetic row: what an instrumented app would put on its GenAI span.

For replaying synthetic traffic through the real SDK and OTLP with everything on the span,
so the receiver's normaliser, pricing and store see what they see in production (the demo
sets the attribution through spanmeter's context instead, as an app does, and the usage
itself). The keys are spanmeter's attribute contract (see DESIGN.md); cost is left off on
purpose, so the receiver prices the span itself.
"""

from __future__ import annotations

from ..semantic_conventions import attributes as keys
from ..store.rows import SpanRow

__all__ = ["span_attributes"]

AttributeValue = str | int | float | bool


def span_attributes(row: SpanRow) -> dict[str, AttributeValue]:
    """The span attributes that normalise back to ``row``'s attribution and usage."""
    pairs: list[tuple[str, AttributeValue | None]] = [
        (keys.GEN_AI_OPERATION_NAME, row.operation),
        (keys.GEN_AI_PROVIDER_NAME, row.provider),
        (keys.GEN_AI_REQUEST_MODEL, row.request_model),
        (keys.GEN_AI_RESPONSE_MODEL, row.response_model),
        (keys.GEN_AI_USAGE_INPUT_TOKENS, row.input_tokens),
        (keys.GEN_AI_USAGE_OUTPUT_TOKENS, row.output_tokens),
        (keys.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS, row.cache_read_tokens or None),
        (keys.SPANMETER_ENDPOINT_TAG, row.endpoint_tag),
        (keys.GEN_AI_PROMPT_NAME, row.prompt_name),
        (keys.GEN_AI_PROMPT_VERSION, row.prompt_version),
        (keys.SPANMETER_TENANT_ID, row.tenant_id),
        (keys.USER_ID, row.user_id),
        (keys.SPANMETER_EXTERNAL_REQUEST_ID, row.external_request_id),
        (keys.SPANMETER_DATA_MODE, row.data_mode),
        (keys.DEPLOYMENT_ENVIRONMENT_NAME, row.environment),
        (keys.ERROR_TYPE, row.error_type),
    ]
    return {key: value for key, value in pairs if value is not None}
