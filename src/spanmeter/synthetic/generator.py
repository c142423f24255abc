"""Seeded synthetic GenAI traffic as stored rows, priced with the real price book.

Determinism: base traffic draws from one random stream, bursts and each incident from
their own, so adding an incident changes only what that incident touches, and the same
config always gives the same rows. Rows come hour by hour in start-time order, with the
attempts of one logical request together (first attempt first), which is the order a
receiver stores them in.

Example::

    from spanmeter.synthetic import SyntheticConfig, generate

    dataset = generate(SyntheticConfig(days=3, requests_per_hour=120))
    dataset.write_to(store)        # any SpanStore
    len(dataset.rows)
"""

from __future__ import annotations

import math
import random
from bisect import bisect_left
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from itertools import accumulate
from typing import TYPE_CHECKING, Final, NamedTuple

from ..pricing import PriceBook
from ..store.analysis_types import pricing_fields
from ..store.rows import SpanRow
from ..timeunits import NS_PER_HOUR, NS_PER_SECOND
from .incidents import (
    ContextGrowth,
    ModelFallback,
    PromptDeploy,
    RetryStorm,
    TenantBurst,
    VolumeSurge,
    to_ns,
)
from .profile import EndpointProfile, SyntheticConfig

if TYPE_CHECKING:
    from ..store import SpanStore

__all__ = ["SyntheticDataset", "generate", "iter_rows", "rows_between"]

_EXPORT_DELAY_NS: Final = 2 * NS_PER_SECOND
"""Typical delay between a span's end and its arrival (the SDK's batch interval)."""


@dataclass(slots=True)
class _Request:
    """One planned logical request, before incidents and expansion into attempts."""

    start_ns: int
    endpoint: EndpointProfile
    tenant: str
    user: str
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int
    latency_ms: float
    external_id: str | None
    kind: str
    """``ok``, ``retry`` (one billed failure first), ``throttle`` (a 429 first), ``error``."""
    prompt_version: str | None
    provider: str
    request_model: str
    response_model: str
    endpoint_tag: str | None
    environment: str
    skew_ns: int = 0
    no_usage: bool = False
    storm_failures: int = 0
    storm_error: str = ""


class _Draws(NamedTuple):
    """Every random draw of one planned request, made up front in a fixed order: a request
    always takes the same draws whatever is chosen (an override of the endpoint, tenant or
    user, a fault), so changing one option leaves the rest of the stream as it was."""

    endpoint: EndpointProfile
    tenant: str
    user_index: int
    in_factor: float
    out_factor: float
    latency_factor: float
    cache_hit: bool
    kind_roll: float
    id_roll: float
    fault_rolls: list[float]


@dataclass(slots=True)
class SyntheticDataset:
    """Generated rows plus the config that made them."""

    config: SyntheticConfig
    rows: list[SpanRow] = field(default_factory=list[SpanRow])

    def write_to(self, store: SpanStore, *, batch_size: int = 2000) -> int:
        """Store the rows in order, ``batch_size`` per transaction; returns rows inserted."""
        inserted = 0
        for begin in range(0, len(self.rows), batch_size):
            inserted += store.write_batch(self.rows[begin : begin + batch_size]).inserted
        return inserted


def generate(
    config: SyntheticConfig | None = None, *, price_book: PriceBook | None = None
) -> SyntheticDataset:
    """All rows of ``config`` (default: a week of default traffic) in one list."""
    config = config or SyntheticConfig()
    return SyntheticDataset(config, list(iter_rows(config, price_book=price_book)))


def iter_rows(config: SyntheticConfig, *, price_book: PriceBook | None = None) -> Iterator[SpanRow]:
    """The rows of ``config``, hour by hour, without holding them all (large demo datasets)."""
    generator = _Generator(config, price_book or PriceBook())
    for hour in range(config.days * 24):
        yield from generator.hour(hour)


def _zipf_cdf(count: int, exponent: float = 1.1) -> list[float]:
    weights = [1 / (rank + 1) ** exponent for rank in range(count)]
    total = sum(weights)
    return list(accumulate(weight / total for weight in weights))


class _Generator:
    def __init__(self, config: SyntheticConfig, book: PriceBook) -> None:
        if not config.endpoints or config.tenants < 1 or config.users_per_tenant < 1 or config.days < 1:
            raise ValueError("a synthetic config needs endpoints, tenants, users and days")
        self.config = config
        self.book = book
        self.start_ns = to_ns(config.start) // NS_PER_HOUR * NS_PER_HOUR
        self.base = random.Random(config.seed)
        self.bursts = random.Random(config.seed * 7919 + 1)
        self.incident_rng = random.Random(config.seed * 104_729 + 2)
        self.ids = random.Random(config.seed * 15_485_863 + 3)
        # Its own stream, so a surge leaves the base traffic and the bursts as they were.
        self.surges = random.Random(config.seed * 32_452_843 + 4)
        self.tenants = config.tenant_ids
        self.tenant_cdf = _zipf_cdf(len(self.tenants))
        self.users = {
            tenant: [f"uh_{self.base.getrandbits(96):024x}" for _ in range(config.users_per_tenant)]
            for tenant in self.tenants
        }
        self.endpoint_cdf = list(accumulate(profile.weight for profile in config.endpoints))

    # -- planning ---------------------------------------------------------------------

    def _rate(self, hour_start_ns: int) -> float:
        config = self.config
        moment = datetime.fromtimestamp(hour_start_ns // NS_PER_SECOND, tz=timezone.utc)
        cycle = 1 + config.daily_amplitude * math.sin(2 * math.pi * (moment.hour - 9) / 24)
        weekend = config.weekend_factor if moment.weekday() >= 5 else 1.0
        return config.requests_per_hour * cycle * weekend

    def _pick_tenant(self, rng: random.Random) -> str:
        return self.tenants[min(bisect_left(self.tenant_cdf, rng.random()), len(self.tenants) - 1)]

    def _pick_endpoint(self, rng: random.Random) -> EndpointProfile:
        point = rng.random() * self.endpoint_cdf[-1]
        return self.config.endpoints[
            min(bisect_left(self.endpoint_cdf, point), len(self.config.endpoints) - 1)
        ]

    def _plan(
        self,
        rng: random.Random,
        start_ns: int,
        tenant: str | None = None,
        user: str | None = None,
        endpoint: EndpointProfile | None = None,
    ) -> _Request:
        """A logical request: always the same number of draws, whatever the choices."""
        config = self.config
        draws = self._draw(rng)
        endpoint = endpoint or draws.endpoint
        tenant = tenant or draws.tenant
        user = user or self.users.get(tenant, self.users[self.tenants[0]])[draws.user_index]
        external_id = (
            f"req_{self.ids.getrandbits(80):020x}" if draws.id_roll < config.external_id_share else None
        )
        input_tokens = max(1, round(endpoint.input_tokens * draws.in_factor))
        cache_read = round(input_tokens * endpoint.cache_read_share) if draws.cache_hit else 0
        request = _Request(
            start_ns=start_ns,
            endpoint=endpoint,
            tenant=tenant,
            user=user,
            input_tokens=input_tokens,
            output_tokens=max(1, round(endpoint.output_tokens * draws.out_factor)),
            cache_read_tokens=cache_read,
            latency_ms=round(endpoint.latency_ms * draws.latency_factor, 1),
            external_id=external_id,
            kind=self._kind(draws.kind_roll, external_id),
            prompt_version=endpoint.prompt_version,
            provider=endpoint.provider,
            request_model=endpoint.model,
            response_model=endpoint.model,
            endpoint_tag=endpoint.tag,
            environment=config.environment,
        )
        self._apply_faults(request, draws.fault_rolls)
        return request

    def _draw(self, rng: random.Random) -> _Draws:
        """Every draw of one request from ``rng`` (the order is part of the seeded output:
        do not reorder)."""
        return _Draws(
            self._pick_endpoint(rng),
            self._pick_tenant(rng),
            rng.randrange(self.config.users_per_tenant),
            rng.lognormvariate(0, 0.35),
            rng.lognormvariate(0, 0.4),
            rng.lognormvariate(0, 0.3),
            rng.random() < 0.5,
            rng.random(),
            rng.random(),
            [rng.random() for _ in range(6)],
        )

    def _kind(self, roll: float, external_id: str | None) -> str:
        """``error``, ``retry``, ``throttle`` or ``ok`` by the configured shares; a retry or a
        throttle needs an id that ties its attempts into one logical request."""
        config = self.config
        if roll < config.error_share:
            return "error"
        if external_id is not None:
            if roll < config.error_share + config.retry_share:
                return "retry"
            if roll < config.error_share + config.retry_share + config.throttle_share:
                return "throttle"
        return "ok"

    def _apply_faults(self, request: _Request, rolls: Sequence[float]) -> None:
        """The data-quality faults the config asks for (untagged, unversioned, no usage, raw
        PII as user id, test traffic, clock skew), one roll each."""
        faults = self.config.faults
        if rolls[0] < faults.untagged_share:
            request.endpoint_tag = None
        if rolls[1] < faults.unversioned_share:
            request.prompt_version = None
        if rolls[2] < faults.no_usage_share:
            request.no_usage = True
        if rolls[3] < faults.pii_user_share:
            serial = int(rolls[3] * 1e6) % 9000 + 1000
            request.user = f"user{serial}@example.com" if serial % 2 else f"+1-555-01{serial % 100:02d}"
        if rolls[4] < faults.test_traffic_share:
            request.tenant, request.environment = "t_test", "staging"
            request.user = "uh_" + "0" * 23 + "1"
        if rolls[5] < faults.clock_skew_share:
            request.skew_ns = int(faults.clock_skew_s * NS_PER_SECOND)

    def _apply_incidents(self, request: _Request) -> None:
        rng = self.incident_rng
        at = request.start_ns
        for incident in self.config.incidents:
            if isinstance(incident, PromptDeploy):
                if request.endpoint.tag == incident.endpoint and at >= to_ns(incident.at):
                    request.prompt_version = incident.version
                    request.input_tokens = max(1, round(request.input_tokens * incident.input_factor))
                    request.cache_read_tokens = round(request.cache_read_tokens * incident.input_factor)
                    request.output_tokens = max(1, round(request.output_tokens * incident.output_factor))
                continue
            if isinstance(incident, ContextGrowth):
                if request.endpoint.tag == incident.endpoint:
                    in_factor, out_factor = incident.factors(at)
                    request.input_tokens = max(
                        request.cache_read_tokens, 1, round(request.input_tokens * in_factor)
                    )
                    request.output_tokens = max(1, round(request.output_tokens * out_factor))
                continue
            if isinstance(incident, TenantBurst | VolumeSurge):
                continue  # bursts and surges add requests; see hour()
            if not to_ns(incident.start) <= at < to_ns(incident.end):
                continue
            if isinstance(incident, RetryStorm):
                roll = rng.random()
                if (
                    incident.endpoint in (None, request.endpoint.tag)
                    and roll < incident.share
                    and request.external_id is not None
                    and request.kind == "ok"
                ):
                    request.storm_failures = incident.extra_attempts
                    request.storm_error = incident.error_type
            elif isinstance(incident, ModelFallback):
                roll = rng.random()
                if request.endpoint.tag == incident.endpoint and roll < incident.share:
                    request.response_model = incident.response_model
                    request.provider = incident.provider or request.provider
            else:  # UnknownModel, the one kind left (the checker narrows ``incident`` to it)
                roll = rng.random()
                if incident.endpoint in (None, request.endpoint.tag) and roll < incident.share:
                    request.provider = incident.provider
                    request.request_model = request.response_model = incident.model
                    request.cache_read_tokens = 0

    def hour(self, index: int) -> list[SpanRow]:
        """Rows of logical requests starting in hour ``index`` of the dataset."""
        hour_start = self.start_ns + index * NS_PER_HOUR
        hour_end = hour_start + NS_PER_HOUR
        base = self.base
        rate = self._rate(hour_start) * (1 + base.gauss(0, self.config.rate_noise))
        requests = [
            self._plan(base, hour_start + int(base.random() * NS_PER_HOUR))
            for _ in range(max(0, round(rate)))
        ]
        for incident in self.config.incidents:
            if isinstance(incident, TenantBurst):
                lo, hi = max(hour_start, to_ns(incident.start)), min(hour_end, to_ns(incident.end))
                if lo >= hi:
                    continue
                count = round(incident.requests_per_hour * (hi - lo) / NS_PER_HOUR)
                endpoint = self.config.endpoint(incident.endpoint) if incident.endpoint else None
                rng = self.bursts
                requests += [
                    self._plan(
                        rng, lo + int(rng.random() * (hi - lo)), incident.tenant, incident.user, endpoint
                    )
                    for _ in range(count)
                ]
            elif isinstance(incident, VolumeSurge):
                requests += self._surge(incident, hour_start, hour_end)
        requests.sort(key=lambda request: request.start_ns)
        rows: list[SpanRow] = []
        for request in requests:
            self._apply_incidents(request)
            rows += self._attempts(request)
        return rows

    def _surge(self, incident: VolumeSurge, hour_start: int, hour_end: int) -> list[_Request]:
        """The surge's extra requests in one hour: usual tenants, users and tokens, one attempt."""
        lo, hi = max(hour_start, to_ns(incident.start)), min(hour_end, to_ns(incident.end))
        if lo >= hi:
            return []
        endpoint = self.config.endpoint(incident.endpoint)
        rng = self.surges
        planned = [
            self._plan(rng, lo + int(rng.random() * (hi - lo)), endpoint=endpoint)
            for _ in range(round(incident.requests_per_hour * (hi - lo) / NS_PER_HOUR))
        ]
        for request in planned:
            request.kind = "ok"
        return planned

    # -- attempts ---------------------------------------------------------------------

    def _attempts(self, request: _Request) -> list[SpanRow]:
        rng = self.ids
        trace_id = rng.getrandbits(128).to_bytes(16, "big")
        plan: list[tuple[str, str | None, bool]] = []  # (outcome, error_type, has_usage)
        if request.kind == "throttle":
            plan.append(("error", "RateLimitError", False))
        elif request.kind == "retry":
            plan.append(("error", "APITimeoutError", True))
        plan += [("error", request.storm_error, True)] * request.storm_failures
        plan.append(
            ("error", "BadRequestError", True) if request.kind == "error" else ("success", None, True)
        )
        rows: list[SpanRow] = []
        start = request.start_ns
        for outcome, error_type, has_usage in plan:
            latency_ms = request.latency_ms if has_usage else 40.0
            end = start + int(latency_ms * 1_000_000)
            rows.append(
                self._row(
                    request, trace_id, start, end, outcome, error_type, has_usage and not request.no_usage
                )
            )
            start = end + rng.randrange(200, 1500) * 1_000_000
        return rows

    def _row(
        self,
        request: _Request,
        trace_id: bytes,
        start: int,
        end: int,
        outcome: str,
        error_type: str | None,
        has_usage: bool,
    ) -> SpanRow:
        input_tokens = request.input_tokens if has_usage else None
        output_tokens = request.output_tokens if has_usage else None
        cache_read = request.cache_read_tokens if has_usage else None
        model = request.response_model or request.request_model
        price = self.book.price(
            request.provider,
            model,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            cache_read_tokens=cache_read or 0,
            at=datetime.fromtimestamp(end // NS_PER_SECOND, tz=timezone.utc),
        )
        return SpanRow(
            trace_id=trace_id,
            span_id=self.ids.getrandbits(64).to_bytes(8, "big"),
            start_time_ns=start + request.skew_ns,
            end_time_ns=end + request.skew_ns,
            received_at_ns=end + _EXPORT_DELAY_NS,
            service_name=self.config.service_name,
            provider=request.provider,
            request_model=request.request_model,
            response_model=request.response_model,
            model=model,
            operation="chat",
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            cache_read_tokens=cache_read,
            cache_write_tokens=0 if has_usage else None,
            reasoning_tokens=0 if has_usage else None,
            endpoint_tag=request.endpoint_tag,
            prompt_name=request.endpoint.prompt_name,
            prompt_version=request.prompt_version,
            tenant_id=request.tenant,
            user_id=request.user,
            external_request_id=request.external_id,
            data_mode=self.config.data_mode,
            environment=request.environment,
            outcome="success" if outcome == "success" else "error",
            error_type=error_type,
            latency_ms=request.latency_ms if has_usage else 40.0,
            **pricing_fields(price),  # type: ignore[arg-type]
        )


def rows_between(rows: Sequence[SpanRow], start_ns: int, end_ns: int) -> list[SpanRow]:
    """Rows whose event time lies in ``[start_ns, end_ns)`` (for tests and demos)."""
    return [row for row in rows if start_ns <= row.event_time_ns < end_ns]
