"""``spanmeter quickstart``: see attribution and cost on real OTel spans in seconds.

It plays an app: GenAI spans shaped like the official OpenAI instrumentation's go through
the real OTel SDK with :class:`~spanmeter.processor.CostSpanProcessor` inside
``spanmeter.attribution`` scopes, and the command prints what the exporter received: cost
per endpoint tag and tenant, computed from genai-prices.
"""

from __future__ import annotations

import random
from collections import defaultdict

import click
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from ..processor import CostSpanProcessor, attribution
from ..semantic_conventions import attributes as keys

__all__ = ["quickstart"]

_CALLS = (
    # endpoint tag, prompt version, provider, model, input tokens, output tokens
    ("checkout.ai_summary", "summary_v3", "openai", "gpt-4o-mini", 540, 180),
    ("support.reply", "support_v5", "anthropic", "claude-sonnet-4-5", 2400, 420),
    ("docs.summarize", "docs_v2", "openai", "gpt-4o", 6000, 350),
)


@click.command()
@click.option("--spans", default=300, show_default=True, help="GenAI calls to simulate.")
@click.option("--seed", default=7, show_default=True, help="Random seed.")
def quickstart(spans: int, seed: int) -> None:
    """Simulate GenAI calls through the OTel SDK and print their attributed cost."""
    rng = random.Random(seed)
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(CostSpanProcessor(SimpleSpanProcessor(exporter)))
    tracer = provider.get_tracer("spanmeter.quickstart")
    for _ in range(spans):
        endpoint, version, system, model, tokens_in, tokens_out = rng.choice(_CALLS)
        tenant = rng.choice(("t_acme", "t_globex", "t_initech"))
        with (
            attribution(
                endpoint_tag=endpoint,
                prompt_version=version,
                tenant_id=tenant,
                user_id=f"u{rng.randint(1, 40)}",
            ),
            tracer.start_as_current_span(f"chat {model}") as span,
        ):
            span.set_attributes(
                {
                    keys.GEN_AI_OPERATION_NAME: "chat",
                    keys.GEN_AI_PROVIDER_NAME: system,
                    keys.GEN_AI_REQUEST_MODEL: model,
                    keys.GEN_AI_USAGE_INPUT_TOKENS: int(tokens_in * rng.uniform(0.6, 1.4)),
                    keys.GEN_AI_USAGE_OUTPUT_TOKENS: int(tokens_out * rng.uniform(0.6, 1.4)),
                }
            )
    provider.force_flush()
    cost: dict[tuple[str, str], int] = defaultdict(int)
    calls: dict[tuple[str, str], int] = defaultdict(int)
    for span in exporter.get_finished_spans():
        attrs = span.attributes or {}
        group = (str(attrs.get(keys.SPANMETER_ENDPOINT_TAG)), str(attrs.get(keys.SPANMETER_TENANT_ID)))
        cost[group] += int(attrs.get(keys.SPANMETER_COST_NANO_USD, 0))  # type: ignore[arg-type]
        calls[group] += 1
    total = sum(cost.values())
    click.echo(f"{'endpoint tag':<22}{'tenant':<12}{'calls':>7}{'cost USD':>13}{'share':>8}")
    for group in sorted(cost, key=lambda g: -cost[g]):
        share = cost[group] / total if total else 0.0
        click.echo(f"{group[0]:<22}{group[1]:<12}{calls[group]:>7}{cost[group] / 1e9:>13.6f}{share:>8.1%}")
    click.echo(f"{'total':<34}{sum(calls.values()):>7}{total / 1e9:>13.6f}")
    provider.shutdown()
