"""What a budget and an alert rule are: the validated definitions (:mod:`.model`), their
windows (:mod:`.windows`), the values of the budgets file (:mod:`.values`) and the index
that matches spans to budget scopes (:mod:`.matcher`).

The layer below every other part of :mod:`spanmeter.budgets`: it imports none of them.
"""

from __future__ import annotations

from .matcher import BudgetIndex
from .model import AlertRule, Budget, BudgetsConfig, Channel, RetryPolicy
from .values import BudgetConfigError
from .windows import WindowSpec

__all__ = [
    "AlertRule",
    "Budget",
    "BudgetConfigError",
    "BudgetIndex",
    "BudgetsConfig",
    "Channel",
    "RetryPolicy",
    "WindowSpec",
]
