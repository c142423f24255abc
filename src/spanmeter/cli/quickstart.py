"""``spanmeter quickstart``: the whole loop in seconds, on the embedded store.

It starts a receiver (OTLP gRPC/HTTP, SQLite store) in this process, plays an app whose
GenAI spans (shaped like the official OpenAI and Anthropic instrumentations') go through
the real OTel SDK, ``spanmeter.attribution`` scopes and ``spanmeter.configure()`` to that
receiver over OTLP, then prints what an operator asks first: spend by endpoint tag and by
tenant, from the store.
"""

from __future__ import annotations

import random
import time
from pathlib import Path

import click
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider

from ..analysis import parse_window, render_top, top_report
from ..otel_exporter import configure
from ..processor import attribution
from ..semantic_conventions import attributes as keys
from ..service import ReceiverService, ServeConfig

__all__ = ["quickstart"]

_CALLS = (
    # endpoint tag, prompt version, provider, model, typical input tokens, output tokens
    ("checkout.ai_summary", "summary_v3", "openai", "gpt-4o-mini", 540, 180),
    ("support.reply", "support_v5", "anthropic", "claude-sonnet-4-5", 2400, 420),
    ("docs.summarize", "docs_v2", "openai", "gpt-4o", 6000, 350),
    ("dev.review_pr", "review_v1", "openai", "o4-mini", 9000, 900),
)
_TENANTS = ("t_acme", "t_globex", "t_initech", "t_umbrella")


@click.command()
@click.option("--calls", default=400, show_default=True, help="GenAI calls to simulate.")
@click.option("--db", default="spanmeter-quickstart.db", show_default=True, help="Store to fill (replaced).")
@click.option("--seed", default=7, show_default=True, help="Random seed.")
def quickstart(calls: int, db: str, seed: int) -> None:
    """Run a receiver, send attributed GenAI spans to it over OTLP, print top spend."""
    rng = random.Random(seed)
    for suffix in ("", "-wal", "-shm"):
        Path(db + suffix).unlink(missing_ok=True)
    with ReceiverService(ServeConfig(db=db, grpc_port=0, http_port=0)) as receiver:
        click.echo(f"receiver: OTLP/HTTP on 127.0.0.1:{receiver.http_port}, store {db}")
        provider = TracerProvider(resource=Resource.create({"service.name": "quickstart-app"}))
        pipeline = configure(f"http://127.0.0.1:{receiver.http_port}", tracer_provider=provider)
        tracer = provider.get_tracer("spanmeter.quickstart")
        with click.progressbar(range(calls), label="app: GenAI calls") as bar:
            for n in bar:
                endpoint, version, system, model, tokens_in, tokens_out = rng.choice(_CALLS)
                tenant = rng.choices(_TENANTS, weights=(5, 3, 1, 1))[0]
                attempts = 2 if rng.random() < 0.08 else 1  # a few retries of one logical request
                for attempt in range(attempts):
                    with (
                        attribution(
                            endpoint_tag=endpoint,
                            prompt_version=version,
                            tenant_id=tenant,
                            user_id=f"user{rng.randint(1, 60)}@example.com",
                            external_request_id=f"req_{n}",
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
                        if attempt + 1 < attempts:
                            span.set_attribute(keys.ERROR_TYPE, "timeout")
        pipeline.force_flush()
        pipeline.shutdown()
        time.sleep(0.2)  # let the last export's commit land before reading
        window = parse_window("1h")
        for by in ("endpoint_tag", "tenant_id"):
            click.echo()
            click.echo(render_top(top_report(receiver.store, by, window), "table"), nl=False)
    click.echo()
    click.echo("Next: `spanmeter serve` runs this receiver for real (OTLP on 4317/4318),")
    click.echo(f"and `spanmeter top --db {db} --by prompt_version` asks the store again.")
