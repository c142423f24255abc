"""What a budget and an alert rule are: the validated definitions (:mod:`.model`), their
windows (:mod:`.windows`), the values of the budgets file (:mod:`.values`), the index
that matches spans to budget scopes (:mod:`.matcher`) and the JSON documents of the
definitions the API and the CLI show (:mod:`.documents`).

The layer below every other part of :mod:`spanmeter.budgets`: it imports none of them.
"""

from __future__ import annotations

from .documents import budget_document, budgets_document
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
    "budget_document",
    "budgets_document",
]
