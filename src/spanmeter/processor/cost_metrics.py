"""Optional OTel metrics of cost and tokens, for pipelines that aggregate metrics, not spans.

Counters (monotonic sums), recorded when a GenAI span is priced (on the exporter's thread):

* ``spanmeter.gen_ai.cost`` (unit ``USD``): cost of priced spans;
* ``spanmeter.gen_ai.tokens`` (unit ``{token}``), by ``gen_ai.token.type`` in
  ``input`` (uncached), ``cache_read``, ``cache_write``, ``output`` (non-reasoning) and
  ``reasoning``, so the types add up to the total without double counting;
* ``spanmeter.gen_ai.requests`` (unit ``{request}``), by ``spanmeter.pricing.status``.

Attributes are bounded on purpose (Prometheus and most metric backends bill or break on
cardinality): provider, model, operation, endpoint tag, prompt version, environment and
data mode. Tenants and users never become metric attributes; they live in spans and in the
receiver's store.
"""

from __future__ import annotations

from typing import Final

from opentelemetry.metrics import MeterProvider, get_meter

from ..money import usd_float
from ..normalise import GenAIRecord
from ..pricing import PriceResult
from ..semantic_conventions.attributes import (
    DEPLOYMENT_ENVIRONMENT_NAME,
    GEN_AI_OPERATION_NAME,
    GEN_AI_PROMPT_VERSION,
    GEN_AI_PROVIDER_NAME,
    GEN_AI_REQUEST_MODEL,
    SPANMETER_DATA_MODE,
    SPANMETER_ENDPOINT_TAG,
    SPANMETER_PRICING_STATUS,
)

__all__ = ["CostInstruments"]

_TOKEN_TYPE: Final = "gen_ai.token.type"


class CostInstruments:
    """The cost, token and request counters; ``record`` never raises."""

    def __init__(self, meter_provider: MeterProvider | None = None) -> None:
        meter = get_meter("spanmeter", meter_provider=meter_provider)
        self._cost = meter.create_counter(
            "spanmeter.gen_ai.cost", unit="USD", description="Cost of GenAI calls."
        )
        self._tokens = meter.create_counter(
            "spanmeter.gen_ai.tokens", unit="{token}", description="Tokens of GenAI calls, by type."
        )
        self._requests = meter.create_counter(
            "spanmeter.gen_ai.requests", unit="{request}", description="GenAI calls, by pricing status."
        )

    def record(self, record: GenAIRecord, result: PriceResult) -> None:
        """Count one priced (or unpriced) GenAI span."""
        attributes = {
            key: value
            for key, value in (
                (GEN_AI_PROVIDER_NAME, record.provider),
                (GEN_AI_REQUEST_MODEL, record.model),
                (GEN_AI_OPERATION_NAME, record.operation),
                (SPANMETER_ENDPOINT_TAG, record.endpoint_tag),
                (GEN_AI_PROMPT_VERSION, record.prompt_version),
                (DEPLOYMENT_ENVIRONMENT_NAME, record.environment),
                (SPANMETER_DATA_MODE, record.data_mode or "real"),
            )
            if value is not None
        }
        self._requests.add(1, {**attributes, SPANMETER_PRICING_STATUS: result.status.value})
        if result.total_nano_usd is not None:
            self._cost.add(usd_float(result.total_nano_usd), attributes)
        if record.input_tokens is None and record.output_tokens is None:
            return
        cache = record.cache_read_tokens + record.cache_write_tokens
        for token_type, count in (
            ("input", max((record.input_tokens or 0) - cache, 0)),
            ("cache_read", record.cache_read_tokens),
            ("cache_write", record.cache_write_tokens),
            ("output", max((record.output_tokens or 0) - record.reasoning_tokens, 0)),
            ("reasoning", record.reasoning_tokens),
        ):
            if count:
                self._tokens.add(count, {**attributes, _TOKEN_TYPE: token_type})
