"""Budget status now: each budget state's window, spend, level and forecast.

One function serves ``GET /api/v1/budgets/status``, ``spanmeter budgets status`` and the
data :class:`spanmeter.BudgetGuard` polls, so they cannot disagree. The level shown is
computed from the spend and the limit *now* (a limit raised after an alert shows the new
truth); the alerts already sent are a separate column.

Filtering by dimension answers the enforcement question "which budgets apply to a call
with tenant_id=acme?": by default a state matches a filter when its scope has that value
*or does not constrain that dimension* (a global budget applies to every tenant).
``match="exact"`` keeps only states whose scope names the value.

States name hashed user ids (``uh_...``, as stored), so a ``user_id`` filter is hashed here
with :func:`spanmeter.identity.default_hasher` (keyed by ``SPANMETER_USER_ID_HASH_KEY``,
which must match the receiver's); an id that is already hashed is used as is.

Example::

    states = budget_states(store.budget_store, snapshot.index, time.time_ns(),
                           filters={"tenant_id": "acme"})
    document = status_document(states, time.time_ns())
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from ...identity import default_hasher
from ...money import usd
from ...store import BudgetSpend, BudgetStore
from ...timeunits import iso
from ..definitions.matcher import BudgetIndex, full_scope
from ..definitions.model import WILDCARD, Budget, percent

__all__ = ["BudgetState", "budget_states", "state_document", "status_document"]


@dataclass(frozen=True)
class BudgetState:
    """One budget state (a budget, or one value of a ``*`` budget) in its current window."""

    budget: Budget
    scope_key: str
    scope: Mapping[str, str]
    window_start_ns: int
    window_end_ns: int
    spend_nano_usd: int
    attempts: int
    unpriced: int
    level: int
    alerted_level: int
    projected_nano_usd: int | None

    @property
    def state(self) -> Literal["ok", "warning", "exceeded"]:
        """``ok``, ``warning`` or ``exceeded``, from the spend and the current limit."""
        return self.budget.level_name(self.level)

    @property
    def ratio(self) -> float:
        """Spend / limit (for display; compare the integers to decide)."""
        limit = self.budget.limit_nano_usd
        return self.spend_nano_usd / limit if limit else 0.0

    @property
    def forecast_exceeds(self) -> bool:
        """The projected spend at the window's end reaches the limit."""
        return self.projected_nano_usd is not None and self.projected_nano_usd >= self.budget.limit_nano_usd


def _projection(budget: Budget, spend: int, start: int, end: int, now_ns: int) -> int | None:
    if budget.window.is_rolling or not (start <= now_ns < end):
        return None
    elapsed = now_ns - start
    if elapsed < max(budget.forecast_min_elapsed_ns, 1):
        return None
    return spend * (end - start) // elapsed


def _matches(scope: Mapping[str, str], filters: Mapping[str, str], exact: bool) -> bool:
    for dim, value in filters.items():
        have = scope.get(dim)
        if have is None:
            if exact:
                return False
        elif have != value:
            return False
    return True


def budget_states(
    store: BudgetStore,
    index: BudgetIndex,
    now_ns: int,
    *,
    filters: Mapping[str, str] | None = None,
    budget: str | None = None,
    state: str | None = None,
    match: Literal["applies", "exact"] = "applies",
) -> list[BudgetState]:
    """Every budget state of the current windows, filtered; sorted by budget then scope.

    A ``user_id`` filter may be the raw id or the hashed one (see the module doc).

    A plain budget (no ``*``) always has a state, at zero if nothing was spent yet; a ``*``
    budget has one per value that spent something in the window.

    Raises:
        ValueError: an unknown ``budget`` name or ``state``.
    """
    if budget is not None and budget not in index.by_name:
        raise ValueError(f"no budget named {budget!r}; known: {', '.join(sorted(index.by_name)) or 'none'}")
    if state is not None and state not in ("ok", "warning", "exceeded"):
        raise ValueError(f"unknown state {state!r}: use ok, warning or exceeded")
    filters = dict(filters or {})
    if filters.get("user_id"):
        filters["user_id"] = default_hasher()(filters["user_id"])  # raw in, hashed as stored
    states: list[BudgetState] = []
    for definition in index.by_name.values():
        if budget is not None and definition.name != budget:
            continue
        states += (
            item
            for item in _states_of(store, definition, now_ns, filters, exact=match == "exact")
            if state is None or item.state == state
        )
    states.sort(key=lambda s: (s.budget.name, s.scope_key))
    return states


def _states_of(
    store: BudgetStore, definition: Budget, now_ns: int, filters: Mapping[str, str], *, exact: bool
) -> list[BudgetState]:
    """One budget's states in its current window that match ``filters``."""
    fixed = {d: v for d, v in definition.scope.items() if v != WILDCARD}
    # a quick reject before reading: a fixed dimension contradicting a filter
    if any(d in fixed and fixed[d] != v for d, v in filters.items()):
        return []
    start, end = definition.window.current(now_ns)
    states: list[BudgetState] = []
    for row in _spend_rows(store, definition, start, end):
        scope = full_scope(definition, row.scope_key)
        if not _matches(scope, filters, exact):
            continue
        states.append(
            BudgetState(
                budget=definition,
                scope_key=row.scope_key,
                scope=scope,
                window_start_ns=start,
                window_end_ns=end,
                spend_nano_usd=row.cost_nano_usd,
                attempts=row.attempts,
                unpriced=row.unpriced,
                level=definition.level(row.cost_nano_usd),
                alerted_level=row.alerted_level,
                projected_nano_usd=_projection(definition, row.cost_nano_usd, start, end, now_ns),
            )
        )
    return states


def _spend_rows(store: BudgetStore, definition: Budget, start: int, end: int) -> Sequence[BudgetSpend]:
    """The budget's spend per scope in ``[start, end)``; a plain budget that spent nothing yet
    still gets its one row, at zero, so it always has a state."""
    rows: Sequence[BudgetSpend]
    if definition.window.is_rolling:
        rows = store.rolling_spend(definition.counter, start, end)
    else:
        rows = store.budget_spend(definition.counter, start, end)
    if not rows and not definition.wildcards:
        rows = [BudgetSpend("", start, end, 0, 0, 0)]
    return rows


def state_document(item: BudgetState) -> dict[str, Any]:
    """One state as JSON: exact integers plus decimal-string USD."""
    definition = item.budget
    return {
        "budget": definition.name,
        "scope": dict(item.scope),
        "scope_key": item.scope_key,
        "window": {
            "kind": definition.window.kind,
            "timezone": definition.window.timezone,
            "hours": definition.window.hours,
            "from": iso(item.window_start_ns),
            "to": iso(item.window_end_ns),
        },
        "state": item.state,
        "level": item.level,
        "threshold": percent(definition.threshold_of(item.level)) if item.level else None,
        "limit_usd": usd(definition.limit_nano_usd),
        "limit_nano_usd": definition.limit_nano_usd,
        "spend_usd": usd(item.spend_nano_usd),
        "spend_nano_usd": item.spend_nano_usd,
        "remaining_usd": usd(max(0, definition.limit_nano_usd - item.spend_nano_usd)),
        "ratio": round(item.ratio, 6),
        "projected_usd": None if item.projected_nano_usd is None else usd(item.projected_nano_usd),
        "forecast_exceeds": item.forecast_exceeds,
        "attempts": item.attempts,
        "unpriced_attempts": item.unpriced,
    }


def status_document(states: Sequence[BudgetState], now_ns: int) -> dict[str, Any]:
    """The status page: every state plus counts per state."""
    counts = {"ok": 0, "warning": 0, "exceeded": 0}
    for item in states:
        counts[item.state] += 1
    return {
        "generated_at": iso(now_ns),
        "generated_at_ns": now_ns,
        "counts": counts,
        "states": [state_document(item) for item in states],
    }
