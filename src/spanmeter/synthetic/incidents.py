"""Incidents to inject into synthetic traffic: the cost spikes ``investigate`` must explain.

Each incident is a frozen dataclass whose fields are its documented knobs. Times are
timezone-aware :class:`~datetime.datetime` values (naive means UTC); windows are
half-open ``[start, end)`` on the *start time of the logical request*. They exist so that
tests, the demo and benchmarks can say "this is what happened" and check that the
analysis finds exactly that driver and classifies it right::

    config = SyntheticConfig(
        incidents=(PromptDeploy("support.reply", "support_v6", at=datetime(2026, 3, 4, 12)),),
    )
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

from ..timeunits import NS_PER_DAY, NS_PER_SECOND

__all__ = [
    "ContextGrowth",
    "Incident",
    "ModelFallback",
    "PromptDeploy",
    "RetryStorm",
    "TenantBurst",
    "UnknownModel",
    "VolumeSurge",
    "to_ns",
]


def to_ns(moment: datetime) -> int:
    """Unix nanoseconds of ``moment`` (naive means UTC), exact to the microsecond."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    delta = moment - datetime(1970, 1, 1, tzinfo=timezone.utc)
    return delta.days * NS_PER_DAY + delta.seconds * NS_PER_SECOND + delta.microseconds * 1000


@dataclass(frozen=True, slots=True)
class PromptDeploy:
    """A new prompt version ships on one endpoint and multiplies its tokens per call.

    Classified as a *deploy*: tokens per call rise on ``endpoint`` from ``at`` on, together
    with a prompt version first seen at ``at``.
    """

    endpoint: str
    """Endpoint tag whose prompt changes."""
    version: str
    """The new ``prompt_version`` value, carried by every call from ``at`` on."""
    at: datetime
    """Deploy time: calls of logical requests starting at or after it use the new version."""
    input_factor: float = 2.0
    """Multiplier on input tokens per call (2.0: the prompt doubled)."""
    output_factor: float = 2.0
    """Multiplier on output tokens per call."""


@dataclass(frozen=True, slots=True)
class TenantBurst:
    """One tenant (optionally one of its users, one endpoint) sends a burst of extra requests.

    Classified as *abuse/concentration*: volume rises and most of the delta comes from one
    tenant.
    """

    tenant: str
    """Tenant id (as generated: ``t_0007``...; see :attr:`SyntheticConfig.tenant_ids`)."""
    start: datetime
    end: datetime
    requests_per_hour: float
    """Extra logical requests per hour during ``[start, end)``, on top of normal traffic."""
    user: str | None = None
    """All burst requests from this user id (None: spread over the tenant's users)."""
    endpoint: str | None = None
    """All burst requests on this endpoint tag (None: the tenant's usual mix)."""


@dataclass(frozen=True, slots=True)
class VolumeSurge:
    """More logical requests on one endpoint, from the whole customer base (a launch, a campaign).

    Classified as *volume*: logical requests rise on ``endpoint`` while tokens per call,
    prompt version and attempts per request stay as they were, and the extra requests are
    spread over tenants and users the way normal traffic is (Zipf over tenants, uniform
    over a tenant's users), so no single tenant holds most of the delta. Each extra
    request succeeds at its first attempt: a surge adds requests, not retries.
    """

    endpoint: str
    """Endpoint tag that gets the extra traffic."""
    start: datetime
    end: datetime
    requests_per_hour: float
    """Extra logical requests per hour on ``endpoint`` during ``[start, end)``."""


@dataclass(frozen=True, slots=True)
class ContextGrowth:
    """Calls on one endpoint carry more and more input with no prompt change (context creep).

    Think of a chat history or a retrieval step that stuffs more documents into each call:
    the prompt version stays the same, yet tokens per call climb. Classified as *token*
    (not *deploy*: no new prompt version appears). The input-token multiplier grows
    linearly from 1 at ``start`` to ``input_factor`` at ``end`` and stays there afterwards
    (context does not shrink by itself). Cache reads are left as they were: the added
    context is new text the provider has not cached.
    """

    endpoint: str
    """Endpoint tag whose calls grow."""
    start: datetime
    end: datetime
    input_factor: float = 2.0
    """Multiplier on input tokens per call reached at ``end``."""
    output_factor: float = 1.0
    """Multiplier on output tokens per call reached at ``end`` (1.0: answers stay as long)."""

    def factors(self, at_ns: int) -> tuple[float, float]:
        """(input, output) multipliers for a logical request starting at ``at_ns``."""
        start, end = to_ns(self.start), to_ns(self.end)
        if at_ns < start:
            return 1.0, 1.0
        progress = 1.0 if at_ns >= end or end <= start else (at_ns - start) / (end - start)
        return 1 + (self.input_factor - 1) * progress, 1 + (self.output_factor - 1) * progress


@dataclass(frozen=True, slots=True)
class RetryStorm:
    """Logical requests need several billed attempts: each failed attempt was still paid for.

    Classified as *retries*: attempts per logical request rise. Failed attempts carry
    usage (a validation failure or a server-side timeout after generation), which is the
    kind of retry that costs money; rejected-before-work calls (HTTP 429) cost nothing.
    """

    start: datetime
    end: datetime
    endpoint: str | None = None
    """Only this endpoint tag (None: every endpoint)."""
    extra_attempts: int = 2
    """Failed attempts before the one that succeeds."""
    share: float = 1.0
    """Fraction of the affected logical requests that are retried."""
    error_type: str = "ValidationError"
    """``error.type`` of the failed attempts."""


@dataclass(frozen=True, slots=True)
class ModelFallback:
    """Calls on one endpoint are answered by a pricier model than the one requested.

    Classified as *routing/fallback*: the response model differs from the request model,
    and cost per token rises with no change in volume or tokens.
    """

    endpoint: str
    start: datetime
    end: datetime
    response_model: str
    """Model that answers instead (it is the one priced)."""
    provider: str | None = None
    """Provider of the fallback model (None: the endpoint's provider)."""
    share: float = 1.0
    """Fraction of the endpoint's calls that fall back."""


@dataclass(frozen=True, slots=True)
class UnknownModel:
    """Calls switch to a model no price list knows: they arrive with usage but no cost.

    Classified as *unknown model*: the cost numbers are incomplete until the model is added
    to the override file, whatever else changed.
    """

    model: str
    """The model name requested and reported (e.g. a self-hosted ``acme-llm-2``)."""
    start: datetime
    end: datetime
    provider: str = "vllm"
    endpoint: str | None = None
    """Only this endpoint tag (None: every endpoint)."""
    share: float = 1.0
    """Fraction of the affected calls that use the unknown model."""


Incident = (
    PromptDeploy | TenantBurst | VolumeSurge | ContextGrowth | RetryStorm | ModelFallback | UnknownModel
)
"""Any injectable incident."""
