"""Budget, alert rule and delivery definitions: what a validated budgets file becomes.

Plain immutable values; :mod:`spanmeter.budgets.config.load` builds them from YAML and checks
every field, so everything downstream may trust them.

Levels: a budget with warning thresholds ``(50%, 80%)`` has levels 0 (ok), 1 (50% reached),
2 (80% reached) and 3 (limit reached: exceeded). Within one window a level is alerted at
most once; a batch that jumps several levels at once alerts the highest one only.
"""

from __future__ import annotations

import hashlib
import json
from bisect import bisect_right
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, Decimal
from fnmatch import fnmatchcase
from functools import cached_property
from typing import Final, Literal

from ... import dimensions
from ...money import usd_to_nano
from .windows import WindowSpec

__all__ = [
    "DIMENSIONS",
    "WILDCARD",
    "AlertRule",
    "Budget",
    "BudgetsConfig",
    "Channel",
    "RetryPolicy",
    "percent",
]

DIMENSIONS: Final = dimensions.DIMENSIONS
"""Dimensions a budget scope may name (columns of every stored attempt)."""
WILDCARD: Final = "*"
"""Scope value meaning "one budget per value of this dimension"."""


def percent(fraction: Decimal) -> str:
    """``Decimal('0.5')`` -> ``50%``; ``Decimal('0.125')`` -> ``12.5%``."""
    return f"{(fraction * 100).normalize():f}%"


@dataclass(frozen=True)
class Budget:
    """One budget definition (``*`` scopes stand for one budget state per value)."""

    name: str
    scope: Mapping[str, str]
    """Dimension -> exact value or ``*``; always holds ``data_mode`` (default ``real``)."""
    window: WindowSpec
    limit_usd: Decimal
    warn_at: tuple[Decimal, ...] = (Decimal("0.5"), Decimal("0.8"))
    """Warning thresholds as fractions of the limit, ascending, each in (0, 1)."""
    forecast: bool = True
    """Warn early when the spend projected to the window's end reaches the limit."""
    forecast_min_elapsed_ns: int = 0
    """No forecast before this much of the window has passed (too little data to project)."""
    channels: tuple[str, ...] | None = None
    """Deliver only to these channels (None: every channel whose filter matches)."""
    description: str = ""

    @property
    def limit_nano_usd(self) -> int:
        """The limit in nano-USD."""
        return usd_to_nano(self.limit_usd)

    @cached_property
    def thresholds_nano_usd(self) -> tuple[int, ...]:
        """Spend at which each level starts: the warnings (rounded up), then the limit."""
        limit = self.limit_nano_usd
        warnings = (int((limit * f).to_integral_value(rounding=ROUND_CEILING)) for f in self.warn_at)
        return (*warnings, limit)

    @property
    def exceeded_level(self) -> int:
        """The level meaning "limit reached"."""
        return len(self.warn_at) + 1

    @cached_property
    def wildcards(self) -> tuple[str, ...]:
        """Dimensions with ``*``, sorted: together they make a state's scope key."""
        return tuple(sorted(d for d, v in self.scope.items() if v == WILDCARD))

    @cached_property
    def counter(self) -> str:
        """Id of this budget's spend counters: the name plus what is counted (scope and
        window). Changing the limit or thresholds keeps the spend; changing what is counted
        starts new counters rather than mixing two definitions' spend."""
        what = json.dumps({"scope": dict(sorted(self.scope.items())), "window": self.window.identity()})
        return f"{self.name}#{hashlib.sha256(what.encode()).hexdigest()[:10]}"

    def level(self, spend_nano_usd: int) -> int:
        """The level a spend is at (0 = ok)."""
        return bisect_right(self.thresholds_nano_usd, spend_nano_usd)

    def level_name(self, level: int) -> Literal["ok", "warning", "exceeded"]:
        """``ok``, ``warning`` or ``exceeded``."""
        if level <= 0:
            return "ok"
        return "exceeded" if level >= self.exceeded_level else "warning"

    def threshold_of(self, level: int) -> Decimal:
        """The fraction of the limit at which ``level`` starts (1 for exceeded)."""
        if level >= self.exceeded_level:
            return Decimal(1)
        return self.warn_at[level - 1] if level > 0 else Decimal(0)


@dataclass(frozen=True)
class AlertRule:
    """A scheduled alert rule over the rollups (see :mod:`spanmeter.budgets.rules.evaluator`)."""

    kind: str
    name: str
    by: str | None
    """Dimension whose values are judged one by one (None: all traffic together)."""
    window_ns: int
    """The recent window judged."""
    baseline_ns: int
    """The window before it, for comparison (0 for rules without a baseline)."""
    threshold: Decimal
    """Kind-specific: a relative rise, a share, a ratio or a multiplier."""
    min_requests: int = 20
    """Fewer logical requests (attempts for ratios) than this: not enough data to judge."""
    min_cost_nano_usd: int = 0
    environment: str | None = None
    data_mode: str | None = "real"
    severity: str = "warning"
    rate_multiplier: Decimal = Decimal(3)
    """``request_burst``: how many times the baseline request rate makes a burst."""
    rise: Decimal = Decimal("0.25")
    """``retry_multiplier``: how much above the baseline multiplier is a spike."""
    channels: tuple[str, ...] | None = None


@dataclass(frozen=True)
class RetryPolicy:
    """How the outbox retries a failed delivery: exponential backoff with jitter."""

    initial_s: float = 1.0
    max_s: float = 300.0
    give_up_after_s: float = 86_400.0
    timeout_s: float = 10.0
    """Per HTTP attempt."""

    def delay_s(self, attempts: int, jitter: float) -> float:
        """Wait before attempt ``attempts + 1``; ``jitter`` in [0, 1) spreads retries."""
        base = self.initial_s * (2 ** min(attempts, 30))
        return min(self.max_s, base * (0.75 + 0.5 * jitter))


@dataclass(frozen=True)
class Channel:
    """A delivery target: a generic webhook, a Slack incoming webhook, or the log."""

    name: str
    type: Literal["webhook", "slack", "log"]
    url: str | None = None
    secret: str | None = field(default=None, repr=False)
    """HMAC-SHA256 key of a generic webhook (never logged)."""
    kinds: tuple[str, ...] = ("*",)
    """Event kinds to deliver, shell patterns (``budget.*``)."""
    min_severity: str = "info"
    headers: Mapping[str, str] = field(default_factory=dict[str, str])

    def wants(self, kind: str, severity: str) -> bool:
        """Whether an event of ``kind`` and ``severity`` goes to this channel."""
        order = {"info": 0, "warning": 1, "critical": 2}
        if order.get(severity, 0) < order.get(self.min_severity, 0):
            return False
        return any(fnmatchcase(kind, pattern) for pattern in self.kinds)


@dataclass(frozen=True)
class BudgetsConfig:
    """A validated budgets file."""

    budgets: tuple[Budget, ...] = ()
    rules: tuple[AlertRule, ...] = ()
    channels: tuple[Channel, ...] = (Channel(name="log", type="log"),)
    retry: RetryPolicy = RetryPolicy()
    evaluate_every_s: float = 60.0
    public_url: str | None = None
    """Base URL of the API in alert links (default: the receiver's own address)."""
    timezone: str = "UTC"
    source: str = "<defaults>"
    """Where it was read from, for messages."""

    def channels_for(self, kind: str, severity: str, only: tuple[str, ...] | None = None) -> tuple[str, ...]:
        """Names of the channels an event goes to."""
        return tuple(
            channel.name
            for channel in self.channels
            if (only is None or channel.name in only) and channel.wants(kind, severity)
        )

    def channel(self, name: str) -> Channel | None:
        """The channel called ``name``, if configured."""
        return next((channel for channel in self.channels if channel.name == name), None)
