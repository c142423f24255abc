"""Scheduled alert rules over the rollups: drift, regressions, concentration, bursts, retries,
unknown models.

Each rule reads two windows through :meth:`BudgetStore.measures
<spanmeter.store.inbox.BudgetStore.measures>` (the recent ``window`` ending now, and the
``baseline`` before it; a baseline of 12 hours or more ends on a whole hour so that its
answer, the costly one, is cached for the hour), and judges each subject (a value of ``by``, or all traffic) as firing, clear, or
"not enough data" (fewer than ``min_requests``). The store turns those verdicts into
*episodes* (:meth:`apply_rule_outcomes`): an episode opens, and alerts once, when a
subject starts firing, and resolves when it is clearly clear; "not enough data" changes
nothing, so a quiet minute does not end an incident and re-alert it a minute later.

What each kind judges (thresholds and defaults: :mod:`spanmeter.budgets.rules.config`):

* ``cost_per_request_drift``: cost per logical request of each endpoint tag (or
  endpoint tag x prompt version) against the baseline, fires on a relative rise;
* ``prompt_version_regression``: per endpoint tag, a prompt version absent from the
  baseline against the version that served most of it; once per version, ever;
* ``spend_share``: one tenant's (user's) share of the window's spend (at least two
  values and ``min_cost_usd`` spent: a single-tenant deployment is not a concentration);
* ``request_burst``: attempts per minute at least ``rate_multiplier`` x the baseline's
  *and* a success ratio fallen by ``threshold`` points;
* ``retry_multiplier``: attempts per logical request at or over ``threshold`` and
  ``rise`` above the baseline's;
* ``unknown_model_ratio``: attempts without a price over all attempts. The rollups count
  every unpriced attempt (an unknown model, or a span without usage): both make cost
  numbers untrustworthy, and the alert lists the models behind them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final

from ...store import BudgetStore, MeasureGroup, NewAlert, RuleOutcome
from ...timeunits import NS_PER_HOUR, NS_PER_MINUTE, iso
from ..definitions.model import AlertRule, BudgetsConfig
from .judges import Windows
from .kinds import RULE_KINDS

__all__ = ["RuleEvaluator"]

_LONG_BASELINE_NS: Final = 12 * NS_PER_HOUR
_CACHE_LIMIT: Final = 256


class RuleEvaluator:
    """Evaluates the rules of a config against a store, caching baselines for the hour.

    Args:
        store: Where measures are read and outcomes written.
        clock: Unix time in ns.
    """

    def __init__(self, store: BudgetStore, clock: Callable[[], int]) -> None:
        self._store = store
        self._clock = clock
        self._cache: dict[tuple[Any, ...], list[MeasureGroup]] = {}

    def forget_baselines(self) -> None:
        """Drop the cached baseline answers. A long baseline is cached for the hour, which a
        live receiver can afford (late spans for a past day move a 7-day baseline little);
        after a back-fill or a replay into a receiver that evaluated before it (a cached
        empty baseline judges nothing for up to an hour), an evaluation asked for now
        calls this first."""
        self._cache.clear()

    def evaluate_all(self, config: BudgetsConfig) -> list[int]:
        """Evaluate every rule now; returns the ids of the alerts inserted."""
        inserted: list[int] = []
        for rule in config.rules:
            inserted += self.evaluate(rule, config)
        return inserted

    def evaluate(self, rule: AlertRule, config: BudgetsConfig) -> list[int]:
        """Evaluate one rule now and record its outcomes."""
        now = self._clock()
        outcomes = self.outcomes(rule, config, now)
        return self._store.apply_rule_outcomes(rule.name, outcomes, now_ns=now)

    def windows(self, rule: AlertRule, now_ns: int) -> Windows:
        """The judged window ends with the current minute; the baseline precedes it (a
        baseline of 12 hours or more ends on the hour before the window)."""
        end = now_ns - now_ns % NS_PER_MINUTE + NS_PER_MINUTE  # include the current minute's bucket
        start = end - rule.window_ns
        # A long baseline ends on the hour, so its (costly) answer is cached for the hour; a
        # short one stays adjacent to the window (an hour's gap would distort it).
        base_end = start - start % NS_PER_HOUR if rule.baseline_ns >= _LONG_BASELINE_NS else start
        return start, end, base_end - rule.baseline_ns, base_end

    def _measures(
        self, rule: AlertRule, by: tuple[str, ...], start: int, end: int, *, cache: bool
    ) -> list[MeasureGroup]:
        key = (by, start, end, rule.environment, rule.data_mode)
        if cache and key in self._cache:
            return self._cache[key]
        result = self._store.measures(by, start, end, environment=rule.environment, data_mode=rule.data_mode)
        if cache:
            if len(self._cache) >= _CACHE_LIMIT:
                self._cache.clear()
            self._cache[key] = result
        return result

    def outcomes(self, rule: AlertRule, config: BudgetsConfig, now_ns: int) -> list[RuleOutcome]:
        """The verdict on every subject of ``rule`` at ``now_ns`` (nothing written)."""
        windows = self.windows(rule, now_ns)
        judge = RULE_KINDS[rule.kind].judge
        by = (rule.by,) if rule.by else ()
        if (
            rule.kind == "cost_per_request_drift" and rule.by == "prompt_version"
        ) or rule.kind == "prompt_version_regression":
            by = ("endpoint_tag", "prompt_version")
        elif rule.kind == "unknown_model_ratio":
            by = ("provider", "model")
        start, end, base_start, base_end = windows
        current = self._measures(rule, by, start, end, cache=False)
        baseline = self._measures(rule, by, base_start, base_end, cache=True) if rule.baseline_ns else []
        return [
            RuleOutcome(
                subject,
                firing,
                self._alert(rule, config, subject, dims, windows, facts, now_ns) if firing else None,
            )
            for subject, firing, dims, facts in judge(rule, by, current, baseline, windows)
        ]

    @staticmethod
    def _alert(
        rule: AlertRule,
        config: BudgetsConfig,
        subject: str,
        dims: Mapping[str, str | None],
        windows: Windows,
        facts: Mapping[str, Any],
        now_ns: int,
    ) -> NewAlert:
        start, end, base_start, base_end = windows
        kind = f"rule.{rule.kind}"
        filters = {d: v or "" for d, v in dims.items()}
        if rule.environment:
            filters["environment"] = rule.environment
        filters["data_mode"] = rule.data_mode or "all"
        once = rule.kind == "prompt_version_regression"  # once per version, ever
        return NewAlert(
            dedupe_key=f"rule:{rule.name}:{subject}" + ("" if once else f":{now_ns}"),
            kind=kind,
            severity=rule.severity,
            source=rule.name,
            subject=subject,
            title=str(facts["title"]),
            occurred_at_ns=now_ns,
            window_start_ns=start,
            window_end_ns=end,
            details={
                "type": "rule",
                "rule": rule.name,
                "kind": rule.kind,
                "subject": {d: v for d, v in dims.items()},
                "window": {"from": iso(start), "to": iso(end)},
                "baseline": {"from": iso(base_start), "to": iso(base_end)} if rule.baseline_ns else None,
                "threshold": str(rule.threshold),
                "observed": {k: v for k, v in facts.items() if k != "title"},
                "filters": filters,
            },
            channels=config.channels_for(kind, rule.severity, rule.channels),
        )
