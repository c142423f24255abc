"""The instrumentation matrix's harness: an app process exporting through
``spanmeter.configure()`` to a real receiver, and the exact prices to check it against.

An app has one global ``TracerProvider`` (instrumentations and the anthropic SDK take it
from there), so a test session has one: :class:`MatrixApp` sets it, calls
``spanmeter.configure(endpoint=...)`` once, with the real OTLP/HTTP exporter, towards a
:class:`~spanmeter.service.ReceiverService` on 127.0.0.1 (free ports, a temporary SQLite
file). Tests tell their calls apart by tenant: :meth:`MatrixApp.call` opens a
``spanmeter.attribution`` with a tenant of its own, and :meth:`MatrixApp.stored` flushes the
pipeline (the receiver acknowledges an export only once it is committed) and reads back what
the store holds for that tenant: its rows and ``top``'s totals.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider

import spanmeter
from spanmeter.otel_exporter import SpanmeterPipeline
from spanmeter.service import ReceiverService, ServeConfig
from spanmeter.store import SpanRow

__all__ = [
    "CLAUDE_HAIKU_3_5",
    "CLAUDE_SONNET_4_5",
    "GEMINI_2_5_FLASH",
    "GPT_4O_MINI",
    "MatrixApp",
    "Price",
    "Stored",
    "anthropic_cost",
    "gemini_cost",
    "openai_cost",
]

PER_MILLION = Decimal(1_000_000)


@dataclass(frozen=True)
class Price:
    """Published list prices, USD per 1M tokens."""

    input: Decimal
    output: Decimal
    cache_read: Decimal
    cache_write: Decimal = Decimal(0)


# openai.com/api/pricing: gpt-4o-mini $0.15 input, $0.075 cached input, $0.60 output.
GPT_4O_MINI = Price(input=Decimal("0.15"), output=Decimal("0.60"), cache_read=Decimal("0.075"))
# anthropic.com/pricing (prompts up to 200k tokens): Sonnet 4.5 $3 input, $15 output,
# $0.30 cache hits, $3.75 5-minute cache writes; Haiku 3.5 $0.80, $4, $0.08, $1.
CLAUDE_SONNET_4_5 = Price(
    input=Decimal(3), output=Decimal(15), cache_read=Decimal("0.30"), cache_write=Decimal("3.75")
)
CLAUDE_HAIKU_3_5 = Price(
    input=Decimal("0.80"), output=Decimal(4), cache_read=Decimal("0.08"), cache_write=Decimal(1)
)
# ai.google.dev/gemini-api/docs/pricing (paid tier, text): Gemini 2.5 Flash $0.30 input,
# $0.03 context-cache reads, $2.50 output "including thinking tokens".
GEMINI_2_5_FLASH = Price(input=Decimal("0.30"), output=Decimal("2.50"), cache_read=Decimal("0.03"))


def nano(usd: Decimal) -> int:
    """USD -> integer nano-USD, rounded once, half to even (as spanmeter rounds each part)."""
    return int((usd * 1_000_000_000).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


def _cost(price: Price, *, fresh_in: int, cache_read: int, cache_write: int, output: int) -> int:
    """The sum of the parts, each rounded to nano-USD on its own."""
    return (
        nano(fresh_in * price.input / PER_MILLION)
        + nano(cache_read * price.cache_read / PER_MILLION)
        + nano(cache_write * price.cache_write / PER_MILLION)
        + nano(output * price.output / PER_MILLION)
    )


def openai_cost(price: Price, *, prompt_tokens: int, cached_tokens: int, completion_tokens: int) -> int:
    """OpenAI: ``prompt_tokens`` includes the cached ones, which cost the cached rate."""
    return _cost(
        price,
        fresh_in=prompt_tokens - cached_tokens,
        cache_read=cached_tokens,
        cache_write=0,
        output=completion_tokens,
    )


def anthropic_cost(
    price: Price, *, input_tokens: int, cache_read: int, cache_write: int, output_tokens: int
) -> int:
    """Anthropic: ``input_tokens`` excludes cache reads and writes, each billed at its rate."""
    return _cost(
        price, fresh_in=input_tokens, cache_read=cache_read, cache_write=cache_write, output=output_tokens
    )


def gemini_cost(
    price: Price, *, prompt_tokens: int, cached_tokens: int, candidates: int, thoughts: int
) -> int:
    """Gemini: ``promptTokenCount`` includes the cached tokens; thinking is billed as output."""
    return _cost(
        price,
        fresh_in=prompt_tokens - cached_tokens,
        cache_read=cached_tokens,
        cache_write=0,
        output=candidates + thoughts,
    )


@dataclass(frozen=True)
class Stored:
    """What the store holds for one test's tenant."""

    rows: list[SpanRow]
    top_cost_nano_usd: int
    """``top(by=tenant_id)``'s cost for the tenant (0 when it has no group)."""
    top_attempts: int

    @property
    def billable(self) -> list[SpanRow]:
        return [row for row in self.rows if row.billable]

    @property
    def billable_cost_nano_usd(self) -> int:
        return sum(row.cost_nano_usd or 0 for row in self.billable)

    @property
    def costed(self) -> list[SpanRow]:
        """Billable rows that carry a cost (priced, or reported by the instrumentation)."""
        return [row for row in self.billable if row.cost_nano_usd is not None]

    def statuses(self) -> list[str]:
        return sorted(row.pricing_status for row in self.rows)

    def describe(self) -> str:
        """One line per row, for assertion messages."""
        return "\n".join(
            f"  {row.pricing_status:<13} billable={row.billable!s:<5} cost={row.cost_nano_usd} "
            f"model={row.model} in={row.input_tokens} out={row.output_tokens} "
            f"cache_read={row.cache_read_tokens} cache_write={row.cache_write_tokens} "
            f"reasoning={row.reasoning_tokens} service={row.service_name}"
            for row in self.rows
        )

    def assert_exactly_once(self, expected_nano_usd: int) -> SpanRow:
        """One billable row carries the cost, it is the expected one, and ``top`` agrees.

        Returns that row.
        """
        detail = f"expected {expected_nano_usd} nano-USD once; stored:\n{self.describe()}"
        assert self.billable_cost_nano_usd == expected_nano_usd, detail
        assert self.top_cost_nano_usd == expected_nano_usd, detail
        assert len(self.costed) == 1, detail
        return self.costed[0]


_tenants = itertools.count(1)


class MatrixApp:
    """The app under test: the global provider, spanmeter's pipeline, and the receiver."""

    def __init__(self, receiver: ReceiverService, service_name: str) -> None:
        self.receiver = receiver
        self.provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
        trace.set_tracer_provider(self.provider)
        assert trace.get_tracer_provider() is self.provider, "another global TracerProvider was set first"
        self.pipeline: SpanmeterPipeline = spanmeter.configure(
            endpoint=f"http://127.0.0.1:{receiver.http_port}", tracer_provider=self.provider, timeout_s=10
        )
        self._started_ns = time.time_ns() - 3_600 * 1_000_000_000

    @contextmanager
    def call(self, name: str) -> Iterator[str]:
        """An attribution scope with a tenant no other test uses; yields the tenant."""
        tenant = f"{name}-{next(_tenants)}"
        with spanmeter.attribution(tenant_id=tenant, endpoint_tag=f"matrix.{name}", data_mode="real"):
            yield tenant

    def stored(self, tenant: str) -> Stored:
        """Flush the app's spans to the receiver, then read back the tenant's rows and total."""
        assert self.pipeline.force_flush(10_000), "spanmeter's pipeline did not flush"
        stats = self.pipeline.stats()
        assert stats.get("export.failed_exports", 0) == 0, stats
        store = self.receiver.store
        rows = [row for row in store.iter_requests() if row.tenant_id == tenant]
        top = store.top(
            "tenant_id",
            self._started_ns,
            time.time_ns() + 3_600 * 1_000_000_000,
            where={"tenant_id": tenant},
        )
        group = next((g for g in top.groups if g.key == tenant), None)
        return Stored(
            rows=rows,
            top_cost_nano_usd=group.cost_nano_usd if group else 0,
            top_attempts=group.attempts if group else 0,
        )

    def shutdown(self) -> None:
        self.pipeline.shutdown()
        self.provider.shutdown()


def start_receiver(db_path: str) -> ReceiverService:
    """A receiver on 127.0.0.1, free ports, committing in a writer thread of this process."""
    config = ServeConfig(db=db_path, host="127.0.0.1", grpc_port=0, http_port=0, store_process=False)
    return ReceiverService(config).start()
