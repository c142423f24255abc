"""The shape of synthetic traffic: endpoints, tenants, rates, data-quality faults.

Defaults look like a small SaaS product: a handful of features (endpoint tags), each on
its own model and prompt version, Zipf-distributed tenants with a few users each, a daily
cycle, quieter weekends, a few retried and throttled calls. Every knob is a field, so a
test states exactly what it generated.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Final

from .incidents import Incident

__all__ = ["DEFAULT_ENDPOINTS", "DataFaults", "EndpointProfile", "SyntheticConfig"]


@dataclass(frozen=True, slots=True)
class EndpointProfile:
    """One feature of the synthetic app and the LLM call it makes."""

    tag: str
    """Endpoint tag (the feature)."""
    prompt_name: str
    prompt_version: str
    """Version in use before any :class:`~spanmeter.synthetic.incidents.PromptDeploy`."""
    provider: str
    model: str
    """A model genai-prices knows, so calls are priced with real list prices."""
    input_tokens: int
    """Median input tokens per call (cache reads included)."""
    output_tokens: int
    """Median output tokens per call."""
    weight: float
    """Relative share of the traffic."""
    cache_read_share: float = 0.0
    """Fraction of the input tokens served from the prompt cache, on calls that hit it."""
    latency_ms: float = 800.0
    """Median latency of a call."""


DEFAULT_ENDPOINTS: Final = (
    EndpointProfile(
        "checkout.ai_summary", "summary", "summary_v3", "openai", "gpt-4o-mini", 540, 180, 0.40, 0.0, 900
    ),
    EndpointProfile(
        "support.reply", "support", "support_v5", "anthropic", "claude-sonnet-4-5", 2400, 420, 0.25, 0.5, 2400
    ),
    EndpointProfile("docs.summarize", "docs", "docs_v2", "openai", "gpt-4o", 6000, 350, 0.15, 0.0, 3100),
    EndpointProfile(
        "search.rerank", "rerank", "rerank_v1", "openai", "gpt-4.1-mini", 1200, 60, 0.15, 0.0, 400
    ),
    EndpointProfile("dev.review_pr", "review", "review_v1", "openai", "o4-mini", 9000, 900, 0.05, 0.0, 6000),
)
"""Five features on four list-priced models from two providers."""


@dataclass(frozen=True, slots=True)
class DataFaults:
    """Tracking mistakes to inject, for the data-quality checks (all off by default)."""

    untagged_share: float = 0.0
    """Calls sent without an endpoint tag."""
    unversioned_share: float = 0.0
    """Calls sent without a prompt version."""
    no_usage_share: float = 0.0
    """Successful calls whose usage is missing (an instrumentation that does not record it)."""
    pii_user_share: float = 0.0
    """Calls whose user id is a raw email address or phone number instead of a hash."""
    test_traffic_share: float = 0.0
    """Calls from a test tenant in a staging environment, wrongly marked ``real``."""
    clock_skew_share: float = 0.0
    """Calls from a host whose clock is off by :attr:`clock_skew_s`."""
    clock_skew_s: float = 0.0
    """Seconds the skewed host's clock runs ahead (positive) or behind (negative)."""


def _default_start() -> datetime:
    return datetime(2026, 3, 2, tzinfo=timezone.utc)  # a Monday


@dataclass(frozen=True, slots=True)
class SyntheticConfig:
    """Everything that determines a synthetic dataset: same config, same rows, byte for byte."""

    seed: int = 7
    start: datetime = field(default_factory=_default_start)
    """First hour of traffic (UTC)."""
    days: int = 7
    requests_per_hour: float = 300.0
    """Mean logical requests per hour over a weekday (the daily cycle moves around it)."""
    daily_amplitude: float = 0.4
    """Relative swing of the daily cycle (0: flat traffic)."""
    weekend_factor: float = 0.6
    """Traffic on Saturdays and Sundays relative to weekdays."""
    rate_noise: float = 0.05
    """Relative standard deviation of the hourly request count."""
    tenants: int = 40
    users_per_tenant: int = 6
    endpoints: tuple[EndpointProfile, ...] = DEFAULT_ENDPOINTS
    environment: str = "prod"
    data_mode: str = "real"
    external_id_share: float = 0.9
    """Logical requests carrying an external request id (the others cannot be retried)."""
    retry_share: float = 0.02
    """Logical requests (with an id) that fail once, billed, and succeed on a retry."""
    throttle_share: float = 0.01
    """Logical requests (with an id) first rejected with HTTP 429: no usage, no cost."""
    error_share: float = 0.005
    """Logical requests that fail for good (one billed attempt, outcome error)."""
    incidents: tuple[Incident, ...] = ()
    faults: DataFaults = field(default_factory=DataFaults)
    service_name: str = "synthetic-app"

    @property
    def tenant_ids(self) -> tuple[str, ...]:
        """Tenant ids, most active first (``t_0000`` gets the largest Zipf share)."""
        return tuple(f"t_{index:04d}" for index in range(self.tenants))

    def endpoint(self, tag: str) -> EndpointProfile:
        """The profile of endpoint ``tag``.

        Raises:
            KeyError: No such endpoint in :attr:`endpoints`.
        """
        for profile in self.endpoints:
            if profile.tag == tag:
                return profile
        raise KeyError(f"no endpoint {tag!r} in the synthetic profile")
