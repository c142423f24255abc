"""The demo's story: two days of a small SaaS product's GenAI traffic with one incident.

Everything here is pure data derived from one end instant, so the story is the same
whenever and wherever the demo runs:

* traffic covers the 48 whole hours before the end (the end is the start of the current
  hour, so no span lies in the future);
* 18 hours before the end, ``support.reply`` ships prompt version ``support_v6``, which
  doubles its input and output tokens per call;
* the budgets use rolling 24-hour windows. A calendar ``day`` would do the same job, but
  how much of "today" the incident covers would then depend on the time of day the demo
  runs (right after midnight UTC, almost none of it);
* the alert rule compares the last 24 hours with the 24 before, like the investigation.

Example::

    scenario = DemoScenario.ending_at(time.time_ns())
    config = scenario.synthetic_config()          # feed spanmeter.synthetic
    text = scenario.budgets_yaml("http://127.0.0.1:8000/alerts", secret="...")
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Final

from ..analysis import TimeWindow
from ..synthetic import PromptDeploy, SyntheticConfig
from ..timeunits import NS_PER_HOUR, NS_PER_SECOND

__all__ = [
    "ENDPOINT_BUDGET",
    "INCIDENT_ENDPOINT",
    "NEW_VERSION",
    "PREVIOUS_VERSION",
    "TENANT_BUDGET",
    "DemoScenario",
]


INCIDENT_ENDPOINT: Final = "support.reply"
"""The endpoint whose prompt deploy causes the incident."""
PREVIOUS_VERSION: Final = "support_v5"
"""Its prompt version before the deploy (the synthetic profile's default)."""
NEW_VERSION: Final = "support_v6"
"""The version the deploy ships: twice the tokens per call."""
ENDPOINT_BUDGET: Final = "support-reply-daily"
"""The budget the incident pushes over its limit."""
TENANT_BUDGET: Final = "tenant-daily"
"""The per-tenant budget (one state per tenant)."""

_HOURS: Final = 48
_DEPLOY_HOURS_BEFORE_END: Final = 18
_ENDPOINT_LIMIT_USD: Final = 30
"""About 135% of the incident day's spend on support.reply, and 75% of a normal day's."""
_TENANT_LIMIT_USD: Final = 25
"""The largest tenant spends about 75% of it; the others far less."""


@dataclass(frozen=True)
class DemoScenario:
    """The demo's timeline and settings, derived from the end of its traffic."""

    end_ns: int
    """End of the traffic (exclusive): the start of an hour."""
    seed: int = 7
    requests_per_hour: float = 300.0
    """Mean logical requests per hour (the budgets' limits scale with it)."""

    @classmethod
    def ending_at(cls, now_ns: int, *, seed: int = 7, requests_per_hour: float = 300.0) -> DemoScenario:
        """The scenario whose traffic ends at the start of the hour holding ``now_ns``."""
        if requests_per_hour <= 0:
            raise ValueError(f"requests_per_hour must be positive, got {requests_per_hour!r}")
        return cls(now_ns - now_ns % NS_PER_HOUR, seed, requests_per_hour)

    @property
    def hours(self) -> int:
        """Hours of traffic."""
        return _HOURS

    @property
    def start_ns(self) -> int:
        """Start of the traffic."""
        return self.end_ns - _HOURS * NS_PER_HOUR

    @property
    def deploy_ns(self) -> int:
        """When the new prompt version ships."""
        return self.end_ns - _DEPLOY_HOURS_BEFORE_END * NS_PER_HOUR

    @property
    def incident_window(self) -> TimeWindow:
        """The last 24 hours of traffic: what the investigation explains."""
        return TimeWindow(self.end_ns - 24 * NS_PER_HOUR, self.end_ns)

    @property
    def baseline_window(self) -> TimeWindow:
        """The 24 hours before it (the investigation's ``previous`` baseline)."""
        return TimeWindow(self.start_ns, self.end_ns - 24 * NS_PER_HOUR)

    def _scaled(self, limit_usd: int) -> str:
        return f"{limit_usd * self.requests_per_hour / 300:.2f}"

    def synthetic_config(self) -> SyntheticConfig:
        """The traffic: the synthetic profile's five endpoints and 40 tenants, flat across
        weekdays and weekends (so the baseline day is comparable whatever the date), with
        the prompt deploy."""
        return SyntheticConfig(
            seed=self.seed,
            start=_datetime(self.start_ns),
            days=_HOURS // 24,
            requests_per_hour=self.requests_per_hour,
            weekend_factor=1.0,
            service_name="demo-app",
            incidents=(PromptDeploy(INCIDENT_ENDPOINT, NEW_VERSION, at=_datetime(self.deploy_ns)),),
        )

    def budgets_yaml(self, webhook_url: str, *, secret: str) -> str:
        """The budgets file the demo receiver runs with (alerts go to ``webhook_url``)."""
        return f"""\
# Written by `spanmeter demo`: the budgets and alert rules of the demo receiver.
# Rolling 24-hour windows keep the demo independent of the time of day it runs;
# `window: day` (a calendar day in `timezone`) works the same way. See docs/budgets.md.
budgets:
  - name: {ENDPOINT_BUDGET}
    description: daily LLM spend of the support assistant
    scope: {{endpoint_tag: {INCIDENT_ENDPOINT}}}
    window: {{rolling: 24h}}
    limit_usd: {self._scaled(_ENDPOINT_LIMIT_USD)}
  - name: {TENANT_BUDGET}
    description: daily LLM spend of each tenant
    scope: {{tenant_id: "*"}}
    window: {{rolling: 24h}}
    limit_usd: {self._scaled(_TENANT_LIMIT_USD)}

rules:
  - kind: prompt_version_regression   # a new prompt version costs more per request
    by: endpoint_tag
    window: 24h
    baseline: 24h
    threshold: 20%

delivery:
  log: false
  webhooks:
    - name: demo-webhook
      url: {webhook_url}
      secret: {secret}
"""


def _datetime(ns: int) -> datetime:
    return datetime.fromtimestamp(ns // NS_PER_SECOND, tz=timezone.utc)
