"""Budget levels and forecasts judged from exact totals, and the alerts they raise.

Called by the store inside the ingest transaction with the totals right after this
transaction's increments (see :mod:`spanmeter.store.ledger`), so "was the level already
alerted?" and "record that it now is" cannot interleave with another writer: each level
fires once per window (calendar) or per episode (rolling), and a new window starts at
level 0 because it is a new counter row.

Forecast: the spend projected to the window's end at the window's average burn rate so far,
``spend * window_length / elapsed``. It warns once per window, only while the spend is still
under the limit, and only after ``forecast_min_elapsed`` (10% of the window by default):
one expensive call in the first minute of a month is not a trend.

Rolling windows: an *episode* starts when a key first reaches a level and ends when its
rolling spend has fallen back under the first threshold (checked on the scheduler's
clock, :meth:`BudgetJudge.decide` with ``lower=True``); within an episode each level fires once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from ...money import dollars, usd
from ...store import LedgerDecision, LevelChange, NewAlert, SpendTotal
from ...timeunits import iso
from ..definitions.matcher import BudgetIndex, full_scope
from ..definitions.model import Budget, BudgetsConfig, percent

__all__ = ["BudgetJudge"]


class BudgetJudge:
    """Turns totals into level changes and alerts for one config snapshot."""

    def __init__(self, config: BudgetsConfig, index: BudgetIndex) -> None:
        self.config = config
        self.index = index

    def decide(self, totals: Sequence[SpendTotal], now_ns: int, *, lower: bool = False) -> LedgerDecision:
        """Level changes and alerts for ``totals``.

        Args:
            totals: Counter totals after this transaction's increments.
            now_ns: The clock, for forecasts, rolling episodes and the alerts' time.
            lower: Also record levels going *down* (a raised limit; rolling spend that aged
                out). At ingest only rises matter: spend never decreases there.
        """
        changes: list[LevelChange] = []
        alerts: list[NewAlert] = []
        resolve: list[tuple[str, str, str]] = []
        budgets = self.index.budgets
        floors: dict[tuple[str, int], int | None] = {}
        for total in totals:
            budget = budgets.get(total.increment.counter)
            if budget is None:  # a budget removed from the file while this batch was in flight
                continue
            # The common case, decided without building anything: under the first
            # threshold, and under the spend at which the forecast would reach the limit.
            quiet = (
                not lower and total.total_nano_usd < budget.thresholds_nano_usd[0] and not total.alerted_level
            )
            if quiet and not self._forecast_due(budget, total, now_ns, floors):
                continue
            change = self._judge(budget, total, now_ns, lower, alerts, resolve)
            if change is not None:
                changes.append(change)
        return LedgerDecision(changes, alerts, now_ns, resolve)

    def _forecast_due(
        self, budget: Budget, total: SpendTotal, now_ns: int, floors: dict[tuple[str, int], int | None]
    ) -> bool:
        """Whether a total under the first threshold may still warn by forecast. The floor is
        cached per (counter, bucket) in ``floors``: a batch holds many totals of one window,
        so the common case costs a dictionary lookup."""
        inc = total.increment
        if inc.rolling_since_ns is not None or not budget.forecast or total.forecast_alerted:
            return False
        key = (inc.counter, inc.bucket_start_ns)
        if key not in floors:
            floors[key] = self._forecast_floor(budget, inc.bucket_start_ns, inc.bucket_end_ns, now_ns)
        floor = floors[key]
        return floor is not None and total.total_nano_usd >= floor

    def _judge(
        self,
        budget: Budget,
        total: SpendTotal,
        now_ns: int,
        lower: bool,
        alerts: list[NewAlert],
        resolve: list[tuple[str, str, str]],
    ) -> LevelChange | None:
        """One total's level and forecast judged: its alerts and resolutions appended to
        ``alerts`` and ``resolve``, and the counter's new state, or None if it did not change."""
        inc = total.increment
        rolling = inc.rolling_since_ns is not None
        level = budget.level(total.total_nano_usd)
        alerted, forecast_alerted = total.alerted_level, total.forecast_alerted
        episode = total.episode_since_ns
        if rolling:
            start, end = inc.rolling_since_ns or 0, now_ns
            if episode is None:
                episode = now_ns
        else:
            start, end = inc.bucket_start_ns, inc.bucket_end_ns
        new_level, new_forecast = alerted, forecast_alerted
        if level > alerted:
            new_level = level
            alerts.append(self._alert(budget, total, level, start, end, episode, now_ns))
        elif lower and level < alerted:
            if not rolling:
                new_level = level  # a raised limit: crossing the new thresholds alerts again
            elif level == 0:
                new_level, new_forecast = 0, False  # the episode ends, and its alerts resolve
                note = f"rolling spend {dollars(total.total_nano_usd)} is back under the first threshold"
                resolve.append((budget.name, inc.scope_key, note))
        if not rolling and budget.forecast and not forecast_alerted and level < budget.exceeded_level:
            projected = self._projection(budget, total.total_nano_usd, start, end, now_ns)
            if projected is not None and projected >= budget.limit_nano_usd:
                new_forecast = True
                alerts.append(
                    self._alert(budget, total, -1, start, end, episode, now_ns, projected_nano=projected)
                )
        if (new_level, new_forecast) == (alerted, forecast_alerted):
            return None
        return LevelChange(
            counter=inc.counter,
            scope_key=inc.scope_key,
            bucket_start_ns=inc.bucket_start_ns,
            alerted_level=new_level,
            forecast_alerted=new_forecast,
            rolling=rolling,
            episode_since_ns=episode or 0,
        )

    @staticmethod
    def _forecast_floor(budget: Budget, start: int, end: int, now_ns: int) -> int | None:
        """The smallest spend whose projection reaches the limit now (None: no forecast now)."""
        elapsed = now_ns - start
        if not (start <= now_ns < end) or elapsed < max(budget.forecast_min_elapsed_ns, 1):
            return None
        return budget.limit_nano_usd * elapsed // (end - start)

    @staticmethod
    def _projection(budget: Budget, spend: int, start: int, end: int, now_ns: int) -> int | None:
        elapsed = now_ns - start
        if not (start <= now_ns < end) or elapsed < max(budget.forecast_min_elapsed_ns, 1):
            return None
        return spend * (end - start) // elapsed

    def _alert(
        self,
        budget: Budget,
        total: SpendTotal,
        level: int,
        start: int,
        end: int,
        episode: int | None,
        now_ns: int,
        *,
        projected_nano: int | None = None,
    ) -> NewAlert:
        """The event for reaching ``level`` (-1: the forecast warning)."""
        inc = total.increment
        limit = budget.limit_nano_usd
        scope = full_scope(budget, inc.scope_key)
        rolling = inc.rolling_since_ns is not None
        headline = _headline(budget, total, level, start, scope, projected_nano)
        anchor = f"episode-{episode}" if rolling else str(inc.bucket_start_ns)
        return NewAlert(
            dedupe_key=f"budget:{inc.counter}:{inc.scope_key}:{anchor}:{headline.tag}:{limit}",
            kind=headline.kind,
            severity=headline.severity,
            source=budget.name,
            subject=inc.scope_key,
            title=headline.title,
            occurred_at_ns=now_ns,
            window_start_ns=None if rolling else start,
            window_end_ns=None if rolling else end,
            details=_details(budget, total, level, start, end, scope, projected_nano),
            channels=self.config.channels_for(headline.kind, headline.severity, budget.channels),
        )


class _Headline(NamedTuple):
    """How an alert is classified and titled."""

    kind: str
    severity: str
    tag: str
    """The level's part of the dedupe key: the level number, or ``forecast``."""
    title: str


def _headline(
    budget: Budget,
    total: SpendTotal,
    level: int,
    start: int,
    scope: Mapping[str, str],
    projected_nano: int | None,
) -> _Headline:
    """Kind, severity and a title a person can act on without opening the details."""
    spend, limit = total.total_nano_usd, budget.limit_nano_usd
    scope_text = ", ".join(f"{d}={v}" for d, v in sorted(scope.items()) if d != "data_mode") or "all traffic"
    rolling = total.increment.rolling_since_ns is not None
    window_text = budget.window.describe() if rolling else f"{budget.window.describe()} from {iso(start)}"
    if level < 0:
        assert projected_nano is not None
        title = (
            f"Budget {budget.name} ({scope_text}) is on course to exceed its limit: {dollars(spend)} spent, "
            f"{dollars(projected_nano)} projected by the window's end, limit {dollars(limit)} ({window_text})"
        )
        return _Headline("budget.forecast", "warning", "forecast", title)
    name = budget.level_name(level)
    ratio = spend / limit if limit else 0.0
    what = "exceeded" if name == "exceeded" else f"reached {percent(budget.threshold_of(level))} of"
    title = (
        f"Budget {budget.name} ({scope_text}) {what} its limit: {dollars(spend)} of {dollars(limit)}"
        f" ({ratio:.0%}, {window_text})"
    )
    return _Headline(f"budget.{name}", "critical" if name == "exceeded" else "warning", str(level), title)


def _details(
    budget: Budget,
    total: SpendTotal,
    level: int,
    start: int,
    end: int,
    scope: Mapping[str, str],
    projected_nano: int | None,
) -> dict[str, Any]:
    """The alert's machine-readable details: exact figures, the window and the filters that
    the investigation context (:mod:`spanmeter.budgets.rules.context`) re-runs."""
    spend, limit = total.total_nano_usd, budget.limit_nano_usd
    return {
        "type": "budget",
        "budget": budget.name,
        "description": budget.description,
        "scope": scope,
        "scope_key": total.increment.scope_key,
        "level": "forecast" if level < 0 else budget.level_name(level),
        "threshold": "forecast" if level < 0 else percent(budget.threshold_of(level)),
        "window": {
            "kind": budget.window.kind,
            "timezone": budget.window.timezone,
            "hours": budget.window.hours,
            "from": iso(start),
            "to": iso(end),
        },
        "limit_usd": usd(limit),
        "spend_usd": usd(spend),
        "spend_nano_usd": spend,
        "ratio": round(spend / limit if limit else 0.0, 6),
        "projected_usd": None if projected_nano is None else usd(projected_nano),
        "filters": scope,
    }
